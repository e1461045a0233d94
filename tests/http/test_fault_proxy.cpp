// The test proxy itself: each fault does what it says, on real sockets.
#include "support/fault_proxy.hpp"

#include <httplib.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace {

/// A plain HTTP server on 127.0.0.1 that counts the requests it answers.
struct counting_server {
    httplib::Server http;
    std::atomic<int> hits{0};
    int port = 0;
    std::thread thread;

    counting_server() {
        http.Post("/echo", [this](const httplib::Request& req, httplib::Response& res) {
            ++hits;
            res.set_content(req.body + std::string(4096, '.'), "text/plain");
        });
        http.set_tcp_nodelay(true);
        port = http.bind_to_any_port("127.0.0.1");
        thread = std::thread{[this] { http.listen_after_bind(); }};
        wait_running();
    }
    ~counting_server() {
        wait_running();  // stop() before the loop runs would leave it running
        http.stop();
        thread.join();
    }
    void wait_running() const {  // a bounded poll: the listener thread starts at once
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
        while (!http.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    }
};

httplib::Client client_for(const tether_test::fault_proxy& proxy) {
    httplib::Client c{"127.0.0.1", proxy.port()};
    c.set_connection_timeout(std::chrono::milliseconds{500});
    c.set_read_timeout(std::chrono::milliseconds{100});
    c.set_keep_alive(true);
    c.set_tcp_nodelay(true);
    return c;
}

}  // namespace

TEST_CASE("fault proxy: without faults every request goes through, on one keep-alive connection",
          "[integration][proxy]") {
    counting_server server;
    REQUIRE(server.http.is_running());
    tether_test::fault_proxy proxy{static_cast<std::uint16_t>(server.port), {}, 1};
    auto c = client_for(proxy);
    for (int i = 0; i < 20; ++i) {
        auto r = c.Post("/echo", "hello " + std::to_string(i), "text/plain");
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->body.rfind("hello " + std::to_string(i), 0) == 0);
    }
    CHECK(server.hits == 20);
    CHECK(proxy.counts().forwarded == 20);
}

TEST_CASE("fault proxy: each fault kind breaks the exchange where it says", "[integration][proxy]") {
    counting_server server;
    REQUIRE(server.http.is_running());
    const auto port = static_cast<std::uint16_t>(server.port);

    SECTION("drop_request: the server never sees it") {
        tether_test::fault_proxy proxy{port, {.drop_request = 1}, 2};
        auto c = client_for(proxy);
        CHECK_FALSE(c.Post("/echo", "x", "text/plain"));
        CHECK(server.hits == 0);
        CHECK(proxy.counts().dropped_requests == 1);
    }
    SECTION("drop_response: the server answered, the client hears nothing") {
        tether_test::fault_proxy proxy{port, {.drop_response = 1}, 3};
        auto c = client_for(proxy);
        CHECK_FALSE(c.Post("/echo", "x", "text/plain"));
        CHECK(server.hits == 1);
        CHECK(proxy.counts().dropped_responses == 1);
    }
    SECTION("truncate: the answer is cut inside its body") {
        tether_test::fault_proxy proxy{port, {.truncate = 1}, 4};
        auto c = client_for(proxy);
        CHECK_FALSE(c.Post("/echo", "x", "text/plain"));
        CHECK(server.hits == 1);
        CHECK(proxy.counts().truncated == 1);
    }
    SECTION("stall: the client times out, the server had answered") {
        tether_test::fault_proxy proxy{port, {.stall = 1}, 5};
        auto c = client_for(proxy);
        auto r = c.Post("/echo", "x", "text/plain");
        REQUIRE_FALSE(r);
        CHECK(r.error() == httplib::Error::Read);
        CHECK(server.hits == 1);
        CHECK(proxy.counts().stalled == 1);
    }
}

TEST_CASE("fault proxy: seeded rates fire each kind, and the client recovers on a new connection",
          "[integration][proxy]") {
    counting_server server;
    REQUIRE(server.http.is_running());
    tether_test::fault_proxy proxy{static_cast<std::uint16_t>(server.port),
                                   {.drop_request = 0.1, .drop_response = 0.1, .truncate = 0.1, .stall = 0.05}, 6};
    auto c = client_for(proxy);
    int ok = 0;
    for (int i = 0; i < 200; ++i) ok += c.Post("/echo", "x", "text/plain") ? 1 : 0;
    const auto n = proxy.counts();
    CHECK(n.dropped_requests > 5);
    CHECK(n.dropped_responses > 5);
    CHECK(n.truncated > 5);
    CHECK(n.stalled > 2);
    CHECK(static_cast<std::uint64_t>(ok) == n.forwarded);
    CHECK(n.forwarded + n.dropped_requests + n.dropped_responses + n.truncated + n.stalled == 200);
    proxy.set_rates({});
    CHECK(c.Post("/echo", "x", "text/plain"));
}
