// tether::coordinator: several entity types synced in one pass, pushes across
// types by priority, per-type minimum pull intervals, one state stream and
// health across types. Manual clock; the loopback server behind a transport
// that notes every request.
#include "support/entities.hpp"

#include <tether/engine/coordinator.hpp>
#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using tether::engine_state;
using tether::priority;
using tether_test::Job;
using tether_test::Note;

namespace {

// One request as the server saw it: "push jobs critical,critical" or "pull notes".
struct request_log {
    std::vector<std::string> lines;
    std::function<void()> during_push;  // runs inside the next push, once
};

struct noting_transport {
    using policy_kind = tether::transport_tag;
    tether::loopback_transport inner;
    std::shared_ptr<request_log> log;

    tether::result<std::vector<tether::push_outcome>> push(std::string_view collection,
                                                           std::span<const tether::push_op> ops) {
        std::string line = "push " + std::string{collection};
        for (const auto& op : ops) line += " " + op.value.value("title", op.value.value("text", std::string{}));
        log->lines.push_back(line);
        if (auto f = std::exchange(log->during_push, {})) f();
        return inner.push(collection, ops);
    }
    tether::result<tether::pull_page> pull(std::string_view collection, std::string_view cursor, std::size_t limit) {
        log->lines.push_back("pull " + std::string{collection});
        return inner.pull(collection, cursor, limit);
    }
    tether::result<tether::server_record> fetch(std::string_view collection, std::string_view server_id) {
        return inner.fetch(collection, server_id);
    }
    [[nodiscard]] std::size_t max_batch() const { return inner.max_batch(); }
    [[nodiscard]] bool has_change_feed() const { return inner.has_change_feed(); }
};

struct world {
    tether::manual_clock clock;
    tether::loopback_server server{[c = clock] { return c.now(); }};
    std::shared_ptr<request_log> log = std::make_shared<request_log>();

    noting_transport transport() { return noting_transport{tether::loopback_transport{server, "alice"}, log}; }
    auto jobs() { return tether::make_engine<Job>(tether::memory_storage{}, transport(), clock); }
    auto notes() { return tether::make_engine<Note>(tether::memory_storage{}, transport(), clock); }
    std::vector<std::string> take() { return std::exchange(log->lines, {}); }
};

}  // namespace

TEST_CASE("a coordinator pushes every type's critical records first, then each lower level", "[coordinator]") {
    world w;
    auto jobs = w.jobs();
    auto notes = w.notes();
    REQUIRE(jobs.create(Job{"job-low", 0, ""}, priority::low));
    REQUIRE(notes.create(Note{"note-critical", 0}, priority::critical));
    REQUIRE(jobs.create(Job{"job-critical", 0, ""}, priority::critical));
    REQUIRE(notes.create(Note{"note-medium", 0}, priority::medium));
    REQUIRE(jobs.create(Job{"job-high", 0, ""}, priority::high));
    tether::coordinator all{tether::coordinate(jobs), tether::coordinate(notes)};

    auto rep = all.run();
    REQUIRE(rep);
    CHECK_FALSE(rep->skipped);
    CHECK_FALSE(rep->total.failure);
    CHECK(w.take() == std::vector<std::string>{"push jobs job-critical", "push notes note-critical",
                                               "push jobs job-high", "push notes note-medium",
                                               "push jobs job-low", "pull jobs", "pull notes"});
    CHECK(rep->total.pushed == 5);
    REQUIRE(rep->types.size() == 2);
    CHECK(rep->types[0].collection == "jobs");
    CHECK(rep->types[0].report.pushed == 3);
    CHECK(rep->types[1].collection == "notes");
    CHECK(rep->types[1].report.pushed == 2);
    CHECK(rep->types[0].pulled);
    CHECK(rep->types[1].pulled);
}

TEST_CASE("an engine pushes only the records at or above a priority when asked", "[coordinator]") {
    world w;
    auto jobs = w.jobs();
    REQUIRE(jobs.create(Job{"low", 0, ""}, priority::low));
    REQUIRE(jobs.create(Job{"high", 0, ""}, priority::high));
    auto first = jobs.push(priority::high);
    REQUIRE(first);
    CHECK(first->pushed == 1);
    CHECK(w.take() == std::vector<std::string>{"push jobs high"});
    CHECK(jobs.health()->pending == 1);
    REQUIRE(jobs.push());  // every priority
    CHECK(w.take() == std::vector<std::string>{"push jobs low"});
}

