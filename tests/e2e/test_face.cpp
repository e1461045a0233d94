// The HTTP face's parts, in process and without sleeping: the token table, the
// rate limiter on a manual clock, the route table, the access-log line, and a
// face on a memory store whose rate limit and access log are driven by a
// manual clock.
#include <tether/clock/manual.hpp>
#include <tether/protocol/json.hpp>
#include <tether/server/http.hpp>
#include <tether/server/memory_store.hpp>
#include <tether/server/sync_service.hpp>

#include <httplib.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("token table: lines of `token user`, errors name the line and never the token", "[e2e][face]") {
    auto t = tether::server::token_table::parse("# who is who\n\nsecret-a alice\n  secret-b\tbob  \r\n");
    REQUIRE(t);
    CHECK(t->size() == 2);
    CHECK(t->user_for("secret-a") == "alice");
    CHECK(t->user_for("secret-b") == "bob");
    CHECK_FALSE(t->user_for("secret-c"));
    CHECK_FALSE(t->user_for(""));

    const std::vector<std::pair<std::string, std::string>> bad{
        {"s3cr3t-ok alice\ns3cr3t-lonely\n", "line 2"},
        {"s3cr3t-ok alice\ns3cr3t-ok bob\n", "line 2"},
        {"s3cr3t-a b c\n", "line 1"},
        {"\n\n# c\ns3cr3t-\x01 alice\n", "line 4"},
        {"s3cr3t-1 alice\ns3cr3t-2 b\xc3\xa9\n", "line 2"},
    };
    for (const auto& [text, line] : bad) {
        auto r = tether::server::token_table::parse(text);
        REQUIRE_FALSE(r);
        INFO(r.error().message);
        CHECK(r.error().code == tether::errc::invalid_argument);
        CHECK(r.error().message.find(line) != std::string::npos);
        CHECK(r.error().message.find("s3cr3t") == std::string::npos);
    }
    auto missing = tether::server::token_table::load("/nonexistent/tokens.txt");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find("/nonexistent/tokens.txt") != std::string::npos);
}

TEST_CASE("rate limiter: a bucket of N per user, refilled at N a second, on a manual clock", "[e2e][face]") {
    tether::manual_clock clock;
    tether::server::rate_limiter<tether::manual_clock> limit{4, clock};
    for (int i = 0; i < 4; ++i) CHECK_FALSE(limit.admit("alice"));
    auto wait = limit.admit("alice");
    REQUIRE(wait);
    CHECK(*wait == 250ms);
    CHECK_FALSE(limit.admit("bob"));  // buckets are per user
    clock.advance(249ms);
    CHECK(limit.admit("alice"));
    clock.advance(1ms);
    CHECK_FALSE(limit.admit("alice"));
    CHECK(limit.admit("alice"));
    clock.advance(10s);  // refills to the burst, no more
    for (int i = 0; i < 4; ++i) CHECK_FALSE(limit.admit("alice"));
    CHECK(limit.admit("alice"));
    clock.advance(-5s);  // a clock that goes back refills nothing
    CHECK(limit.admit("alice"));

    tether::server::rate_limiter<tether::manual_clock> off{0, clock};
    for (int i = 0; i < 1000; ++i) CHECK_FALSE(off.admit("alice"));
    tether::server::rate_limiter<tether::manual_clock> slow{1, clock};
    CHECK_FALSE(slow.admit("a"));
    CHECK(slow.admit("a") == 1000ms);
}

TEST_CASE("route table: endpoints, methods, names and ids", "[e2e][face]") {
    using tether::server::endpoint;
    using tether::server::route_request;
    CHECK(route_request("GET", "/healthz").to == endpoint::health);
    CHECK(route_request("GET", "/v1/info").to == endpoint::info);
    CHECK(route_request("POST", "/v1/jobs/push").to == endpoint::push);
    auto ch = route_request("GET", "/v1/jobs/changes?cursor=1%402&limit=5");
    CHECK(ch.to == endpoint::changes);
    CHECK(ch.collection == "jobs");
    auto rec = route_request("GET", "/v1/jobs/records/a%2Fb%20c");
    CHECK(rec.to == endpoint::record);
    CHECK(rec.server_id == "a/b c");
    CHECK(route_request("GET", "/v1/jobs/push").refusal->http_status == 405);
    CHECK(route_request("POST", "/v1/info").refusal->http_status == 405);
    CHECK(route_request("GET", "/v1/.x/changes").refusal->http_status == 400);
    CHECK(route_request("GET", "/v1/jobs/records/%g1").refusal->http_status == 400);
    CHECK(route_request("GET", "/v1/jobs/records/").refusal->http_status == 404);
    CHECK(route_request("GET", "/v1/jobs/records/a/b").refusal->http_status == 404);
    CHECK(route_request("GET", "/v1/jobs").refusal->http_status == 404);
    CHECK(route_request("GET", "/v2/info").refusal->http_status == 404);
}

