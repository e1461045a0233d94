#pragma once

// The push ops of `server::sync_service` (server/sync_service.hpp declares
// them): each op of a batch goes to its handler inside the batch's write
// transaction: create (idempotent on the local id), update (fields merged,
// checked against base_version), recreate (a record a restore lost, sent
// again), remove and the remove of a record the server does not hold (a
// tombstone either way). The append op is in append_op.hpp. Defined out of
// the class and included at the end of sync_service.hpp; not a public entry point.
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/server/store.hpp>
#include <tether/server/sync_service.hpp>
#include <tether/transport/transport.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tether::server {

template <server_store Store>
template <class Tx>
result<push_outcome> sync_service<Store>::apply_(Tx& tx, scope s, const push_op& op, std::string_view origin,
                                                 timestamp now, const filler_fn* filler, journal* j) const {
    try {
        switch (op.kind) {
            case op_kind::create: return create_(tx, s, op, origin, now, filler, j);
            case op_kind::update: return update_(tx, s, op, origin, now, j);
            case op_kind::remove: return remove_(tx, s, op, origin, now, j);
            case op_kind::append: return append_(tx, s, op, origin, now, j);
        }
        return protocol_("unknown op kind");
    } catch (const nlohmann::json::exception& e) {
        return protocol_(std::string{"malformed op: "} + e.what());
    }
}

template <server_store Store>
template <class Tx>
result<push_outcome> sync_service<Store>::create_(Tx& tx, scope s, const push_op& op, std::string_view origin,
                                                  timestamp now, const filler_fn* filler, journal* j) const {
    if (!op.value.is_object()) return protocol_("create: value must be a JSON object");
    if (op.id.is_nil()) return protocol_("create: the local id is nil");
    auto held = tx.find_by_local_id(s, op.id);
    if (!held) return unexpected{std::move(held).error()};
    if (*held) {
        auto& r = **held;
        if (r.deleted) return op_not_found_(op);
        // Changed since its create, or sent by another device (one that held the record a
        // restore lost sent it again): the sender's edits would overwrite that change.
        const bool other_origin = !origin.empty() && !r.record.origin.empty() && r.record.origin != origin;
        if (r.record.version != r.created_version || other_origin) {
            return replayed_(conflict_(op, std::move(r.record)));
        }
        return replayed_(applied_(std::move(r.record)));  // idempotent: the first create's record
    }
    nlohmann::json value = op.value;
    if (filler != nullptr && *filler) {
        (*filler)(value);
        if (!value.is_object()) return protocol_("create: the create filler left the value not an object");
    }
    const std::string text = value_text_<Tx>(value);
    if (auto big = over_limit_(op, text)) return std::move(*big);
    auto sid = new_server_id_(tx, s);
    if (!sid) return unexpected{std::move(sid).error()};
    stored_record rec{server_record{std::move(*sid), op.id, 0, std::move(value), now, std::string{origin}}, false, 0};
    return insert_(tx, s, std::move(rec), text, j);
}

template <server_store Store>
template <class Tx>
result<push_outcome> sync_service<Store>::update_(Tx& tx, scope s, const push_op& op, std::string_view origin,
                                                  timestamp now, journal* j) const {
    if (!op.value.is_object()) return protocol_("update: value must be a JSON object of changed fields");
    auto found = find_(tx, s, op);
    if (!found) return unexpected{std::move(found).error()};
    if (!*found && names_by_server_id_(op) && op.base_version == 0) return recreate_(tx, s, op, origin, now, j);
    if (!*found || (*found)->deleted) return op_not_found_(op);
    auto& r = **found;
    if (!version_matches_(op, r)) return conflict_(op, std::move(r.record));
    nlohmann::json merged = r.record.value;  // merge into a copy: all fields or none
    for (const auto& field : op.value.items()) merged[field.key()] = field.value();
    const std::string text = value_text_<Tx>(merged);
    if (auto big = over_limit_(op, text)) return std::move(*big);
    r.record.value = std::move(merged);
    r.record.origin = std::string{origin};
    if (auto ok = commit_change_(tx, s, r, now, j, &text); !ok) return unexpected{std::move(ok).error()};
    return applied_(std::move(r.record));
}

template <server_store Store>
template <class Tx>
result<push_outcome> sync_service<Store>::recreate_(Tx& tx, scope s, const push_op& op, std::string_view origin,
                                                    timestamp now, journal* j) const {
    const std::string text = value_text_<Tx>(op.value);
    if (auto big = over_limit_(op, text)) return std::move(*big);
    std::optional<local_id> id;
    if (!op.id.is_nil()) id = op.id;
    stored_record rec{server_record{*op.server_id, id, 0, op.value, now, std::string{origin}}, false, 0};
    return insert_(tx, s, std::move(rec), text, j);
}

template <server_store Store>
template <class Tx>
result<push_outcome> sync_service<Store>::remove_(Tx& tx, scope s, const push_op& op, std::string_view origin,
                                                  timestamp now, journal* j) const {
    auto found = find_(tx, s, op);
    if (!found) return unexpected{std::move(found).error()};
    if (!*found) return remove_unknown_(tx, s, op, origin, now, j);
    auto& r = **found;
    if (r.deleted) return applied_(std::move(r.record));
    if (!version_matches_(op, r)) return conflict_(op, std::move(r.record));
    r.deleted = true;
    r.record.origin = std::string{origin};
    if (auto ok = commit_change_(tx, s, r, now, j); !ok) return unexpected{std::move(ok).error()};
    return applied_(std::move(r.record));
}

template <server_store Store>
template <class Tx>
result<push_outcome> sync_service<Store>::remove_unknown_(Tx& tx, scope s, const push_op& op, std::string_view origin,
                                                          timestamp now, journal* j) {
    server_record known;
    known.server_id = op.server_id.value_or(std::string{});
    if (!op.id.is_nil()) known.id = op.id;
    if (!names_by_server_id_(op)) {
        if (op.id.is_nil()) return applied_(std::move(known));  // names no record at all
        auto fresh = new_server_id_(tx, s);
        if (!fresh) return unexpected{std::move(fresh).error()};
        known.server_id = std::move(*fresh);
    }
    known.value = nlohmann::json::object();
    known.origin = std::string{origin};
    stored_record gone{std::move(known), true, 0};
    if (auto ok = commit_change_(tx, s, gone, now, j); !ok) return unexpected{std::move(ok).error()};
    return applied_(std::move(gone.record));
}

}  // namespace tether::server
