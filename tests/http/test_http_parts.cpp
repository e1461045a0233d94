// The parts every HTTP transport shares, without a network: the error table
// (every socket-failure row; the status rows are also exercised live in
// test_http_status.cpp), Retry-After, base URLs, tokens and redaction, the pool.
#include <tether/transport/http/errors.hpp>
#include <tether/transport/http/pool.hpp>
#include <tether/transport/http/retry_after.hpp>
#include <tether/transport/http/token.hpp>
#include <tether/transport/http/url.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

using tether::errc;
namespace http = tether::http;
using namespace std::chrono_literals;

TEST_CASE("error table: every socket failure has its row", "[http][errors]") {
    struct row {
        httplib::Error failure;
        errc code;
    };
    for (auto [failure, code] : std::vector<row>{
             {httplib::Error::Connection, errc::offline},
             {httplib::Error::BindIPAddress, errc::offline},
             {httplib::Error::ConnectionTimeout, errc::transient},
             {httplib::Error::Read, errc::transient},
             {httplib::Error::Write, errc::transient},
             {httplib::Error::SSLConnection, errc::transient},
             {httplib::Error::SSLServerVerification, errc::rejected},
             {httplib::Error::SSLLoadingCerts, errc::invalid_argument},
             {httplib::Error::Compression, errc::protocol},
             {httplib::Error::ExceedRedirectCount, errc::protocol},
             {httplib::Error::Canceled, errc::protocol},
             {httplib::Error::UnsupportedMultipartBoundaryChars, errc::transient},
             {httplib::Error::Unknown, errc::transient},
         }) {
        INFO(httplib::to_string(failure));
        const auto& r = http::rule_for_failure(failure);
        CHECK(r.failure == failure);
        CHECK(r.code == code);
        CHECK_FALSE(r.meaning.empty());
    }
    // Every httplib::Error but Success has a row of its own.
    std::set<int> rows;
    for (const auto& r : http::error_table)
        if (r.first == 0 && r.failure != httplib::Error::Success) rows.insert(static_cast<int>(r.failure));
    CHECK(rows.size() == static_cast<std::size_t>(httplib::Error::ConnectionTimeout));
}

TEST_CASE("error table: status rows, per request kind where the meaning differs", "[http][errors]") {
    using k = http::request_kind;
    struct row {
        int status;
        k kind;
        errc code;
    };
    for (auto [status, kind, code] : std::vector<row>{
             {100, k::push, errc::protocol},          {199, k::push, errc::protocol},
             {301, k::push, errc::protocol},          {308, k::fetch, errc::protocol},
             {400, k::push, errc::protocol},          {401, k::changes, errc::unauthorized},
             {403, k::push, errc::rejected},          {404, k::fetch, errc::not_found},
             {404, k::push, errc::rejected},          {404, k::changes, errc::rejected},
             {408, k::push, errc::transient},         {409, k::push, errc::rejected},
             {410, k::changes, errc::cursor_expired}, {410, k::fetch, errc::not_found},
             {410, k::push, errc::rejected},          {413, k::push, errc::too_large},
             {415, k::push, errc::rejected},          {418, k::info, errc::rejected},
             {425, k::push, errc::transient},         {429, k::push, errc::rate_limited},
             {499, k::push, errc::rejected},          {500, k::push, errc::transient},
             {502, k::changes, errc::transient},      {503, k::push, errc::transient},
             {504, k::fetch, errc::transient},        {599, k::push, errc::transient},
             {0, k::push, errc::protocol},            {600, k::push, errc::protocol},
             {999, k::push, errc::protocol},
         }) {
        INFO(status);
        CHECK(http::rule_for_status(status, kind).code == code);
    }
    CHECK(http::is_success(200));
    CHECK(http::is_success(204));
    CHECK_FALSE(http::is_success(199));
    CHECK_FALSE(http::is_success(300));
}

