// The parts of a request the HTTP face reads besides its body (also fuzzed:
// tests/fuzz/server_targets.cpp).
#include <tether/server/http/request_parts.hpp>

#include <catch2/catch.hpp>

using tether::errc;
using tether::server::bearer_token;
using tether::server::page_limit;

TEST_CASE("bearer_token: the scheme in any case, one space, a visible-ASCII token", "[server][http]") {
    CHECK(bearer_token("Bearer s3cret-a").value() == "s3cret-a");
    CHECK(bearer_token("bEARER eyJhbGciOi.J9-_~+/=").value() == "eyJhbGciOi.J9-_~+/=");
    for (const char* bad : {"", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer  two-spaces", "Bearer a b",
                            "Bearer t\x01k", "Bearerx token"}) {
        INFO(bad);
        auto r = bearer_token(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::unauthorized);
        CHECK(r.error().http_status == 401);
    }
    // The refusal never quotes the header, so a token cannot reach a log through it.
    CHECK(bearer_token("Bearer s3cret\x7f").error().message.find("s3cret") == std::string::npos);
}

TEST_CASE("page_limit: 1 to 999,999,999 in decimal digits, else protocol (400)", "[server][http]") {
    CHECK(page_limit("1").value() == 1);
    CHECK(page_limit("0100").value() == 100);
    CHECK(page_limit("999999999").value() == 999'999'999);
    for (const char* bad : {"", "0", "000", "-1", "+5", "1e3", "12 ", "1000000000", "99999999999999999999"}) {
        INFO(bad);
        auto r = page_limit(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::protocol);
        CHECK(r.error().http_status == 400);
    }
}
