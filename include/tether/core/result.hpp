#pragma once

#include <tether/core/detail/result_ops.hpp>

#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace tether {

/// @brief A value of type `T`, or the error `E` explaining why there is none.
///
/// Modelled on C++23 `std::expected` (same member names), so that switching to
/// `std::expected<T, error>` later is a one-line change. Expected failures are
/// returned, never thrown; only `value()` on an error throws `bad_result_access<E>`.
/// Extension over `std::expected`: `fold(on_error, on_value)`.
///
/// @code
/// tether::result<int> parse_port(std::string_view s);
///
/// tether::result<std::string> describe(std::string_view s) {
///     return parse_port(s)
///         .and_then([](int p) -> tether::result<int> {
///             if (p > 65535) return tether::unexpected(tether::make_error(tether::errc::invalid_argument, "port"));
///             return p;
///         })
///         .transform([](int p) { return "port " + std::to_string(p); });
/// }
/// std::string text = describe("80").fold([](const tether::error& e) { return e.message; },
///                                        [](const std::string& s) { return s; });
/// @endcode
/// @tparam T the value type (an object type; not a reference, array, `unexpected` or tag).
/// @tparam E the error type, `tether::error` by default.
template <class T, class E>
class [[nodiscard]] result : public detail::result_ops<result<T, E>> {
    static_assert(std::is_object_v<T> && !std::is_array_v<T> && !std::is_const_v<T> &&
                      !std::is_volatile_v<T>,
                  "tether::result<T, E>: T must be void or a non-array, non-cv object type");
    static_assert(!std::is_same_v<T, std::in_place_t> && !std::is_same_v<T, unexpect_t> &&
                      !detail::is_unexpected_v<T>,
                  "tether::result<T, E>: T must not be in_place_t, unexpect_t or an unexpected");

    using storage_t = std::variant<T, E>;  // index 0: value, 1: error (T and E may coincide)

public:
    using value_type = T;                          ///< @brief The value type `T`.
    using error_type = E;                          ///< @brief The error type `E`.
    using unexpected_type = unexpected<E>;         ///< @brief `unexpected<E>`.
    template <class U>
    using rebind = result<U, error_type>;          ///< @brief The same result over another value type.

    /// @brief Holds a value-initialised `T`.
    constexpr result() noexcept(std::is_nothrow_default_constructible_v<T>)
        requires std::is_default_constructible_v<T>
        : s_(std::in_place_index<0>) {}

    /// @brief Copies (if `T` and `E` are copyable).
    constexpr result(const result&) = default;
    /// @brief Moves (if `T` and `E` are movable); the source keeps its moved-from state.
    constexpr result(result&&) = default;

    /// @brief Holds a value built from `v` (explicit when `U` does not convert implicitly).
    template <class U = T>
        requires(!std::is_same_v<std::remove_cvref_t<U>, std::in_place_t> &&
                 !std::is_same_v<std::remove_cvref_t<U>, unexpect_t> &&
                 !std::is_same_v<std::remove_cvref_t<U>, result> &&
                 !detail::is_unexpected_v<std::remove_cvref_t<U>> &&
                 !(std::is_same_v<T, bool> && is_result_v<std::remove_cvref_t<U>>) &&
                 std::is_constructible_v<T, U>)
    constexpr explicit(!std::is_convertible_v<U, T>) result(U&& v) noexcept(
        std::is_nothrow_constructible_v<T, U>)
        : s_(std::in_place_index<0>, std::forward<U>(v)) {}

    /// @brief Holds the error of `u`, copied.
    template <class G>
        requires std::is_constructible_v<E, const G&>
    constexpr explicit(!std::is_convertible_v<const G&, E>) result(const unexpected<G>& u) noexcept(
        std::is_nothrow_constructible_v<E, const G&>)
        : s_(std::in_place_index<1>, u.error()) {}

