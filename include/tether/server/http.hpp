#pragma once

/// @file
/// @brief `tether::server::http_face`: wire protocol v1 (docs/protocol.md) over
/// a `sync_service`, mounted on a `httplib::Server` (target `tether::server_http`).
///
/// The face speaks HTTP and nothing else: it routes (`server/http/routes.hpp`),
/// authenticates by bearer token (`server/http/auth.hpp`: a token file,
/// `server/http/tokens.hpp`, or JWT, `server/http/jwt.hpp`), rate-limits per
/// user (`server/http/rate_limit.hpp`), bounds and decodes requests with the
/// protocol codec, hands them to the service, encodes its answers and writes
/// one access-log entry per request (`server/http/access_log.hpp`). The
/// protocol's rules are the service's.
#include <tether/clock/clock.hpp>
#include <tether/clock/system.hpp>
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/changes.hpp>
#include <tether/protocol/error_body.hpp>
#include <tether/protocol/info.hpp>
#include <tether/protocol/limits.hpp>
#include <tether/protocol/paths.hpp>
#include <tether/protocol/push.hpp>
#include <tether/server/http/access_log.hpp>
#include <tether/server/http/auth.hpp>
#include <tether/server/http/events.hpp>
#include <tether/server/http/options.hpp>
#include <tether/server/http/rate_limit.hpp>
#include <tether/server/http/request_parts.hpp>
#include <tether/server/http/routes.hpp>
#include <tether/server/http/tokens.hpp>
#include <tether/server/store.hpp>
#include <tether/server/sync_service.hpp>
#include <tether/transport/http/token.hpp>

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tether::server {

namespace detail {

/// What the access log needs of the request a serving thread is on. cpp-httplib
/// serves a request on one thread from its pre-routing handler to its logger,
/// one request at a time, so one slot per thread carries it between them.
struct request_slot {
    std::chrono::steady_clock::time_point start{};
    std::string user;
    bool active = false;
};

inline request_slot& current_request() noexcept {
    static thread_local request_slot slot;
    return slot;
}

/// The error code of an answer status the face did not write itself (cpp-httplib's own 4xx).
constexpr errc errc_for_status(int status) noexcept {
    switch (status) {
        case 401: return errc::unauthorized;
        case 404: return errc::not_found;
        case 413:
        case 414:
        case 431: return errc::too_large;
        case 429: return errc::rate_limited;
        case 503: return errc::transient;
        default: return status >= 500 ? errc::transient : errc::protocol;
    }
}

/// A body as read through a content reader: at most `max` bytes kept.
struct body_read {
    std::string body;
    bool over = false;  // more than `max` bytes came (after gzip was undone)
    bool ok = true;     // the body was read to its end
};

}  // namespace detail

/// @brief Wire protocol v1 over a `sync_service`, on a `httplib::Server`.
///
/// `mount(server)` adds the routes of protocol v1 (`POST /v1/{collection}/push`,
/// `GET /v1/{collection}/changes`, `GET /v1/{collection}/records/{server_id}`,
/// `GET /v1/{collection}/events`, `GET /v1/info`, `GET /healthz`) and takes
/// the server's error handler, exception handler, pre-routing handler and
/// logger, so that every answer
/// the server gives, its own 404s and 413s included, has a JSON error body and
/// an access-log entry. It also sets TCP_NODELAY and the payload limit.
///
/// Every request under `/v1/` needs `Authorization: Bearer <token>`; the user
/// is whoever the authenticator says the token stands for (otherwise its
/// refusal: 401 with a body saying why, `server/http/auth.hpp`).
/// Then the rate limit (429 with `Retry-After`), then the route (404, 405, 400
/// for a bad collection name or server id), then the limits: a push body over
/// `max_body_bytes` after gzip is undone, over `max_depth` or with more than
/// `max_ops` ops is 413 with nothing applied; malformed JSON, a wrong type, a
/// missing member is 400. An op whose value is over `max_value_bytes` is
/// rejected alone inside the 200. No answer and no log entry ever holds the
/// token; no error message quotes the request body.
///
/// `GET /v1/{collection}/events` streams the user's changes of the collection
/// as Server-Sent Events (docs/server.md, "Live events"): from `Last-Event-ID`
/// (or the `cursor` parameter), without the changes pushed by the `device`
/// parameter's device, bounded by `http_face_options::events`. The face
/// becomes the service's observer (`sync_service::set_observer`) when the
/// first stream opens, unless its events come from elsewhere
/// (`feed_events_from_elsewhere`: on PostgreSQL, every process's changes).
/// Call `close_streams()` before stopping the server, so that no worker
/// thread waits on an open stream.
///
/// The face must outlive the server's serving; it is neither copyable nor
/// movable (the server's handlers point at it). Thread-safe as the service is.
///
/// @code
/// auto store = tether::server::sqlite_store::open("server.db").value();
/// tether::server::sync_service<tether::server::sqlite_store> service{store};
/// auto tokens = tether::server::token_table::load("tokens.txt").value();
/// tether::server::http_face face{service, tether::server::authenticate_by(tokens)};
/// httplib::Server http;
/// face.mount(http);
/// http.listen("127.0.0.1", 8787);
/// @endcode
template <server_store Store, clock_policy Clock = system_clock>
class http_face {
public:
    /// @brief A face of `service` (which must outlive it), who-is-who by
    /// `authenticate`, configured by `options`; the rate limit and the access
    /// log's timestamps read `clock`.
    http_face(sync_service<Store>& service, authenticator authenticate, http_face_options options = {},
              Clock clock = Clock{})
        : service_(service),
          authenticate_(std::move(authenticate)),
          options_(std::move(options)),
          clock_(clock),
          limiter_(options_.rate_limit, clock),
          hub_(std::make_shared<event_hub>(options_.events)) {}

    http_face(const http_face&) = delete;             ///< @brief Not copyable.
    http_face& operator=(const http_face&) = delete;  ///< @brief Not copyable.

    /// @brief Adds the routes to `server` and takes its handlers (see the class).
    void mount(httplib::Server& server) {
        using httplib::Request;
        using httplib::Response;
        server.set_tcp_nodelay(true);
        server.set_keep_alive_max_count(options_.keep_alive_requests);
        server.set_payload_max_length(options_.limits.max_body_bytes);
        auto plain = [this](const Request& req, Response& res) { serve_(req, res, nullptr); };
        auto reading = [this](const Request& req, Response& res, const httplib::ContentReader& reader) {
            serve_(req, res, &reader);
        };
        server.Get(std::string{protocol::health_path}, plain);
        server.Get(R"(/v1/.*)", plain);
        server.Post(R"(/v1/.*)", reading);
        server.Put(R"(/v1/.*)", reading);
        server.Patch(R"(/v1/.*)", reading);
        server.Delete(R"(/v1/.*)", reading);
        server.set_pre_routing_handler([](const Request&, Response&) {
            auto& slot = detail::current_request();
            slot.start = std::chrono::steady_clock::now();
            slot.user.clear();
            slot.active = true;
            return httplib::Server::HandlerResponse::Unhandled;
        });
        server.set_error_handler(httplib::Server::HandlerWithResponse{[](const Request&, Response& res) {
            if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
            const errc code = detail::errc_for_status(res.status);
            std::string why = res.status == 404 ? "no such endpoint" : res.status == 413 ? "request too large"
                                                                                         : "request refused";
            res.set_content(protocol::encode_error_body(error{code, std::move(why), std::nullopt, std::nullopt})
                                .value_or(std::string{R"({"error":{"code":"protocol"}})"}),
                            "application/json");
            return httplib::Server::HandlerResponse::Handled;
        }});
        server.set_exception_handler([](const Request&, Response& res, std::exception_ptr) {
            error_answer(res, make_error(errc::transient, "internal error"), 500);
        });
        server.set_logger([this](const Request& req, const Response& res) { log_(req, res); });
    }

    /// @brief The options it was made with.
    [[nodiscard]] const http_face_options& options() const noexcept { return options_; }

    /// @brief Ends every open event stream and refuses new ones (503): call it
    /// before `httplib::Server::stop`, which waits for its worker threads.
    void close_streams() { hub_->close_all(); }

    /// @brief How many event streams are open now.
    [[nodiscard]] std::size_t open_streams() const { return hub_->open_streams(); }

    /// @brief The hub of the face's live events, for a feed from elsewhere
    /// (`postgres_live_feed`: every process's changes); see `feed_events_from_elsewhere`.
    [[nodiscard]] const std::shared_ptr<event_hub>& event_feed() const noexcept { return hub_; }

    /// @brief The face's events come from elsewhere from now on (a feed
    /// publishing to `event_feed()`): it never becomes the service's observer,
    /// so its own changes are told once, by that feed. Call it before the
    /// first stream opens.
    void feed_events_from_elsewhere() {
        std::call_once(observing_, [] {});
    }

    /// @brief What `GET /v1/info` answers: protocol 1, the limits, the service's change feed.
    [[nodiscard]] protocol::server_info info() const {
        return protocol::server_info{protocol::version, options_.limits, service_.has_change_feed()};
    }

    /// @brief Writes `e` as an error answer: its status (`status`, else
    /// `e.http_status`, else `protocol::http_status_for(e.code)`), the error
    /// body, and `Retry-After` (whole seconds, rounded up) when it carries one.
    static void error_answer(httplib::Response& res, const error& e, std::optional<int> status = std::nullopt) {
        res.status = status.value_or(e.http_status.value_or(protocol::http_status_for(e.code)));
        if (e.retry_after) {
            const auto ms = e.retry_after->count() < 0 ? 0 : e.retry_after->count();
            res.set_header("Retry-After", std::to_string(ms == 0 ? 0 : (ms + 999) / 1000));
        }
        res.set_content(protocol::encode_error_body(e).value_or(std::string{R"({"error":{"code":"transient"}})"}),
                        "application/json");
    }

private:
    // ---- one request --------------------------------------------------------------

    void serve_(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader* reader) {
        try {
            // Read (or drain) any body first, so that a refused request leaves its connection in step.
            detail::body_read body;
            if (reader != nullptr) body = read_body_(req, *reader);
            // What is left of a body not read to its end would be taken for the next request.
            if (!body.ok) res.set_header("Connection", "close");
            const route r = route_request(req.method, req.target);
            if (r.to == endpoint::health) {
                res.status = 200;
                res.set_content(R"({"status":"ok"})", "application/json");
                return;
            }
            auto user = authenticate_request_(req);
            if (!user) return error_answer(res, std::move(user).error());
            detail::current_request().user = *user;
            if (auto wait = limiter_.admit(*user))
                return error_answer(res, error{errc::rate_limited, "too many requests: slow down", 429, *wait});
            if (!r.to) return error_answer(res, *r.refusal);
            switch (*r.to) {
                case endpoint::info: return answer_(res, protocol::encode_info(info()));
                case endpoint::push: return push_(res, *user, r, body);
                case endpoint::changes: return changes_(req, res, *user, r);
                case endpoint::events: return events_(req, res, *user, r);
                case endpoint::record: {
                    auto rec = service_.fetch({*user, r.collection, r.server_id});
                    if (!rec) return error_answer(res, rec.error());
                    return answer_(res, protocol::encode_record(*rec));
                }
                case endpoint::health: break;
            }
            error_answer(res, make_error(errc::not_found, "no such endpoint"), 404);
        } catch (const std::exception&) {
            error_answer(res, make_error(errc::transient, "internal error"), 500);
        }
    }

    detail::body_read read_body_(const httplib::Request& req, const httplib::ContentReader& reader) const {
        detail::body_read r;
        const std::size_t max = options_.limits.max_body_bytes;
        // A body far over the limit is not inflated to its end: past this much, give up on it.
        const std::size_t give_up = max > std::numeric_limits<std::size_t>::max() / 16 ? max : max * 16 + 65536;
        std::size_t seen = 0;
        r.ok = reader([&](const char* data, std::size_t n) {
            seen += n;
            if (!r.over) {
                if (r.body.size() + n > max) {
                    r.over = true;
                    std::string{}.swap(r.body);
                } else {
                    r.body.append(data, n);
                }
            }
            return seen <= give_up;
        });
        if (!r.ok && req.has_header("Content-Length")) {
            // cpp-httplib refuses a declared length over the payload limit before reading.
            const std::string declared = req.get_header_value("Content-Length");
            const bool digits = !declared.empty() && declared.find_first_not_of("0123456789") == std::string::npos;
            if (digits && (declared.size() > 19 || std::stoull(declared) > max)) r.over = true;
        }
        return r;
    }

    result<std::string> authenticate_request_(const httplib::Request& req) const {
        if (!req.has_header("Authorization"))
            return unexpected{token_refused("missing bearer token (Authorization: Bearer <token>)")};
        const std::string header = req.get_header_value("Authorization");
        auto token = bearer_token(header);
        if (!token) return unexpected{std::move(token).error()};
        return authenticate_(*token);
    }

    void push_(httplib::Response& res, const std::string& user, const route& r, const detail::body_read& body) {
        const auto& lim = options_.limits;
        if (body.over)
            return error_answer(res, error{errc::too_large,
                                           "body is over the limit of " + std::to_string(lim.max_body_bytes) + " bytes",
                                           413, std::nullopt});
        if (!body.ok)
            return error_answer(res, error{errc::protocol, "the request body could not be read", 400, std::nullopt});
        auto decoded = protocol::decode_push_request(body.body, lim);
        if (!decoded) return error_answer(res, decoded.error());
        // The service refuses a value over its own limit as it stores it (a
        // create's, an update's after the merge, which holds the op's fields):
        // when that limit is not above this one, the op need not be measured twice.
        const std::size_t stored_limit = service_.limits().max_value_bytes;
        const bool service_checks = stored_limit != 0 && stored_limit <= lim.max_value_bytes;
        auto screen = [&lim, service_checks](const push_op& op) -> std::optional<error> {
            if (op.kind == op_kind::remove || service_checks) return std::nullopt;
            auto fits = protocol::check_value_size(op, lim);
            if (fits) return std::nullopt;
            error e = std::move(fits).error();
            e.http_status = 413;
            return e;
        };
        auto out = service_.push({user, r.collection, decoded->ops, decoded->origin}, screen);
        if (!out) return error_answer(res, out.error());
        answer_(res, protocol::encode_push_answer(*out, decoded->ops, decoded->origin));
    }

    void changes_(const httplib::Request& req, httplib::Response& res, const std::string& user, const route& r) {
        std::size_t limit = options_.default_page;
        if (req.has_param("limit")) {
            auto n = page_limit(req.get_param_value("limit"));
            if (!n) return error_answer(res, n.error());
            limit = *n;
        }
        if (limit > options_.max_page) limit = options_.max_page;
        if (limit == 0) limit = 1;
        const std::string cursor = req.has_param("cursor") ? req.get_param_value("cursor") : std::string{};
        if (cursor.size() > protocol::max_cursor_bytes)
            return error_answer(res, error{errc::protocol, "cursor: over 1024 bytes", 400, std::nullopt});
        auto page = service_.pull({user, r.collection, cursor, limit});
        if (!page) return error_answer(res, page.error());
        answer_(res, protocol::encode_page(*page));
    }

    void events_(const httplib::Request& req, httplib::Response& res, const std::string& user, const route& r) {
        if (options_.events.max_streams == 0)
            return error_answer(res, make_error(errc::not_found, "no such endpoint"), 404);
        const std::string cursor = req.has_header("Last-Event-ID") ? req.get_header_value("Last-Event-ID")
                                                                   : req.get_param_value("cursor");
        const std::string device = req.get_param_value("device");
        if (cursor.size() > protocol::max_cursor_bytes)
            return error_answer(res, error{errc::protocol, "cursor: over 1024 bytes", 400, std::nullopt});
        if (device.size() > protocol::max_origin_bytes)
            return error_answer(res, error{errc::protocol, "device: over 256 bytes", 400, std::nullopt});
        std::call_once(observing_, [this] {
            service_.set_observer([hub = hub_](std::string_view u, const live_event& e) { hub->publish(u, e); });
        });
        auto opened = hub_->open(user, r.collection, device, cursor);
        if (!opened) return error_answer(res, opened.error());
        res.status = 200;
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            "text/event-stream",
            [s = *opened, beat = options_.events.heartbeat](std::size_t, httplib::DataSink& sink) {
                auto step = s->next(beat);
                if (!step.text.empty() && !sink.write(step.text.data(), step.text.size())) return false;
                if (step.last) sink.done();
                return true;
            },
            [hub = hub_, s = *opened](bool) { hub->release(s); });
    }

    static void answer_(httplib::Response& res, const result<std::string>& body) {
        if (!body) return error_answer(res, make_error(errc::transient, "the answer could not be encoded"), 500);
        res.status = 200;
        res.set_content(*body, "application/json");
    }

    void log_(const httplib::Request& req, const httplib::Response& res) {
        auto& slot = detail::current_request();
        if (options_.access_log) {
            access_entry e;
            e.at = clock_.now();
            e.method = req.method;
            e.path = req.target.substr(0, req.target.find('?'));
            e.status = res.status;
            if (slot.active)
                e.duration = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                                   slot.start);
            e.user = slot.user;
            try {
                options_.access_log(e);
            } catch (...) {  // a failing log never fails a request
            }
        }
        slot.active = false;
        slot.user.clear();
    }

    sync_service<Store>& service_;
    const authenticator authenticate_;
    const http_face_options options_;
    Clock clock_;
    rate_limiter<Clock> limiter_;
    std::shared_ptr<event_hub> hub_;  // shared with the streams' providers
    std::once_flag observing_;         // the hub becomes the service's observer once
};

}  // namespace tether::server
