#include <tether/core/error.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

using tether::errc;
using tether::error;
using tether::errc_from_string;
using tether::is_retryable;
using tether::make_error;

namespace {

constexpr std::array<errc, 14> all_codes{errc::not_found, errc::invalid_argument, errc::invalid_state,
                                         errc::conflict,  errc::offline,          errc::unauthorized,
                                         errc::rate_limited, errc::transient,     errc::rejected,
                                         errc::storage,   errc::protocol,         errc::busy,
                                         errc::too_large, errc::cursor_expired};

std::string print(const error& e) {
    std::ostringstream os;
    os << e;
    return os.str();
}

}  // namespace

TEST_CASE("errc: every enumerator is covered by these tests", "[error]") {
    // errc is contiguous from 0; if a code is added, this fails and the lists here need it.
    for (std::size_t i = 0; i < all_codes.size(); ++i) CHECK(static_cast<std::size_t>(all_codes[i]) == i);
    CHECK(tether::to_string(static_cast<errc>(all_codes.size())) == "unknown");
}

TEST_CASE("is_retryable: exactly offline, transient, rate_limited and busy", "[error]") {
    const std::set<errc> retryable{errc::offline, errc::transient, errc::rate_limited, errc::busy};
    for (auto c : all_codes) {
        INFO("code " << c);
        CHECK(is_retryable(make_error(c, "x")) == (retryable.count(c) == 1));
    }
    CHECK_FALSE(is_retryable(make_error(errc::conflict)));
    CHECK_FALSE(is_retryable(make_error(errc::rejected)));
    CHECK_FALSE(is_retryable(make_error(errc::storage)));
    CHECK(is_retryable(error{errc::rate_limited, "slow down", 429, std::chrono::seconds{30}}));
    // The default-constructed error is transient, hence retryable.
    CHECK(is_retryable(error{}));
}

TEST_CASE("errc: to_string and errc_from_string round-trip", "[error]") {
    CHECK(tether::to_string(errc::not_found) == "not_found");
    CHECK(tether::to_string(errc::invalid_argument) == "invalid_argument");
    CHECK(tether::to_string(errc::rate_limited) == "rate_limited");
    CHECK(tether::to_string(errc::busy) == "busy");
    CHECK(tether::to_string(errc::too_large) == "too_large");
    CHECK(tether::to_string(errc::cursor_expired) == "cursor_expired");

    std::set<std::string_view> names;
    for (auto c : all_codes) {
        const auto name = tether::to_string(c);
        INFO("name " << name);
        names.insert(name);
        CHECK(name != "unknown");
        const auto back = errc_from_string(name);
        REQUIRE(back.has_value());
        CHECK(*back == c);
    }
    CHECK(names.size() == all_codes.size());

    for (std::string_view bad : {"", "NOT_FOUND", "not found", "unknown", "retry", "busy "}) {
        INFO("bad '" << bad << "'");
        CHECK_FALSE(errc_from_string(bad).has_value());
    }
    STATIC_REQUIRE(errc_from_string("protocol") == errc::protocol);
}

TEST_CASE("error: make_error and equality", "[error]") {
    const auto e = make_error(errc::not_found, "no such job");
    CHECK(e.code == errc::not_found);
    CHECK(e.message == "no such job");
    CHECK_FALSE(e.http_status.has_value());
    CHECK_FALSE(e.retry_after.has_value());
    CHECK(e == make_error(errc::not_found, "no such job"));
    CHECK_FALSE(e == make_error(errc::not_found, "other"));
    CHECK_FALSE(e == make_error(errc::conflict, "no such job"));
    auto with_status = e;
    with_status.http_status = 404;
    CHECK_FALSE(e == with_status);
}

TEST_CASE("error: operator<< shows code, message and HTTP status", "[error]") {
    const error full{errc::rate_limited, "slow down", 429, std::chrono::seconds{30}};
    const auto text = print(full);
    CHECK(text.find("rate_limited") != std::string::npos);
    CHECK(text.find("slow down") != std::string::npos);
    CHECK(text.find("429") != std::string::npos);
    CHECK(text == "rate_limited: slow down (HTTP 429)");

    const auto plain = print(make_error(errc::storage, "disk full"));
    CHECK(plain == "storage: disk full");
    CHECK(plain.find("HTTP") == std::string::npos);

    CHECK(print(make_error(errc::busy)) == "busy");

    error status_only{errc::unauthorized, "", 401, std::nullopt};
    CHECK(print(status_only).find("401") != std::string::npos);
    CHECK(print(status_only).find("unauthorized") != std::string::npos);

    std::ostringstream os;
    os << errc::protocol;
    CHECK(os.str() == "protocol");
}