    /// @brief Holds the error of `u`, moved.
    template <class G>
        requires std::is_constructible_v<E, G>
    constexpr explicit(!std::is_convertible_v<G, E>) result(unexpected<G>&& u) noexcept(
        std::is_nothrow_constructible_v<E, G>)
        : s_(std::in_place_index<1>, std::move(u).error()) {}

    /// @brief Holds a value built in place from `args`.
    template <class... Args>
        requires std::is_constructible_v<T, Args...>
    constexpr explicit result(std::in_place_t, Args&&... args) noexcept(
        std::is_nothrow_constructible_v<T, Args...>)
        : s_(std::in_place_index<0>, std::forward<Args>(args)...) {}

    /// @brief Holds an error built in place from `args`.
    template <class... Args>
        requires std::is_constructible_v<E, Args...>
    constexpr explicit result(unexpect_t, Args&&... args) noexcept(
        std::is_nothrow_constructible_v<E, Args...>)
        : s_(std::in_place_index<1>, std::forward<Args>(args)...) {}

    /// @brief Copy-assigns (if `T` and `E` are copyable).
    constexpr result& operator=(const result&) = default;
    /// @brief Move-assigns (if `T` and `E` are movable).
    constexpr result& operator=(result&&) = default;

    /// @brief Assigns a value, replacing the error if there was one.
    template <class U = T>
        requires(!std::is_same_v<std::remove_cvref_t<U>, result> &&
                 !detail::is_unexpected_v<std::remove_cvref_t<U>> &&
                 std::is_constructible_v<T, U> && std::is_assignable_v<T&, U>)
    constexpr result& operator=(U&& v) {
        if (has_value()) **this = std::forward<U>(v);
        else reinit_<0>(std::forward<U>(v));
        return *this;
    }

    /// @brief Assigns the error of `u` (copied), replacing the value if there was one.
    template <class G>
        requires(std::is_constructible_v<E, const G&> && std::is_assignable_v<E&, const G&>)
    constexpr result& operator=(const unexpected<G>& u) {
        if (has_value()) reinit_<1>(u.error());
        else error() = u.error();
        return *this;
    }

    /// @brief Assigns the error of `u` (moved), replacing the value if there was one.
    template <class G>
        requires(std::is_constructible_v<E, G> && std::is_assignable_v<E&, G>)
    constexpr result& operator=(unexpected<G>&& u) {
        if (has_value()) reinit_<1>(std::move(u).error());
        else error() = std::move(u).error();
        return *this;
    }

    /// @brief Replaces the content with a value built from `args`; returns it.
    template <class... Args>
        requires std::is_constructible_v<T, Args...>
    constexpr T& emplace(Args&&... args) {
        reinit_<0>(std::forward<Args>(args)...);
        return **this;
    }

    /// @brief Swaps contents with `other`.
    constexpr void swap(result& other) noexcept(std::is_nothrow_swappable_v<storage_t>) { s_.swap(other.s_); }
    /// @brief Swaps contents of `a` and `b`.
    friend constexpr void swap(result& a, result& b) noexcept(noexcept(a.swap(b))) { a.swap(b); }

    /// @brief True when a value is held.
    [[nodiscard]] constexpr bool has_value() const noexcept { return s_.index() == 0; }
    /// @brief Same as `has_value()`.
    constexpr explicit operator bool() const noexcept { return has_value(); }

