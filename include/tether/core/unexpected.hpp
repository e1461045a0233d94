#pragma once

/// @file
/// @brief The error side of `tether::result`: `unexpected<E>`, the `unexpect`
/// tag and `bad_result_access`, what `result::value()` throws on an error.
#include <tether/core/error.hpp>

#include <exception>
#include <type_traits>
#include <utility>

namespace tether {

/// @brief The error side of a `result`, as a value to return or assign.
///
/// Mirrors `std::unexpected`: `return tether::unexpected(make_error(errc::offline));`
/// @tparam E the error type (an object type, not cv-qualified, not an array).
template <class E>
class unexpected {
    static_assert(std::is_object_v<E> && !std::is_array_v<E> && !std::is_const_v<E> &&
                      !std::is_volatile_v<E>,
                  "tether::unexpected<E>: E must be a non-array, non-cv object type");

public:
    /// @brief Wraps `e`, converted to `E`.
    template <class Err = E>
        requires(!std::is_same_v<std::remove_cvref_t<Err>, unexpected> &&
                 !std::is_same_v<std::remove_cvref_t<Err>, std::in_place_t> &&
                 std::is_constructible_v<E, Err>)
    constexpr explicit unexpected(Err&& e) noexcept(std::is_nothrow_constructible_v<E, Err>)
        : error_(std::forward<Err>(e)) {}

    /// @brief Builds the error in place from `args`.
    template <class... Args>
        requires std::is_constructible_v<E, Args...>
    constexpr explicit unexpected(std::in_place_t, Args&&... args) noexcept(
        std::is_nothrow_constructible_v<E, Args...>)
        : error_(std::forward<Args>(args)...) {}

    /// @brief The wrapped error.
    constexpr E& error() & noexcept { return error_; }
    /// @brief The wrapped error.
    constexpr const E& error() const& noexcept { return error_; }
    /// @brief The wrapped error, moved out.
    constexpr E&& error() && noexcept { return std::move(error_); }
    /// @brief The wrapped error, as a const rvalue.
    constexpr const E&& error() const&& noexcept { return std::move(error_); }

    /// @brief Swaps the wrapped errors.
    constexpr void swap(unexpected& other) noexcept(std::is_nothrow_swappable_v<E>) {
        using std::swap;
        swap(error_, other.error_);
    }
    /// @brief Swaps the wrapped errors.
    friend constexpr void swap(unexpected& a, unexpected& b) noexcept(noexcept(a.swap(b))) {
        a.swap(b);
    }

    /// @brief Compares the wrapped errors.
    template <class E2>
    friend constexpr bool operator==(const unexpected& a, const unexpected<E2>& b) {
        return a.error() == b.error();
    }

private:
    E error_;
};

/// @brief Deduces `unexpected<E>` from `unexpected(e)`.
template <class E>
unexpected(E) -> unexpected<E>;

/// @brief Tag type selecting the error-constructing overloads of `result`.
struct unexpect_t {
    explicit unexpect_t() = default;
};
/// @brief Tag value: `result<int>(tether::unexpect, make_error(errc::not_found, "no such id"))`.
inline constexpr unexpect_t unexpect{};

template <class E>
class bad_result_access;

/// @brief Base of every `bad_result_access<E>`: catch this to catch them all.
template <>
class bad_result_access<void> : public std::exception {
public:
    /// @brief Always `"bad tether::result access"`.
    [[nodiscard]] const char* what() const noexcept override { return "bad tether::result access"; }

protected:
    bad_result_access() noexcept = default;
    bad_result_access(const bad_result_access&) = default;
    bad_result_access(bad_result_access&&) = default;
    bad_result_access& operator=(const bad_result_access&) = default;
    bad_result_access& operator=(bad_result_access&&) = default;
    ~bad_result_access() override = default;
};

/// @brief Thrown by `result::value()` when the result holds an error; carries that error.
/// @tparam E the error type of the result that was accessed.
template <class E>
class bad_result_access : public bad_result_access<void> {
public:
    /// @brief Takes a copy (or the moved-out value) of the result's error.
    explicit bad_result_access(E e) noexcept(std::is_nothrow_move_constructible_v<E>)
        : error_(std::move(e)) {}

    /// @brief The error the result held.
    [[nodiscard]] E& error() & noexcept { return error_; }
    /// @brief The error the result held.
    [[nodiscard]] const E& error() const& noexcept { return error_; }
    /// @brief The error the result held, moved out.
    [[nodiscard]] E&& error() && noexcept { return std::move(error_); }
    /// @brief The error the result held, as a const rvalue.
    [[nodiscard]] const E&& error() const&& noexcept { return std::move(error_); }

private:
    E error_;
};

}  // namespace tether
