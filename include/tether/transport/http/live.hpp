#pragma once

/// @file
/// @brief `tether::http::live_feed`: the live feed of an HTTP transport, one
/// Server-Sent Events stream (`GET /v1/{collection}/events`) per
/// subscription, read on a thread of its own by a client of its own.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/live.hpp>
#include <tether/protocol/parse.hpp>
#include <tether/protocol/sse.hpp>
#include <tether/transport/http/errors.hpp>
#include <tether/transport/http/session.hpp>
#include <tether/transport/http/timeouts.hpp>
#include <tether/transport/live.hpp>

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

namespace tether::http {

/// @brief Subscriptions over Server-Sent Events (see `http_transport::subscribe`).
///
/// `open` connects and waits for the answer's status: a refusal (401, 404,
/// 503 with `Retry-After`, no connection) is its error and no subscription.
/// A 401 is answered as the transport's requests answer it: with a token
/// provider (`http_options::token_provider`), the provider is asked for a
/// fresh token once and the stream is opened again with it; a second 401 (or
/// a fixed token's first) is `errc::unauthorized`, and the provider's own
/// error is returned as it is.
/// Then the stream's thread decodes each frame strictly (`protocol::sse_decoder`
/// within `http_options::max_live_event_bytes`, `protocol::decode_live_event`)
/// and calls `on_event` in order. It ends the subscription with `on_end` once:
/// `errc::cursor_expired` for the server's `reset` (pull in full),
/// `errc::protocol` for a frame that does not decode (the pull repairs what
/// was missed), `errc::transient` when the stream closes or stays silent
/// longer than `http_options::live_read_timeout`.
class live_feed {
public:
    /// @brief Opens `req` on `s` for `handler` (see the class).
    [[nodiscard]] static result<live_subscription> open(const std::shared_ptr<session>& s, const live_request& req,
                                                        live_handler handler, const protocol::parse_limits& limits) {
        try {
            auto lease = s->token_lease();
            if (!lease) return unexpected{std::move(lease).error()};
            const std::string path = s->url().prefix + protocol::events_path(req.collection, req.cursor, req.device);
            auto st = std::make_shared<state>(std::move(handler));
            auto refused = start_(st, s, path, lease->token, limits);
            if (refused && refused->http_status == 401 && s->can_refresh_token()) {
                // As the requests do: one fresh token, one more try; a second 401 is the answer.
                auto fresh = s->refresh_token(lease->generation);
                if (!fresh) {
                    error e = std::move(fresh).error();
                    e.message = s->scrub("events: " + e.message);
                    return unexpected{std::move(e)};
                }
                st = std::make_shared<state>(std::move(st->handler));
                refused = start_(st, s, path, fresh->token, limits);
                if (refused) refused->message = redact(std::move(refused->message), lease->token);
            }
            if (refused) return unexpected{std::move(*refused)};
            return live_subscription{[st] { stop_(st); }};
        } catch (const std::exception&) {
            return unexpected{make_error(errc::transient, "events: internal failure")};
        }
    }

private:
    struct state {
        explicit state(live_handler h) : handler(std::move(h)) {}
        live_handler handler;
        std::unique_ptr<httplib::Client> client;
        protocol::parse_limits limits;
        protocol::sse_decoder sse;
        std::thread thread;
        std::mutex mutex;               // guards the flags below
        std::condition_variable changed;
        bool opened = false, stopping = false, finished = false, ended = false;
        std::optional<error> refused;   // the answer's refusal (before it opened)
        std::recursive_mutex delivering;  // held while the handler runs
    };

    // Starts the stream of `st` with `token` on a thread and waits for the
    // answer's status: its refusal (the thread joined), or nothing (open).
    static std::optional<error> start_(const std::shared_ptr<state>& st, const std::shared_ptr<session>& s,
                                       const std::string& path, const std::string& token,
                                       const protocol::parse_limits& limits) {
        st->client = make_client_(*s);
        st->limits = limits;
        st->sse = protocol::sse_decoder{{s->options().max_live_event_bytes, s->options().max_live_event_bytes}};
        httplib::Headers headers{{"Accept", "text/event-stream"}, {"User-Agent", s->options().user_agent}};
        if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
        st->thread = std::thread{[st, s, path, headers = std::move(headers)] { run_(*st, *s, path, headers); }};
        std::unique_lock lock{st->mutex};
        st->changed.wait(lock, [&] { return st->opened || st->refused; });
        if (!st->refused) return std::nullopt;
        error why = std::move(*st->refused);
        lock.unlock();
        st->thread.join();
        return why;
    }