    /// @brief Pointer to the value. Precondition: `has_value()`.
    [[nodiscard]] constexpr T* operator->() noexcept { return std::get_if<0>(&s_); }
    /// @brief Pointer to the value. Precondition: `has_value()`.
    [[nodiscard]] constexpr const T* operator->() const noexcept { return std::get_if<0>(&s_); }
    /// @brief The value, unchecked. Precondition: `has_value()`.
    [[nodiscard]] constexpr T& operator*() & noexcept { return *std::get_if<0>(&s_); }
    /// @brief The value, unchecked. Precondition: `has_value()`.
    [[nodiscard]] constexpr const T& operator*() const& noexcept { return *std::get_if<0>(&s_); }
    /// @brief The value, unchecked, moved out of a temporary. Precondition: `has_value()`.
    ///
    /// Returns by value, unlike `std::expected` (which returns `T&&`), so that
    /// `for (auto& r : *engine.list())` does not dangle.
    [[nodiscard]] constexpr T operator*() && noexcept(std::is_nothrow_move_constructible_v<T>) {
        return std::move(*std::get_if<0>(&s_));
    }
    /// @brief The value, unchecked, copied out of a const temporary. Precondition: `has_value()`.
    [[nodiscard]] constexpr T operator*() const&& { return *std::get_if<0>(&s_); }

    /// @brief The value; throws `bad_result_access<E>` (holding a copy of the error) if none.
    [[nodiscard]] constexpr T& value() & {
        if (!has_value()) detail::throw_bad_result_access(std::as_const(error()));
        return **this;
    }
    /// @brief The value; throws `bad_result_access<E>` (holding a copy of the error) if none.
    [[nodiscard]] constexpr const T& value() const& {
        if (!has_value()) detail::throw_bad_result_access(error());
        return **this;
    }
    /// @brief The value, moved out of a temporary; throws `bad_result_access<E>`
    /// (holding the moved error) if none. Returns by value, so that
    /// `for (auto& r : engine.list().value())` does not dangle.
    [[nodiscard]] constexpr T value() && {
        if (!has_value()) detail::throw_bad_result_access(std::move(*this).error());
        return std::move(*this).operator*();
    }
    /// @brief The value, copied out of a const temporary; throws `bad_result_access<E>` if none.
    [[nodiscard]] constexpr T value() const&& {
        if (!has_value()) detail::throw_bad_result_access(std::move(*this).error());
        return std::move(*this).operator*();
    }

    /// @brief The error, unchecked. Precondition: `!has_value()`.
    [[nodiscard]] constexpr E& error() & noexcept { return *std::get_if<1>(&s_); }
    /// @brief The error, unchecked. Precondition: `!has_value()`.
    [[nodiscard]] constexpr const E& error() const& noexcept { return *std::get_if<1>(&s_); }
    /// @brief The error, unchecked, moved out. Precondition: `!has_value()`.
    [[nodiscard]] constexpr E error() && noexcept(std::is_nothrow_move_constructible_v<E>) {
        return std::move(*std::get_if<1>(&s_));
    }
    /// @brief The error, unchecked, as a const rvalue. Precondition: `!has_value()`.
    [[nodiscard]] constexpr E error() const&& { return *std::get_if<1>(&s_); }

    /// @brief The value if there is one, else `fallback` converted to `T`.
    template <class U>
    [[nodiscard]] constexpr T value_or(U&& fallback) const& {
        static_assert(std::is_copy_constructible_v<T> && std::is_convertible_v<U, T>,
                      "tether::result::value_or: T must be copyable and U convertible to T");
        return has_value() ? **this : static_cast<T>(std::forward<U>(fallback));
    }
    /// @brief The value (moved out) if there is one, else `fallback` converted to `T`.
    template <class U>
    [[nodiscard]] constexpr T value_or(U&& fallback) && {
        static_assert(std::is_move_constructible_v<T> && std::is_convertible_v<U, T>,
                      "tether::result::value_or: T must be movable and U convertible to T");
        return has_value() ? std::move(**this) : static_cast<T>(std::forward<U>(fallback));
    }

