#pragma once

// A cpp-httplib server on 127.0.0.1 (a free port) whose answers a test scripts:
// every request goes to `script`, and is logged for the test to inspect.
#include <tether/transport/http.hpp>

#include <httplib.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tether_test {

/// What the server saw of one request.
struct seen_request {
    std::string method;
    std::string path;    // without the query
    std::string target;  // with the query, as sent
    std::string body;    // gzip undone
    httplib::Headers headers;
};

class scripted_server {
public:
    using script_fn = std::function<void(const httplib::Request&, httplib::Response&)>;

    explicit scripted_server(script_fn script = {}) : script_(std::move(script)) {
        auto handle = [this](const httplib::Request& req, httplib::Response& res) {
            if (req.path == warm_up_path) {
                res.status = 204;
                return;
            }
            script_fn s;
            {
                std::lock_guard lock{mutex_};
                log_.push_back({req.method, req.path, req.target, req.body, req.headers});
                s = script_;
            }
            if (s) s(req, res);
            else res.status = 500;
        };
        server_.Get(".*", handle);
        server_.Post(".*", handle);
        server_.set_tcp_nodelay(true);
        port_ = server_.bind_to_any_port("127.0.0.1");
        REQUIRE(port_ > 0);
        thread_ = std::thread{[this] { server_.listen_after_bind(); }};
        // A bounded poll: the listening socket is bound already; wait for the accept loop.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
        while (!server_.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        if (!server_.is_running()) {
            server_.stop();
            thread_.join();
            FAIL("the scripted server did not start within 10 s");
        }
        warm_up_();
    }

    scripted_server(const scripted_server&) = delete;
    scripted_server& operator=(const scripted_server&) = delete;

    ~scripted_server() {
        server_.stop();
        thread_.join();
    }

    /// Replaces the script (for the requests that come after).
    void script(script_fn s) {
        std::lock_guard lock{mutex_};
        script_ = std::move(s);
    }

    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    /// Options for a transport to this server.
    [[nodiscard]] tether::http_options options(std::string token = "test-token") const {
        tether::http_options o;
        o.base_url = url();
        o.token = std::move(token);
        o.timeouts.connect = std::chrono::seconds{5};
        o.timeouts.read = std::chrono::seconds{10};
        o.timeouts.write = std::chrono::seconds{10};
        return o;
    }

    [[nodiscard]] std::vector<seen_request> log() const {
        std::lock_guard lock{mutex_};
        return log_;
    }
    [[nodiscard]] std::size_t requests() const {
        std::lock_guard lock{mutex_};
        return log_.size();
    }

private:
    static constexpr const char* warm_up_path = "/__warm_up";

    // One GET and one POST, each on a connection that closes, before any test
    // request. Debian's cpp-httplib is not built for ThreadSanitizer: state it
    // initialises lazily on its first request is published by synchronisation
    // TSan cannot see inside it, so two workers serving their first requests at
    // once are reported as a race (both stacks inside libcpp-httplib). After a
    // warm-up request whose worker then waits on the pool's mutex again, every
    // later worker takes its job under that mutex, which TSan does see.
    void warm_up_() {
        httplib::Client c{"127.0.0.1", port_};
        c.set_keep_alive(false);
        auto get = c.Get(warm_up_path);
        auto post = c.Post(warm_up_path, "{}", "application/json");
        if (!get || get->status != 204 || !post || post->status != 204) {
            server_.stop();
            thread_.join();
            FAIL("the scripted server did not answer its warm-up requests");
        }
    }

    httplib::Server server_;
    std::thread thread_;
    int port_ = -1;
    mutable std::mutex mutex_;
    script_fn script_;
    std::vector<seen_request> log_;
};

/// A JSON answer.
inline void json_answer(httplib::Response& res, int status, const std::string& body) {
    res.status = status;
    res.set_content(body, "application/json");
}

}  // namespace tether_test
