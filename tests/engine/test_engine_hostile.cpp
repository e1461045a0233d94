// The engine against servers less polite than the loopback model: servers that
// fill fields in, omit local ids, send broken pages, refuse whole batches, or go
// back in time (restores: test_engine_restore.cpp). Each case is a regression test
// of a break found that way.
#include "engine/hostile_world.hpp"
#include "support/entities.hpp"

#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <string>
#include <utility>
#include <vector>

using tether_test::Job;
using namespace std::chrono_literals;
using tether::errc;
using tether::sync_status;
using hostile_test::local_count;
using hostile_test::reload;
using hostile_test::scripted_transport;
using hostile_test::world;

// ---- break 3: field_merge and the fields pushed ----------------------------------

TEST_CASE("after an applied push, dirty holds only the fields changed since the pushed snapshot", "[sync][hostile]") {
    world w;
    auto dev = w.plain_device(tether::field_merge{});
    auto other = w.plain_device();
    auto r = dev.create(Job{"memo", 0, "/a"}).value();
    REQUIRE(dev.sync());
    REQUIRE(other.sync());
    REQUIRE(dev.update(r.id, [](Job& j) { j.title = "mine"; }));
    // While the title goes up, the device edits progress.
    w.server.set_push_hook([&] {
        w.server.set_push_hook({});
        REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 7; }));
        // The rerun finds the network gone, so the state after the outcome shows.
        w.server.fail_next(1, tether::make_error(errc::offline, "no network"));
    });
    REQUIRE(dev.push());
    const auto mid = reload(dev, r.id);
    CHECK(mid.status == sync_status::pending);
    CHECK(mid.dirty == tether::field_set{"progress"});
    // Another device sets the title later; the device's progress push conflicts, and the
    // merge must not send its stale title over the newer one.
    REQUIRE(other.sync());  // it sees "mine"...
    auto theirs = other.list().value().front();
    REQUIRE(theirs.value.title == "mine");
    REQUIRE(other.update(theirs.id, [](Job& j) { j.title = "newer"; }));  // ...and sets a newer title
    REQUIRE(other.sync());
    REQUIRE(dev.sync());
    REQUIRE(dev.sync());
    const auto srv = w.on_server();
    REQUIRE(srv.size() == 1);
    CHECK(srv[0].value["title"] == "newer");
    CHECK(srv[0].value["progress"] == 7);
    CHECK(reload(dev, r.id).value == Job{"newer", 7, "/a"});
}

// ---- break 4: values the server fills in on create ----------------------------

namespace {
/// A server that fills in a field on create (the stored and answered value differ from what was sent).
void server_fills_audio_path(std::vector<tether::push_op>& ops) {
    for (auto& op : ops)
        if (op.kind == tether::op_kind::create) op.value["audio_path"] = "/server/owned.m4a";
}
}  // namespace

TEST_CASE("a fresh create's answer is taken as it is: fields the server fills in stay", "[sync][hostile]") {
    world w;
    auto t = w.transport();
    t.s->before_push = server_fills_audio_path;
    auto dev = w.device(t);
    auto r = dev.create(Job{"memo", 0, ""}).value();
    auto rep = dev.sync();
    REQUIRE(rep);
    CHECK(rep->pushed == 1);
    auto after = reload(dev, r.id);
    CHECK(after.status == sync_status::synced);
    CHECK(after.value == Job{"memo", 0, "/server/owned.m4a"});
    REQUIRE(dev.sync());
    CHECK(w.on_server().at(0).value["audio_path"] == "/server/owned.m4a");
    CHECK(t.s->pushes == 1);  // no update went up to revert the server's field
}

