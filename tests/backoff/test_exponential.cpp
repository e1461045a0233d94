#include <tether/backoff/backoff.hpp>
#include <tether/backoff/exponential.hpp>
#include <tether/clock/clock.hpp>
#include <tether/core/error.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;
using tether::exponential_backoff;

namespace {

tether::error plain_error() { return tether::make_error(tether::errc::transient, "timeout"); }

tether::error error_with_retry_after(ms retry_after) {
    auto e = tether::make_error(tether::errc::rate_limited, "slow down");
    e.retry_after = retry_after;
    return e;
}

// The un-jittered delay of the same settings, for range checks.
ms raw_delay(exponential_backoff p, std::uint32_t n) {
    p.jitter = tether::jitter::none;
    return *p.next_delay(n, plain_error());
}

std::vector<ms> draws(exponential_backoff p, int count) {
    std::vector<ms> out;
    for (int i = 0; i < count; ++i) out.push_back(*p.next_delay(static_cast<std::uint32_t>(i % 4 + 1), plain_error()));
    return out;
}

// A policy as in backoff.hpp's documentation.
struct fixed_backoff {
    using policy_kind = tether::backoff_tag;
    ms delay{30s};
    std::uint32_t max_attempts = 3;
    std::optional<ms> next_delay(std::uint32_t n, const tether::error&) {
        if (n >= max_attempts) return std::nullopt;
        return delay;
    }
};

struct no_tag {
    std::optional<ms> next_delay(std::uint32_t, const tether::error&) { return 1s; }
};

struct wrong_tag {
    using policy_kind = tether::clock_tag;
    std::optional<ms> next_delay(std::uint32_t, const tether::error&) { return 1s; }
};

struct wrong_return {
    using policy_kind = tether::backoff_tag;
    ms next_delay(std::uint32_t, const tether::error&) { return 1s; }  // cannot say "give up"
};

struct no_next_delay {
    using policy_kind = tether::backoff_tag;
};

struct not_copyable {
    using policy_kind = tether::backoff_tag;
    not_copyable() = default;
    not_copyable(const not_copyable&) = delete;
    std::optional<ms> next_delay(std::uint32_t, const tether::error&) { return 1s; }
};

}  // namespace

TEST_CASE("backoff_policy accepts conforming policies and rejects the rest", "[backoff]") {
    STATIC_REQUIRE(tether::backoff_policy<exponential_backoff>);
    STATIC_REQUIRE(tether::backoff_policy<fixed_backoff>);
    STATIC_REQUIRE(!tether::backoff_policy<no_tag>);
    STATIC_REQUIRE(!tether::backoff_policy<wrong_tag>);
    STATIC_REQUIRE(!tether::backoff_policy<wrong_return>);
    STATIC_REQUIRE(!tether::backoff_policy<no_next_delay>);
    STATIC_REQUIRE(!tether::backoff_policy<not_copyable>);
    STATIC_REQUIRE(!tether::backoff_policy<int>);
}

TEST_CASE("exponential_backoff is a designated-initialisable aggregate", "[backoff]") {
    STATIC_REQUIRE(std::is_aggregate_v<exponential_backoff>);
    STATIC_REQUIRE(std::is_copy_constructible_v<exponential_backoff>);

    exponential_backoff p{.base = std::chrono::seconds{1}, .cap = std::chrono::seconds{10}, .jitter = tether::jitter::full};
    CHECK(p.base == 1s);
    CHECK(p.factor == 2.0);
    CHECK(p.cap == 10s);
    CHECK(p.max_attempts == 5);
    CHECK(p.jitter == tether::jitter::full);
    CHECK(p.seed == 0);

    const exponential_backoff d{};
    CHECK(d.base == 1min);
    CHECK(d.factor == 2.0);
    CHECK(d.cap == 1h);
    CHECK(d.max_attempts == 5);
    CHECK(d.jitter == tether::jitter::none);
    CHECK(d.seed == 0);
}