TEST_CASE("access-log line: time, method, path, status, duration, user, escaped", "[e2e][face]") {
    tether::server::access_entry e;
    e.at = tether::manual_clock::default_start + 1234ms;
    e.method = "POST";
    e.path = "/v1/jobs/push";
    e.status = 200;
    e.duration = 1500us;
    e.user = "alice";
    CHECK(tether::server::format_access_line(e) == "2024-01-01T00:00:01.234Z POST /v1/jobs/push 200 1.500ms user=alice");
    e.user.clear();
    e.path = "/x y\n2024-01-01 forged";
    CHECK(tether::server::format_access_line(e) ==
          "2024-01-01T00:00:01.234Z POST /x\\x20y\\x0a2024-01-01\\x20forged 200 1.500ms user=-");
}

TEST_CASE("a face on a memory store: rate limit by the manual clock, one log entry per request", "[e2e][face]") {
    using store = tether::server::memory_store;
    tether::manual_clock clock;
    tether::server::sync_service<store> service{store{}};
    tether::server::token_table tokens;
    REQUIRE(tokens.add("alice-secret", "alice"));
    std::mutex m;
    std::condition_variable cv;
    std::vector<tether::server::access_entry> entries;
    tether::server::http_face_options o;
    o.rate_limit = 2;
    o.access_log = [&](const tether::server::access_entry& e) {
        std::lock_guard lock{m};
        entries.push_back(e);
        cv.notify_all();
    };
    tether::server::http_face face{service, tether::server::authenticate_by(tokens), o, clock};
    httplib::Server http;
    face.mount(http);
    const int port = http.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    std::thread serving{[&] { http.listen_after_bind(); }};
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!http.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    REQUIRE(http.is_running());

    // The server writes an entry after it has sent the answer, and may serve
    // the next request on another thread (a new connection): wait for each
    // entry before the next request, so that their order is the requests'.
    auto logged = [&](std::size_t n) {
        std::unique_lock lock{m};
        return cv.wait_for(lock, 10s, [&] { return entries.size() >= n; });
    };
    httplib::Client c{"127.0.0.1", port};
    const httplib::Headers alice{{"Authorization", "Bearer alice-secret"}};
    CHECK(c.Get("/v1/info", alice)->status == 200);
    REQUIRE(logged(1));
    CHECK(c.Get("/v1/jobs/changes", alice)->status == 200);
    REQUIRE(logged(2));
    auto limited = c.Get("/v1/info", alice);
    REQUIRE(limited);
    CHECK(limited->status == 429);
    CHECK(limited->get_header_value("Retry-After") == "1");
    REQUIRE(logged(3));
    clock.advance(500ms);  // one request's worth
    CHECK(c.Get("/v1/info", alice)->status == 200);
    REQUIRE(logged(4));
    CHECK(c.Get("/v1/info", alice)->status == 429);
    REQUIRE(logged(5));
    CHECK(c.Get("/v1/info", {{"Authorization", "Bearer wrong-secret"}})->status == 401);
    REQUIRE(logged(6));
    CHECK(c.Get("/elsewhere")->status == 404);
    REQUIRE(logged(7));
    CHECK(c.Get("/healthz")->status == 200);
    REQUIRE(logged(8));

    http.stop();
    serving.join();
    std::lock_guard lock{m};
    REQUIRE(entries.size() == 8);
    const std::vector<int> statuses{200, 200, 429, 200, 429, 401, 404, 200};
    for (std::size_t i = 0; i < entries.size(); ++i) {
        INFO(i);
        CHECK(entries[i].status == statuses[i]);
        CHECK(entries[i].user == (i < 5 ? "alice" : ""));
        CHECK(tether::server::format_access_line(entries[i]).find("secret") == std::string::npos);
    }
    CHECK(entries[1].path == "/v1/jobs/changes");
    CHECK(entries[1].method == "GET");
    CHECK(entries[6].path == "/elsewhere");
    CHECK(entries[3].at == tether::manual_clock::default_start + 500ms);
}