TEST_CASE("an edit made during a create's push goes up over the server's filled-in answer", "[sync][hostile]") {
    world w;
    auto t = w.transport();
    t.s->before_push = server_fills_audio_path;
    auto dev = w.device(t);
    auto r = dev.create(Job{"memo", 0, ""}).value();
    w.server.set_push_hook([&] {
        w.server.set_push_hook({});
        REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 30; }));
    });
    REQUIRE(dev.sync());
    REQUIRE(dev.sync());
    const auto srv = w.on_server().at(0);
    CHECK(srv.value["audio_path"] == "/server/owned.m4a");
    CHECK(srv.value["progress"] == 30);
    auto after = reload(dev, r.id);
    CHECK(after.status == sync_status::synced);
    CHECK(after.value == Job{"memo", 30, "/server/owned.m4a"});
}

TEST_CASE("a create answered without its value (stored as sent) keeps the local value and later edits",
          "[sync][hostile]") {
    world w;
    auto t = w.transport();
    t.s->after_push = [first = true](std::vector<tether::push_outcome>& outs) mutable {
        if (std::exchange(first, false)) outs.at(0).record.value = nullptr;  // the create's: the short form
    };
    auto dev = w.device(t);
    auto r = dev.create(Job{"memo", 0, "/a.m4a"}).value();
    SECTION("nothing changed meanwhile: synced at the server's version") {
        auto rep = dev.push();
        REQUIRE(rep);
        CHECK(rep->pushed == 1);
        auto after = reload(dev, r.id);
        CHECK(after.status == sync_status::synced);
        CHECK(after.value == Job{"memo", 0, "/a.m4a"});
        CHECK(after.server_id == w.on_server().at(0).server_id);
        CHECK(after.version == w.on_server().at(0).version);
        CHECK(after.dirty.empty());
    }
    SECTION("an edit made while the create was in flight goes up next") {
        w.server.set_push_hook([&] {
            w.server.set_push_hook({});
            REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 30; }));
        });
        auto rep = dev.push();  // the create, then (a second round) the edit
        REQUIRE(rep);
        CHECK(rep->pushed == 2);
        CHECK(w.on_server().at(0).value["progress"] == 30);
        auto after = reload(dev, r.id);
        CHECK(after.status == sync_status::synced);
        CHECK(after.value == Job{"memo", 30, "/a.m4a"});
    }
}

TEST_CASE("a replayed create is the base on which later edits go up", "[sync][hostile]") {
    world w;
    auto t = w.transport();
    std::vector<bool> replayed;
    t.s->after_push = [&](std::vector<tether::push_outcome>& out) {
        for (const auto& o : out) replayed.push_back(o.replayed);
    };
    auto dev = w.device(t);
    auto r = dev.create(Job{"memo", 0, "/a"}).value();
    w.server.drop_next_responses(1);
    REQUIRE(dev.push());
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 60; }));
    w.clock.advance(1h);
    REQUIRE(dev.sync());
    REQUIRE(dev.sync());
    CHECK(replayed == std::vector<bool>{true, false});  // the replay, then the update
    const auto srv = w.on_server();
    REQUIRE(srv.size() == 1);
    CHECK(srv[0].value["progress"] == 60);
    CHECK(reload(dev, r.id).status == sync_status::synced);
}

TEST_CASE("a replayed create keeps what the server filled in from a field written before the create went out",
          "[sync][hostile]") {
    world w;
    auto t = w.transport();
    t.s->before_push = server_fills_audio_path;
    auto dev = w.device(t);
    auto r = dev.create(Job{"memo", 0, ""}).value();
    REQUIRE(dev.update(r.id, [](Job& j) { j.audio_path = "/device/a.m4a"; }));  // before the create goes out
    w.server.drop_next_responses(1);  // the create applies; its answer is lost
    REQUIRE(dev.push());
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 60; }));
    w.clock.advance(1h);
    REQUIRE(dev.sync());
    REQUIRE(dev.sync());
    const auto srv = w.on_server();
    REQUIRE(srv.size() == 1);
    CHECK(srv[0].value["audio_path"] == "/server/owned.m4a");  // not reverted to the device's
    CHECK(srv[0].value["progress"] == 60);                      // the edit made since went up
    auto after = reload(dev, r.id);
    CHECK(after.status == sync_status::synced);
    CHECK(after.value == Job{"memo", 60, "/server/owned.m4a"});
}

