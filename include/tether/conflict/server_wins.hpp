#pragma once

#include <tether/conflict/conflict.hpp>

namespace tether {

/// @brief The default conflict policy: the server's copy always wins.
///
/// Every conflict resolves to `resolution_kind::take_server`: the local record
/// takes the server's value and version and becomes `synced`; its unsynced local
/// change (edit or delete) is dropped. The engine uses this policy when none is
/// given.
///
/// @code
/// // the same engine as with no conflict policy at all
/// auto jobs = tether::make_engine<Job>(tether::server_wins{});
///
/// tether::conflict<Job> c{.local = local_record, .server_value = server_job};
/// assert(tether::server_wins{}.resolve(c).kind == tether::resolution_kind::take_server);
/// @endcode
///
/// @see client_wins, last_writer_wins, field_merge, resolve_with
struct server_wins {
    using policy_kind = conflict_tag;  ///< a conflict policy

    /// @brief Always `resolution<E>::take_server()`.
    template <class E>
    [[nodiscard]] resolution<E> resolve(const conflict<E>& /*c*/) const noexcept {
        return resolution<E>::take_server();
    }
};

}  // namespace tether
