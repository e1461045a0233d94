#pragma once

// tether::http: how an HTTP exchange that did not succeed becomes a
// `tether::error`: ONE table, keyed by the answer's status (per request kind
// where the status means different things) or by the socket failure when no
// answer came (docs/protocol.md, "Status codes"). Shared by every HTTP transport.
#include <tether/core/error.hpp>

#include <httplib.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tether::http {

/// @brief Which exchange an answer belongs to, where a status means different
/// things to different requests (404 and 410).
enum class request_kind : std::uint8_t {
    any,      ///< a rule for every request
    push,     ///< POST .../push
    changes,  ///< GET .../changes
    fetch,    ///< GET .../records/{server_id}
    info,     ///< GET /v1/info
};

/// @brief One row of the error table: an HTTP status range (for one request
/// kind, or `any`), or a socket failure (`first == last == 0`), and the error
/// code it means.
struct error_rule {
    int first;                   ///< lowest status of the range (0: a socket-failure row)
    int last;                    ///< highest status of the range
    httplib::Error failure;      ///< the socket failure (`Error::Success` for a status row)
    request_kind on;             ///< the request kind the row is for (`any`: all)
    errc code;                   ///< what the caller is told
    std::string_view meaning;    ///< a few words for the message
};

/// @brief The table, searched top to bottom: the first row that matches wins.
///
/// Status rows: 401 unauthorized (after one fresh token, if there is a
/// provider), 403 rejected, 404 not_found for a fetch (rejected elsewhere: no
/// such endpoint or collection), 410 cursor_expired for changes (not_found for
/// a fetch, rejected elsewhere), 413 too_large (the engine splits the batch),
/// 408 and 425 transient, 429 rate_limited, 400 and any other 4xx protocol or
/// rejected as below, 5xx transient (Retry-After honoured), 3xx protocol (the
/// protocol never redirects), 1xx protocol.
///
/// Socket failures: `Connection` (refused, unreachable, name not resolved: the
/// request never left) offline; `BindIPAddress` offline; `ConnectionTimeout`
/// transient (nothing was sent, but a host that does not answer in time may be
/// overloaded: backing off spares it); `Read` and `Write` (reset, timed out,
/// closed mid-answer: the request may have been applied) transient;
/// `SSLConnection` (handshake failed) transient; `SSLServerVerification` (the
/// certificate is not trusted for this host) rejected: waiting does not fix
/// it; `SSLLoadingCerts` (the CA file could not be read) invalid_argument;
/// `Compression` protocol; `ExceedRedirectCount` protocol; `Canceled` (the
/// answer was over the size limit) protocol; `Unknown` and
/// `UnsupportedMultipartBoundaryChars` transient.
inline constexpr std::array<error_rule, 30> error_table{{
    {401, 401, httplib::Error::Success, request_kind::any, errc::unauthorized, "unauthorized"},
    {403, 403, httplib::Error::Success, request_kind::any, errc::rejected, "forbidden"},
    {404, 404, httplib::Error::Success, request_kind::fetch, errc::not_found, "no such record"},
    {404, 404, httplib::Error::Success, request_kind::any, errc::rejected, "no such endpoint"},
    {408, 408, httplib::Error::Success, request_kind::any, errc::transient, "request timeout"},
    {410, 410, httplib::Error::Success, request_kind::changes, errc::cursor_expired, "cursor no longer valid"},
    {410, 410, httplib::Error::Success, request_kind::fetch, errc::not_found, "record gone"},
    {413, 413, httplib::Error::Success, request_kind::any, errc::too_large, "request too large"},
    {425, 425, httplib::Error::Success, request_kind::any, errc::transient, "too early"},
    {429, 429, httplib::Error::Success, request_kind::any, errc::rate_limited, "too many requests"},
    {400, 400, httplib::Error::Success, request_kind::any, errc::protocol, "malformed request"},
    {400, 499, httplib::Error::Success, request_kind::any, errc::rejected, "refused"},
    {503, 503, httplib::Error::Success, request_kind::any, errc::transient, "service unavailable"},
    {500, 599, httplib::Error::Success, request_kind::any, errc::transient, "server error"},
    {300, 399, httplib::Error::Success, request_kind::any, errc::protocol, "unexpected redirect"},
    {100, 199, httplib::Error::Success, request_kind::any, errc::protocol, "unexpected interim answer"},
    {0, 0, httplib::Error::Connection, request_kind::any, errc::offline,
     "cannot connect (refused, unreachable or name not resolved)"},
    {0, 0, httplib::Error::BindIPAddress, request_kind::any, errc::offline, "cannot bind the local address"},
    {0, 0, httplib::Error::ConnectionTimeout, request_kind::any, errc::transient, "connect timed out"},
    {0, 0, httplib::Error::Read, request_kind::any, errc::transient,
     "connection lost or timed out reading the answer"},
    {0, 0, httplib::Error::Write, request_kind::any, errc::transient,
     "connection lost or timed out sending the request"},
    {0, 0, httplib::Error::SSLConnection, request_kind::any, errc::transient, "TLS handshake failed"},
    {0, 0, httplib::Error::SSLServerVerification, request_kind::any, errc::rejected,
     "TLS: the server's certificate is not trusted for this host"},
    {0, 0, httplib::Error::SSLLoadingCerts, request_kind::any, errc::invalid_argument,
     "TLS: the CA certificates could not be loaded"},
    {0, 0, httplib::Error::Compression, request_kind::any, errc::protocol, "compression failed"},
    {0, 0, httplib::Error::ExceedRedirectCount, request_kind::any, errc::protocol, "too many redirects"},
    {0, 0, httplib::Error::Canceled, request_kind::any, errc::protocol, "answer over the size limit"},
    {0, 0, httplib::Error::UnsupportedMultipartBoundaryChars, request_kind::any, errc::transient,
     "request could not be sent"},
    {0, 0, httplib::Error::Unknown, request_kind::any, errc::transient, "unknown failure"},
    {0, 0, httplib::Error::Success, request_kind::any, errc::protocol, "unexpected status"},
}};

/// @brief The row for an answer with HTTP status `status` to a `kind` request
/// (the last row, protocol, for a status no row covers: below 100 or above 599).
[[nodiscard]] constexpr const error_rule& rule_for_status(int status, request_kind kind) noexcept {
    for (const auto& r : error_table) {
        if (r.first == 0) continue;
        if (status >= r.first && status <= r.last && (r.on == request_kind::any || r.on == kind)) return r;
    }
    return error_table.back();
}

/// @brief The row for a socket failure (no answer came).
[[nodiscard]] constexpr const error_rule& rule_for_failure(httplib::Error failure) noexcept {
    for (const auto& r : error_table)
        if (r.first == 0 && r.failure == failure && failure != httplib::Error::Success) return r;
    return error_table[error_table.size() - 2];  // Unknown
}

/// @brief True if `status` is a success (2xx): the body is the answer.
[[nodiscard]] constexpr bool is_success(int status) noexcept { return status >= 200 && status <= 299; }

}  // namespace tether::http
