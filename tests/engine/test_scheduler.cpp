// The scheduler, driven deterministically (next_wakeup / run_due) under a
// manual clock: one test per rule of engine/scheduler.hpp. Nothing sleeps.
#include "support/entities.hpp"

#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

using tether_test::Job;
using namespace std::chrono_literals;
using tether::sync_trigger;

namespace {

/// A target that records why it ran and answers as told.
struct fake_target {
    std::vector<sync_trigger> runs;
    std::function<void()> during;  // called inside each sync (a write, a second trigger)
    std::optional<tether::skip_reason> skip;
    std::optional<tether::error> failure;
    std::optional<tether::timestamp> retry;  // what earliest_next_attempt() says
    int inside = 0;
    int most_inside = 0;

    tether::result<tether::sync_report> sync(sync_trigger why) {
        ++inside;
        most_inside = std::max(most_inside, inside);
        runs.push_back(why);
        if (during) during();
        --inside;
        tether::sync_report r;
        r.trigger = why;
        r.skipped = skip;
        r.failure = failure;
        return r;
    }
    [[nodiscard]] tether::result<std::optional<tether::timestamp>> earliest_next_attempt() const { return retry; }
};
static_assert(tether::sync_target<fake_target>);
static_assert(tether::retry_aware_target<fake_target>);
static_assert(!tether::announcing_target<fake_target>);
static_assert(tether::announcing_target<tether::memory_engine<Job>>);

tether::scheduler_options quiet() {
    tether::scheduler_options o;
    o.reconnect_spread = 0ms;
    o.down_backoff.seed = 42;
    o.spread_seed = 42;
    return o;
}

struct world {
    tether::manual_clock clock;
    tether::loopback_server server{[c = clock] { return c.now(); }};

    auto device(tether::exponential_backoff b = {}) {
        return tether::make_engine<Job>(tether::memory_storage{}, tether::loopback_transport{server, "alice"}, clock,
                                        b);
    }
};

}  // namespace

