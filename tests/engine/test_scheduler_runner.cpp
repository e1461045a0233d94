// The scheduler's runner thread (std::thread: also built under TSan). Time
// still comes from a manual clock; the test waits, bounded, on what the runner
// does (a condition), never sleeps for timing.
#include "support/entities.hpp"

#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

using tether_test::Job;
using namespace std::chrono_literals;
using tether::sync_trigger;

namespace {

/// What the runner did, as the test waits for it.
struct observed {
    std::mutex m;
    std::condition_variable cv;
    std::vector<tether::transition> synced;

    void add(const tether::transition& t) {
        if (t.to != tether::sync_status::synced) return;
        std::lock_guard lock{m};
        synced.push_back(t);
        cv.notify_all();
    }
    bool wait_for_count(std::size_t n) {
        std::unique_lock lock{m};
        return cv.wait_for(lock, 30s, [&] { return synced.size() >= n; });
    }
};

/// A target whose sync blocks until released, to stop it mid-run.
struct gated_target {
    std::mutex m;
    std::condition_variable cv;
    int entered = 0;
    int finished = 0;
    bool open = false;

    tether::result<tether::sync_report> sync(sync_trigger why) {
        std::unique_lock lock{m};
        ++entered;
        cv.notify_all();
        cv.wait(lock, [&] { return open; });
        ++finished;
        tether::sync_report r;
        r.trigger = why;
        return r;
    }
};

}  // namespace

TEST_CASE("the runner thread syncs a write soon after it, and stops cleanly", "[scheduler][runner]") {
    tether::manual_clock clock;
    tether::loopback_server server{[c = clock] { return c.now(); }};
    auto e = tether::make_engine<Job>(tether::memory_storage{}, tether::loopback_transport{server, "alice"}, clock);
    observed seen;
    e.on_transition([&](const tether::transition& t) { seen.add(t); });
    tether::scheduler_options o;
    o.run_at_start = false;
    tether::scheduler s{e, e.clock(), o};
    s.start();
    REQUIRE(e.create(Job{"first", 0, ""}));
    REQUIRE(seen.wait_for_count(1));
    REQUIRE(e.create(Job{"second", 0, ""}));
    REQUIRE(seen.wait_for_count(2));
    s.stop();
    {
        std::lock_guard lock{seen.m};
        for (const auto& t : seen.synced) CHECK(t.trigger == sync_trigger::after_write);
    }
    CHECK(server.records("alice", "jobs").size() == 2);
    s.stop();  // twice is fine
}

TEST_CASE("stop waits for the running sync to end", "[scheduler][runner]") {
    tether::manual_clock clock;
    gated_target t;
    tether::scheduler s{t, clock};  // runs at once
    s.start();
    {
        std::unique_lock lock{t.m};
        REQUIRE(t.cv.wait_for(lock, 30s, [&] { return t.entered == 1; }));
    }
    std::thread opener{[&] {
        std::lock_guard lock{t.m};
        t.open = true;
        t.cv.notify_all();
    }};
    s.stop();  // returns only once that run has finished
    {
        std::lock_guard lock{t.m};
        CHECK(t.finished == t.entered);
    }
    opener.join();
    CHECK(s.run_due() == 0);  // stopped: nothing more
}

TEST_CASE("writes from several threads while the runner syncs are all pushed", "[scheduler][runner]") {
    tether::manual_clock clock;
    tether::loopback_server server{[c = clock] { return c.now(); }};
    auto e = tether::make_engine<Job>(tether::memory_storage{}, tether::loopback_transport{server, "alice"}, clock);
    observed seen;
    e.on_transition([&](const tether::transition& t) { seen.add(t); });
    tether::scheduler s{e, e.clock()};
    s.start();
    constexpr int writers = 3;
    constexpr int each = 20;
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&e, w] {
            for (int i = 0; i < each; ++i) (void)e.create(Job{"w" + std::to_string(w) + "-" + std::to_string(i), i, ""});
        });
    }
    for (auto& th : threads) th.join();
    REQUIRE(seen.wait_for_count(writers * each));  // no write's trigger was lost
    s.stop();
    CHECK(server.records("alice", "jobs").size() == writers * each);
}
