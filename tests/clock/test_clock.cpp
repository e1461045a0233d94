#include <tether/clock/clock.hpp>
#include <tether/clock/manual.hpp>
#include <tether/clock/system.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>

using namespace std::chrono_literals;
using tether::manual_clock;
using tether::timestamp;

namespace {

timestamp at_ms(std::int64_t ms) { return timestamp{std::chrono::milliseconds{ms}}; }

struct frozen_clock {
    using policy_kind = tether::clock_tag;
    timestamp t;
    timestamp now() const noexcept { return t; }
};

struct no_kind_clock {  // everything but the tag
    timestamp now() const noexcept { return {}; }
};

struct wrong_kind_clock {
    using policy_kind = int;
    timestamp now() const noexcept { return {}; }
};

struct wrong_return_clock {  // a raw system_clock time_point is not a tether::timestamp
    using policy_kind = tether::clock_tag;
    std::chrono::system_clock::time_point now() const noexcept { return {}; }
};

struct mutable_now_clock {  // now() must be callable on a const clock
    using policy_kind = tether::clock_tag;
    timestamp now() noexcept { return {}; }
};

struct move_only_clock {
    using policy_kind = tether::clock_tag;
    move_only_clock() = default;
    move_only_clock(move_only_clock&&) = default;
    move_only_clock(const move_only_clock&) = delete;
    timestamp now() const noexcept { return {}; }
};

}  // namespace

TEST_CASE("clock_policy: stock clocks conform, malformed ones do not", "[clock]") {
    // manual_clock and system_clock are checked where they are defined.
    STATIC_REQUIRE(tether::clock_policy<frozen_clock>);

    STATIC_REQUIRE_FALSE(tether::clock_policy<no_kind_clock>);
    STATIC_REQUIRE_FALSE(tether::clock_policy<wrong_kind_clock>);
    STATIC_REQUIRE_FALSE(tether::clock_policy<wrong_return_clock>);
    STATIC_REQUIRE_FALSE(tether::clock_policy<mutable_now_clock>);
    STATIC_REQUIRE_FALSE(tether::clock_policy<move_only_clock>);
    STATIC_REQUIRE_FALSE(tether::clock_policy<std::chrono::system_clock>);
    STATIC_REQUIRE_FALSE(tether::clock_policy<int>);
}

TEST_CASE("manual_clock: default start is 2024-01-01T00:00:00Z", "[clock]") {
    const manual_clock clock;
    CHECK(clock.now() == manual_clock::default_start);
    CHECK(clock.now().time_since_epoch().count() == 1704067200000);
    // 2024-01-01 is 19723 days after 1970-01-01.
    CHECK(std::chrono::floor<std::chrono::days>(clock.now()).time_since_epoch().count() == 19723);
    CHECK(clock.now() - std::chrono::floor<std::chrono::days>(clock.now()) == 0ms);

    const manual_clock elsewhere{at_ms(42)};
    CHECK(elsewhere.now() == at_ms(42));
}

TEST_CASE("manual_clock: advance forward and backward", "[clock]") {
    manual_clock clock{at_ms(1'000'000)};
    clock.advance(250ms);
    CHECK(clock.now() == at_ms(1'000'250));
    clock.advance(std::chrono::minutes{2});
    CHECK(clock.now() == at_ms(1'120'250));
    clock.advance(-1'000ms);
    CHECK(clock.now() == at_ms(1'119'250));
    clock.advance(0ms);
    CHECK(clock.now() == at_ms(1'119'250));
    clock.advance(-119'250ms);
    CHECK(clock.now() == at_ms(1'000'000));
}

TEST_CASE("manual_clock: set jumps in either direction", "[clock]") {
    manual_clock clock;
    clock.set(at_ms(5));
    CHECK(clock.now() == at_ms(5));
    clock.set(manual_clock::default_start + std::chrono::hours{24});
    CHECK(clock.now() == manual_clock::default_start + std::chrono::hours{24});
    clock.advance(1ms);
    CHECK(clock.now() == manual_clock::default_start + std::chrono::hours{24} + 1ms);
}

TEST_CASE("manual_clock: copies share one time", "[clock]") {
    manual_clock a{at_ms(100)};
    manual_clock b = a;   // copy construction
    manual_clock c{at_ms(0)};
    c = b;                // copy assignment: now shares a's time too
    const manual_clock& view = c;

    a.advance(10ms);
    CHECK(b.now() == at_ms(110));
    CHECK(view.now() == at_ms(110));

    b.set(at_ms(500));
    CHECK(a.now() == at_ms(500));
    CHECK(c.now() == at_ms(500));

    c.advance(-200ms);
    CHECK(a.now() == at_ms(300));
    CHECK(b.now() == at_ms(300));

    // A separately constructed clock does not share.
    manual_clock independent{at_ms(300)};
    a.advance(1ms);
    CHECK(independent.now() == at_ms(300));
    independent.advance(1'000ms);
    CHECK(a.now() == at_ms(301));
}

TEST_CASE("system_clock: non-decreasing and anchored at the wall clock", "[clock]") {
    const tether::system_clock clock;
    const auto wall = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    const auto first = clock.now();

    // Sanity check of the anchor, not a timing test: a generous bound.
    CHECK(first - wall < 5s);
    CHECK(wall - first < 5s);

    auto prev = first;
    for (int i = 0; i < 10'000; ++i) {
        const auto next = clock.now();
        REQUIRE(next >= prev);
        prev = next;
    }

    // A copy keeps the same anchor: it never reads earlier than the original did.
    const auto copy = clock;
    CHECK(copy.now() >= prev);
    CHECK(copy.now() - clock.now() < 5s);
    CHECK(clock.now() - copy.now() < 5s);

    // Not the epoch or some other fixed point.
    CHECK(first > manual_clock::default_start);
}