TEST_CASE("each type pulls no more often than its minimum pull interval", "[coordinator]") {
    world w;
    auto jobs = w.jobs();
    auto notes = w.notes();
    tether::coordinator all{tether::coordinate(jobs, {.min_pull_interval = 15min}), tether::coordinate(notes)};

    REQUIRE(all.run());
    CHECK(w.take() == std::vector<std::string>{"pull jobs", "pull notes"});
    CHECK(all.last_pull<0>() == w.clock.now());

    w.clock.advance(1min);
    auto second = all.run();
    REQUIRE(second);
    CHECK(w.take() == std::vector<std::string>{"pull notes"});
    CHECK_FALSE(second->types[0].pulled);
    CHECK(second->types[1].pulled);

    // A local change of a type held back still goes up at once.
    REQUIRE(jobs.create(Job{"now", 0, ""}));
    REQUIRE(all.run());
    CHECK(w.take() == std::vector<std::string>{"push jobs now", "pull notes"});

    w.clock.advance(14min);
    REQUIRE(all.run());
    CHECK(w.take() == std::vector<std::string>{"pull jobs", "pull notes"});
}

TEST_CASE("a failed pull does not count as the type's last pull", "[coordinator]") {
    world w;
    auto jobs = w.jobs();
    tether::coordinator all{tether::coordinate(jobs, {.min_pull_interval = 15min})};
    w.server.fail_next(1, tether::loopback_server::transient_error());
    auto failed = all.run();
    REQUIRE(failed);
    CHECK(failed->total.failure);
    CHECK_FALSE(all.last_pull<0>());
    w.take();
    w.clock.advance(10min);  // past the engine's pull backoff, within the interval
    REQUIRE(all.run());
    CHECK(w.take() == std::vector<std::string>{"pull jobs"});
    CHECK(all.last_pull<0>() == w.clock.now());
}

TEST_CASE("a transport failure ends the pass at the step that met it", "[coordinator]") {
    world w;
    auto jobs = w.jobs();
    auto notes = w.notes();
    REQUIRE(jobs.create(Job{"job", 0, ""}, priority::critical));
    REQUIRE(notes.create(Note{"note", 0}, priority::critical));
    tether::coordinator all{tether::coordinate(jobs), tether::coordinate(notes)};
    w.server.fail_next(1, tether::loopback_server::transient_error());
    auto rep = all.run();
    REQUIRE(rep);
    REQUIRE(rep->total.failure);
    CHECK(rep->total.failure->code == tether::errc::transient);
    CHECK(w.take() == std::vector<std::string>{"push jobs job"});  // notes were not sent to a failing server
    CHECK(rep->types[0].report.retrying == 1);
    CHECK(notes.health()->pending == 1);
}

TEST_CASE("a sync called during a pass is not lost: the pass goes round once more", "[coordinator]") {
    world w;
    auto jobs = w.jobs();
    auto notes = w.notes();
    REQUIRE(jobs.create(Job{"first", 0, ""}));
    tether::coordinator all{tether::coordinate(jobs), tether::coordinate(notes)};
    std::optional<tether::result<tether::coordinator_report>> nested;
    w.log->during_push = [&] {
        REQUIRE(notes.create(Note{"written during the push", 0}));
        nested = all.run();
    };
    auto rep = all.run();
    REQUIRE(rep);
    REQUIRE(nested);
    REQUIRE(*nested);
    CHECK((*nested)->skipped == tether::skip_reason::already_running);
    CHECK(rep->total.pushed == 2);  // the second round took the note up
    CHECK(notes.health()->pending == 0);
}