TEST_CASE("the scheduler runs at once, then every period", "[scheduler]") {
    tether::manual_clock clock;
    fake_target t;
    tether::scheduler s{t, clock, quiet()};
    REQUIRE(s.next_wakeup() == clock.now());
    CHECK(s.run_due() == 1);
    CHECK(t.runs == std::vector{sync_trigger::scheduled});
    CHECK(s.next_wakeup() == clock.now() + 15s);
    CHECK(s.run_due() == 0);
    clock.advance(14'999ms);
    CHECK(s.run_due() == 0);
    clock.advance(1ms);
    CHECK(s.run_due() == 1);
    CHECK(t.runs.size() == 2);
    CHECK(t.runs.back() == sync_trigger::scheduled);
}

TEST_CASE("without run_at_start the first run comes after one period", "[scheduler]") {
    tether::manual_clock clock;
    fake_target t;
    auto o = quiet();
    o.run_at_start = false;
    o.period = 1min;
    tether::scheduler s{t, clock, o};
    CHECK(s.next_wakeup() == clock.now() + 1min);
    CHECK(s.run_due() == 0);
}

TEST_CASE("a write is synced right after it, without waiting for it", "[scheduler][engine]") {
    world w;
    auto e = w.device();
    auto o = quiet();
    o.run_at_start = false;
    tether::scheduler s{e, e.clock(), o};
    auto job = e.create(Job{"memo.m4a", 0, ""});
    REQUIRE(job);
    CHECK(w.server.records("alice", "jobs").empty());  // the write returned before any sync
    CHECK(s.next_wakeup() == w.clock.now());
    CHECK(s.run_due() == 1);
    auto last = s.last_result();
    REQUIRE(last);
    REQUIRE(*last);
    CHECK((*last)->trigger == sync_trigger::after_write);
    CHECK((*last)->pushed == 1);
    CHECK(w.server.records("alice", "jobs").size() == 1);
}

TEST_CASE("a burst of writes shares one run", "[scheduler][engine]") {
    world w;
    auto e = w.device();
    auto o = quiet();
    o.run_at_start = false;
    tether::scheduler s{e, e.clock(), o};
    for (int i = 0; i < 5; ++i) REQUIRE(e.create(Job{"j" + std::to_string(i), i, ""}));
    CHECK(s.run_due() == 1);
    CHECK((*s.last_result())->pushed == 5);
    CHECK(s.run_due() == 0);
}

TEST_CASE("a trigger during a run is never lost and never runs a second sync at once", "[scheduler]") {
    tether::manual_clock clock;
    fake_target t;
    tether::scheduler s{t, clock, quiet()};
    int nested = -1;
    bool first = true;
    t.during = [&] {
        if (!std::exchange(first, false)) return;
        s.notify(sync_trigger::after_write);     // a write while the sync runs
        nested = static_cast<int>(s.run_due());  // another caller: the running one takes it
    };
    CHECK(s.run_due() == 2);
    CHECK(nested == 0);
    CHECK(t.most_inside == 1);
    CHECK(t.runs == std::vector{sync_trigger::scheduled, sync_trigger::after_write});
}

TEST_CASE("triggers due together share one run, named by precedence", "[scheduler]") {
    tether::manual_clock clock;
    fake_target t;
    tether::scheduler s{t, clock, quiet()};
    s.notify(sync_trigger::after_write);
    s.notify(sync_trigger::event);
    s.notify(sync_trigger::user);
    CHECK(s.run_due() == 1);
    CHECK(t.runs == std::vector{sync_trigger::user});
}

TEST_CASE("a record's retry is pushed when it falls due, not at the next period", "[scheduler]") {
    tether::manual_clock clock;
    fake_target t;
    auto o = quiet();
    o.period = 1h;
    tether::scheduler s{t, clock, o};
    t.retry = clock.now() + 90s;
    CHECK(s.run_due() == 1);
    CHECK(s.next_wakeup() == clock.now() + 90s);
    clock.advance(90s);
    t.retry.reset();
    CHECK(s.run_due() == 1);
    CHECK(t.runs.back() == sync_trigger::retry_due);
    CHECK(s.next_wakeup() == clock.now() + 1h);
}

TEST_CASE("a retry the run did not clear does not make the scheduler spin", "[scheduler]") {
    tether::manual_clock clock;
    fake_target t;
    tether::scheduler s{t, clock, quiet()};
    t.retry = clock.now();  // due now, and still there after the run
    CHECK(s.run_due() == 1);
    CHECK(s.next_wakeup() == clock.now() + 15s);
}

TEST_CASE("an engine's failed push is retried when its backoff ends", "[scheduler][engine]") {
    world w;
    auto e = w.device(tether::exponential_backoff{.base = 2min});
    auto o = quiet();
    o.period = 1h;
    o.run_at_start = false;
    tether::scheduler s{e, e.clock(), o};
    // The push fails (a network failure): the record backs off for 2 min.
    w.server.fail_next(1, tether::loopback_server::transient_error());
    auto job = e.create(Job{"memo.m4a", 0, ""});
    REQUIRE(job);
    CHECK(s.run_due() >= 1);
    auto r = e.get(job->id);
    REQUIRE(r);
    REQUIRE(r->status == tether::sync_status::error);
    REQUIRE(r->next_attempt_at);
    CHECK(e.earliest_next_attempt().value() == r->next_attempt_at);
    // Down after the transport failure: the backoff run comes first and ends it.
    REQUIRE(s.down());
    w.clock.set(*s.next_wakeup());
    CHECK(s.run_due() == 1);
    REQUIRE_FALSE(s.down());
    CHECK(s.next_wakeup() == r->next_attempt_at);
    w.clock.set(*r->next_attempt_at);
    CHECK(s.run_due() == 1);
    CHECK((*s.last_result())->trigger == sync_trigger::retry_due);
    CHECK(e.get(job->id)->status == tether::sync_status::synced);
}

TEST_CASE("paused: nothing runs, writes queue, resume runs at once", "[scheduler]") {
    tether::manual_clock clock;
    fake_target t;
    tether::scheduler s{t, clock, quiet()};
    CHECK(s.run_due() == 1);
    s.pause();
    CHECK(s.paused());
    CHECK_FALSE(s.next_wakeup());
    s.notify(sync_trigger::after_write);
    clock.advance(1h);
    CHECK(s.run_due() == 0);
    s.resume();
    CHECK(s.next_wakeup() <= clock.now());
    CHECK(s.run_due() == 1);
    CHECK(t.runs.back() == sync_trigger::after_write);  // the queued write names the run
    CHECK(s.next_wakeup() == clock.now() + 15s);
}

TEST_CASE("offline: periodic runs back off, jittered, and writes wait for them", "[scheduler]") {
    tether::manual_clock clock;
    fake_target t;
    tether::scheduler s{t, clock, quiet()};
    t.skip = tether::skip_reason::offline;
    std::vector<std::chrono::milliseconds> waits;
    for (int i = 0; i < 8; ++i) {
        if (i > 0) clock.set(*s.next_wakeup());
        REQUIRE(s.run_due() == 1);
        CHECK(s.down());
        waits.push_back(*s.next_wakeup() - clock.now());
    }
    // equal jitter: the n-th wait is in [d/2, d], d = min(15 s * 2^(n-1), 5 min)
    for (std::size_t n = 0; n < waits.size(); ++n) {
        const auto d = std::min<std::chrono::milliseconds>(15s * (1 << n), 5min);
        CHECK(waits[n] >= d / 2);
        CHECK(waits[n] <= d);
    }
    s.notify(sync_trigger::after_write);  // queued for the backoff run, not sent per write
    CHECK(s.run_due() == 0);
    s.notify(sync_trigger::user);  // the user still may
    CHECK(s.run_due() == 1);
    CHECK(t.runs.back() == sync_trigger::user);
}

TEST_CASE("a transport failure marks the server down, a good run ends the backoff", "[scheduler]") {
    tether::manual_clock clock;
    fake_target t;
    tether::scheduler s{t, clock, quiet()};
    t.failure = tether::loopback_server::transient_error();
    CHECK(s.run_due() == 1);
    CHECK(s.down());
    t.failure.reset();
    clock.set(*s.next_wakeup());
    CHECK(s.run_due() == 1);
    CHECK_FALSE(s.down());
    CHECK(s.next_wakeup() == clock.now() + 15s);
}

TEST_CASE("a rejected push is not the server being down", "[scheduler]") {
    tether::manual_clock clock;
    fake_target t;
    tether::scheduler s{t, clock, quiet()};
    t.failure = tether::loopback_server::rejected_error();
    CHECK(s.run_due() == 1);
    CHECK_FALSE(s.down());
}

TEST_CASE("a reconnect ends the backoff and runs within its spread", "[scheduler]") {
    tether::manual_clock clock;
    fake_target t;
    auto o = quiet();
    o.reconnect_spread = 10s;
    tether::scheduler s{t, clock, o};
    t.skip = tether::skip_reason::offline;
    CHECK(s.run_due() == 1);
    REQUIRE(s.down());
    t.skip.reset();
    s.notify(sync_trigger::after_write);  // queued while down
    s.notify(sync_trigger::reconnect);
    CHECK_FALSE(s.down());
    const auto at = *s.next_wakeup();
    CHECK(at > clock.now());  // seed 42 draws a delay above 0
    CHECK(at <= clock.now() + 10s);
    CHECK(s.run_due() == 0);  // the queued write waits for the spread run too
    clock.set(at);
    CHECK(s.run_due() == 1);
    CHECK(t.runs.back() == sync_trigger::reconnect);
}

TEST_CASE("a fleet reconnecting together is spread out, reproducibly by seed", "[scheduler]") {
    tether::manual_clock clock;
    auto when = [&](std::uint64_t seed) {
        fake_target t;
        auto o = quiet();
        o.run_at_start = false;
        o.period = 1h;
        o.reconnect_spread = 10s;
        o.spread_seed = seed;
        tether::scheduler s{t, clock, o};
        s.notify(sync_trigger::reconnect);
        return *s.next_wakeup();
    };
    CHECK(when(1) == when(1));
    std::vector<tether::timestamp> fleet;
    for (std::uint64_t seed = 1; seed <= 8; ++seed) fleet.push_back(when(seed));
    std::sort(fleet.begin(), fleet.end());
    CHECK(std::unique(fleet.begin(), fleet.end()) - fleet.begin() > 4);
}

TEST_CASE("an engine going offline and back: skipped runs back off, then a reconnect run", "[scheduler][engine]") {
    world w;
    auto e = w.device();
    tether::scheduler s{e, e.clock(), quiet()};
    CHECK(s.run_due() == 1);
    e.set_online(false);
    REQUIRE(e.create(Job{"offline write", 0, ""}));
    CHECK(s.run_due() == 1);  // the write's run finds the engine offline
    CHECK((*s.last_result())->skipped == tether::skip_reason::offline);
    CHECK(s.down());
    REQUIRE(e.create(Job{"another", 0, ""}));
    CHECK(s.run_due() == 0);  // writes wait while down
    e.set_online(true);       // tells the scheduler: reconnect
    CHECK(s.run_due() == 1);
    CHECK((*s.last_result())->trigger == sync_trigger::reconnect);
    CHECK((*s.last_result())->pushed == 2);
}

TEST_CASE("the trigger is in the report and in the transitions it causes", "[scheduler][engine]") {
    world w;
    auto e = w.device();
    std::vector<tether::transition> seen;
    e.on_transition([&](const tether::transition& t) { seen.push_back(t); });
    REQUIRE(e.create(Job{"a", 0, ""}));
    REQUIRE(seen.size() == 1);
    CHECK_FALSE(seen[0].trigger);  // a local write
    auto plain = e.sync();
    REQUIRE(plain);
    CHECK(plain->trigger == sync_trigger::user);
    REQUIRE(seen.size() == 2);
    CHECK(seen[1].trigger == sync_trigger::user);
    REQUIRE(e.create(Job{"b", 0, ""}));
    auto ran = e.sync(sync_trigger::after_write);
    REQUIRE(ran);
    CHECK(ran->trigger == sync_trigger::after_write);
    CHECK(seen.back().to == tether::sync_status::synced);
    CHECK(seen.back().trigger == sync_trigger::after_write);
    CHECK(e.push()->trigger == sync_trigger::user);
}

TEST_CASE("the engine tells the scheduler why it wants a sync", "[scheduler][engine]") {
    world w;
    auto e = w.device();
    std::vector<sync_trigger> wanted;
    e.on_sync_wanted([&](sync_trigger t) { wanted.push_back(t); });
    REQUIRE(e.create(Job{"a", 0, ""}));
    e.set_online(false);
    e.set_online(true);
    e.set_authenticated(false);
    e.set_authenticated(true);
    CHECK(wanted == std::vector{sync_trigger::after_write, sync_trigger::reconnect, sync_trigger::reconnect});
}

TEST_CASE("a stopped scheduler runs nothing, the destructor unhooks the engine", "[scheduler]") {
    world w;
    auto e = w.device();
    {
        tether::scheduler s{e, e.clock(), quiet()};
        s.stop();
        CHECK_FALSE(s.next_wakeup());
        CHECK(s.run_due() == 0);
    }
    REQUIRE(e.create(Job{"after the scheduler", 0, ""}));  // no dangling hook is called
    CHECK(e.sync()->pushed == 1);
}

// ---- the live feed --------------------------------------------------------------

namespace {

using device_type = decltype(std::declval<world&>().device());
static_assert(tether::live_target<device_type>);
static_assert(!tether::live_target<fake_target>);  // a target without a feed keeps its plain runs

tether::scheduler_options live_quiet() {
    auto o = quiet();
    o.run_at_start = false;
    o.live_backoff.seed = 7;
    return o;
}

std::size_t subscriptions(const world& w) { return w.server.events().subscriptions("alice", "jobs"); }

sync_trigger last_trigger(const tether::scheduler<device_type, tether::manual_clock>& s) {
    auto last = s.last_result();
    REQUIRE(last);
    REQUIRE(*last);
    return (*last)->trigger;
}

}  // namespace

TEST_CASE("a followed feed: the follow and its catch-up sync run at once, events as they arrive", "[scheduler][live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    REQUIRE(desk.create(Job{"before", 1, ""}));
    REQUIRE(desk.sync());
    tether::scheduler s{phone, phone.clock(), live_quiet()};
    CHECK(s.next_wakeup() == w.clock.now() + 15s);  // the first periodic run
    s.follow();
    CHECK(s.following());
    CHECK(s.next_wakeup() == w.clock.now());
    CHECK(s.run_due() == 2);  // the follow, then the catch-up of what came before it
    CHECK(subscriptions(w) == 1);
    CHECK(last_trigger(s) == sync_trigger::reconnect);
    CHECK(phone.list()->size() == 1);

    REQUIRE(desk.create(Job{"after", 2, ""}));
    REQUIRE(desk.sync());
    CHECK(phone.live_status().queued == 1);
    CHECK(s.next_wakeup() == w.clock.now());  // due now: the deterministic drive sees the event
    const auto requests = w.server.requests();
    CHECK(s.run_due() == 1);
    CHECK(last_trigger(s) == sync_trigger::event);
    CHECK((*s.last_result())->pulled == 1);
    CHECK(w.server.requests() == requests + 1);  // no pull; a record not held here is fetched once
    CHECK(phone.list()->size() == 2);
    CHECK(phone.live_status().applied == 1);
    CHECK(s.run_due() == 0);
}

TEST_CASE("a feed that ends is followed again after a jittered backoff on the clock", "[scheduler][live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    tether::scheduler s{phone, phone.clock(), live_quiet()};
    s.follow();
    REQUIRE(s.run_due() == 2);
    auto events = w.server.events();

    // Ends with nothing delivered: the first delay, in [base/2, base] (equal jitter).
    events.end_subscriptions("alice", "jobs");
    CHECK(s.run_due() == 1);  // the end's notice: the live pass sees it
    auto at = s.next_follow();
    REQUIRE(at);
    CHECK(*at >= w.clock.now() + 500ms);
    CHECK(*at <= w.clock.now() + 1s);
    CHECK(subscriptions(w) == 0);

    // Meanwhile the desk writes: the feed does not carry it; the catch-up sync does.
    REQUIRE(desk.create(Job{"while cut", 1, ""}));
    REQUIRE(desk.sync());
    w.clock.set(*at - 1ms);
    CHECK(s.run_due() == 0);
    w.clock.advance(1ms);
    CHECK(s.run_due() == 2);
    CHECK(subscriptions(w) == 1);
    CHECK(last_trigger(s) == sync_trigger::reconnect);
    CHECK(phone.list()->size() == 1);

    // A second end in a row: the delay grows ([base, 2 base]).
    events.end_subscriptions("alice", "jobs");
    CHECK(s.run_due() == 1);
    at = s.next_follow();
    REQUIRE(at);
    CHECK(*at >= w.clock.now() + 1s);
    CHECK(*at <= w.clock.now() + 2s);
    w.clock.set(*at);
    CHECK(s.run_due() == 2);

    // A subscription that delivers starts the backoff over.
    REQUIRE(desk.create(Job{"live", 2, ""}));
    REQUIRE(desk.sync());
    CHECK(s.run_due() == 1);
    CHECK(last_trigger(s) == sync_trigger::event);
    events.end_subscriptions("alice", "jobs");
    CHECK(s.run_due() == 1);
    at = s.next_follow();
    REQUIRE(at);
    CHECK(*at <= w.clock.now() + 1s);
}

TEST_CASE("a follow that fails is tried again after the backoff, a reconnect brings it forward", "[scheduler][live]") {
    world w;
    auto phone = w.device();
    tether::scheduler s{phone, phone.clock(), live_quiet()};
    phone.set_online(false);
    (void)s.run_due();  // the reconnect run of nothing: skipped offline
    s.follow();
    CHECK(s.run_due() == 1);  // the follow, refused offline
    CHECK(subscriptions(w) == 0);
    auto at = s.next_follow();
    REQUIRE(at);
    CHECK(*at > w.clock.now());
    phone.set_online(true);  // notifies reconnect: spread 0, so at once
    CHECK(s.next_follow() == w.clock.now());
    CHECK(s.run_due() >= 2);  // the follow, the reconnect's sync
    CHECK(subscriptions(w) == 1);
}

TEST_CASE("paused: the feed is not followed again until resume", "[scheduler][live]") {
    world w;
    auto phone = w.device();
    tether::scheduler s{phone, phone.clock(), live_quiet()};
    s.follow();
    REQUIRE(s.run_due() == 2);
    w.server.events().end_subscriptions("alice", "jobs");
    CHECK(s.run_due() == 1);
    s.pause();
    w.clock.advance(10min);
    CHECK(s.next_wakeup() == std::nullopt);
    CHECK(s.run_due() == 0);
    CHECK(subscriptions(w) == 0);
    s.resume();
    CHECK(s.run_due() >= 2);  // the follow (due long ago), its catch-up, the resume's run
    CHECK(subscriptions(w) == 1);
}

TEST_CASE("unfollow stops the feed and its re-follows, the destructor unfollows", "[scheduler][live]") {
    world w;
    auto phone = w.device();
    {
        tether::scheduler s{phone, phone.clock(), live_quiet()};
        s.follow();
        REQUIRE(s.run_due() == 2);
        s.unfollow();
        CHECK_FALSE(s.following());
        CHECK(subscriptions(w) == 0);
        CHECK(s.next_follow() == std::nullopt);
        w.clock.advance(10min);
        CHECK(s.run_due() == 1);  // the periodic run alone
        CHECK(last_trigger(s) == sync_trigger::scheduled);
        CHECK(subscriptions(w) == 0);
        s.follow();
        REQUIRE(s.run_due() == 2);
        CHECK(subscriptions(w) == 1);
    }
    CHECK(subscriptions(w) == 0);
}

TEST_CASE("without periodic runs only triggers run, a feed's events still come", "[scheduler][live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    auto o = live_quiet();
    o.periodic = false;
    tether::scheduler s{phone, phone.clock(), o};
    s.follow();
    REQUIRE(s.run_due() == 2);
    CHECK(s.next_wakeup() == std::nullopt);  // nothing periodic
    w.clock.advance(1h);
    CHECK(s.run_due() == 0);
    REQUIRE(desk.create(Job{"live", 1, ""}));
    REQUIRE(desk.sync());
    CHECK(s.run_due() == 1);
    CHECK(phone.list()->size() == 1);
    REQUIRE(phone.create(Job{"mine", 2, ""}));  // after_write still runs
    CHECK(s.run_due() == 1);
    CHECK(last_trigger(s) == sync_trigger::after_write);
    CHECK(s.next_wakeup() == std::nullopt);
}

TEST_CASE("a sync's pull settles the events queued before it: a stale create does not come back", "[scheduler][live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    tether::scheduler s{phone, phone.clock(), live_quiet()};
    s.follow();
    REQUIRE(s.run_due() == 2);
    auto job = desk.create(Job{"short-lived", 1, ""});
    REQUIRE(job);
    REQUIRE(desk.sync());                 // the create's event waits in the phone's queue
    w.server.events().drop_next(1);       // the deletion's event is lost
    REQUIRE(desk.remove(job->id));
    REQUIRE(desk.sync());
    REQUIRE(phone.live_status().queued == 1);
    s.notify(sync_trigger::user);         // runs before the event run (precedence)
    CHECK(s.run_due() == 2);
    CHECK(phone.list()->empty());         // the pull saw it deleted; the stale create stays settled
    CHECK(phone.live_status().covered == 1);
    CHECK(phone.live_status().queued == 0);
}

TEST_CASE("a clock set back does not stall the scheduler's waits", "[scheduler]") {
    tether::manual_clock clock;
    fake_target t;
    tether::scheduler s{t, clock, quiet()};
    REQUIRE(s.run_due() == 1);
    CHECK(s.next_wakeup() == clock.now() + 15s);
    clock.advance(-1h);  // set back: the next run is not an hour and 15 s away
    CHECK(s.next_wakeup() == clock.now());
    CHECK(s.run_due() == 1);
    CHECK(s.next_wakeup() == clock.now() + 15s);  // measured from the new time
    CHECK(s.run_due() == 0);
}
