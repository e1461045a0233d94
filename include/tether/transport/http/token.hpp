#pragma once

// tether::http: where the bearer token comes from (a fixed string or a
// provider asked again after a 401), and the rule that it never appears in an
// error message: `redact`. Shared by every HTTP transport.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tether::http {

/// @brief Supplies a bearer token: called for the first request, and again
/// after a 401 (once per 401, however many threads saw it). An error result is
/// returned to the caller of the request that needed the token, with its code
/// (e.g. `offline` when the identity provider is unreachable, `unauthorized`
/// when the user must sign in again).
using token_provider = std::function<result<std::string>()>;

/// @brief True if `token` may be sent in an `Authorization` header: 1 or more
/// visible ASCII characters (no space, no control character, so it cannot
/// split the header).
[[nodiscard]] constexpr bool valid_token(std::string_view token) noexcept {
    if (token.empty()) return false;
    for (const char c : token)
        if (c < 0x21 || c > 0x7E) return false;
    return true;
}

/// @brief `message` with every occurrence of `secret` replaced by `[redacted]`.
/// Every HTTP transport passes each error message through this with the tokens
/// it sent, so a server that echoes the `Authorization` header (in an error
/// body, an outcome's message) cannot put the token in a log.
[[nodiscard]] inline std::string redact(std::string message, std::string_view secret) {
    if (secret.empty()) return message;
    constexpr std::string_view mark = "[redacted]";
    for (auto pos = message.find(secret); pos != std::string::npos; pos = message.find(secret, pos + mark.size()))
        message.replace(pos, secret.size(), mark);
    return message;
}

/// @brief The token a transport sends, with its generation (a counter bumped at
/// each refresh), thread-safe. Copies share one cache.
///
/// `current()` returns the cached token (asking the provider on first use).
/// After a 401 the caller calls `refresh(generation it sent)`: if no other
/// thread refreshed since, the provider is asked again; either way the caller
/// gets the newest token, so concurrent 401s cause one refresh. A fixed token
/// cannot be refreshed: `refresh` then fails with `unauthorized`. The provider
/// is called with the cache's lock held: it must not use the transport.
class token_source {
public:
    /// @brief A token and the generation it belongs to.
    struct lease {
        std::string token;            ///< empty: send no Authorization header
        std::uint64_t generation = 0; ///< pass back to `refresh` after a 401
    };

    /// @brief No token at all: requests carry no Authorization header.
    token_source() : state_(std::make_shared<state>()) {}

    /// @brief A fixed token.
    explicit token_source(std::string token) : token_source() {
        state_->token = std::move(token);
        state_->have = true;
    }

    /// @brief A provider, asked on first use and after a 401.
    explicit token_source(token_provider provider) : token_source() { state_->provider = std::move(provider); }

    /// @brief True if a 401 can be answered by asking for a fresh token.
    [[nodiscard]] bool can_refresh() const noexcept { return static_cast<bool>(state_->provider); }

    /// @brief The token to send now.
    [[nodiscard]] result<lease> current() {
        std::lock_guard lock{state_->mutex};
        if (!state_->have && state_->provider) {
            if (auto e = ask_locked_()) return unexpected{std::move(*e)};
        }
        return lease{state_->token, state_->generation};
    }

    /// @brief After a 401 to a request sent with generation `seen`: a fresh token.
    [[nodiscard]] result<lease> refresh(std::uint64_t seen) {
        std::lock_guard lock{state_->mutex};
        if (!state_->provider)
            return unexpected{error{errc::unauthorized, "the server refused the token", 401, std::nullopt}};
        if (state_->generation == seen || !state_->have) {
            if (auto e = ask_locked_()) return unexpected{std::move(*e)};
        }
        return lease{state_->token, state_->generation};
    }

    /// @brief `message` redacted against the cached token (and `also`, a token
    /// a request was sent with that may since have been replaced).
    [[nodiscard]] std::string scrub(std::string message, std::string_view also = {}) const {
        std::lock_guard lock{state_->mutex};
        return redact(redact(std::move(message), state_->token), also);
    }

private:
    struct state {
        std::mutex mutex;
        token_provider provider;
        std::string token;
        bool have = false;
        std::uint64_t generation = 0;
    };

    std::optional<error> ask_locked_() {
        result<std::string> got{unexpect, make_error(errc::unauthorized)};
        try {
            got = state_->provider();
        } catch (const std::exception& ex) {
            return error{errc::transient, redact("token provider threw: " + std::string{ex.what()}, state_->token),
                         std::nullopt, std::nullopt};
        } catch (...) {
            return error{errc::transient, "token provider threw", std::nullopt, std::nullopt};
        }
        if (!got) {
            error e = std::move(got).error();
            e.message = redact("token provider: " + e.message, state_->token);
            return e;
        }
        if (!valid_token(*got)) {
            return error{errc::unauthorized, "token provider returned an empty or unsendable token", std::nullopt,
                         std::nullopt};
        }
        state_->token = std::move(*got);
        state_->have = true;
        ++state_->generation;
        return std::nullopt;
    }

    std::shared_ptr<state> state_;
};

}  // namespace tether::http