TEST_CASE("a server that never says replayed loses no edit made after a lost create answer", "[sync][hostile]") {
    world w;
    auto t = w.transport();
    t.s->after_push = [](std::vector<tether::push_outcome>& out) {
        for (auto& o : out) o.replayed = false;  // an older server: the flag is never set
    };
    auto dev = w.device(t);
    auto r = dev.create(Job{"memo", 0, "/a"}).value();
    w.server.drop_next_responses(1);
    REQUIRE(dev.push());
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 150; }));
    w.clock.advance(1h);
    REQUIRE(dev.sync());
    REQUIRE(dev.sync());
    CHECK(w.on_server().at(0).value["progress"] == 150);
    CHECK(reload(dev, r.id).value.progress == 150);
    CHECK(reload(dev, r.id).status == sync_status::synced);
}

// ---- break 5: batches refused whole --------------------------------------------

TEST_CASE("a batch refused as too large is split, only a record too large alone fails", "[sync][hostile]") {
    world w;
    auto t = w.transport();
    t.s->refuse = [](std::span<const tether::push_op> ops) -> tether::result<std::vector<tether::push_outcome>> {
        for (const auto& op : ops) {
            if (op.value.is_object() && op.value.value("audio_path", std::string{}).size() > 100) {
                return tether::unexpected{tether::error{errc::too_large, "payload too large", 413, std::nullopt}};
            }
        }
        return std::vector<tether::push_outcome>{};
    };
    auto dev = w.device(t);
    std::vector<tether::local_id> ids;
    for (int i = 0; i < 5; ++i) ids.push_back(dev.create(Job{"j" + std::to_string(i), i, "/a"}).value().id);
    const auto big = dev.create(Job{"big", 0, std::string(200, 'x')}).value().id;
    auto rep = dev.push();
    REQUIRE(rep);
    CHECK(rep->pushed == 5);
    CHECK(rep->failed == 1);
    for (const auto& id : ids) CHECK(reload(dev, id).status == sync_status::synced);
    auto b = reload(dev, big);
    CHECK(b.status == sync_status::failed);
    CHECK(b.last_error->code == errc::too_large);
    CHECK(w.on_server().size() == 5);
}

TEST_CASE("a permanent whole-batch refusal counts an attempt on each record and backs off", "[sync][hostile]") {
    world w;
    auto dev = w.plain_device();
    auto a = dev.create(Job{"a", 0, ""}).value();
    auto b = dev.create(Job{"b", 0, ""}).value();
    for (int code : {400, 403}) {
        INFO("HTTP " << code);
        w.server.fail_next(1, tether::error{code == 400 ? errc::protocol : errc::rejected, "refused", code,
                                            std::nullopt});
        auto rep = dev.push();
        REQUIRE(rep);
        CHECK(rep->failed == 0);
        CHECK(rep->retrying == 2);
        for (const auto& id : {a.id, b.id}) {
            auto cur = reload(dev, id);
            CHECK(cur.status == sync_status::error);
            CHECK(cur.next_attempt_at > w.clock.now());
        }
        w.clock.advance(1h);
    }
    CHECK(reload(dev, a.id).attempts == 2);
    REQUIRE(dev.push());
    CHECK(reload(dev, a.id).status == sync_status::synced);
    CHECK(reload(dev, b.id).status == sync_status::synced);
}

// ---- break 6: bad pages ---------------------------------------------------------

