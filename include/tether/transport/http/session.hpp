#pragma once

// tether::http: one HTTP exchange done right, for every HTTP transport: a
// leased keep-alive connection, the bearer token (a fresh one and one more try
// after a 401), gzip above a threshold (sent plain again after a 415), a cap on
// the answer's size, and every failure classified by `error_table`, with
// Retry-After read and the token redacted from every message.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/protocol/error_body.hpp>
#include <tether/transport/http/errors.hpp>
#include <tether/transport/http/gzip.hpp>
#include <tether/transport/http/options.hpp>
#include <tether/transport/http/pool.hpp>
#include <tether/transport/http/retry_after.hpp>
#include <tether/transport/http/timeouts.hpp>
#include <tether/transport/http/token.hpp>
#include <tether/transport/http/url.hpp>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tether::http {

/// @brief A successful (2xx) answer.
struct answer {
    int status = 0;    ///< the HTTP status
    std::string body;  ///< the body, gzip undone
};

/// @brief Any answer (whatever its status), with its headers: what a transport
/// that reads statuses and headers itself (`rest_transport`) is given.
struct full_answer {
    int status = 0;            ///< the HTTP status
    std::string body;          ///< the body, gzip undone
    httplib::Headers headers;  ///< the answer's headers (names case-insensitive)

    /// @brief The first value of header `name`, or empty.
    [[nodiscard]] std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string{} : it->second;
    }
};

/// @brief The shared state of an HTTP transport and its copies: settings, the
/// connection pool, the token cache. Thread-safe; no member throws.
class session {
public:
    /// @brief A session for `o`, or `errc::invalid_argument` naming the bad
    /// setting (never quoting the token).
    [[nodiscard]] static result<std::shared_ptr<session>> make(const http_options& o) {
        try {
            auto url = parse_base_url(o.base_url);
            if (!url) return unexpected{std::move(url).error()};
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
            if (url->scheme == "https")
                return unexpected{make_error(errc::invalid_argument, "base_url: https needs cpp-httplib with OpenSSL")};
#endif
            if (!o.token.empty() && o.token_provider)
                return unexpected{make_error(errc::invalid_argument, "set token or token_provider, not both")};
            if (!o.token.empty() && !valid_token(o.token))
                return unexpected{make_error(errc::invalid_argument,
                                             "token: only visible ASCII characters may be sent in a header")};
            if (o.max_batch == 0) return unexpected{make_error(errc::invalid_argument, "max_batch must be at least 1")};
            token_source tokens = o.token_provider ? token_source{o.token_provider}
                                  : o.token.empty() ? token_source{}
                                                    : token_source{o.token};
            return std::shared_ptr<session>{new session{o, std::move(*url), std::move(tokens)}};
        } catch (const std::exception&) {
            return unexpected{make_error(errc::invalid_argument, "cannot set up the HTTP transport")};
        }
    }

    /// @brief Sends `method` to `target` (the path after the base URL's prefix,
    /// with its query) with `body` (JSON; empty for a GET); `what` names the
    /// request in messages (never put the token there). A 2xx is the answer;
    /// anything else an error from `error_table`, with `http_status` and
    /// `retry_after` when the server sent them.
    [[nodiscard]] result<answer> send(request_kind kind, const char* method, std::string_view target,
                                      const std::string& body, std::string_view what) {
        std::string first_token;
        auto got = run_(method, target, body, {}, what, first_token);
        if (!got) return unexpected{std::move(got).error()};
        if (is_success(got->status)) return answer{got->status, std::move(got->body)};
        return fail_(status_error(got->status, got->body, got->header("Retry-After"), kind), what, first_token);
    }

