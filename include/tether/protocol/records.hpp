#pragma once

// tether::protocol: the JSON of the pieces every answer is made of: a record, a
// tombstone and an error object (docs/protocol.md, "Shapes").
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/protocol/detail/read.hpp>
#include <tether/protocol/limits.hpp>
#include <tether/protocol/utf8.hpp>
#include <tether/transport/transport.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tether::protocol {

/// @brief A record as JSON: `server_id`, `version`, `value`, and `id`,
/// `updated_at` (ms since the Unix epoch) and `origin` when known.
[[nodiscard]] inline nlohmann::json to_json(const server_record& r) {
    nlohmann::json j = nlohmann::json::object();
    j["server_id"] = r.server_id;
    if (r.id) j["id"] = r.id->to_string();
    j["version"] = r.version;
    j["value"] = r.value;
    if (r.updated_at) j["updated_at"] = r.updated_at->time_since_epoch().count();
    if (!r.origin.empty()) j["origin"] = r.origin;
    return j;
}

/// @brief A tombstone as JSON: `server_id`, `version`, and `id` when known.
[[nodiscard]] inline nlohmann::json to_json(const tombstone& t) {
    nlohmann::json j = nlohmann::json::object();
    j["server_id"] = t.server_id;
    if (t.id) j["id"] = t.id->to_string();
    j["version"] = t.version;
    return j;
}

/// @brief An error as the protocol's error object: `code` (an `errc` name),
/// `message`, `retryable` (`is_retryable` of the code) and `retry_after_ms`
/// when the error carries a Retry-After. The HTTP status is not part of it.
/// The message always encodes: bytes that are not UTF-8 (a message quoting
/// what a peer sent) become U+FFFD, and a message over
/// `max_error_message_bytes` is cut to it (the decoder refuses a longer one,
/// and with it the whole answer).
[[nodiscard]] inline nlohmann::json to_json(const error& e) {
    nlohmann::json j = nlohmann::json::object();
    j["code"] = std::string{to_string(e.code)};
    if (e.message.size() <= max_error_message_bytes && valid_utf8(e.message)) {
        j["message"] = e.message;
    } else {
        std::string message = to_valid_utf8(e.message);
        detail::truncate_utf8(message, max_error_message_bytes);
        j["message"] = std::move(message);
    }
    j["retryable"] = is_retryable(e);
    if (e.retry_after) j["retry_after_ms"] = e.retry_after->count() < 0 ? 0 : e.retry_after->count();
    return j;
}

/// @brief Reads a record object, taking its value out of `j`.
///
/// `server_id` must be a string of at most `max_server_id_bytes` (empty only
/// when `allow_empty_server_id`: a page item the engine itself skips and counts),
/// `version` a non-negative integer; `id`, `updated_at` and `origin` may be
/// absent or null; `value` absent is null. Unknown members are ignored. A
/// present `id` must be a UUID; the nil one passes (the engine skips that item).
[[nodiscard]] inline result<server_record> record_from_json(nlohmann::json& j, std::string_view where,
                                                            bool allow_empty_server_id = false) {
    if (auto ok = detail::require_object(j, where); !ok) return unexpected{std::move(ok).error()};
    server_record r;
    auto sid = detail::read_string(j, "server_id", where, max_server_id_bytes, !allow_empty_server_id);
    if (!sid) return unexpected{std::move(sid).error()};
    auto id = detail::read_opt_local_id(j, "id", where, true);
    if (!id) return unexpected{std::move(id).error()};
    auto version = detail::read_uint(j, "version", where);
    if (!version) return unexpected{std::move(version).error()};
    auto updated = detail::read_opt_int64(j, "updated_at", where);
    if (!updated) return unexpected{std::move(updated).error()};
    auto origin = detail::read_opt_string(j, "origin", where, max_origin_bytes);
    if (!origin) return unexpected{std::move(origin).error()};
    r.server_id = std::move(*sid);
    r.id = *id;
    r.version = *version;
    r.value = detail::take(j, "value");
    if (*updated) r.updated_at = timestamp{std::chrono::milliseconds{**updated}};
    r.origin = std::move(*origin).value_or(std::string{});
    return r;
}

/// @brief Reads a tombstone object (`server_id` may be empty: the engine
/// skips such an item; a present `id` must be a UUID).
[[nodiscard]] inline result<tombstone> tombstone_from_json(nlohmann::json& j, std::string_view where) {
    if (auto ok = detail::require_object(j, where); !ok) return unexpected{std::move(ok).error()};
    auto sid = detail::read_string(j, "server_id", where, max_server_id_bytes);
    if (!sid) return unexpected{std::move(sid).error()};
    auto id = detail::read_opt_local_id(j, "id", where, true);
    if (!id) return unexpected{std::move(id).error()};
    auto version = detail::read_uint(j, "version", where);
    if (!version) return unexpected{std::move(version).error()};
    return tombstone{std::move(*sid), *id, *version};
}

/// @brief Reads an error object.
///
/// `code` is required; a code this version does not know (a newer server's)
/// becomes `transient` when `retryable` is true and `rejected` otherwise, and
/// its name is kept at the front of the message (cut, if need be, to
/// `max_error_message_bytes`). `message` absent is empty;
/// `retryable` absent follows the code (a known code's own retryability always
/// wins); `retry_after_ms`, a non-negative integer, becomes `retry_after`.
[[nodiscard]] inline result<error> error_from_json(nlohmann::json& j, std::string_view where) {
    if (auto ok = detail::require_object(j, where); !ok) return unexpected{std::move(ok).error()};
    auto code = detail::read_string(j, "code", where, 64, true);
    if (!code) return unexpected{std::move(code).error()};
    auto message = detail::read_opt_string(j, "message", where, max_error_message_bytes);
    if (!message) return unexpected{std::move(message).error()};
    auto retryable = detail::read_opt_bool(j, "retryable", where, false);
    if (!retryable) return unexpected{std::move(retryable).error()};
    auto retry_ms = detail::read_opt_uint(j, "retry_after_ms", where, 0);
    if (!retry_ms) return unexpected{std::move(retry_ms).error()};
    error e;
    e.message = std::move(*message).value_or(std::string{});
    if (auto known = errc_from_string(*code)) {
        e.code = *known;
    } else {
        e.code = *retryable ? errc::transient : errc::rejected;
        e.message = "server code '" + *code + "'" + (e.message.empty() ? "" : ": " + e.message);
        detail::truncate_utf8(e.message, max_error_message_bytes);  // it must decode again when passed on
    }
    if (detail::member(j, "retry_after_ms") != nullptr) {
        constexpr std::uint64_t cap = 7ull * 24 * 3600 * 1000;  // a week: no overflow, no absurd waits
        e.retry_after = std::chrono::milliseconds{static_cast<std::int64_t>(*retry_ms < cap ? *retry_ms : cap)};
    }
    return e;
}

}  // namespace tether::protocol