TEST_CASE("Retry-After: delay-seconds", "[http][retry-after]") {
    const tether::timestamp now{1'700'000'000'000ms};
    CHECK(http::parse_retry_after("0", now) == 0ms);
    CHECK(http::parse_retry_after("120", now) == 120'000ms);
    CHECK(http::parse_retry_after("  7\t", now) == 7'000ms);
    CHECK(http::parse_retry_after("86400", now) == http::max_retry_after);
    CHECK(http::parse_retry_after("99999999999999999999999", now) == http::max_retry_after);
    for (const char* bad : {"", " ", "-5", "1.5", "12a", "+3", "0x10", "soon"}) {
        INFO(bad);
        CHECK_FALSE(http::parse_retry_after(bad, now));
    }
}

TEST_CASE("Retry-After: an HTTP-date in each of the three formats", "[http][retry-after]") {
    // Sun, 06 Nov 1994 08:49:37 GMT is 784111777 s after the epoch.
    const tether::timestamp at{784'111'777'000ms};
    const auto before = at - 90s;
    CHECK(http::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", before) == 90'000ms);
    CHECK(http::parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", before) == 90'000ms);
    CHECK(http::parse_retry_after("Sun Nov  6 08:49:37 1994", before) == 90'000ms);
    CHECK(http::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at + 5s) == 0ms);  // already past
    CHECK(http::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at - std::chrono::hours{48}) == http::max_retry_after);
    CHECK(http::parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT", {})->time_since_epoch() == 1'709'251'199'000ms);
    CHECK(http::parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT", {})->time_since_epoch() == 0ms);
    // An RFC 850 two-digit year lands no more than 50 years after now.
    const tether::timestamp in_2023{1'700'000'000'000ms};
    CHECK(http::parse_http_date("Friday, 01-Jan-49 00:00:00 GMT", in_2023) == http::parse_http_date("Fri, 01 Jan 2049 00:00:00 GMT", {}));
    CHECK(http::parse_http_date("Friday, 01-Jan-99 00:00:00 GMT", in_2023) == http::parse_http_date("Fri, 01 Jan 1999 00:00:00 GMT", {}));
    // Late in a century the window reaches into the next one (found by the retry_after fuzzer).
    const auto in_2061 = *http::parse_http_date("Thu, 15 Dec 2061 00:00:00 GMT", {});
    CHECK(http::parse_http_date("Saturday, 12-Feb-00 00:00:00 GMT", in_2061) == http::parse_http_date("Sat, 12 Feb 2100 00:00:00 GMT", {}));
    CHECK(http::parse_http_date("Sunday, 12-Feb-12 00:00:00 GMT", in_2061) == http::parse_http_date("Sun, 12 Feb 2012 00:00:00 GMT", {}));
    for (const char* bad : {"Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49 GMT",
                            "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT",
                            "Sun, 06 Nov 1994 24:00:00 GMT", "Sun Nov 6 08:49:37 1994", "Sun, 06 Nov 1994 08:49:37 GMT x",
                            "Fri, 29 Feb 2023 00:00:00 GMT", "tomorrow"}) {
        INFO(bad);
        CHECK_FALSE(http::parse_http_date(bad, in_2023));
        CHECK_FALSE(http::parse_retry_after(bad, in_2023));
    }
}

TEST_CASE("base URLs", "[http][url]") {
    auto u = http::parse_base_url("http://127.0.0.1:8080");
    REQUIRE(u);
    CHECK(u->scheme == "http");
    CHECK(u->host == "127.0.0.1");
    CHECK(u->port == 8080);
    CHECK(u->prefix.empty());
    CHECK(u->origin() == "http://127.0.0.1:8080");
    u = http::parse_base_url("HTTPS://sync.example.com/api/sync/");
    REQUIRE(u);
    CHECK(u->scheme == "https");
    CHECK(u->port == 443);
    CHECK(u->prefix == "/api/sync");
    u = http::parse_base_url("http://[::1]:9000/x");
    REQUIRE(u);
    CHECK(u->host == "::1");
    CHECK(u->origin() == "http://[::1]:9000");
    CHECK(http::parse_base_url("http://example.com")->port == 80);
    for (const char* bad : {"", "example.com", "ftp://example.com", "http://", "http://:80", "http://a:0", "http://a:65536",
                            "http://a:x", "http://a:", "http://user:pw@a", "http://a/b?c=1", "http://a/#f", "http://a b",
                            "http://[::1", "http://[::1]x", "http://a/b c", "http://[zz]"}) {
        INFO(bad);
        auto r = http::parse_base_url(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::invalid_argument);
    }
}

TEST_CASE("redact replaces every occurrence of the secret", "[http][token]") {
    CHECK(http::redact("Bearer abc123 and abc123abc123", "abc123") == "Bearer [redacted] and [redacted][redacted]");
    CHECK(http::redact("nothing here", "abc123") == "nothing here");
    CHECK(http::redact("keep", "") == "keep");
    CHECK(http::redact("red red", "red") == "[redacted] [redacted]");
    CHECK(http::valid_token("eyJhbGciOi.J9-_~+/="));
    CHECK_FALSE(http::valid_token(""));
    CHECK_FALSE(http::valid_token("two words"));
    CHECK_FALSE(http::valid_token("line\r\nX-Injected: 1"));
}

TEST_CASE("token_source: fixed, none, and a provider refreshed once per 401 however many threads saw it", "[http][token]") {
    http::token_source none;
    CHECK(none.current()->token.empty());
    CHECK_FALSE(none.can_refresh());
    CHECK(none.refresh(0).error().code == errc::unauthorized);

    http::token_source fixed{std::string{"fixed-token"}};
    CHECK(fixed.current()->token == "fixed-token");
    CHECK(fixed.refresh(fixed.current()->generation).error().code == errc::unauthorized);

    std::atomic<int> asked{0};
    http::token_source provided{http::token_provider{[&]() -> tether::result<std::string> {
        return "token-" + std::to_string(++asked);
    }}};
    auto first = provided.current();
    REQUIRE(first);
    CHECK(first->token == "token-1");
    CHECK(provided.current()->token == "token-1");  // cached
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i)
        threads.emplace_back([&, g = first->generation] { CHECK(provided.refresh(g)->token == "token-2"); });
    for (auto& t : threads) t.join();
    CHECK(asked == 2);
    CHECK(provided.scrub("saw token-2 and token-1", "token-1") == "saw [redacted] and [redacted]");
}

TEST_CASE("token_source: a failing, throwing or empty provider is an error, redacted", "[http][token]") {
    http::token_source failing{http::token_provider{[]() -> tether::result<std::string> {
        return tether::unexpected{tether::make_error(tether::errc::offline, "identity provider unreachable")};
    }}};
    auto e = failing.current();
    REQUIRE_FALSE(e);
    CHECK(e.error().code == errc::offline);
    CHECK_THAT(e.error().message, Catch::Contains("token provider"));

    http::token_source throwing{http::token_provider{[]() -> tether::result<std::string> { throw std::runtime_error{"boom"}; }}};
    CHECK(throwing.current().error().code == errc::transient);

    http::token_source empty{http::token_provider{[]() -> tether::result<std::string> { return std::string{}; }}};
    CHECK(empty.current().error().code == errc::unauthorized);
    http::token_source spaced{http::token_provider{[]() -> tether::result<std::string> { return std::string{"a b"}; }}};
    auto s = spaced.current();
    REQUIRE_FALSE(s);
    CHECK(s.error().message.find("a b") == std::string::npos);
}

TEST_CASE("connection_pool: makes clients on demand up to its capacity and reuses them", "[http][pool]") {
    std::atomic<int> made{0};
    http::connection_pool pool{2, [&] {
                                   ++made;
                                   return std::make_unique<httplib::Client>("http://127.0.0.1:1");
                               }};
    CHECK(pool.capacity() == 2);
    httplib::Client* a = nullptr;
    {
        auto l1 = pool.acquire();
        auto l2 = pool.acquire();
        a = &l1.client();
        CHECK(&l1.client() != &l2.client());
        CHECK(pool.made() == 2);
    }
    {
        auto l = pool.acquire();  // the most recently returned one
        CHECK(made == 2);
        (void)a;
    }
    // A third borrower waits until one is given back.
    auto held1 = std::make_unique<http::connection_pool::lease>(pool.acquire());
    auto held2 = std::make_unique<http::connection_pool::lease>(pool.acquire());
    std::atomic<bool> got{false};
    std::thread waiter{[&] {
        auto l = pool.acquire();
        got = true;
    }};
    CHECK_FALSE(got.load());
    held1.reset();
    waiter.join();
    CHECK(got.load());
    CHECK(made == 2);
}
