#pragma once

// The HTTP face of a sync service over a memory store, in process on
// 127.0.0.1 (a free port), with its live events, for http_transport's live
// feed; and a handler that collects what a subscription is told.
#include <tether/server/http.hpp>
#include <tether/server/memory_store.hpp>
#include <tether/server/sync_service.hpp>
#include <tether/transport/http.hpp>

#include <httplib.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tether_test {

class live_server {
public:
    using store = tether::server::memory_store;

    explicit live_server(tether::server::event_options events = {})
        : service_{store{}},
          face_{service_,
                tether::server::authenticate_by(
                    tether::server::token_table::parse("alice-token alice\nbob-token bob\n").value()),
                options_with_(events)} {
        face_.mount(http_);
        http_.set_write_timeout(30, 0);  // the slow-subscriber test fills the socket for a while
        const std::size_t workers = 4 + events.max_streams;
        http_.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
        port_ = http_.bind_to_any_port("127.0.0.1");
        REQUIRE(port_ > 0);
        thread_ = std::thread{[this] { http_.listen_after_bind(); }};
        // A bounded poll: the socket is bound; wait for the accept loop.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
        while (!http_.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        REQUIRE(http_.is_running());
    }
    live_server(const live_server&) = delete;
    live_server& operator=(const live_server&) = delete;
    ~live_server() { stop(); }

    /// Ends the streams, then the server (as tether-server does).
    void stop() {
        if (!thread_.joinable()) return;
        face_.close_streams();
        http_.stop();
        thread_.join();
    }

    [[nodiscard]] tether::http_options options(const std::string& token) const {
        tether::http_options o;
        o.base_url = "http://127.0.0.1:" + std::to_string(port_);
        o.token = token;
        o.timeouts.connect = std::chrono::seconds{5};
        o.timeouts.read = std::chrono::seconds{10};
        return o;
    }
    [[nodiscard]] tether::http_transport transport(const std::string& token) const {
        return tether::http_transport{options(token)};
    }
    tether::server::sync_service<store>& service() { return service_; }
    tether::server::http_face<store>& face() { return face_; }
    [[nodiscard]] int port() const { return port_; }

private:
    static tether::server::http_face_options options_with_(tether::server::event_options events) {
        tether::server::http_face_options o;
        o.events = events;
        return o;
    }

    tether::server::sync_service<store> service_;
    tether::server::http_face<store> face_;
    httplib::Server http_;
    int port_ = 0;
    std::thread thread_;
};

/// What one subscription was told, with bounded waits for it.
class live_log {
public:
    [[nodiscard]] tether::live_handler handler() {
        return tether::live_handler{[this](tether::live_event e) {
                                        std::lock_guard lock{mutex_};
                                        events_.push_back(std::move(e));
                                        changed_.notify_all();
                                    },
                                    [this](tether::error why) {
                                        std::lock_guard lock{mutex_};
                                        ended_.push_back(std::move(why));
                                        changed_.notify_all();
                                    }};
    }
    /// Waits (at most 10 s) until `n` events came; true if they did.
    bool wait_events(std::size_t n) {
        std::unique_lock lock{mutex_};
        return changed_.wait_for(lock, std::chrono::seconds{10}, [&] { return events_.size() >= n; });
    }
    /// Waits (at most 10 s) for the end; true if it came.
    bool wait_end() {
        std::unique_lock lock{mutex_};
        return changed_.wait_for(lock, std::chrono::seconds{10}, [&] { return !ended_.empty(); });
    }
    [[nodiscard]] std::vector<tether::live_event> events() const {
        std::lock_guard lock{mutex_};
        return events_;
    }
    [[nodiscard]] std::vector<tether::error> ends() const {
        std::lock_guard lock{mutex_};
        return ended_;
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<tether::live_event> events_;
    std::vector<tether::error> ended_;
};

}  // namespace tether_test