TEST_CASE("a pulled item that cannot be applied is skipped and reported, the page and cursor commit", "[sync][hostile]") {
    world w;
    auto writer = w.plain_device();
    for (int i = 0; i < 3; ++i) REQUIRE(writer.create(Job{"w" + std::to_string(i), i, ""}));
    REQUIRE(writer.sync());
    auto t = w.transport();
    bool corrupt = true;
    t.s->after_pull = [&](tether::pull_page& page) {
        if (!corrupt || page.records.empty()) return;
        corrupt = false;
        auto nil = page.records.front();
        nil.server_id = "s-nil";
        nil.id = tether::local_id{};  // nil local id
        auto empty = page.records.front();
        empty.server_id.clear();
        empty.id.reset();
        auto dup = page.records.back();  // the same server id twice
        page.records.insert(page.records.begin(), nil);
        page.records.push_back(empty);
        page.records.push_back(dup);
    };
    std::vector<std::string> warnings;
    auto dev = w.device(t);
    dev.on_log([&](tether::log_level l, std::string_view m) {
        if (l >= tether::log_level::warning) warnings.emplace_back(m);
    });
    auto rep = dev.pull();
    REQUIRE(rep);
    CHECK_FALSE(rep->failure);
    CHECK(rep->unapplied == 3);
    CHECK(local_count(dev) == 3);
    CHECK(warnings.size() >= 3);
    // The cursor moved past the page: nothing comes again.
    auto again = dev.pull();
    REQUIRE(again);
    CHECK(again->pulled == 0);
    CHECK(again->unapplied == 0);
}

TEST_CASE("tombstones match by server id and never erase a record held under another", "[sync][hostile]") {
    world w;
    auto writer = w.plain_device();
    auto mine = writer.create(Job{"mine", 0, ""}).value();
    REQUIRE(writer.sync());
    auto t = w.transport();
    auto dev = w.device(t);
    REQUIRE(dev.pull());
    const auto held = dev.list().value().at(0);
    // A tombstone naming the record's local id but another server id.
    t.s->after_pull = [&](tether::pull_page& page) {
        page.tombstones.push_back(tether::tombstone{"s-other", mine.id, 99});
    };
    REQUIRE(dev.pull());
    CHECK(dev.get(held.id));
    // A tombstone of the right server id but older than the local version: ignored.
    t.s->after_pull = [&](tether::pull_page& page) {
        page.tombstones.push_back(tether::tombstone{*held.server_id, mine.id, held.version - 1});
    };
    REQUIRE(dev.pull());
    CHECK(dev.get(held.id));
    // The real deletion still applies.
    t.s->after_pull = {};
    REQUIRE(w.server.erase("alice", "jobs", *held.server_id));
    REQUIRE(dev.pull());
    CHECK(dev.get(held.id).error().code == errc::not_found);
}

// ---- break 8: id collisions -----------------------------------------------------

TEST_CASE("create refuses an id already held, and a seeded restart does not reuse ids", "[local][hostile]") {
    tether::manual_clock clock;
    tether::memory_storage storage;
    tether::local_id first;
    {
        auto dev = tether::make_engine<Job>(storage, clock, tether::engine_options{.id_seed = 7});
        first = dev.create(Job{"first", 1, ""}).value().id;
    }
    auto again = tether::make_engine<Job>(storage, clock, tether::engine_options{.id_seed = 7});
    auto second = again.create(Job{"second", 2, ""});
    REQUIRE(second);
    CHECK(second->id != first);
    CHECK(reload(again, first).value == Job{"first", 1, ""});
    CHECK(local_count(again) == 2);
}

// ---- break 2: a server that does not echo local ids ------------------------------

