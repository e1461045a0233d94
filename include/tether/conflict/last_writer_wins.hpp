#pragma once

#include <tether/conflict/conflict.hpp>

namespace tether {

/// @brief A conflict policy under which the later write wins, by timestamp.
///
/// Compares the local record's `updated_at` (the time of its last local write,
/// or of its deletion for a `pending_deletion` record) with the server's
/// `server_updated_at`:
/// 1. local strictly later → `keep_local` (the edit is pushed again, or the
///    delete is sent again);
/// 2. server later, or **both equal** → `take_server`: ties go to the server, so
///    every device settles the same conflict the same way;
/// 3. server time unknown (`server_updated_at` empty) → `take_server`.
///
/// The two times come from different clocks (the device's and the server's), so
/// the outcome is only as good as their agreement; a device whose clock runs
/// ahead wins more often than it should.
///
/// @code
/// auto jobs = tether::make_engine<Job>(tether::last_writer_wins{});
///
/// // local_record.updated_at == t0 + 5s
/// tether::conflict<Job> c{.local = local_record, .server_value = server_job,
///                         .server_version = 7, .server_updated_at = t0 + 3s};
/// assert(tether::last_writer_wins{}.resolve(c).kind == tether::resolution_kind::keep_local);
/// @endcode
///
/// @see server_wins, client_wins, field_merge, resolve_with
struct last_writer_wins {
    using policy_kind = conflict_tag;  ///< a conflict policy

    /// @brief `keep_local` if the local write is strictly later than the
    /// server's, `take_server` otherwise (ties and unknown server times included).
    template <class E>
    [[nodiscard]] resolution<E> resolve(const conflict<E>& c) const noexcept {
        if (c.server_updated_at && c.local.updated_at > *c.server_updated_at) {
            return resolution<E>::keep_local();
        }
        return resolution<E>::take_server();
    }
};

}  // namespace tether