TEST_CASE("the defaults wait 1, 2, 4, 8 minutes, then give up", "[backoff]") {
    exponential_backoff p;
    const auto e = plain_error();
    CHECK(p.next_delay(1, e) == std::optional<ms>{1min});
    CHECK(p.next_delay(2, e) == std::optional<ms>{2min});
    CHECK(p.next_delay(3, e) == std::optional<ms>{4min});
    CHECK(p.next_delay(4, e) == std::optional<ms>{8min});
    CHECK(p.next_delay(5, e) == std::nullopt);
    CHECK(p.next_delay(6, e) == std::nullopt);
    CHECK(p.next_delay(std::numeric_limits<std::uint32_t>::max(), e) == std::nullopt);
}

TEST_CASE("zero failed attempts counts as one", "[backoff]") {
    exponential_backoff p;
    CHECK(p.next_delay(0, plain_error()) == std::optional<ms>{1min});

    exponential_backoff one{.max_attempts = 1};
    CHECK(one.next_delay(0, plain_error()) == std::nullopt);
    CHECK(one.next_delay(1, plain_error()) == std::nullopt);
}

TEST_CASE("max_attempts == 0 never gives up", "[backoff]") {
    exponential_backoff p{.max_attempts = 0};
    const auto e = plain_error();
    CHECK(p.next_delay(1, e) == std::optional<ms>{1min});
    CHECK(p.next_delay(5, e) == std::optional<ms>{16min});
    CHECK(p.next_delay(6, e) == std::optional<ms>{32min});
    CHECK(p.next_delay(7, e) == std::optional<ms>{1h});
    CHECK(p.next_delay(1000, e) == std::optional<ms>{1h});
    CHECK(p.next_delay(std::numeric_limits<std::uint32_t>::max(), e) == std::optional<ms>{1h});
}

TEST_CASE("the cap clamps every delay", "[backoff]") {
    const auto e = plain_error();

    SECTION("growth stops at the cap") {
        exponential_backoff p{.cap = 5min, .max_attempts = 0};
        CHECK(p.next_delay(3, e) == std::optional<ms>{4min});
        CHECK(p.next_delay(4, e) == std::optional<ms>{5min});
        CHECK(p.next_delay(5, e) == std::optional<ms>{5min});
    }
    SECTION("a base above the cap yields the cap") {
        exponential_backoff p{.base = 2h, .cap = 30min};
        CHECK(p.next_delay(1, e) == std::optional<ms>{30min});
        CHECK(p.next_delay(2, e) == std::optional<ms>{30min});
    }
    SECTION("a non-integral factor") {
        exponential_backoff p{.base = 1000ms, .factor = 1.5, .cap = 4s, .max_attempts = 0};
        CHECK(p.next_delay(1, e) == std::optional<ms>{1000ms});
        CHECK(p.next_delay(2, e) == std::optional<ms>{1500ms});
        CHECK(p.next_delay(3, e) == std::optional<ms>{2250ms});
        CHECK(p.next_delay(4, e) == std::optional<ms>{3375ms});
        CHECK(p.next_delay(5, e) == std::optional<ms>{4s});
    }
}