    /// @brief The error if there is one, else `fallback` converted to `E`.
    template <class G = E>
    [[nodiscard]] constexpr E error_or(G&& fallback) const& {
        return has_value() ? static_cast<E>(std::forward<G>(fallback)) : error();
    }
    /// @brief The error (moved out) if there is one, else `fallback` converted to `E`.
    template <class G = E>
    [[nodiscard]] constexpr E error_or(G&& fallback) && {
        return has_value() ? static_cast<E>(std::forward<G>(fallback)) : std::move(error());
    }

private:
    // Builds the new alternative first when that may throw, so that a throwing
    // constructor leaves the old content in place (given a nothrow move).
    template <std::size_t I, class... Args>
    constexpr void reinit_(Args&&... args) {
        using A = std::variant_alternative_t<I, storage_t>;
        if constexpr (std::is_nothrow_constructible_v<A, Args...>) {
            s_.template emplace<I>(std::forward<Args>(args)...);
        } else {
            A tmp(std::forward<Args>(args)...);
            s_.template emplace<I>(std::move(tmp));
        }
    }

    storage_t s_;
};

/// @brief A result that carries no value: success, or the error `E`.
///
/// @code
/// tether::result<void> save(const job& j);
/// if (auto r = save(j); !r) log(r.error());
/// @endcode
/// @tparam E the error type, `tether::error` by default.
template <class E>
class [[nodiscard]] result<void, E> : public detail::result_ops<result<void, E>> {
public:
    using value_type = void;                       ///< @brief `void`.
    using error_type = E;                          ///< @brief The error type `E`.
    using unexpected_type = unexpected<E>;         ///< @brief `unexpected<E>`.
    template <class U>
    using rebind = result<U, error_type>;          ///< @brief The same result over another value type.

    /// @brief Success.
    constexpr result() noexcept = default;
    /// @brief Copies (if `E` is copyable).
    constexpr result(const result&) = default;
    /// @brief Moves (if `E` is movable).
    constexpr result(result&&) = default;
    /// @brief Success (same as the default constructor).
    constexpr explicit result(std::in_place_t) noexcept {}

    /// @brief Holds the error of `u`, copied.
    template <class G>
        requires std::is_constructible_v<E, const G&>
    constexpr explicit(!std::is_convertible_v<const G&, E>) result(const unexpected<G>& u) noexcept(
        std::is_nothrow_constructible_v<E, const G&>)
        : err_(std::in_place, u.error()) {}

    /// @brief Holds the error of `u`, moved.
    template <class G>
        requires std::is_constructible_v<E, G>
    constexpr explicit(!std::is_convertible_v<G, E>) result(unexpected<G>&& u) noexcept(
        std::is_nothrow_constructible_v<E, G>)
        : err_(std::in_place, std::move(u).error()) {}

    /// @brief Holds an error built in place from `args`.
    template <class... Args>
        requires std::is_constructible_v<E, Args...>
    constexpr explicit result(unexpect_t, Args&&... args) noexcept(
        std::is_nothrow_constructible_v<E, Args...>)
        : err_(std::in_place, std::forward<Args>(args)...) {}

    /// @brief Copy-assigns (if `E` is copyable).
    constexpr result& operator=(const result&) = default;
    /// @brief Move-assigns (if `E` is movable).
    constexpr result& operator=(result&&) = default;

    /// @brief Assigns the error of `u` (copied).
    template <class G>
        requires(std::is_constructible_v<E, const G&> && std::is_assignable_v<E&, const G&>)
    constexpr result& operator=(const unexpected<G>& u) {
        if (err_) *err_ = u.error();
        else err_.emplace(u.error());
        return *this;
    }
    /// @brief Assigns the error of `u` (moved).
    template <class G>
        requires(std::is_constructible_v<E, G> && std::is_assignable_v<E&, G>)
    constexpr result& operator=(unexpected<G>&& u) {
        if (err_) *err_ = std::move(u).error();
        else err_.emplace(std::move(u).error());
        return *this;
    }

    /// @brief Becomes a success, dropping any error.
    constexpr void emplace() noexcept { err_.reset(); }

    /// @brief Swaps contents with `other`.
    constexpr void swap(result& other) noexcept(std::is_nothrow_swappable_v<std::optional<E>>) {
        err_.swap(other.err_);
    }
    /// @brief Swaps contents of `a` and `b`.
    friend constexpr void swap(result& a, result& b) noexcept(noexcept(a.swap(b))) { a.swap(b); }

