#pragma once

#include <tether/clock/clock.hpp>
#include <tether/core/record.hpp>

#include <concepts>
#include <cstdint>
#include <optional>

namespace tether {

/// @brief The kind tag of conflict policies.
struct conflict_tag {};

/// @brief Both sides of a disagreement: the local record (with its unsynced
/// changes) and the server's current copy.
///
/// A conflict arises when a push finds the server at a newer version than the
/// one the local change was based on, or a pull brings a server change for a
/// record that also has local changes. `local.deleted` tells whether the local
/// change is a delete (its status is `pending_deletion`, or `error`/`failed`
/// after a failed attempt) or an edit. A deletion on the server is final and
/// never reaches a conflict policy.
template <class E>
struct conflict {
    const record<E>& local;                      ///< the local record, changes included
    const E& server_value;                       ///< the server's current value
    std::uint64_t server_version = 0;            ///< the server's current version
    std::optional<timestamp> server_updated_at;  ///< when the server last changed it, if known
};

/// @brief What to do about a conflict.
enum class resolution_kind : std::uint8_t {
    take_server,  ///< the server's copy replaces the local one (record becomes `synced`)
    keep_local,   ///< the local change is pushed again on top of the server's version
    merged,       ///< `resolution::value` is pushed on top of the server's version
};

/// @brief A conflict policy's decision.
///
/// For `merged`, `value` holds the merged entity and `dirty` the fields in which
/// it differs from the server's copy. The engine recomputes that set from the
/// two values before the next push (so a wrong `dirty` cannot lose a field);
/// a merge equal to the server's value is applied as `take_server`.
template <class E>
struct resolution {
    resolution_kind kind = resolution_kind::take_server;  ///< the decision
    std::optional<E> value;                               ///< the merged value (`merged` only)

    /// @brief The server's copy wins.
    static resolution take_server() { return {}; }
    /// @brief The local change wins.
    static resolution keep_local() { return {resolution_kind::keep_local, std::nullopt}; }
    /// @brief A merged value wins. The engine pushes the fields in which it
    /// differs from the server's value (it computes them itself, so a policy
    /// cannot name too few or too many); equal to the server's value, it is
    /// `take_server`.
    static resolution merged(E value) { return {resolution_kind::merged, std::move(value)}; }
};

/// @brief A conflict policy: a pure decision from both sides of a conflict.
///
/// Requirements on a type `P`:
/// 1. `P::policy_kind` is `tether::conflict_tag`;
/// 2. `P` is copy constructible;
/// 3. for the engine's entity `E`, `p.resolve(c)` with a `const conflict<E>&`
///    on a `const P` returns `resolution<E>`, without side effects on the record
///    (the engine applies the decision in one storage transaction).
///
/// @code
/// struct keep_longer_title {
///     using policy_kind = tether::conflict_tag;
///     tether::resolution<Job> resolve(const tether::conflict<Job>& c) const {
///         return c.local.value.title.size() > c.server_value.title.size()
///                    ? tether::resolution<Job>::keep_local()
///                    : tether::resolution<Job>::take_server();
///     }
/// };
/// static_assert(tether::conflict_policy<keep_longer_title, Job>);
/// @endcode
template <class P, class E>
concept conflict_policy = std::same_as<typename P::policy_kind, conflict_tag> && std::copy_constructible<P>
    && requires(const P& p, const conflict<E>& c) {
           { p.resolve(c) } -> std::same_as<resolution<E>>;
       };

}  // namespace tether
