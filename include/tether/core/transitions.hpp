#pragma once

// The record transitions of sync, as pure functions: each takes a record and
// what happened to it, changes the record, and returns why (a `cause`). No
// storage, transport or engine is involved, so each is tested on its own; the
// engine stores the record and tells watchers. The legal status transitions
// they keep to are in status.hpp.
#include <tether/core/timestamp.hpp>
#include <tether/conflict/conflict.hpp>
#include <tether/core/cause.hpp>
#include <tether/core/entity.hpp>
#include <tether/core/error.hpp>
#include <tether/core/field_set.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/status.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

namespace tether::transitions {

/// @brief Clears the attempt count, the next attempt time and the last error.
template <class E>
void start_afresh(record<E>& r) noexcept {
    r.attempts = 0;
    r.next_attempt_at.reset();
    r.last_error.reset();
}

/// @brief Takes the server's id (when it names one) and version (never lower).
template <class E>
void take_server_identity(record<E>& r, std::string_view server_id, std::uint64_t version) {
    if (!server_id.empty()) r.server_id = std::string{server_id};
    r.version = std::max(r.version, version);
}

/// @brief Takes the server's id (when it names one) and its version as it is,
/// even below the local one: the server's current copy, the base the next
/// update must name (after a restore from a backup it is below what the
/// device saw before).
template <class E>
void take_server_base(record<E>& r, std::string_view server_id, std::uint64_t version) {
    if (!server_id.empty()) r.server_id = std::string{server_id};
    r.version = version;
}

/// @brief True if the record has a change waiting to go up.
template <class E>
[[nodiscard]] bool wants_push(const record<E>& r) noexcept {
    return r.status == sync_status::pending || r.status == sync_status::pending_deletion;
}

/// @brief A local remove of a record the server may hold: it becomes a
/// delete waiting to go up, with its attempts started afresh.
template <class E>
cause remove_locally(record<E>& r, timestamp now) noexcept {
    r.deleted = true;
    r.status = sync_status::pending_deletion;
    r.local_rev += 1;
    start_afresh(r);
    r.updated_at = now;
    return cause::remove;
}

/// @brief `reset_failed`: a `failed` record goes back in line (`pending`, or
/// `pending_deletion` for a failed delete) with no attempts counted.
template <class E>
cause reset_failed(record<E>& r, timestamp now) noexcept {
    r.status = r.deleted ? sync_status::pending_deletion : sync_status::pending;
    start_afresh(r);
    r.local_rev += 1;
    r.updated_at = now;
    return cause::reset_failed;
}

/// @brief A failed push attempt: counts it and, with a `delay` (the backoff's
/// answer; empty: give up), makes the record `error` until `now + delay`, else
/// `failed`. Returns true if the record will retry.
template <class E>
bool fail_attempt(record<E>& r, const error& e, timestamp now, std::optional<std::chrono::milliseconds> delay) {
    r.attempts += 1;
    r.last_attempt_at = now;
    r.last_error = e;
    if (delay) {
        r.status = sync_status::error;
        r.next_attempt_at = now + *delay;
        return true;
    }
    r.status = sync_status::failed;
    r.next_attempt_at.reset();
    return false;
}

/// @brief A push the server applied (not a remove): `r` is the record now,
/// `sent` the value the push was made from, `answer` the server's value
/// after it (empty if it does not decode: the local value is kept).
///
/// Server wins: the answer is the new value, fields the server filled in
/// included. What changed since the pushed snapshot is laid over it and stays
/// `dirty`; with `replay` (the server answered a create with a record it already
/// held), the answer predates every local edit since the create's first attempt
/// (where the push starts a create's `dirty` afresh), so all of `r.dirty` is
/// laid over it instead. Nothing left over: `synced`.
template <class E>
cause applied(record<E>& r, const E& sent, std::optional<std::type_identity_t<E>> answer, bool replay,
              std::string_view server_id, std::uint64_t version) {
    take_server_identity(r, server_id, version);
    start_afresh(r);
    const field_set changed = replay ? r.dirty : entity_ops<E>::diff(sent, r.value);
    if (answer) {
        E merged = entity_ops<E>::merge(*answer, r.value, changed);
        r.dirty = entity_ops<E>::diff(*answer, merged);
        r.value = std::move(merged);
    } else {
        r.dirty = changed;
    }
    if (r.deleted) {
        r.status = sync_status::pending_deletion;
        return cause::push_applied_deleted;
    }
    if (r.dirty.empty()) {
        r.status = sync_status::synced;
        return replay ? cause::push_applied_replayed : cause::push_applied;
    }
    r.status = sync_status::pending;
    return replay ? cause::push_applied_replayed_changes : cause::push_applied_changed;
}

/// @brief A pulled record this device did not hold: `synced` at the server's
/// version, under local id `id` (the server's, or a fresh one).
template <class E>
[[nodiscard]] record<E> pulled_new(const local_id& id, std::string_view server_id, std::type_identity_t<E> value,
                                   std::uint64_t version, timestamp now) {
    record<E> r;
    r.id = id;
    r.server_id = std::string{server_id};
    r.value = std::move(value);
    r.status = sync_status::synced;
    r.version = version;
    r.created_at = now;
    r.updated_at = now;
    return r;
}

/// @brief A pull replaces a `synced` record by the server's copy. The version
/// is taken as it is: in a full resync it may be below the local one.
template <class E>
cause take_pulled(record<E>& r, std::type_identity_t<E> value, std::uint64_t version) {
    r.value = std::move(value);
    r.version = version;
    return cause::pull;
}

/// @brief A pull shows the server holds this device's own create whose answer
/// was lost (equal values): it is confirmed, `synced` under the server's id.
template <class E>
cause confirm_create(record<E>& r, std::string_view server_id, std::uint64_t version) {
    r.server_id = std::string{server_id};
    r.version = version;
    r.status = sync_status::synced;
    r.dirty.clear();
    start_afresh(r);
    return cause::pull_create_confirmed;
}

/// @brief A full resync met a record with local changes: they are kept, on
/// the server's version (taken even when below the local one) as their base.
template <class E>
cause keep_changes_on(record<E>& r, std::uint64_t version) noexcept {
    r.version = version;
    return cause::resync_changes_kept;
}

/// @brief A full resync never saw the server id of a record with local
/// changes: the server lost it (restored from an older backup). It keeps the
/// server id, at version 0 with nothing marked dirty, so it goes up again
/// whole as an update based on version 0 under that server id, which the
/// server takes as the lost record sent again (it re-creates it there): every
/// device that held it, whatever local id it gave it, sends it again under one
/// server id, and a remove of it names that id too. A `failed` one stays
/// `failed` with its count.
template <class E>
cause forget_server_copy(record<E>& r, timestamp now) noexcept {
    r.version = 0;
    r.dirty.clear();
    r.local_rev += 1;
    if (r.status != sync_status::failed) {
        r.status = sync_status::pending;
        start_afresh(r);
    }
    r.updated_at = now;
    return cause::resync_unknown;
}

/// @brief The server's current copy is this device's own earlier write (whose
/// response was lost): no other writer is involved, so nothing conflicts. Its
/// version becomes the base and what changed since goes up.
template <class E>
cause rebase_on_own_write(record<E>& r, const E& server_value, std::string_view server_id, std::uint64_t version) {
    take_server_base(r, server_id, version);
    const bool failed = r.status == sync_status::failed;
    if (!failed) start_afresh(r);
    if (r.deleted) {
        if (!failed) r.status = sync_status::pending_deletion;
        return cause::own_write_delete_kept;
    }
    r.dirty = entity_ops<E>::diff(server_value, r.value);
    if (r.dirty.empty()) {
        if (!failed) r.status = sync_status::synced;
        return cause::own_write_confirmed;
    }
    if (!failed) r.status = sync_status::pending;
    return cause::own_write_changes_kept;
}

/// @brief Applies the conflict policy's `decision` to `r` against the server's
/// copy (`server_value` at `version`). A record that leaves `failed` starts its
/// attempts afresh; one that stays `failed` keeps its count and error, so the
/// user still sees why.
template <class E>
cause settle(record<E>& r, const resolution<E>& decision, std::type_identity_t<E> server_value,
             std::string_view server_id, std::uint64_t version) {
    take_server_base(r, server_id, version);
    auto take_server = [&](cause why) {
        r.value = std::move(server_value);
        r.status = sync_status::synced;
        r.deleted = false;
        r.dirty.clear();
        start_afresh(r);
        return why;
    };
    auto keep = [&](cause why) {
        if (r.status != sync_status::failed) start_afresh(r);
        return why;
    };
    switch (decision.kind) {
        case resolution_kind::take_server: return take_server(cause::conflict_server_wins);
        case resolution_kind::keep_local:
            if (r.deleted) {
                r.status = sync_status::pending_deletion;
                r.dirty.clear();
                start_afresh(r);
                return cause::conflict_local_delete_kept;
            }
            r.dirty = entity_ops<E>::diff(server_value, r.value);
            if (r.dirty.empty()) return take_server(cause::conflict_local_equals_server);
            if (r.status != sync_status::failed) r.status = sync_status::pending;
            return keep(cause::conflict_local_kept);
        case resolution_kind::merged:
            if (!decision.value) return take_server(cause::conflict_server_wins_empty_merge);
            r.value = *decision.value;
            r.deleted = false;
            r.dirty = entity_ops<E>::diff(server_value, r.value);
            if (r.dirty.empty()) return take_server(cause::conflict_merge_equals_server);
            r.status = sync_status::pending;
            start_afresh(r);
            return cause::conflict_merged;
    }
    return take_server(cause::conflict_server_wins);
}

}  // namespace tether::transitions