TEST_CASE("huge attempt counts and factors never overflow", "[backoff]") {
    const auto e = plain_error();
    const std::uint32_t max_n = std::numeric_limits<std::uint32_t>::max();

    SECTION("large n with the default factor") {
        exponential_backoff p{.max_attempts = 0};
        for (std::uint32_t n : {64U, 65U, 1000U, 100000U, max_n - 1, max_n}) {
            INFO("n = " << n);
            CHECK(p.next_delay(n, e) == std::optional<ms>{1h});
        }
    }
    SECTION("a huge or infinite factor") {
        for (double f : {1e18, 1e308, std::numeric_limits<double>::max(), std::numeric_limits<double>::infinity()}) {
            INFO("factor = " << f);
            exponential_backoff p{.factor = f, .max_attempts = 0};
            CHECK(p.next_delay(1, e) == std::optional<ms>{1min});
            CHECK(p.next_delay(2, e) == std::optional<ms>{1h});
            CHECK(p.next_delay(1000, e) == std::optional<ms>{1h});
            CHECK(p.next_delay(max_n, e) == std::optional<ms>{1h});
        }
    }
    SECTION("the largest representable cap") {
        exponential_backoff p{.base = 1ms, .cap = ms::max(), .max_attempts = 0};
        CHECK(p.next_delay(2, e) == std::optional<ms>{2ms});
        CHECK(p.next_delay(63, e) == std::optional<ms>{ms{std::int64_t{1} << 62}});
        CHECK(p.next_delay(64, e) == std::optional<ms>{ms::max()});
        CHECK(p.next_delay(100000, e) == std::optional<ms>{ms::max()});
        CHECK(p.next_delay(max_n, e) == std::optional<ms>{ms::max()});

        exponential_backoff huge{.base = ms::max(), .factor = 1e300, .cap = ms::max(), .max_attempts = 0};
        CHECK(huge.next_delay(max_n, e) == std::optional<ms>{ms::max()});
    }
    SECTION("jitter on top of huge values stays within the cap") {
        for (auto j : {tether::jitter::full, tether::jitter::equal, tether::jitter::decorrelated}) {
            exponential_backoff p{.base = 1ms, .factor = 1e300, .cap = ms::max(), .max_attempts = 0, .jitter = j, .seed = 7};
            for (std::uint32_t n : {1U, 2U, 1000U, max_n}) {
                const auto d = p.next_delay(n, e);
                REQUIRE(d.has_value());
                CHECK(*d >= 0ms);
                CHECK(*d <= ms::max());
            }
        }
    }
}

TEST_CASE("out-of-range settings are tamed", "[backoff]") {
    const auto e = plain_error();

    SECTION("a factor below 1 counts as 1") {
        exponential_backoff p{.factor = 0.5};
        CHECK(p.next_delay(1, e) == std::optional<ms>{1min});
        CHECK(p.next_delay(4, e) == std::optional<ms>{1min});
        exponential_backoff negative{.factor = -3.0};
        CHECK(negative.next_delay(4, e) == std::optional<ms>{1min});
    }
    SECTION("a NaN factor counts as 1") {
        exponential_backoff p{.factor = std::numeric_limits<double>::quiet_NaN()};
        CHECK(p.next_delay(1, e) == std::optional<ms>{1min});
        CHECK(p.next_delay(4, e) == std::optional<ms>{1min});
    }
    SECTION("a negative base counts as 0") {
        exponential_backoff p{.base = -5s};
        CHECK(p.next_delay(1, e) == std::optional<ms>{0ms});
        CHECK(p.next_delay(4, e) == std::optional<ms>{0ms});
    }
    SECTION("a negative cap counts as 0") {
        exponential_backoff p{.cap = -1s};
        CHECK(p.next_delay(1, e) == std::optional<ms>{0ms});
        CHECK(p.next_delay(1, error_with_retry_after(5min)) == std::optional<ms>{5min});  // the server's word stands
        exponential_backoff q{.cap = -1s, .max_retry_after = -1s};
        CHECK(q.next_delay(1, error_with_retry_after(5min)) == std::optional<ms>{0ms});
    }
}