TEST_CASE("a pull without local ids never duplicates a create whose answer was lost", "[sync][hostile]") {
    world w;
    auto t = w.transport();
    t.s->after_pull = [](tether::pull_page& page) {
        for (auto& r : page.records) r.id.reset();
        for (auto& tb : page.tombstones) tb.id.reset();
    };
    auto dev = w.device(t);
    auto r = dev.create(Job{"memo", 0, "/a"}).value();
    auto other = dev.create(Job{"other", 0, "/b"}).value();
    w.server.drop_next_responses(1);
    REQUIRE(dev.push());  // applied on the server, answer lost
    REQUIRE(dev.pull());  // brings both back without local ids
    CHECK(local_count(dev) == 2);
    w.clock.advance(1h);
    auto rep = dev.sync();  // the retried creates answer with server ids
    REQUIRE(rep);
    CHECK_FALSE(rep->failure);
    REQUIRE(dev.sync());
    CHECK(local_count(dev) == 2);
    for (const auto& id : {r.id, other.id}) CHECK(reload(dev, id).status == sync_status::synced);
    CHECK(w.on_server().size() == 2);
}

TEST_CASE("a pulled stranger waits while a create is in doubt, whoever changed it last", "[sync][hostile]") {
    world w;
    auto t = w.transport();
    t.s->after_pull = [](tether::pull_page& page) {
        for (auto& r : page.records) {
            r.id.reset();
            r.origin.clear();  // nothing says it is ours
        }
    };
    auto dev = w.device(t);
    auto r = dev.create(Job{"memo", 0, "/a"}).value();
    auto ok = dev.create(Job{"fine", 0, "/b"}).value();
    w.server.drop_next_responses(1);
    REQUIRE(dev.push());
    REQUIRE(dev.pull());  // the server's copies come in as strangers: they wait
    CHECK(dev.list().value().size() == 2);
    w.clock.advance(1h);
    auto rep = dev.sync();
    REQUIRE(rep);
    CHECK_FALSE(rep->failure);
    CHECK(dev.list().value().size() == 2);
    CHECK(reload(dev, r.id).status == sync_status::synced);
    CHECK(reload(dev, ok.id).status == sync_status::synced);
}

TEST_CASE("a create's answer naming a server id held by a pulled record merges the two", "[sync][hostile]") {
    // A failed create does not hold strangers back for ever: one that another
    // device changed last comes in, and the create's answer after a reset
    // finds it holding the server id.
    world w;
    auto t = w.transport();
    auto strip = [](tether::server_record& r) {
        r.id.reset();
        r.origin.clear();
    };
    t.s->after_pull = [strip](tether::pull_page& page) {
        for (auto& r : page.records) strip(r);
    };
    t.s->after_fetch = strip;
    auto dev = w.device(t);
    std::vector<tether::change<Job>> heard;
    auto sub = dev.watch([&](const tether::change<Job>& c) { heard.push_back(c); });
    auto r = dev.create(Job{"memo", 0, "/a"}).value();
    auto ok = dev.create(Job{"fine", 0, "/b"}).value();
    w.server.drop_next_responses(1);
    REQUIRE(dev.push());  // both apply, the answer is lost
    w.server.poison(r.id);
    w.clock.advance(1h);
    REQUIRE(dev.push());
    REQUIRE(reload(dev, r.id).status == sync_status::failed);
    REQUIRE(reload(dev, ok.id).status == sync_status::synced);
    REQUIRE(dev.pull());  // memo's copy, without ids anywhere: a stranger
    CHECK(dev.list().value().size() == 3);
    w.server.unpoison(r.id);
    REQUIRE(dev.reset_failed(r.id));
    heard.clear();
    auto rep = dev.sync();
    REQUIRE(rep);
    CHECK_FALSE(rep->failure);
    CHECK(dev.list().value().size() == 2);
    CHECK(reload(dev, r.id).status == sync_status::synced);
    bool told_removed = false;
    for (const auto& c : heard) told_removed = told_removed || c.kind == tether::change_kind::removed;
    CHECK(told_removed);
}

// ---- 9: smaller breaks -------------------------------------------------------------

