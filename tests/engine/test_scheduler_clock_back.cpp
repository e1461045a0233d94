// The scheduler of a live target under a clock set back (engine/scheduler.hpp:
// "a clock set back before the last time the scheduler set a wait makes what
// waits due"), driven deterministically under a manual clock. Nothing sleeps.
#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using tether::sync_trigger;

namespace {

/// A live target that records its runs; its syncs fail as told (the server down).
struct fake_live_target {
    std::vector<sync_trigger> syncs;
    std::size_t live_passes = 0;
    std::size_t follows = 0;
    std::function<void()> notify;
    std::optional<tether::error> failure;

    tether::result<tether::sync_report> sync(sync_trigger why) {
        syncs.push_back(why);
        tether::sync_report r;
        r.trigger = why;
        r.failure = failure;
        return r;
    }
    tether::result<tether::sync_report> apply_live() {
        ++live_passes;
        tether::sync_report r;
        r.trigger = sync_trigger::event;
        return r;
    }
    tether::result<void> follow(std::function<void()> n) {
        ++follows;
        notify = std::move(n);
        return {};
    }
    void unfollow() { notify = nullptr; }
    [[nodiscard]] tether::live_status live_status() const {
        tether::live_status s;
        s.following = static_cast<bool>(notify);
        return s;
    }
};
static_assert(tether::live_target<fake_live_target>);

tether::scheduler_options options() {
    tether::scheduler_options o;
    o.run_at_start = false;
    o.reconnect_spread = 0ms;
    o.down_backoff.seed = 42;
    o.spread_seed = 42;
    o.live_backoff.seed = 7;
    return o;
}

}  // namespace

// The simulator's live mode with --clock-back found it (seed 34): the server
// was down (the backoff run an hour "ahead" once the clock went back), then a
// live pass ran first and measured the waits from the new time, so the
// backoff run, and every write waiting for it, stalled for that hour.
TEST_CASE("a clock set back: a live pass before the backoff run does not stall it", "[scheduler][live]") {
    tether::manual_clock clock;
    fake_live_target t;
    tether::scheduler s{t, clock, options()};
    s.follow();
    t.failure = tether::make_error(tether::errc::transient, "service unavailable");
    REQUIRE(s.run_due() == 2);  // the follow, its catch-up sync (failed: the server is down)
    REQUIRE(t.syncs.size() == 1);
    REQUIRE(s.down());
    t.failure.reset();

    clock.advance(-1h);
    t.notify();  // an event: the live pass runs first (precedence)
    CHECK(s.run_due() == 2);
    CHECK(t.live_passes == 1);
    CHECK(t.syncs.size() == 2);  // the backoff run came at once, as the clock going back says
    CHECK_FALSE(s.down());
    const auto next = s.next_wakeup();
    REQUIRE(next);
    CHECK(*next == clock.now() + 15s);  // the period, measured from the new time
    CHECK(s.run_due() == 0);
}

TEST_CASE("a clock set back: a reconnect waiting in its spread comes after a live pass", "[scheduler][live]") {
    tether::manual_clock clock;
    fake_live_target t;
    auto o = options();
    o.periodic = false;
    o.reconnect_spread = 10s;
    tether::scheduler s{t, clock, o};
    s.notify(sync_trigger::reconnect);
    const auto spread = s.next_wakeup();
    REQUIRE(spread);
    REQUIRE(*spread > clock.now());  // this seed's spread is not 0

    clock.advance(-1h);
    s.notify(sync_trigger::event);  // the live pass runs first (precedence)
    CHECK(s.run_due() == 2);
    CHECK(t.live_passes == 1);
    REQUIRE(t.syncs.size() == 1);  // the reconnect run, not an hour and its spread later
    CHECK(t.syncs.front() == sync_trigger::reconnect);
    CHECK(s.next_wakeup() == std::nullopt);
}