TEST_CASE("Retry-After is a lower bound, honoured above the cap up to max_retry_after", "[backoff]") {
    exponential_backoff p;
    CHECK(p.next_delay(1, error_with_retry_after(5min)) == std::optional<ms>{5min});  // raises 1 min
    CHECK(p.next_delay(4, error_with_retry_after(5min)) == std::optional<ms>{8min});  // 8 min is longer
    CHECK(p.next_delay(1, error_with_retry_after(10s)) == std::optional<ms>{1min});   // never lowers
    CHECK(p.next_delay(1, error_with_retry_after(0ms)) == std::optional<ms>{1min});
    CHECK(p.next_delay(1, error_with_retry_after(5h)) == std::optional<ms>{5h});      // above the cap: honoured
    CHECK(p.next_delay(1, error_with_retry_after(ms::max())) == std::optional<ms>{24h});  // max_retry_after
    exponential_backoff short_max{.max_retry_after = 2h};
    CHECK(short_max.next_delay(1, error_with_retry_after(5h)) == std::optional<ms>{2h});
    CHECK(short_max.next_delay(1, error_with_retry_after(90min)) == std::optional<ms>{90min});
    CHECK(p.next_delay(1, error_with_retry_after(-30min)) == std::optional<ms>{1min}); // ignored
    CHECK(p.next_delay(1, error_with_retry_after(ms::min())) == std::optional<ms>{1min});
    CHECK(p.next_delay(5, error_with_retry_after(5min)) == std::nullopt);             // give-up wins

    SECTION("it also bounds jittered delays") {
        exponential_backoff j{.jitter = tether::jitter::full, .seed = 42};
        for (int i = 0; i < 200; ++i) {
            const auto d = j.next_delay(1, error_with_retry_after(50s));
            REQUIRE(d.has_value());
            CHECK(*d >= 50s);
            CHECK(*d <= 1min);
        }
    }
}

TEST_CASE("each jitter mode stays within its range", "[backoff]") {
    const auto e = plain_error();
    const int per_n = 500;

    SECTION("full: uniform in [0, d]") {
        exponential_backoff p{.jitter = tether::jitter::full, .seed = 1};
        for (std::uint32_t n = 1; n < p.max_attempts; ++n) {
            const ms d = raw_delay(p, n);
            ms lo = ms::max(), hi = ms::min();
            for (int i = 0; i < per_n; ++i) {
                const ms x = *p.next_delay(n, e);
                REQUIRE(x >= 0ms);
                REQUIRE(x <= d);
                lo = std::min(lo, x);
                hi = std::max(hi, x);
            }
            // It really spreads over the range (it is not just d, nor just 0).
            CHECK(lo < d / 10);
            CHECK(hi > d * 9 / 10);
        }
    }
    SECTION("equal: d/2 plus uniform in [0, d/2]") {
        exponential_backoff p{.jitter = tether::jitter::equal, .seed = 2};
        for (std::uint32_t n = 1; n < p.max_attempts; ++n) {
            const ms d = raw_delay(p, n);
            ms lo = ms::max(), hi = ms::min();
            for (int i = 0; i < per_n; ++i) {
                const ms x = *p.next_delay(n, e);
                REQUIRE(x >= d / 2);
                REQUIRE(x <= d);
                lo = std::min(lo, x);
                hi = std::max(hi, x);
            }
            CHECK(lo < d / 2 + d / 20);
            CHECK(hi > d - d / 20);
        }
    }
    SECTION("decorrelated: uniform in [base, min(cap, 3 * previous)]") {
        exponential_backoff p{.cap = 10min, .max_attempts = 0, .jitter = tether::jitter::decorrelated, .seed = 3};
        for (std::uint32_t n = 1; n <= 8; ++n) {
            const ms previous = n == 1 ? p.base : raw_delay(p, n - 1);
            const ms top = std::min(p.cap, 3 * previous);
            ms lo = ms::max(), hi = ms::min();
            for (int i = 0; i < per_n; ++i) {
                const ms x = *p.next_delay(n, e);
                REQUIRE(x >= p.base);
                REQUIRE(x <= top);
                lo = std::min(lo, x);
                hi = std::max(hi, x);
            }
            INFO("n = " << n);
            CHECK(lo < p.base + (top - p.base) / 10);
            CHECK(hi > top - (top - p.base) / 10);
        }
    }
    SECTION("decorrelated with a base above the cap stays at the cap") {
        exponential_backoff p{.base = 2h, .jitter = tether::jitter::decorrelated, .seed = 4};
        for (int i = 0; i < 50; ++i) CHECK(p.next_delay(2, e) == std::optional<ms>{1h});
    }
    SECTION("none: exactly d") {
        exponential_backoff p{.jitter = tether::jitter::none, .seed = 5};
        for (int i = 0; i < 50; ++i) CHECK(p.next_delay(3, e) == std::optional<ms>{4min});
    }
    SECTION("jitter never stops the give-up") {
        for (auto j : {tether::jitter::full, tether::jitter::equal, tether::jitter::decorrelated}) {
            exponential_backoff p{.jitter = j};
            CHECK(p.next_delay(5, e) == std::nullopt);
        }
    }
}

