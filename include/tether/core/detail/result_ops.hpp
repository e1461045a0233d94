#pragma once

/// @file
/// @brief `result`'s forward declaration, its traits and the monadic members
/// that `result<T, E>` and `result<void, E>` share (`detail::result_ops`).
#include <tether/core/unexpected.hpp>

#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace tether {

template <class T, class E = error>
class [[nodiscard]] result;

/// @brief True when `T` is a `tether::result<U, G>` (no cv/ref stripping).
template <class T>
inline constexpr bool is_result_v = false;
/// @brief True when `T` is a `tether::result<U, G>` (no cv/ref stripping).
template <class T, class E>
inline constexpr bool is_result_v<result<T, E>> = true;

namespace detail {

template <class T>
inline constexpr bool is_unexpected_v = false;
template <class E>
inline constexpr bool is_unexpected_v<unexpected<E>> = true;

template <class R, class E>
inline constexpr bool is_result_with_error_v = false;
template <class T, class E>
inline constexpr bool is_result_with_error_v<result<T, E>, E> = true;

template <class R, class T>
inline constexpr bool is_result_with_value_v = false;
template <class T, class E>
inline constexpr bool is_result_with_value_v<result<T, E>, T> = true;

template <class E>
[[noreturn]] void throw_bad_result_access(E&& e) {
#if defined(__cpp_exceptions)
    throw bad_result_access<std::decay_t<E>>(std::forward<E>(e));
#else
    (void)e;
    std::terminate();
#endif
}

template <class A, class B>
concept have_common_type = requires { typename std::common_type_t<A, B>; };

/// @brief The monadic members shared by `result<T, E>` and `result<void, E>` (CRTP base).
/// The implementations are static members so that ADL never finds them.
template <class Derived>
class result_ops {
public:
    /// @brief `f(value)` (or `f()` for void), which must return a `result<U, E>`, if there is a
    /// value; else a `result<U, E>` holding the error.
    template <class F> constexpr auto and_then(F&& f) & { return and_then_(self_(), std::forward<F>(f)); }
    /// @copydoc and_then
    template <class F> constexpr auto and_then(F&& f) const& { return and_then_(self_(), std::forward<F>(f)); }
    /// @copydoc and_then
    template <class F> constexpr auto and_then(F&& f) && { return and_then_(std::move(self_()), std::forward<F>(f)); }
    /// @copydoc and_then
    template <class F> constexpr auto and_then(F&& f) const&& { return and_then_(std::move(self_()), std::forward<F>(f)); }

    /// @brief `result<U, E>` holding `f(value)` (or `f()` for void) if there is a value, else the error.
    template <class F> constexpr auto transform(F&& f) & { return transform_(self_(), std::forward<F>(f)); }
    /// @copydoc transform
    template <class F> constexpr auto transform(F&& f) const& { return transform_(self_(), std::forward<F>(f)); }
    /// @copydoc transform
    template <class F> constexpr auto transform(F&& f) && { return transform_(std::move(self_()), std::forward<F>(f)); }
    /// @copydoc transform
    template <class F> constexpr auto transform(F&& f) const&& { return transform_(std::move(self_()), std::forward<F>(f)); }

    /// @brief `f(error)`, which must return a `result<T, G>`, if there is an error; else a
    /// `result<T, G>` holding the value.
    template <class F> constexpr auto or_else(F&& f) & { return or_else_(self_(), std::forward<F>(f)); }
    /// @copydoc or_else
    template <class F> constexpr auto or_else(F&& f) const& { return or_else_(self_(), std::forward<F>(f)); }
    /// @copydoc or_else
    template <class F> constexpr auto or_else(F&& f) && { return or_else_(std::move(self_()), std::forward<F>(f)); }
    /// @copydoc or_else
    template <class F> constexpr auto or_else(F&& f) const&& { return or_else_(std::move(self_()), std::forward<F>(f)); }

    /// @brief `result<T, G>` holding `f(error)` if there is an error, else the value.
    template <class F> constexpr auto transform_error(F&& f) & { return transform_error_(self_(), std::forward<F>(f)); }
    /// @copydoc transform_error
    template <class F> constexpr auto transform_error(F&& f) const& { return transform_error_(self_(), std::forward<F>(f)); }
    /// @copydoc transform_error
    template <class F> constexpr auto transform_error(F&& f) && { return transform_error_(std::move(self_()), std::forward<F>(f)); }
    /// @copydoc transform_error
    template <class F> constexpr auto transform_error(F&& f) const&& { return transform_error_(std::move(self_()), std::forward<F>(f)); }

    /// @brief Collapses to one value: `on_error(error())`, or `on_value(value)` (`on_value()` for
    /// void), converted to their common type. Not in `std::expected`.
    template <class OnError, class OnValue>
    constexpr auto fold(OnError&& on_error, OnValue&& on_value) & {
        return fold_(self_(), std::forward<OnError>(on_error), std::forward<OnValue>(on_value));
    }
    /// @copydoc fold
    template <class OnError, class OnValue>
    constexpr auto fold(OnError&& on_error, OnValue&& on_value) const& {
        return fold_(self_(), std::forward<OnError>(on_error), std::forward<OnValue>(on_value));
    }
    /// @copydoc fold
    template <class OnError, class OnValue>
    constexpr auto fold(OnError&& on_error, OnValue&& on_value) && {
        return fold_(std::move(self_()), std::forward<OnError>(on_error), std::forward<OnValue>(on_value));
    }
    /// @copydoc fold
    template <class OnError, class OnValue>
    constexpr auto fold(OnError&& on_error, OnValue&& on_value) const&& {
        return fold_(std::move(self_()), std::forward<OnError>(on_error), std::forward<OnValue>(on_value));
    }

private:
    constexpr Derived& self_() noexcept { return static_cast<Derived&>(*this); }
    constexpr const Derived& self_() const noexcept { return static_cast<const Derived&>(*this); }

