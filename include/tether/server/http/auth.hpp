#pragma once

/// @file
/// @brief `tether::server::authenticator` and the `token_verifier` concept: who
/// a bearer token stands for, or why it is refused (target `tether::server_http`).
///
/// A verifier checks a token and names its user; the stock ones are
/// `token_table` (a file of `token user` lines, `server/http/tokens.hpp`) and
/// `jwt_verifier` (signed JSON Web Tokens, `server/http/jwt.hpp`). The HTTP
/// face holds one `authenticator`, the type-erased form any verifier (or any
/// callable) is turned into.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>

#include <concepts>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace tether::server {

/// @brief The refusal of a token: `errc::unauthorized`, HTTP 401, with `why`
/// (which the face sends in the error body: it must never quote the token).
[[nodiscard]] inline error token_refused(std::string why) {
    return error{errc::unauthorized, std::move(why), 401, std::nullopt};
}

/// @brief A checker of bearer tokens: `v.verify(token)` on a `const V` is the
/// user the token stands for, or the error to answer with (a `token_refused`
/// for a bad token; another code, e.g. `errc::transient` when a session store
/// is down, is answered with its own status). It is called from the serving
/// threads, so it must be thread-safe, and it must never put the token in an
/// error message.
template <class V>
concept token_verifier = std::copy_constructible<V> && requires(const V& v, std::string_view token) {
    { v.verify(token) } -> std::same_as<result<std::string>>;
};

/// @brief Who a bearer token stands for, type-erased: what an `http_face` holds.
///
/// Made from a callable taking the token (`std::string_view`) and returning
/// either `result<std::string>` (the user, or the error to answer with) or
/// `std::optional<std::string>` (the user, or nothing: a 401 "unknown or
/// revoked token"). An empty authenticator, and an empty user, refuse every
/// token. Copies share nothing but the callable's own copies.
class authenticator {
public:
    /// @brief Refuses every token.
    authenticator() = default;

    /// @brief An authenticator calling `check` (see the class).
    template <class F>
        requires(!std::same_as<std::remove_cvref_t<F>, authenticator> &&
                 std::invocable<const std::remove_cvref_t<F>&, std::string_view> &&
                 (std::same_as<std::invoke_result_t<const std::remove_cvref_t<F>&, std::string_view>,
                               result<std::string>> ||
                  std::same_as<std::invoke_result_t<const std::remove_cvref_t<F>&, std::string_view>,
                               std::optional<std::string>>))
    authenticator(F&& check) {  // NOLINT(google-explicit-constructor): a callable is an authenticator
        using R = std::invoke_result_t<const std::remove_cvref_t<F>&, std::string_view>;
        if constexpr (std::same_as<R, result<std::string>>) {
            check_ = std::forward<F>(check);
        } else {
            check_ = [f = std::forward<F>(check)](std::string_view token) -> result<std::string> {
                std::optional<std::string> user = f(token);
                if (!user) return unexpected{token_refused("unknown or revoked token")};
                return std::move(*user);
            };
        }
    }

    /// @brief The user `token` stands for, or the error to answer with.
    [[nodiscard]] result<std::string> operator()(std::string_view token) const {
        if (!check_) return unexpected{token_refused("unknown or revoked token")};
        auto user = check_(token);
        if (!user) {
            error e = std::move(user).error();
            if (e.code == errc::unauthorized && !e.http_status) e.http_status = 401;
            return unexpected{std::move(e)};
        }
        if (user->empty()) return unexpected{token_refused("unknown or revoked token")};
        return user;
    }

    /// @brief False for an authenticator that refuses everything (made empty).
    explicit operator bool() const noexcept { return static_cast<bool>(check_); }

private:
    std::function<result<std::string>(std::string_view)> check_;
};

/// @brief An authenticator asking `verifier` (a copy) about each token.
template <token_verifier V>
[[nodiscard]] authenticator authenticate_by(V verifier) {
    return authenticator{[v = std::move(verifier)](std::string_view token) { return v.verify(token); }};
}

}  // namespace tether::server