TEST_CASE("a Retry-After above the backoff cap is honoured, up to max_retry_after", "[sync][hostile]") {
    world w;
    auto dev = w.plain_device(tether::exponential_backoff{.base = 1s, .cap = 10s});
    auto r = dev.create(Job{"memo", 0, ""}).value();
    w.server.fail_next(1, tether::loopback_server::rate_limited_error(5min));
    REQUIRE(dev.push());
    CHECK(reload(dev, r.id).next_attempt_at == w.clock.now() + 5min);
    tether::exponential_backoff b{.base = 1s, .cap = 10s, .max_retry_after = 1h};
    CHECK(b.next_delay(1, tether::loopback_server::rate_limited_error(48h)) == std::chrono::milliseconds{1h});
}

TEST_CASE("editing a record in error keeps its attempts and its next attempt time", "[sync][hostile]") {
    world w;
    auto dev = w.plain_device();
    auto r = dev.create(Job{"memo", 0, ""}).value();
    w.server.fail_next(1, tether::loopback_server::transient_error());
    REQUIRE(dev.push());
    const auto failed_once = reload(dev, r.id);
    REQUIRE(failed_once.status == sync_status::error);
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 5; }));
    auto edited = reload(dev, r.id);
    CHECK(edited.status == sync_status::error);
    CHECK(edited.attempts == 1);
    CHECK(edited.next_attempt_at == failed_once.next_attempt_at);
    // A record edited forever still backs off and reaches failed.
    for (int i = 0; i < 10 && reload(dev, r.id).status != sync_status::failed; ++i) {
        w.clock.advance(2h);
        w.server.fail_next(1, tether::loopback_server::transient_error());
        REQUIRE(dev.update(r.id, [i](Job& j) { j.progress = 10 + i; }));
        REQUIRE(dev.push());
    }
    CHECK(reload(dev, r.id).status == sync_status::failed);
    // The edit goes up with the next attempt.
    REQUIRE(dev.reset_failed(r.id));
    REQUIRE(dev.push());
    CHECK(w.on_server().at(0).value["progress"] == reload(dev, r.id).value.progress);
}

TEST_CASE("pull failures with 429 and 503 back off engine-wide", "[sync][hostile]") {
    world w;
    auto t = w.transport();
    int failing = 1;
    t.s->pull_fails = [&]() -> std::optional<tether::error> {
        if (failing-- > 0) return tether::loopback_server::rate_limited_error(30s);
        return std::nullopt;
    };
    auto dev = w.device(t, tether::exponential_backoff{.base = 1s, .cap = 10s});
    auto rep = dev.pull();
    REQUIRE(rep);
    REQUIRE(rep->failure);
    CHECK(rep->failure->code == errc::rate_limited);
    CHECK(dev.next_pull_at() == w.clock.now() + 30s);
    // Triggers before that time cause no request.
    const auto pulls = t.s->pulls;
    for (int i = 0; i < 5; ++i) REQUIRE(dev.pull());
    CHECK(t.s->pulls == pulls);
    w.clock.advance(30s);
    auto ok = dev.pull();
    REQUIRE(ok);
    CHECK_FALSE(ok->failure);
    CHECK(t.s->pulls == pulls + 1);
    CHECK_FALSE(dev.next_pull_at());
    // A clock set back before the failed pull ends the wait.
    failing = 1;
    REQUIRE(dev.pull()->failure);
    REQUIRE(dev.next_pull_at());
    w.clock.advance(-1min);
    CHECK_FALSE(dev.next_pull_at());
}

TEST_CASE("the sync-needed hook fires after a failed sync that had a rerun pending", "[sync][hostile]") {
    world w;
    auto dev = w.plain_device();
    int needed = 0;
    dev.on_sync_needed([&] { ++needed; });
    REQUIRE(dev.create(Job{"a", 0, ""}));
    needed = 0;
    w.server.set_push_hook([&] {
        w.server.set_push_hook({});
        REQUIRE(dev.create(Job{"b", 0, ""}));  // a write during the run asks for a rerun...
        needed = 0;
        w.server.fail_next(1, tether::loopback_server::transient_error());  // ...which fails
    });
    auto rep = dev.sync();
    REQUIRE(rep);
    REQUIRE(rep->failure);
    CHECK(needed == 1);
}