    // Calls `f(*self)`, or `f()` when the value type is void.
    template <class Self, class F>
    static constexpr decltype(auto) invoke_value_(Self&& self, F&& f) {
        if constexpr (std::is_void_v<typename Derived::value_type>) return std::invoke(std::forward<F>(f));
        else return std::invoke(std::forward<F>(f), *std::forward<Self>(self));
    }
    template <class Self, class F>
    using value_result_t = decltype(invoke_value_(std::declval<Self>(), std::declval<F>()));
    template <class Self, class F>
    using error_result_t = std::invoke_result_t<F, decltype(std::declval<Self>().error())>;

    // Builds an `R` holding the value of `self` (nothing when void).
    template <class R, class Self>
    static constexpr R pass_value_(Self&& self) {
        if constexpr (std::is_void_v<typename Derived::value_type>) return R();
        else return R(std::in_place, *std::forward<Self>(self));
    }

    template <class Self, class F>
    static constexpr auto and_then_(Self&& self, F&& f) {
        using U = std::remove_cvref_t<value_result_t<Self, F>>;
        constexpr bool ok = is_result_with_error_v<U, typename Derived::error_type>;
        static_assert(ok, "tether::result::and_then: F must return a tether::result with the same error type");
        if constexpr (ok) {
            if (!self.has_value()) return U(unexpect, std::forward<Self>(self).error());
            return invoke_value_(std::forward<Self>(self), std::forward<F>(f));
        }
    }

    template <class Self, class F>
    static constexpr auto or_else_(Self&& self, F&& f) {
        using G = std::remove_cvref_t<error_result_t<Self, F>>;
        constexpr bool ok = is_result_with_value_v<G, typename Derived::value_type>;
        static_assert(ok, "tether::result::or_else: F must return a tether::result with the same value type");
        if constexpr (ok) {
            if (self.has_value()) return pass_value_<G>(std::forward<Self>(self));
            return std::invoke(std::forward<F>(f), std::forward<Self>(self).error());
        }
    }

    template <class Self, class F>
    static constexpr auto transform_(Self&& self, F&& f) {
        using U = std::remove_cv_t<value_result_t<Self, F>>;
        using R = result<U, typename Derived::error_type>;
        if (!self.has_value()) return R(unexpect, std::forward<Self>(self).error());
        if constexpr (std::is_void_v<U>) {
            invoke_value_(std::forward<Self>(self), std::forward<F>(f));
            return R();
        } else {
            return R(std::in_place, invoke_value_(std::forward<Self>(self), std::forward<F>(f)));
        }
    }

    template <class Self, class F>
    static constexpr auto transform_error_(Self&& self, F&& f) {
        using R = result<typename Derived::value_type, std::remove_cv_t<error_result_t<Self, F>>>;
        if (self.has_value()) return pass_value_<R>(std::forward<Self>(self));
        return R(unexpect, std::invoke(std::forward<F>(f), std::forward<Self>(self).error()));
    }

    // True when `f(value)` (or `f()` for void) is well-formed.
    template <class Self, class F>
    static constexpr bool value_invocable_() {
        if constexpr (std::is_void_v<typename Derived::value_type>) return std::is_invocable_v<F>;
        else return std::is_invocable_v<F, decltype(*std::declval<Self>())>;
    }

    template <class Self, class OnError, class OnValue>
    static constexpr auto fold_(Self&& self, OnError&& on_error, OnValue&& on_value) {
        // Checked before any result type is computed, so that a call with the
        // callbacks swapped stops here rather than deep in std::invoke_result.
        constexpr bool error_ok = std::is_invocable_v<OnError, decltype(std::declval<Self>().error())>;
        constexpr bool value_ok = value_invocable_<Self, OnValue>();
        static_assert(error_ok,
                      "tether::result::fold(on_error, on_value): on_error, the first argument, must be callable "
                      "with the error (are on_error and on_value swapped?)");
        static_assert(!error_ok || value_ok,
                      "tether::result::fold(on_error, on_value): on_value, the second argument, must be callable "
                      "with the value (with no argument for result<void>)");
        if constexpr (error_ok && value_ok) {
            using A = error_result_t<Self, OnError>;
            using B = value_result_t<Self, OnValue>;
            static_assert(have_common_type<A, B>,
                          "tether::result::fold: on_error and on_value must return the same (or a common) type");
            if constexpr (have_common_type<A, B>) {
                using R = std::common_type_t<A, B>;
                if (self.has_value()) {
                    return static_cast<R>(invoke_value_(std::forward<Self>(self), std::forward<OnValue>(on_value)));
                }
                return static_cast<R>(std::invoke(std::forward<OnError>(on_error), std::forward<Self>(self).error()));
            }
        }
    }
};

}  // namespace detail

}  // namespace tether