    /// @brief True on success.
    [[nodiscard]] constexpr bool has_value() const noexcept { return !err_.has_value(); }
    /// @brief Same as `has_value()`.
    constexpr explicit operator bool() const noexcept { return has_value(); }
    /// @brief Does nothing (there is no value to read). Precondition: `has_value()`.
    constexpr void operator*() const noexcept {}

    /// @brief Returns on success; throws `bad_result_access<E>` (holding a copy of the error) otherwise.
    constexpr void value() const& {
        if (!has_value()) detail::throw_bad_result_access(error());
    }
    /// @brief Returns on success; throws `bad_result_access<E>` (holding the moved error) otherwise.
    constexpr void value() && {
        if (!has_value()) detail::throw_bad_result_access(std::move(*err_));
    }

    /// @brief The error, unchecked. Precondition: `!has_value()`.
    [[nodiscard]] constexpr E& error() & noexcept { return *err_; }
    /// @brief The error, unchecked. Precondition: `!has_value()`.
    [[nodiscard]] constexpr const E& error() const& noexcept { return *err_; }
    /// @brief The error, unchecked, moved out. Precondition: `!has_value()`.
    [[nodiscard]] constexpr E error() && noexcept(std::is_nothrow_move_constructible_v<E>) { return std::move(*err_); }
    /// @brief The error, unchecked, as a const rvalue. Precondition: `!has_value()`.
    [[nodiscard]] constexpr E error() const&& { return *err_; }

    /// @brief The error if there is one, else `fallback` converted to `E`.
    template <class G = E>
    [[nodiscard]] constexpr E error_or(G&& fallback) const& {
        return has_value() ? static_cast<E>(std::forward<G>(fallback)) : error();
    }
    /// @brief The error (moved out) if there is one, else `fallback` converted to `E`.
    template <class G = E>
    [[nodiscard]] constexpr E error_or(G&& fallback) && {
        return has_value() ? static_cast<E>(std::forward<G>(fallback)) : std::move(*err_);
    }

private:
    std::optional<E> err_;  // empty on success
};

// Comparisons are namespace-scope templates rather than hidden friends: the result
// parameter is deduced, so no implicit conversion (e.g. `3` -> `result<int>`) makes
// them candidates for unrelated types, whose constraints would then recurse.

/// @brief Equal when both hold equal values (or both succeeded, for `void`) or both hold equal errors.
template <class T, class E, class T2, class E2>
    requires(std::is_void_v<T> == std::is_void_v<T2>) && requires(const E& e, const E2& e2) {
        { e == e2 } -> std::convertible_to<bool>;
    } && (std::is_void_v<T> || requires(const T& t, const T2& t2) {
        { t == t2 } -> std::convertible_to<bool>;
    })
constexpr bool operator==(const result<T, E>& x, const result<T2, E2>& y) {
    if (x.has_value() != y.has_value()) return false;
    if (!x.has_value()) return static_cast<bool>(x.error() == y.error());
    if constexpr (std::is_void_v<T>) return true;
    else return static_cast<bool>(*x == *y);
}

/// @brief Equal when a value is held and it equals `v`.
template <class T, class E, class U>
    requires(!std::is_void_v<T> && !is_result_v<U> && !detail::is_unexpected_v<U>) &&
            requires(const T& t, const U& u) {
                { t == u } -> std::convertible_to<bool>;
            }
constexpr bool operator==(const result<T, E>& x, const U& v) {
    return x.has_value() && static_cast<bool>(*x == v);
}

/// @brief Equal when an error is held and it equals `u.error()`.
template <class T, class E, class G>
    requires requires(const E& e, const G& g) {
        { e == g } -> std::convertible_to<bool>;
    }
constexpr bool operator==(const result<T, E>& x, const unexpected<G>& u) {
    return !x.has_value() && static_cast<bool>(x.error() == u.error());
}

}  // namespace tether