    static std::unique_ptr<httplib::Client> make_client_(const session& s) {
        auto c = std::make_unique<httplib::Client>(s.url().origin());
        c->set_keep_alive(false);
        c->set_tcp_nodelay(true);
        c->set_url_encode(false);
        c->set_follow_location(false);
        c->set_decompress(true);
        apply(*c, s.options().timeouts);
        c->set_read_timeout(s.options().live_read_timeout);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
        if (s.url().scheme == "https") {
            c->enable_server_certificate_verification(s.options().verify_tls);
            if (!s.options().ca_cert_path.empty()) c->set_ca_cert_path(s.options().ca_cert_path);
        }
#endif
        return c;
    }

    static bool stopping_(state& st) {
        std::lock_guard lock{st.mutex};
        return st.stopping;
    }

    // Ends the subscription with `why` (once, unless it is being reset).
    static void end_(state& st, error why) {
        std::lock_guard d{st.delivering};
        {
            std::lock_guard lock{st.mutex};
            if (st.ended || st.stopping) return;
            st.ended = true;
        }
        if (st.handler.on_end) st.handler.on_end(std::move(why));
    }

    // One frame: an event delivered, or the end (false: stop reading).
    static bool frame_(state& st, protocol::sse_frame&& f) {
        if (f.event == "reset") {
            end_(st, make_error(errc::cursor_expired, "events: the server reset the stream; pull in full"));
            return false;
        }
        auto ev = protocol::decode_live_event(f.data, st.limits);
        if (ev && (f.event != to_string(ev->kind) || (f.has_id && f.id != ev->cursor)))
            ev = unexpected{make_error(errc::protocol, "live event: its id or event field disagrees with its data")};
        if (!ev) {
            end_(st, error{errc::protocol, "events: " + ev.error().message, std::nullopt, std::nullopt});
            return false;
        }
        std::lock_guard d{st.delivering};
        if (stopping_(st)) return false;
        if (st.handler.on_event) st.handler.on_event(std::move(*ev));
        return !stopping_(st);
    }

    static void run_(state& st, session& s, const std::string& path, const httplib::Headers& headers) {
        bool reading = true;
        auto on_answer = [&](const httplib::Response& r) {
            std::optional<error> refusal;
            if (r.status != 200) {
                full_answer a{r.status, {}, r.headers};
                refusal = s.status_error(a, request_kind::any, "events");
            } else if (r.get_header_value("Content-Type").rfind("text/event-stream", 0) != 0) {
                refusal = error{errc::protocol, "events: the answer is not text/event-stream", 200, std::nullopt};
            }
            std::lock_guard lock{st.mutex};
            if (refusal) st.refused = std::move(refusal);
            else st.opened = true;
            st.changed.notify_all();
            return !refusal && !st.stopping;
        };
        auto on_bytes = [&](const char* data, std::size_t n) {
            if (!reading || stopping_(st)) return false;
            auto fed = st.sse.feed(std::string_view{data, n}, [&](protocol::sse_frame&& f) {
                if (reading) reading = frame_(st, std::move(f));
            });
            if (!fed) {
                end_(st, fed.error());
                reading = false;
            }
            return reading;
        };
        auto got = st.client->Get(path, headers, on_answer, on_bytes);
        bool was_open = false;
        {
            std::lock_guard lock{st.mutex};
            was_open = st.opened;
            if (!st.opened && !st.refused) {
                const auto& rule = rule_for_failure(got.error());
                st.refused = error{rule.code, s.scrub("events: " + std::string{rule.meaning} + " (" +
                                                      httplib::to_string(got.error()) + ")"),
                                   std::nullopt, std::nullopt};
            }
            st.changed.notify_all();
        }
        if (was_open) end_(st, make_error(errc::transient, "events: the stream closed"));
        std::lock_guard lock{st.mutex};
        st.finished = true;
        st.changed.notify_all();
    }

    // The handle's reset: no call of the handler after it returns (see `live_subscription`).
    static void stop_(const std::shared_ptr<state>& st) {
        {
            std::lock_guard lock{st->mutex};
            st->stopping = true;
        }
        if (std::this_thread::get_id() == st->thread.get_id()) {  // from inside the handler
            st->client->stop();
            st->thread.detach();  // it ends when the handler returns; `st` lives on in it
            return;
        }
        std::unique_lock lock{st->mutex};
        // Closing the socket wakes a read at once; one not begun yet sees `stopping` as it starts.
        while (!st->finished) {
            lock.unlock();
            st->client->stop();
            lock.lock();
            st->changed.wait_for(lock, std::chrono::milliseconds{10}, [&] { return st->finished; });
        }
        lock.unlock();
        st->thread.join();
    }
};

}  // namespace tether::http
