#pragma once

#include <tether/conflict/conflict.hpp>

#include <concepts>
#include <type_traits>
#include <utility>

namespace tether {

namespace detail {

/// @brief True if a `const F` called with a `const conflict<E>&` returns exactly
/// `resolution<E>`.
template <class F, class E>
concept conflict_callback = requires(const F& f, const conflict<E>& c) {
    { f(c) } -> std::same_as<resolution<E>>;
};

}  // namespace detail

/// @brief A conflict policy that asks an application callable.
///
/// `resolve(c)` returns `fn(c)`. The callable:
/// 1. is called as `const` with a `const conflict<E>&` (a `mutable` lambda does
///    not qualify) and must return `resolution<E>`, or compilation stops with
///    "tether::resolve_with: the callback must return tether::resolution<E>";
/// 2. should decide from its argument alone: the engine calls it inside a
///    storage transaction, possibly on a sync thread;
/// 3. may throw: the exception never leaves `resolve`, which then returns
///    `take_server` (the default policy's decision).
///
/// `F` must be copy constructible for the type to be a `conflict_policy`. Build
/// one with `resolve_with`.
///
/// @tparam F the callable's type (a lambda, a function object, a function pointer)
///
/// @see resolve_with
template <class F>
struct callback_resolver {
    using policy_kind = conflict_tag;  ///< a conflict policy

    [[no_unique_address]] F fn;  ///< the application's decision

    /// @brief `fn(c)`, or `take_server` if `fn` throws.
    template <class E>
    [[nodiscard]] resolution<E> resolve(const conflict<E>& c) const noexcept {
        static_assert(detail::conflict_callback<F, E>,
                      "tether::resolve_with: the callback must return tether::resolution<E>");
        if constexpr (detail::conflict_callback<F, E>) {
            try {
                return fn(c);
            } catch (...) {
                return resolution<E>::take_server();
            }
        } else {
            return resolution<E>::take_server();  // unreachable: only quiets follow-up errors
        }
    }
};

/// @brief A conflict policy from a callable returning `resolution<E>`.
///
/// If the callable throws, the conflict resolves to `take_server` and the
/// exception goes no further (see `callback_resolver`).
///
/// @code
/// auto jobs = tether::make_engine<Job>(tether::resolve_with(
///     [](const tether::conflict<Job>& c) {
///         // keep whichever side made more progress
///         return c.local.value.progress > c.server_value.progress
///                    ? tether::resolution<Job>::keep_local()
///                    : tether::resolution<Job>::take_server();
///     }));
/// @endcode
///
/// @see callback_resolver
template <class F>
[[nodiscard]] callback_resolver<std::decay_t<F>> resolve_with(F&& f) {
    return callback_resolver<std::decay_t<F>>{std::forward<F>(f)};
}

}  // namespace tether
