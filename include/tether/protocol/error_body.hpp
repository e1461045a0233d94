#pragma once

// tether::protocol: the body of every non-2xx answer,
// `{"error": {"code": ..., "message": ...}}`, and the HTTP status each error
// code is answered with.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/detail/read.hpp>
#include <tether/protocol/limits.hpp>
#include <tether/protocol/parse.hpp>
#include <tether/protocol/records.hpp>

#include <nlohmann/json.hpp>

#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace tether::protocol {

/// @brief The HTTP status a server answers a request-level error with:
/// protocol and invalid_argument 400, unauthorized 401, rejected 403,
/// not_found 404, conflict 409, cursor_expired 410, too_large 413,
/// rate_limited 429, transient, offline and busy 503, anything else 500.
[[nodiscard]] constexpr int http_status_for(errc code) noexcept {
    switch (code) {
        case errc::protocol:
        case errc::invalid_argument: return 400;
        case errc::unauthorized: return 401;
        case errc::rejected: return 403;
        case errc::not_found: return 404;
        case errc::conflict: return 409;
        case errc::cursor_expired: return 410;
        case errc::too_large: return 413;
        case errc::rate_limited: return 429;
        case errc::transient:
        case errc::offline:
        case errc::busy: return 503;
        default: return 500;
    }
}

/// @brief The body of an error answer: `{"error": <error object>}`.
[[nodiscard]] inline result<std::string> encode_error_body(const error& e) {
    nlohmann::json j = nlohmann::json::object();
    j["error"] = to_json(e);
    return dump_json(j);
}

/// @brief Decodes an error answer's body (the error has no HTTP status: the
/// caller knows it). Anything else, an empty body included, is `errc::protocol`.
/// Never throws.
[[nodiscard]] inline result<error> decode_error_body(std::string_view body,
                                                     const parse_limits& bounds = answer_parse_limits) {
    try {
        auto doc = parse_json(body, bounds);
        if (!doc) return unexpected{std::move(doc).error()};
        if (auto ok = detail::require_object(*doc, "error body"); !ok) return unexpected{std::move(ok).error()};
        nlohmann::json* e = detail::member(*doc, "error");
        if (e == nullptr) return unexpected{detail::malformed("error body", "error", "missing")};
        return error_from_json(*e, "error body.error");
    } catch (const std::exception&) {
        return unexpected{make_error(errc::protocol, "error body: cannot decode")};
    }
}

}  // namespace tether::protocol