    /// @brief Sends like `send`, with `headers` added (`If-Match`,
    /// `Idempotency-Key`, ...), and returns the answer whatever its status (after
    /// a fresh token for a 401 and plain again after a 415): the caller decides
    /// what a status means for its request (`status_error` for the shared
    /// table). An error only when no answer came (`rule_for_failure`).
    [[nodiscard]] result<full_answer> exchange(const char* method, std::string_view target, const std::string& body,
                                               const httplib::Headers& headers, std::string_view what) {
        std::string first_token;
        return run_(method, target, body, headers, what, first_token);
    }

    /// @brief The shared table's error for a non-2xx answer to a `kind` request:
    /// its code, `http_status`, `retry_after`, and the error body the server
    /// sent, if it is wire protocol v1's (token redacted; `what` names the request).
    [[nodiscard]] error status_error(const full_answer& a, request_kind kind, std::string_view what) const {
        auto e = status_error(a.status, a.body, a.header("Retry-After"), kind);
        e.message = scrub(std::string{what} + ": " + e.message);
        return e;
    }

    /// @brief The parsed base URL.
    [[nodiscard]] const base_url& url() const noexcept { return url_; }

    /// @brief The bearer token to send now (empty: none), for an exchange the
    /// session does not make itself (the live feed's stream).
    [[nodiscard]] result<std::string> current_token() {
        auto t = tokens_.current();
        if (!t) return unexpected{std::move(t).error()};
        return std::move(t->token);
    }

    /// @brief The bearer token to send now with its generation, for an exchange
    /// the session does not make itself (the live feed's stream): pass the
    /// generation to `refresh_token` after a 401.
    [[nodiscard]] result<token_source::lease> token_lease() { return tokens_.current(); }

    /// @brief After a 401 to an exchange sent with generation `seen`: a fresh
    /// token from the provider (one refresh however many callers saw that
    /// generation refused), or `errc::unauthorized` when the token is fixed
    /// (`can_refresh_token()` false), or the provider's error.
    [[nodiscard]] result<token_source::lease> refresh_token(std::uint64_t seen) { return tokens_.refresh(seen); }

    /// @brief True if a 401 can be answered by asking the provider for a fresh token.
    [[nodiscard]] bool can_refresh_token() const noexcept { return tokens_.can_refresh(); }

    /// @brief The settings (do not log them: they hold the token).
    [[nodiscard]] const http_options& options() const noexcept { return options_; }

    /// @brief `message` with the tokens redacted.
    [[nodiscard]] std::string scrub(std::string message) const {
        return tokens_.scrub(redact(std::move(message), options_.token));
    }

    /// @brief How many connections the pool holds now.
    [[nodiscard]] std::size_t connections() const { return pool_.made(); }

private:
    result<full_answer> run_(const char* method, std::string_view target, const std::string& body,
                             const httplib::Headers& headers, std::string_view what, std::string& first_token) {
        try {
            auto tok = tokens_.current();
            if (!tok) return fail_(std::move(tok).error(), what, {});
            first_token = tok->token;
            bool zip = options_.gzip_above && body.size() > *options_.gzip_above && gzip_ok_.load();
            std::optional<std::string> zipped;
            if (zip) {
                zipped = gzip(body);
                zip = zipped.has_value();
            }
            bool refreshed = false;
            for (;;) {
                auto got = exchange_(method, target, zip ? *zipped : body, zip, tok->token, headers);
                if (!got) return fail_(std::move(got).error(), what, first_token);
                if (got->status == 415 && zip) {  // no gzip here: plain, now and from now on
                    gzip_ok_.store(false);
                    zip = false;
                    continue;
                }
                if (got->status == 401 && !refreshed && tokens_.can_refresh()) {
                    refreshed = true;
                    auto fresh = tokens_.refresh(tok->generation);
                    if (!fresh) return fail_(std::move(fresh).error(), what, first_token);
                    tok = std::move(fresh);
                    continue;
                }
                return got;
            }
        } catch (const std::exception& e) {
            return fail_(error{errc::transient, std::string{"internal failure: "} + e.what(), std::nullopt, std::nullopt},
                         what, first_token);
        }
    }