TEST_CASE("jitter ranges are inclusive at both ends", "[backoff]") {
    // Tiny ranges make every value likely: all of them must show up.
    const auto e = plain_error();
    auto seen = [&](exponential_backoff p, std::uint32_t n) {
        std::vector<ms> values;
        for (int i = 0; i < 600; ++i) values.push_back(*p.next_delay(n, e));
        std::sort(values.begin(), values.end());
        values.erase(std::unique(values.begin(), values.end()), values.end());
        return values;
    };
    CHECK(seen({.base = 2ms, .jitter = tether::jitter::full, .seed = 11}, 1) == std::vector<ms>{0ms, 1ms, 2ms});
    CHECK(seen({.base = 4ms, .jitter = tether::jitter::equal, .seed = 12}, 1) == std::vector<ms>{2ms, 3ms, 4ms});
    CHECK(seen({.base = 1ms, .jitter = tether::jitter::decorrelated, .seed = 13}, 1) == std::vector<ms>{1ms, 2ms, 3ms});
}

TEST_CASE("jitter is reproducible with a fixed seed", "[backoff]") {
    for (auto j : {tether::jitter::full, tether::jitter::equal, tether::jitter::decorrelated}) {
        INFO("jitter = " << static_cast<int>(j));
        const exponential_backoff a{.jitter = j, .seed = 12345};
        const exponential_backoff same{.jitter = j, .seed = 12345};
        const exponential_backoff other{.jitter = j, .seed = 54321};

        const auto first = draws(a, 64);
        CHECK(draws(same, 64) == first);
        CHECK(draws(a, 64) == first);  // a copy of a fresh policy starts the same sequence
        CHECK(draws(other, 64) != first);

        // Successive draws of one object at the same n differ (the stream advances).
        exponential_backoff one = a;
        std::vector<ms> same_n;
        for (int i = 0; i < 16; ++i) same_n.push_back(*one.next_delay(2, plain_error()));
        CHECK(std::adjacent_find(same_n.begin(), same_n.end(), std::not_equal_to<>{}) != same_n.end());
    }
}

TEST_CASE("a copy continues its original's jitter sequence", "[backoff]") {
    exponential_backoff a{.jitter = tether::jitter::full, .seed = 99};
    (void)a.next_delay(1, plain_error());
    exponential_backoff b = a;
    for (int i = 0; i < 20; ++i) CHECK(a.next_delay(3, plain_error()) == b.next_delay(3, plain_error()));
}

TEST_CASE("changing the seed re-seeds the stream", "[backoff]") {
    const exponential_backoff fresh{.jitter = tether::jitter::full, .seed = 7};
    const auto first = draws(fresh, 32);

    exponential_backoff reseeded{.jitter = tether::jitter::full, .seed = 8};
    (void)reseeded.next_delay(2, plain_error());  // start and advance another stream
    reseeded.seed = 7;
    CHECK(draws(reseeded, 32) == first);
}

TEST_CASE("seed 0 draws from std::random_device: devices do not retry in lockstep", "[backoff]") {
    // 64 draws of up to 60001 values each: two fresh policies agree on all of them
    // only if they were seeded alike.
    const exponential_backoff a{.jitter = tether::jitter::full};
    const exponential_backoff b{.jitter = tether::jitter::full};
    CHECK(draws(a, 64) != draws(b, 64));
    CHECK(draws(a, 64) != draws(a, 64));  // even two copies of one fresh policy
}