TEST_CASE("one state across types: syncing, then unauthorized, offline, error, idle", "[coordinator]") {
    world w;
    auto jobs = w.jobs();
    auto notes = w.notes();
    tether::coordinator all{tether::coordinate(jobs), tether::coordinate(notes)};
    std::vector<engine_state> heard;
    auto sub = all.watch_state([&](engine_state s) { heard.push_back(s); });
    CHECK(all.state() == engine_state::idle);

    notes.set_online(false);
    CHECK(all.state() == engine_state::offline);
    jobs.set_authenticated(false);
    CHECK(all.state() == engine_state::unauthorized);
    jobs.set_authenticated(true);
    notes.set_online(true);
    CHECK(all.state() == engine_state::idle);
    CHECK(heard == std::vector<engine_state>{engine_state::offline, engine_state::unauthorized,
                                             engine_state::offline, engine_state::idle});

    heard.clear();
    REQUIRE(jobs.create(Job{"a", 0, ""}));
    REQUIRE(notes.create(Note{"b", 0}));
    REQUIRE(all.run());
    // Syncing for the whole pass (not between the engines' steps), then idle.
    CHECK(heard == std::vector<engine_state>{engine_state::syncing, engine_state::idle});

    heard.clear();
    w.server.fail_next(1, tether::loopback_server::transient_error());
    REQUIRE(all.run());
    CHECK(all.state() == engine_state::error);
    CHECK(heard.back() == engine_state::error);
}

TEST_CASE("health across types: per type and in total", "[coordinator]") {
    world w;
    auto jobs = w.jobs();
    auto notes = w.notes();
    tether::coordinator all{tether::coordinate(jobs), tether::coordinate(notes)};
    REQUIRE(jobs.create(Job{"a", 0, ""}));
    w.clock.advance(1min);
    REQUIRE(notes.create(Note{"b", 0}));
    REQUIRE(notes.create(Note{"c", 0}));
    w.clock.advance(1min);

    auto h = all.health();
    REQUIRE(h);
    REQUIRE(h->types.size() == 2);
    CHECK(h->types[0].collection == "jobs");
    CHECK(h->types[0].health.pending == 1);
    CHECK(h->types[1].health.pending == 2);
    CHECK(h->total.pending == 3);
    CHECK(h->total.oldest_pending_age == 2min);  // the oldest of all: the job
    CHECK(h->total.state == engine_state::idle);

    REQUIRE(all.run());
    h = all.health();
    REQUIRE(h);
    CHECK(h->total.pending == 0);
    CHECK(h->total.synced == 3);
    CHECK_FALSE(h->total.oldest_pending_age);
}

TEST_CASE("a coordinator whose engines are all offline skips the pass", "[coordinator]") {
    world w;
    auto jobs = w.jobs();
    REQUIRE(jobs.create(Job{"a", 0, ""}));
    tether::coordinator all{tether::coordinate(jobs)};
    jobs.set_online(false);
    auto rep = all.run();
    REQUIRE(rep);
    CHECK(rep->skipped == tether::skip_reason::offline);
    CHECK(w.take().empty());
}

TEST_CASE("a scheduler drives a coordinator: a write to any type runs one pass, with its trigger", "[coordinator]") {
    world w;
    auto jobs = w.jobs();
    auto notes = w.notes();
    tether::coordinator all{tether::coordinate(jobs), tether::coordinate(notes)};
    static_assert(tether::sync_target<decltype(all)>);
    static_assert(tether::retry_aware_target<decltype(all)>);
    static_assert(tether::announcing_target<decltype(all)>);
    std::vector<tether::sync_trigger> why;
    auto watch = [&why](const tether::transition& t) {
        if (t.trigger) why.push_back(*t.trigger);
    };
    jobs.on_transition(watch);
    notes.on_transition(watch);
    tether::scheduler sched{all, w.clock, tether::scheduler_options{.run_at_start = false}};

    REQUIRE(notes.create(Note{"n", 0}));  // announced by the note engine
    CHECK(sched.next_wakeup() == w.clock.now());
    CHECK(sched.run_due() == 1);
    CHECK(w.take() == std::vector<std::string>{"push notes n", "pull jobs", "pull notes"});
    CHECK(why == std::vector<tether::sync_trigger>{tether::sync_trigger::after_write});
    REQUIRE(sched.last_result());
    REQUIRE(*sched.last_result());
    CHECK((*sched.last_result())->trigger == tether::sync_trigger::after_write);
    CHECK((*sched.last_result())->pushed == 1);
    CHECK(sched.run_due() == 0);  // nothing else due until the period
}