    session(const http_options& o, base_url url, token_source tokens)
        : options_(o), url_(std::move(url)), tokens_(std::move(tokens)),
          pool_(o.pool_size, [this] { return make_client_(); }) {}

    std::unique_ptr<httplib::Client> make_client_() const {
        auto c = std::make_unique<httplib::Client>(url_.origin());
        c->set_keep_alive(true);
        c->set_tcp_nodelay(true);
        c->set_url_encode(false);  // paths are percent-encoded by the protocol's helpers
        c->set_follow_location(false);
        c->set_compress(false);    // gzip is decided per request
        c->set_decompress(true);
        apply(*c, options_.timeouts);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
        if (url_.scheme == "https") {
            c->enable_server_certificate_verification(options_.verify_tls);
            if (!options_.ca_cert_path.empty()) c->set_ca_cert_path(options_.ca_cert_path);
        }
#endif
        return c;
    }

    result<full_answer> exchange_(const char* method, std::string_view target, const std::string& body, bool zipped,
                                  const std::string& token, const httplib::Headers& extra) {
        httplib::Request req;
        req.method = method;
        req.path = url_.prefix + std::string{target};
        if (!token.empty()) req.set_header("Authorization", "Bearer " + token);
        req.set_header("Accept", "application/json");
        req.set_header("User-Agent", options_.user_agent);
        if (gzip_available) req.set_header("Accept-Encoding", "gzip");
        const bool has_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
        if (has_body) req.set_header("Content-Type", "application/json");
        for (const auto& [name, value] : extra) req.set_header(name, value);
        if (zipped) req.set_header("Content-Encoding", "gzip");
        req.body = body;
        full_answer out;
        bool over = false;
        const std::size_t cap = options_.max_answer_bytes;
        req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
            if (out.body.size() + n > cap) {
                over = true;
                return false;
            }
            out.body.append(data, n);
            return true;
        };
        httplib::Response res;
        auto failure = httplib::Error::Success;
        bool sent = false;
        {
            auto lease = pool_.acquire();
            sent = lease.client().send(req, res, failure);
        }
        if (!sent) {
            if (over)
                return unexpected{make_error(errc::protocol, "answer over " + std::to_string(cap) + " bytes")};
            const auto& rule = rule_for_failure(failure);
            return unexpected{error{rule.code,
                                    std::string{rule.meaning} + " (" + httplib::to_string(failure) + ")",
                                    std::nullopt, std::nullopt}};
        }
        out.status = res.status;
        out.headers = std::move(res.headers);
        return out;
    }

    static error status_error(int status, const std::string& body, const std::string& retry_after,
                              request_kind kind) {
        const auto& rule = rule_for_status(status, kind);
        std::string message = "HTTP " + std::to_string(status) + " " + std::string{rule.meaning};
        if (auto said = protocol::decode_error_body(body)) {
            message += ": server says " + std::string{to_string(said->code)};
            if (!said->message.empty()) message += ": " + printable_(said->message, 300);
        }
        const auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
        return error{rule.code, std::move(message), status,
                     retry_after.empty() ? std::nullopt : parse_retry_after(retry_after, now)};
    }

    /// At most `max` bytes of `s`, control characters as spaces (a server's text in our log lines).
    static std::string printable_(std::string_view s, std::size_t max) {
        std::string out{s.substr(0, max)};
        for (char& c : out)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
        if (s.size() > max) out += "...";
        return out;
    }

    unexpected<error> fail_(error e, std::string_view what, std::string_view sent_token) const {
        e.message = scrub(redact(std::string{what} + ": " + e.message, sent_token));
        return unexpected{std::move(e)};
    }

    const http_options options_;
    const base_url url_;
    mutable token_source tokens_;
    connection_pool pool_;
    std::atomic<bool> gzip_ok_{true};
};

}  // namespace tether::http
