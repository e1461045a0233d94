#pragma once

/// @file
/// @brief `tether::server::pg_listener`: one PostgreSQL connection that
/// `LISTEN`s on a channel, on a thread of its own, and reconnects with backoff
/// when the connection drops (target `tether::postgres`).
#include <tether/core/error.hpp>
#include <tether/server/postgres/connection.hpp>
#include <tether/server/postgres/notify.hpp>

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace tether::server {

/// @brief The settings of a `pg_listener`.
struct pg_listener_options {
    /// The first wait before connecting again after a failure; it doubles
    /// with each failure in a row, up to `max_backoff`.
    std::chrono::milliseconds min_backoff{100};
    /// The longest wait between two connection attempts.
    std::chrono::milliseconds max_backoff{5'000};
    /// How often the thread wakes with nothing to read, to check that the
    /// connection is still there and whether it is asked to stop.
    std::chrono::milliseconds poll{250};
};

/// @brief What a `pg_listener` tells, on its thread, one call at a time.
struct pg_listener_handlers {
    /// Each notification's payload, in the order PostgreSQL delivers them
    /// (commit order). A long call delays the ones after it, never a writer.
    std::function<void(std::string_view payload)> on_note;
    /// The connection listens (again): anything sent while it did not may
    /// have been missed (a gap), the first time included.
    std::function<void()> on_listening;
    /// The connection was lost, or could not be made (once per outage).
    std::function<void(const error&)> on_lost;
};

/// @brief One connection listening on `channel` (`LISTEN`, the name quoted), on its own thread, from
/// construction to destruction (or `stop`). It holds one connection of the
/// database's `max_connections` while up. Reconnects after any failure,
/// waiting `pg_listener_options::min_backoff`, doubling up to `max_backoff`.
class pg_listener {
public:
    /// @brief Starts listening on `channel` (a channel name, as `pg_notify` takes it) of the database of `conninfo`.
    pg_listener(std::string conninfo, std::string channel, pg_listener_handlers handlers,
                pg_listener_options options = {})
        : conninfo_(std::move(conninfo)), channel_(std::move(channel)), handlers_(std::move(handlers)),
          options_(options) {
        if (::pipe(wake_) != 0) wake_[0] = wake_[1] = -1;
        thread_ = std::thread{[this] { run_(); }};
    }

    pg_listener(const pg_listener&) = delete;             ///< @brief Not copyable.
    pg_listener& operator=(const pg_listener&) = delete;  ///< @brief Not copyable.

    /// @brief Stops and joins the thread.
    ~pg_listener() {
        stop();
        for (int fd : wake_)
            if (fd >= 0) ::close(fd);
    }

    /// @brief Stops the thread (it ends its wait at once) and joins it; the
    /// handlers are not called after this returns.
    /// Safe to call twice and from two threads at once (one joins, the other
    /// waits for it); from a handler (the listener's own thread) it only asks.
    void stop() {
        {
            std::lock_guard lock{mutex_};
            stopping_ = true;
        }
        cv_.notify_all();
        if (wake_[1] >= 0) {
            const char byte = 1;
            (void)!::write(wake_[1], &byte, 1);
        }
        std::lock_guard joining{join_mutex_};  // never held by the listener's thread
        if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    }

    /// @brief True while the connection listens (from when `on_listening` returned).
    [[nodiscard]] bool listening() const noexcept { return listening_.load(std::memory_order_acquire); }

    /// @brief How many times the connection started listening (1 after the first connect).
    [[nodiscard]] std::uint64_t connects() const noexcept { return connects_.load(std::memory_order_acquire); }

    /// @brief The listening session's backend process id (`pg_backend_pid()`); 0 while not listening.
    [[nodiscard]] int backend_pid() const noexcept { return pid_.load(std::memory_order_acquire); }

private:
    void run_() {
        auto backoff = options_.min_backoff;
        bool told_lost = false;
        while (!stopping_now_()) {
            auto c = detail::pg_connection::open(conninfo_);
            result<detail::pg_result> listened = unexpected{make_error(errc::transient, "postgres: not connected")};
            if (c) listened = c->exec(pg_listen_sql(channel_).c_str());
            if (!c || !listened) {
                if (!told_lost && handlers_.on_lost) handlers_.on_lost(!c ? c.error() : listened.error());
                told_lost = true;
                if (!wait_(backoff)) return;
                backoff = std::min(backoff * 2, options_.max_backoff);
                continue;
            }
            backoff = options_.min_backoff;
            told_lost = false;
            pid_.store(PQbackendPID(c->handle()), std::memory_order_release);
            if (handlers_.on_listening) handlers_.on_listening();
            connects_.fetch_add(1, std::memory_order_acq_rel);
            listening_.store(true, std::memory_order_release);  // after the handler: its catch-up is done
            auto why = listen_(*c);
            listening_.store(false, std::memory_order_release);
            pid_.store(0, std::memory_order_release);
            if (stopping_now_()) return;
            if (handlers_.on_lost) handlers_.on_lost(why);
            told_lost = true;
            if (!wait_(backoff)) return;
        }
    }

    // Reads notifications until the connection fails (returned) or a stop.
    error listen_(detail::pg_connection& c) {
        PGconn* pg = c.handle();
        while (!stopping_now_()) {
            while (PGnotify* note = PQnotifies(pg)) {  // also the ones a probe read
                const std::string payload = note->extra != nullptr ? note->extra : "";
                PQfreemem(note);
                if (handlers_.on_note) handlers_.on_note(payload);
            }
            pollfd fds[2] = {{PQsocket(pg), POLLIN, 0}, {wake_[0], POLLIN, 0}};
            const int n = ::poll(fds, wake_[0] >= 0 ? 2 : 1, static_cast<int>(options_.poll.count()));
            if (n < 0) continue;  // EINTR
            if (PQconsumeInput(pg) != 1 || PQstatus(pg) != CONNECTION_OK)
                return make_error(errc::transient, "postgres: the listening connection was lost");
            if (n == 0 && !probe_(c)) return make_error(errc::transient, "postgres: the listening connection is gone");
        }
        return make_error(errc::transient, "postgres: the listener stopped");
    }

    // A quiet connection is asked for a round trip now and then (a lost
    // peer does not always make the socket readable): `LISTEN` again, which
    // changes nothing and leaves the session showing what it does.
    bool probe_(detail::pg_connection& c) {
        const auto now = std::chrono::steady_clock::now();
        if (now - last_probe_ < std::chrono::seconds{2}) return true;
        last_probe_ = now;
        return static_cast<bool>(c.exec(pg_listen_sql(channel_).c_str()));
    }

    bool stopping_now_() {
        std::lock_guard lock{mutex_};
        return stopping_;
    }

    // Waits `d` unless asked to stop; false if asked.
    bool wait_(std::chrono::milliseconds d) {
        std::unique_lock lock{mutex_};
        return !cv_.wait_for(lock, d, [&] { return stopping_; });
    }

    const std::string conninfo_, channel_;
    const pg_listener_handlers handlers_;
    const pg_listener_options options_;
    std::mutex mutex_;
    std::mutex join_mutex_;  // one stop() joins the thread at a time
    std::condition_variable cv_;
    bool stopping_ = false;
    int wake_[2] = {-1, -1};
    std::atomic<bool> listening_{false};
    std::atomic<std::uint64_t> connects_{0};
    std::atomic<int> pid_{0};
    std::chrono::steady_clock::time_point last_probe_{};
    std::thread thread_;
};

}  // namespace tether::server
