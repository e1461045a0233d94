#pragma once

#include <tether/conflict/conflict.hpp>

namespace tether {

/// @brief A conflict policy under which the local change always wins.
///
/// Every conflict resolves to `resolution_kind::keep_local`: a local edit is
/// pushed again on top of the server's version (overwriting the server's
/// change), and a local delete (`sync_status::pending_deletion`) is sent again,
/// deleting the record the server changed.
///
/// @code
/// auto jobs = tether::make_engine<Job>(tether::client_wins{});
///
/// tether::conflict<Job> c{.local = local_record, .server_value = server_job};
/// assert(tether::client_wins{}.resolve(c).kind == tether::resolution_kind::keep_local);
/// @endcode
///
/// @see server_wins, last_writer_wins, field_merge, resolve_with
struct client_wins {
    using policy_kind = conflict_tag;  ///< a conflict policy

    /// @brief Always `resolution<E>::keep_local()`.
    template <class E>
    [[nodiscard]] resolution<E> resolve(const conflict<E>& /*c*/) const noexcept {
        return resolution<E>::keep_local();
    }
};

}  // namespace tether
