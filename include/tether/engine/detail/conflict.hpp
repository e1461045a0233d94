#pragma once

// Conflicts, for both passes: a push answered `conflict` and a pulled record
// meeting local changes are settled here, by the conflict policy or, when the
// server's copy is this device's own earlier write, by a rebase on it. Read
// after outcome.hpp. Not a public entry point.
#include <tether/conflict/conflict.hpp>
#include <tether/core/transitions.hpp>
#include <tether/engine/detail/context.hpp>
#include <tether/transport/transport.hpp>

#include <string>
#include <utility>

namespace tether::detail {

/// True if the server's copy was written by this device (its push `origin`).
template <class Ctx>
[[nodiscard]] bool is_own_write(const Ctx& ctx, const server_record& s) {
    return !ctx.device_id.empty() && s.origin == ctx.device_id;
}

/// The conflict policy decides between `after` (the local record) and the
/// server's copy; `transitions::settle` applies the decision. A record left
/// with a change to go up asks for another round.
template <class Ctx>
std::string settle_conflict(Ctx& ctx, typename Ctx::record_type& after, const server_record& s,
                            typename Ctx::entity_type server_value, pass_result& out) {
    using entity_type = typename Ctx::entity_type;
    ++out.report.conflicts;
    const auto decision = ctx.conflict.resolve(conflict<entity_type>{after, server_value, s.version, s.updated_at});
    const auto why = transitions::settle(after, decision, std::move(server_value), s.server_id, s.version);
    if (transitions::wants_push(after)) out.rerun = true;  // goes up in the next round of this sync
    return std::string{to_string(why)};
}

/// The server's copy is this device's own earlier write (its response was
/// lost): no one else is involved, so no policy either. Its version becomes
/// the base and what changed since goes up (`transitions::rebase_on_own_write`).
template <class Record, class Entity>
std::string rebase_own_write(Record& after, const server_record& s, const Entity& server_value, pass_result& out) {
    const auto why = transitions::rebase_on_own_write(after, server_value, s.server_id, s.version);
    if (transitions::wants_push(after)) out.rerun = true;
    return std::string{to_string(why)};
}

}  // namespace tether::detail
