#pragma once

// The policies mode's conflict policy: one engine type for every conflict
// policy. Per seed it runs one of tether's policies (server_wins, client_wins,
// last_writer_wins, field_merge, or a resolve_with callback) and hands every
// decision to the simulator, which knows from it exactly which values the
// decision discarded (invariant 8) and checks that the engine applied it.
#include "support/entities.hpp"

#include <tether/conflict/callback.hpp>
#include <tether/conflict/client_wins.hpp>
#include <tether/conflict/conflict.hpp>
#include <tether/conflict/field_merge.hpp>
#include <tether/conflict/last_writer_wins.hpp>
#include <tether/conflict/server_wins.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string_view>

namespace tether_sim {

/// The conflict policies the policies mode draws from, one per seed.
enum class policy_choice : std::uint8_t { server_wins, client_wins, last_writer_wins, field_merge, callback };
inline constexpr std::size_t policy_count = 5;
inline constexpr std::array<std::string_view, policy_count> policy_names{"server_wins", "client_wins",
                                                                         "last_writer_wins", "field_merge", "callback"};

/// The callback of the policies mode (through `tether::resolve_with`): the side
/// that made more progress wins; with equal progress and different titles, the
/// server's value with the local title (a merge); one conflict in 11 (by server
/// version) throws, which the callback policy settles as take_server.
struct progress_rule {
    tether::resolution<tether_test::Job> operator()(const tether::conflict<tether_test::Job>& c) const {
        using R = tether::resolution<tether_test::Job>;
        if (c.server_version % 11 == 0) throw std::runtime_error{"progress_rule: cannot decide"};
        if (c.local.value.progress > c.server_value.progress) return R::keep_local();
        if (!c.local.deleted && c.local.value.progress == c.server_value.progress &&
            c.local.value.title != c.server_value.title) {
            auto merged = c.server_value;
            merged.title = c.local.value.title;
            return R::merged(std::move(merged));
        }
        return R::take_server();
    }
};

/// The policy: dispatches to `choice` and reports `(client, conflict, decision)`
/// to `sink` (owned by the seed's world).
template <class E>
struct sim_policy {
    using policy_kind = tether::conflict_tag;
    using sink_type = std::function<void(int, const tether::conflict<E>&, const tether::resolution<E>&)>;

    policy_choice choice = policy_choice::server_wins;
    const sink_type* sink = nullptr;
    int client = 0;

    tether::resolution<E> resolve(const tether::conflict<E>& c) const {
        tether::resolution<E> r;
        switch (choice) {
            case policy_choice::server_wins: r = tether::server_wins{}.resolve(c); break;
            case policy_choice::client_wins: r = tether::client_wins{}.resolve(c); break;
            case policy_choice::last_writer_wins: r = tether::last_writer_wins{}.resolve(c); break;
            case policy_choice::field_merge: r = tether::field_merge{}.resolve(c); break;
            case policy_choice::callback: r = tether::resolve_with(progress_rule{}).resolve(c); break;
        }
        if (sink != nullptr && *sink) (*sink)(client, c, r);
        return r;
    }
};

}  // namespace tether_sim