// ---- break 7: watchers hear a record's changes in commit order ---------------------

// Thread A's write commits first; its watcher call is held up until thread B's
// later write of the same record has returned. Heard in commit order, v1 comes
// before v2 all the same. (Waits are bounded, never timed: they only order the
// two threads.)
TEST_CASE("watchers hear one record's changes in commit order across threads", "[local][hostile][threads]") {
    tether::manual_clock clock;
    auto dev = tether::make_engine<Job>(clock);
    auto r = dev.create(Job{"memo", 0, ""}).value();
    std::promise<void> a_in_delivery;
    std::promise<void> b_done;
    auto b_done_future = b_done.get_future().share();
    std::mutex m;
    std::vector<int> heard;
    auto sub = dev.watch(r.id, [&](const tether::change<Job>& c) {
        if (c.current->value.progress == 1) {
            a_in_delivery.set_value();
            (void)b_done_future.wait_for(std::chrono::seconds{30});
        }
        std::lock_guard lock{m};
        heard.push_back(c.current->value.progress);
    });
    std::thread a{[&] { REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 1; })); }};
    REQUIRE(a_in_delivery.get_future().wait_for(std::chrono::seconds{30}) == std::future_status::ready);
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 2; }));  // commits after A's write
    b_done.set_value();
    a.join();
    std::lock_guard lock{m};
    CHECK(heard == std::vector<int>{1, 2});
}

TEST_CASE("state watchers hear states in the order they were reached", "[local][hostile][threads]") {
    tether::manual_clock clock;
    auto dev = tether::make_engine<Job>(clock);
    std::promise<void> a_in_delivery;
    std::promise<void> b_done;
    auto b_done_future = b_done.get_future().share();
    std::mutex m;
    std::vector<tether::engine_state> heard;
    auto sub = dev.watch_state([&](tether::engine_state s) {
        if (s == tether::engine_state::offline) {
            a_in_delivery.set_value();
            (void)b_done_future.wait_for(std::chrono::seconds{30});
        }
        std::lock_guard lock{m};
        heard.push_back(s);
    });
    std::thread a{[&] { dev.set_online(false); }};
    REQUIRE(a_in_delivery.get_future().wait_for(std::chrono::seconds{30}) == std::future_status::ready);
    dev.set_online(true);
    b_done.set_value();
    a.join();
    std::lock_guard lock{m};
    CHECK(heard == std::vector<tether::engine_state>{tether::engine_state::offline, tether::engine_state::idle});
    CHECK(heard.back() == dev.state());
}

// ---- break 1: NaN and infinities are refused on every storage alike -----------------

namespace {
struct Reading {
    BOOST_HANA_DEFINE_STRUCT(Reading, (std::string, name), (double, value), (std::vector<double>, history));
    static constexpr std::string_view collection = "readings";
};
}  // namespace

TEST_CASE("create and update refuse NaN and infinities, in members and containers alike", "[local][hostile]") {
    tether::manual_clock clock;
    auto dev = tether::make_engine<Reading>(clock);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    CHECK(dev.create(Reading{"a", nan, {}}).error().code == errc::invalid_argument);
    CHECK(dev.create(Reading{"a", 1.0, {2.0, -inf}}).error().code == errc::invalid_argument);
    auto ok = dev.create(Reading{"a", 1.0, {2.0}}).value();
    CHECK(dev.update(ok.id, [&](Reading& r) { r.value = inf; }).error().code == errc::invalid_argument);
    CHECK(dev.update(ok.id, [&](Reading& r) { r.history.push_back(nan); }).error().code == errc::invalid_argument);
    auto kept = dev.get(ok.id).value();
    CHECK(kept.value.value == 1.0);
    CHECK(kept.value.history == std::vector<double>{2.0});
    CHECK(kept.local_rev == 1);
    CHECK(dev.list()->size() == 1);
}
