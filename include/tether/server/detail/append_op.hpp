#pragma once

// The append op of `server::sync_service` (server/sync_service.hpp declares
// it): the chunk is added to a string member's text when the server's text is
// as long as the sender says it was (a replay of an append already applied is
// answered as applied; another length is a conflict), then stored as an
// update of that member and told to the observer as `appended`. Defined out of
// the class and included at the end of sync_service.hpp; not a public entry point.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/append.hpp>
#include <tether/server/store.hpp>
#include <tether/server/sync_service.hpp>
#include <tether/transport/live.hpp>
#include <tether/transport/transport.hpp>

#include <string>
#include <string_view>
#include <utility>

namespace tether::server {

template <server_store Store>
template <class Tx>
result<push_outcome> sync_service<Store>::append_(Tx& tx, scope s, const push_op& op, std::string_view origin,
                                                  timestamp now, journal* j) const {
    auto a = protocol::append_from_json(op.value);
    if (!a) return rejected_(std::move(a).error());
    auto found = find_(tx, s, op);
    if (!found) return unexpected{std::move(found).error()};
    if (!*found || (*found)->deleted) return op_not_found_(op);
    auto& r = **found;
    const auto it = r.record.value.find(a->member);
    if (it == r.record.value.end() || !it->is_string())
        return rejected_(error{errc::invalid_argument, "append: member '" + a->member + "' is not a string", 400,
                               std::nullopt});
    auto& text = it->template get_ref<std::string&>();
    switch (protocol::fit_append(text, *a)) {
        case protocol::append_fit::replayed: return replayed_(applied_(std::move(r.record)));
        case protocol::append_fit::mismatch:
            return push_outcome{push_outcome::kind::conflict, r.record,
                    error{errc::conflict,
                          "append: length_before " + std::to_string(a->length_before) + ", server text is " +
                              std::to_string(text.size()) + " bytes",
                          409, std::nullopt}};
        case protocol::append_fit::fresh: break;
    }
    if (!version_matches_(op, r)) return conflict_(op, std::move(r.record));
    if (a->chunk.empty()) return applied_(std::move(r.record));
    text += a->chunk;
    const std::string value_text = value_text_<Tx>(r.record.value);
    if (auto big = over_limit_(op, value_text)) return std::move(*big);
    live_append told{a->member, std::move(a->chunk), a->length_before, text.size()};
    r.record.origin = std::string{origin};
    if (auto ok = commit_change_(tx, s, r, now, j, &value_text, std::move(told)); !ok)
        return unexpected{std::move(ok).error()};
    return applied_(std::move(r.record));
}

}  // namespace tether::server
