// Letting sync run itself: a scheduler syncs after writes, every period, on
// reconnect and when a retry falls due. First driven by hand under a manual
// clock (as tests do), then by its runner thread (as apps do).
#include <tether/tether.hpp>

#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <string>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

using namespace std::chrono_literals;

int main() {
    tether::manual_clock clock;
    tether::loopback_server server{[clock] { return clock.now(); }};
    auto jobs = tether::make_engine<Job>(tether::loopback_transport{server, "alice"}, clock);
    jobs.on_transition([](const tether::transition& t) {
        if (t.trigger) std::cout << t.cause << " (" << *t.trigger << ")\n";
    });

    // ---- deterministic: next_wakeup() and run_due() ------------------------------
    {
        tether::scheduler_options o;
        o.down_backoff.seed = 1;  // fixed seeds: the same jitter every run
        o.spread_seed = 1;
        tether::scheduler sched{jobs, jobs.clock(), o};  // hooks itself to the engine
        sched.run_due();                               // the first periodic run comes at once
        (void)jobs.create(Job{"Standup memo", 0});      // the write returns at once...
        sched.run_due();                               // ...and the run it asked for pushes it (after_write)

        jobs.set_online(false);  // the network is gone
        (void)jobs.create(Job{"Written offline", 0});
        sched.run_due();         // finds the engine offline: the scheduler backs off
        std::cout << "down: " << std::boolalpha << sched.down() << ", next run in "
                  << std::chrono::duration_cast<std::chrono::seconds>(*sched.next_wakeup() - clock.now()).count()
                  << " s\n";
        jobs.set_online(true);                       // tells the scheduler: reconnect
        clock.advance(3s);                            // the reconnect spread (default 3 s) has passed
        sched.run_due();                              // pushes what was written offline (reconnect)

        sched.pause();                                // the app went to the background
        (void)jobs.create(Job{"Queued in the background", 0});
        clock.advance(1h);
        sched.run_due();                              // nothing runs while paused
        sched.resume();                               // back: one run at once
        sched.run_due();
    }
    if (jobs.health()->pending != 0) return 1;

    // ---- an app: the runner thread --------------------------------------------------
    std::mutex m;
    std::condition_variable cv;
    bool synced = false;
    auto watch = jobs.watch([&](const tether::change<Job>& c) {
        if (c.current && c.current->status == tether::sync_status::synced && c.current->value.title == "From the app") {
            std::lock_guard lock{m};
            synced = true;
            cv.notify_all();
        }
    });
    tether::scheduler sched{jobs, jobs.clock(), tether::scheduler_options{.period = 30s}};
    sched.start();                            // sleeps until the next run, woken by every write
    (void)jobs.create(Job{"From the app", 0});
    std::unique_lock lock{m};
    const bool ok = cv.wait_for(lock, 30s, [&] { return synced; });
    lock.unlock();
    sched.stop();                             // waits for a running sync, then joins the thread
    std::cout << server.records("alice", "jobs").size() << " jobs on the server\n";
    return ok ? 0 : 1;
}
