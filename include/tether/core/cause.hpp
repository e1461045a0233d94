#pragma once

#include <cstdint>
#include <ostream>
#include <string_view>

namespace tether {

/// @brief Why a record changed: the reason the engine gives with every
/// transition and change (`transition::cause`, `change::cause` carry its
/// `to_string`, followed by `": <errc>"` for a failed or rejected push).
enum class cause : std::uint8_t {
    create,                        ///< a local create
    update,                        ///< a local update
    remove,                        ///< a local remove
    reset_failed,                  ///< `reset_failed`
    pull,                          ///< a pulled record (new, or replacing a synced one)
    pull_create_confirmed,         ///< a pull showed the server holds our own unconfirmed create
    push_applied,                  ///< the server applied the push; the record is synced
    push_applied_changed,          ///< applied, but the record changed during the push
    push_applied_deleted,          ///< applied, but the record was removed during the push
    push_applied_replayed,         ///< a replayed create, confirmed
    push_applied_replayed_changes, ///< a replayed create; later local edits go up again
    push_deleted_on_server,        ///< a push of a remove applied: the record is gone
    push_already_deleted,          ///< a remove met a record the server no longer has
    push_failed,                   ///< the push as a whole failed (an attempt counted)
    push_rejected,                 ///< the server refused this op
    push_conflict_unreadable,      ///< a conflict whose server value does not decode
    deleted_on_server,             ///< a tombstone, or an edit that met a server-side deletion
    deleted_on_server_unlisted,    ///< missing from a full-list server's list
    conflict_server_wins,          ///< the conflict policy took the server's copy
    conflict_server_wins_empty_merge,  ///< a merge with no value: the server's copy
    conflict_local_delete_kept,    ///< the policy kept a local delete
    conflict_local_equals_server,  ///< the policy kept local, which equals the server's copy
    conflict_local_kept,           ///< the policy kept the local change
    conflict_merged,               ///< the policy merged both sides
    conflict_merge_equals_server,  ///< the merge equals the server's copy
    own_write_confirmed,           ///< the server's copy is this device's own earlier write
    own_write_delete_kept,         ///< ...and the record was removed since
    own_write_changes_kept,        ///< ...and the record was edited since
    resync_changes_kept,           ///< a full resync: local changes kept on the server's version
    resync_unknown,                ///< a full resync: the server lost a record with local changes; it goes up again
    resync_lost_synced,            ///< a full resync: the server lost a synced record; removed here too
    merged_twin,                   ///< a pulled twin of a local record, merged into it
};

/// @brief The text of a cause ("push applied", "conflict: server wins", ...).
[[nodiscard]] constexpr std::string_view to_string(cause c) noexcept {
    switch (c) {
        case cause::create: return "create";
        case cause::update: return "update";
        case cause::remove: return "remove";
        case cause::reset_failed: return "reset_failed";
        case cause::pull: return "pull";
        case cause::pull_create_confirmed: return "pull: create confirmed";
        case cause::push_applied: return "push applied";
        case cause::push_applied_changed: return "push applied; changed during push";
        case cause::push_applied_deleted: return "push applied; deleted during push";
        case cause::push_applied_replayed: return "push applied: create replayed";
        case cause::push_applied_replayed_changes: return "push applied: create replayed, local changes kept";
        case cause::push_deleted_on_server: return "push applied: deleted on server";
        case cause::push_already_deleted: return "push applied: already deleted on server";
        case cause::push_failed: return "push failed";
        case cause::push_rejected: return "push rejected";
        case cause::push_conflict_unreadable: return "push conflict with an unreadable server value";
        case cause::deleted_on_server: return "deleted on server";
        case cause::deleted_on_server_unlisted: return "deleted on server (missing from full list)";
        case cause::conflict_server_wins: return "conflict: server wins";
        case cause::conflict_server_wins_empty_merge: return "conflict: server wins (empty merge)";
        case cause::conflict_local_delete_kept: return "conflict: local delete kept";
        case cause::conflict_local_equals_server: return "conflict: local equals server";
        case cause::conflict_local_kept: return "conflict: local kept";
        case cause::conflict_merged: return "conflict: merged";
        case cause::conflict_merge_equals_server: return "conflict: merge equals server";
        case cause::own_write_confirmed: return "own earlier write confirmed";
        case cause::own_write_delete_kept: return "own earlier write confirmed; delete kept";
        case cause::own_write_changes_kept: return "own earlier write confirmed; later changes kept";
        case cause::resync_changes_kept: return "resync: local changes kept";
        case cause::resync_unknown: return "resync: unknown to the server";
        case cause::resync_lost_synced: return "resync: lost by the server, removed";
        case cause::merged_twin: return "merged into its local original";
    }
    return "unknown";
}

inline std::ostream& operator<<(std::ostream& os, cause c) { return os << to_string(c); }

/// @brief Why a sync ran: carried in its `sync_report::trigger` and in every
/// `transition::trigger` it causes, so the audit log shows why a sync ran.
enum class sync_trigger : std::uint8_t {
    user,         ///< the app called `sync()` (a plain `sync()` is user-initiated)
    scheduled,    ///< the scheduler's periodic run
    after_write,  ///< a local write asked for it (writes in a burst share one run)
    reconnect,    ///< connectivity or login came back
    retry_due,    ///< a record in `error` reached its `next_attempt_at`
    event,        ///< something outside said the server has news (e.g. a live feed)
};

/// @brief The canonical name of a sync trigger ("user", "after_write", ...).
[[nodiscard]] constexpr std::string_view to_string(sync_trigger t) noexcept {
    switch (t) {
        case sync_trigger::user: return "user";
        case sync_trigger::scheduled: return "scheduled";
        case sync_trigger::after_write: return "after_write";
        case sync_trigger::reconnect: return "reconnect";
        case sync_trigger::retry_due: return "retry_due";
        case sync_trigger::event: return "event";
    }
    return "unknown";
}

inline std::ostream& operator<<(std::ostream& os, sync_trigger t) { return os << to_string(t); }

}  // namespace tether
