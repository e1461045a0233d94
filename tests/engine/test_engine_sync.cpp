// The engine's sync half against the loopback server: one test per rule
// (DOMAIN.md §1, DESIGN.md "Semantics that matter").
#include "support/entities.hpp"

#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

using tether_test::Job;
using namespace std::chrono_literals;
using tether::sync_status;

namespace {

/// One server, one manual clock shared by server and devices.
struct world {
    tether::manual_clock clock;
    tether::loopback_server server{[c = clock] { return c.now(); }};

    template <class... Extra>
    auto device(std::string user = "alice", Extra... extra) {
        return tether::make_engine<Job>(tether::memory_storage{}, tether::loopback_transport{server, std::move(user)},
                                        clock, extra...);
    }
    std::vector<tether::server_record> on_server(std::string_view user = "alice") const {
        return server.records(user, "jobs");
    }
};

template <class Engine>
tether::record<Job> reload(Engine& e, const tether::local_id& id) {
    auto r = e.get(id);
    REQUIRE(r);
    return *r;
}

}  // namespace

TEST_CASE("push creates on the server and takes its id and version", "[sync]") {
    world w;
    auto dev = w.device();
    auto r = dev.create(Job{"memo", 0, "/a"}).value();
    auto rep = dev.push();
    REQUIRE(rep);
    REQUIRE(rep->pushed == 1);
    auto after = reload(dev, r.id);
    REQUIRE(after.status == sync_status::synced);
    REQUIRE(after.server_id);
    REQUIRE(after.version > 0);
    REQUIRE(after.dirty.empty());
    auto srv = w.on_server();
    REQUIRE(srv.size() == 1);
    REQUIRE(srv[0].id == r.id);
    REQUIRE(srv[0].value["title"] == "memo");
}

TEST_CASE("push of an update sends only the changed fields", "[sync]") {
    world w;
    auto dev = w.device();
    auto r = dev.create(Job{"memo", 0, "/a"}).value();
    REQUIRE(dev.push()->pushed == 1);
    // Another device changes the title; this one changes progress with no pull in between.
    const auto sid = *reload(dev, r.id).server_id;
    auto srv = w.on_server()[0];
    std::vector<tether::push_op> other{{tether::op_kind::update, r.id, sid, srv.version, {{"title", "renamed"}}}};
    REQUIRE(w.server.push("alice", "jobs", other)->at(0).outcome == tether::push_outcome::kind::applied);
    // Our base version is now stale, so our push conflicts and the server wins...
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 40; }));
    REQUIRE(dev.push()->conflicts == 1);
    REQUIRE(reload(dev, r.id).value.title == "renamed");
    // ...but from the current version, an edit sends progress alone and keeps the server's title.
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 41; }));
    REQUIRE(dev.push()->pushed == 1);
    auto now = w.on_server()[0];
    REQUIRE(now.value["title"] == "renamed");
    REQUIRE(now.value["progress"] == 41);
}

TEST_CASE("a confirmed delete removes the record and runs the cleanup hook", "[sync]") {
    world w;
    auto dev = w.device();
    std::vector<std::string> cleaned;
    dev.on_cleanup([&](const tether::record<Job>& r) -> tether::result<void> {
        cleaned.push_back(r.value.audio_path);
        return {};
    });
    auto r = dev.create(Job{"memo", 0, "/a.m4a"}).value();
    REQUIRE(dev.push());
    REQUIRE(dev.remove(r.id));
    REQUIRE(reload(dev, r.id).status == sync_status::pending_deletion);
    REQUIRE(cleaned.empty());
    auto rep = dev.push();
    REQUIRE(rep->removed == 1);
    REQUIRE(dev.get(r.id).error().code == tether::errc::not_found);
    REQUIRE(w.on_server().empty());
    REQUIRE(cleaned == std::vector<std::string>{"/a.m4a"});
}

TEST_CASE("a retryable failure backs off exponentially, then fails for good", "[sync]") {
    world w;
    auto dev = w.device();
    auto r = dev.create(Job{"memo", 0, ""}).value();
    const auto t0 = w.clock.now();
    const std::vector<std::chrono::minutes> expected{1min, 2min, 4min, 8min};
    for (std::size_t n = 1; n <= 4; ++n) {
        w.server.fail_next(1, tether::loopback_server::transient_error());
        auto rep = dev.push();
        REQUIRE(rep);
        REQUIRE(rep->retrying == 1);
        auto cur = reload(dev, r.id);
        REQUIRE(cur.status == sync_status::error);
        REQUIRE(cur.attempts == n);
        REQUIRE(cur.last_attempt_at == w.clock.now());
        REQUIRE(cur.next_attempt_at == w.clock.now() + expected[n - 1]);
        REQUIRE(cur.last_error->code == tether::errc::transient);
        // Not due before its time: a push now sends nothing.
        REQUIRE(dev.push()->pushed == 0);
        REQUIRE(w.server.requests() > 0);
        w.clock.advance(expected[n - 1]);
    }
    w.server.fail_next(1, tether::loopback_server::transient_error());
    REQUIRE(dev.push()->failed == 1);
    auto last = reload(dev, r.id);
    REQUIRE(last.status == sync_status::failed);
    REQUIRE(last.attempts == 5);
    REQUIRE(w.clock.now() - t0 == 15min);
    // Failed records are not pushed again until reset.
    w.clock.advance(24h);
    REQUIRE(dev.push()->pushed == 0);
    REQUIRE(dev.reset_failed(r.id));
    REQUIRE(dev.push()->pushed == 1);
    REQUIRE(reload(dev, r.id).status == sync_status::synced);
}

TEST_CASE("a server's Retry-After is a lower bound on the next attempt", "[sync]") {
    world w;
    auto dev = w.device();
    auto r = dev.create(Job{"memo", 0, ""}).value();
    w.server.fail_next(1, tether::loopback_server::rate_limited_error(10min));
    REQUIRE(dev.push()->retrying == 1);
    REQUIRE(reload(dev, r.id).next_attempt_at == w.clock.now() + 10min);
}

TEST_CASE("a permanent rejection fails the record at once, a poison record never blocks the others", "[sync]") {
    world w;
    auto dev = w.device();
    auto poison = dev.create(Job{"poison", 0, ""}, tether::priority::critical).value();
    std::vector<tether::local_id> good;
    for (int i = 0; i < 5; ++i) good.push_back(dev.create(Job{"ok" + std::to_string(i), i, ""}).value().id);
    w.server.poison(poison.id);
    auto rep = dev.sync();
    REQUIRE(rep);
    REQUIRE(rep->failed == 1);
    REQUIRE(rep->pushed == 5);
    auto p = reload(dev, poison.id);
    REQUIRE(p.status == sync_status::failed);
    REQUIRE(p.last_error->code == tether::errc::rejected);
    for (const auto& id : good) REQUIRE(reload(dev, id).status == sync_status::synced);
    // After the server is fixed and the user resets it, it goes up.
    w.server.unpoison(poison.id);
    REQUIRE(dev.reset_failed(poison.id));
    REQUIRE(dev.sync()->pushed == 1);
    REQUIRE(w.on_server().size() == 6);
}

TEST_CASE("batches respect the transport's size and one failing batch fails only its records", "[sync]") {
    world w;
    auto dev = tether::make_engine<Job>(tether::loopback_transport{w.server, "alice", 3}, w.clock);
    for (int i = 0; i < 7; ++i) REQUIRE(dev.create(Job{"j" + std::to_string(i), i, ""}));
    auto rep = dev.push();
    REQUIRE(rep->pushed == 7);
    REQUIRE(w.on_server().size() == 7);
}

TEST_CASE("a lost response does not duplicate the record", "[sync]") {
    world w;
    auto dev = w.device();
    auto r = dev.create(Job{"memo", 0, ""}).value();
    w.server.drop_next_responses(1);
    auto rep = dev.push();
    REQUIRE(rep->retrying == 1);
    REQUIRE(reload(dev, r.id).status == sync_status::error);
    REQUIRE(w.on_server().size() == 1);  // it did apply
    w.clock.advance(1min);
    REQUIRE(dev.push()->pushed == 1);
    REQUIRE(w.on_server().size() == 1);
    REQUIRE(w.server.count_with_local_id("alice", "jobs", r.id) == 1);
    REQUIRE(reload(dev, r.id).server_id == w.on_server()[0].server_id);
}

TEST_CASE("an edit between a lost create response and its retry is not lost", "[sync]") {
    world w;
    auto dev = w.device();
    auto r = dev.create(Job{"memo", 0, ""}).value();
    w.server.drop_next_responses(1);
    REQUIRE(dev.push()->retrying == 1);
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 9; }));
    w.clock.advance(1h);  // the edit goes up with the record's next attempt
    REQUIRE(dev.push());  // the create replays (server answers with its old copy), then an update follows
    auto cur = reload(dev, r.id);
    REQUIRE(cur.status == sync_status::synced);
    REQUIRE(cur.value.progress == 9);
    REQUIRE(w.on_server().size() == 1);
    REQUIRE(w.on_server()[0].value["progress"] == 9);
}

TEST_CASE("a pull confirms a create whose response was lost", "[sync]") {
    world w;
    auto dev = w.device();
    auto r = dev.create(Job{"memo", 0, ""}).value();
    w.server.drop_next_responses(1);
    REQUIRE(dev.push()->retrying == 1);
    REQUIRE(dev.pull()->pulled == 1);
    auto cur = reload(dev, r.id);
    REQUIRE(cur.status == sync_status::synced);
    REQUIRE(cur.server_id == w.on_server()[0].server_id);
    REQUIRE(dev.list()->size() == 1);
}

TEST_CASE("a remove after a lost create response deletes on the server too", "[sync]") {
    world w;
    auto dev = w.device();
    auto r = dev.create(Job{"memo", 0, ""}).value();
    w.server.drop_next_responses(1);
    REQUIRE(dev.push()->retrying == 1);
    REQUIRE(dev.remove(r.id));
    REQUIRE(reload(dev, r.id).status == sync_status::pending_deletion);
    REQUIRE(dev.push()->removed == 1);
    REQUIRE(w.on_server().empty());
    REQUIRE(dev.list()->empty());
}

TEST_CASE("an edit made while its push is in flight is never lost", "[sync]") {
    world w;
    auto dev = w.device();
    auto r = dev.create(Job{"memo", 0, ""}).value();
    bool edited = false;
    w.server.set_push_hook([&] {
        if (edited) return;
        edited = true;
        REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 77; }));
    });
    auto rep = dev.push();  // the write during the push asks for one more round
    REQUIRE(rep);
    REQUIRE(edited);
    auto cur = reload(dev, r.id);
    REQUIRE(cur.status == sync_status::synced);
    REQUIRE(cur.value.progress == 77);
    REQUIRE(w.on_server().size() == 1);
    REQUIRE(w.on_server()[0].value["progress"] == 77);
}

TEST_CASE("an edit in flight stays pending with the server's id when no rerun happens", "[sync]") {
    world w;
    auto dev = w.device(std::string{"alice"}, tether::engine_options{.push_batch = 1});
    auto r = dev.create(Job{"memo", 0, ""}).value();
    w.server.set_push_hook([&] {
        w.server.set_push_hook({});
        CHECK(dev.update(r.id, [](Job& j) { j.progress = 5; }));  // CHECK: this runs inside the server's push
        // Make the rerun see the server offline so we can observe the intermediate state.
        w.server.fail_next(1, tether::make_error(tether::errc::offline, "no network"));
    });
    REQUIRE(dev.push());
    auto cur = reload(dev, r.id);
    REQUIRE(cur.status == sync_status::pending);
    REQUIRE(cur.server_id);  // the next push is an update, never a second create
    REQUIRE(cur.value.progress == 5);
    REQUIRE(dev.push()->pushed == 1);
    REQUIRE(w.server.count_with_local_id("alice", "jobs", r.id) == 1);
    REQUIRE(w.on_server()[0].value["progress"] == 5);
}

TEST_CASE("a 401 pauses sync without counting an attempt until login returns", "[sync]") {
    world w;
    auto dev = w.device();
    auto r = dev.create(Job{"memo", 0, ""}).value();
    w.server.revoke("alice");
    auto rep = dev.sync();
    REQUIRE(rep);
    REQUIRE(rep->failure->code == tether::errc::unauthorized);
    REQUIRE(dev.state() == tether::engine_state::unauthorized);
    auto cur = reload(dev, r.id);
    REQUIRE(cur.status == sync_status::pending);
    REQUIRE(cur.attempts == 0);
    REQUIRE(dev.sync()->skipped == tether::skip_reason::unauthorized);
    w.server.restore("alice");
    int asked = 0;
    dev.on_sync_needed([&] { ++asked; });
    dev.set_authenticated(true);
    REQUIRE(asked == 1);
    REQUIRE(dev.sync()->pushed == 1);
    REQUIRE(reload(dev, r.id).status == sync_status::synced);
}

TEST_CASE("sync is gated while offline and says so", "[sync]") {
    world w;
    auto dev = w.device();
    REQUIRE(dev.create(Job{"memo", 0, ""}));
    dev.set_online(false);
    auto rep = dev.sync();
    REQUIRE(rep);
    REQUIRE(rep->skipped == tether::skip_reason::offline);
    REQUIRE(w.server.requests() == 0);
    dev.set_online(true);
    REQUIRE(dev.sync()->pushed == 1);
}

TEST_CASE("sync is single-flight: a call during a run makes it run once more", "[sync]") {
    world w;
    auto dev = w.device();
    auto a = dev.create(Job{"a", 0, ""}).value();
    std::optional<tether::result<tether::sync_report>> nested;
    tether::local_id b;
    w.server.set_push_hook([&] {
        if (nested) return;
        b = dev.create(Job{"b", 0, ""}).value().id;
        nested = dev.sync();
    });
    auto rep = dev.sync();
    REQUIRE(rep);
    REQUIRE(nested);
    REQUIRE((*nested)->skipped == tether::skip_reason::already_running);
    REQUIRE(rep->pushed == 2);  // b went up in the rerun, not at the next period
    REQUIRE(reload(dev, a.id).status == sync_status::synced);
    REQUIRE(reload(dev, b).status == sync_status::synced);
}

TEST_CASE("pull brings other devices' records and keeps the cursor across restarts", "[sync]") {
    world w;
    auto phone = w.device();
    tether::memory_storage desk_storage;
    auto desk = tether::make_engine<Job>(desk_storage, tether::loopback_transport{w.server, "alice"}, w.clock,
                                         tether::engine_options{.pull_limit = 2});
    for (int i = 0; i < 5; ++i) REQUIRE(phone.create(Job{"p" + std::to_string(i), i, ""}));
    REQUIRE(phone.sync()->pushed == 5);
    auto rep = desk.pull();
    REQUIRE(rep->pulled == 5);  // three pages of two
    REQUIRE(desk.list()->size() == 5);
    for (const auto& r : desk.list().value()) REQUIRE(r.status == sync_status::synced);

    auto extra = phone.create(Job{"late", 9, ""}).value();
    REQUIRE(phone.sync());
    auto restarted = tether::make_engine<Job>(desk_storage, tether::loopback_transport{w.server, "alice"}, w.clock);
    const auto before = w.server.requests();
    REQUIRE(restarted.pull()->pulled == 1);  // only what is new since the stored cursor
    REQUIRE(w.server.requests() == before + 1);
    REQUIRE(reload(restarted, extra.id).value.title == "late");
}

TEST_CASE("users never see each other's records", "[sync]") {
    world w;
    auto alice = w.device("alice");
    auto bob = w.device("bob");
    REQUIRE(alice.create(Job{"alice's", 0, ""}));
    REQUIRE(alice.sync());
    REQUIRE(bob.sync());
    REQUIRE(bob.list()->empty());
}

TEST_CASE("a server tombstone deletes a synced record and runs cleanup", "[sync]") {
    world w;
    auto dev = w.device();
    int cleaned = 0;
    dev.on_cleanup([&](const tether::record<Job>&) -> tether::result<void> {
        ++cleaned;
        return {};
    });
    auto r = dev.create(Job{"memo", 0, ""}).value();
    REQUIRE(dev.sync());
    REQUIRE(w.server.erase("alice", "jobs", *reload(dev, r.id).server_id));
    auto rep = dev.sync();
    REQUIRE(rep->removed == 1);
    REQUIRE(dev.get(r.id).error().code == tether::errc::not_found);
    REQUIRE(cleaned == 1);
}

TEST_CASE("full-list mode detects server-side deletions of synced records only", "[sync]") {
    world w;
    w.server.set_change_feed(false);
    auto dev = w.device();
    auto synced = dev.create(Job{"synced", 0, ""}).value();
    auto edited = dev.create(Job{"edited", 0, ""}).value();
    auto failed = dev.create(Job{"failed", 0, ""}).value();
    REQUIRE(dev.sync()->pushed == 3);
    w.server.poison(failed.id);
    REQUIRE(dev.update(failed.id, [](Job& j) { j.progress = 2; }));
    REQUIRE(dev.push()->failed == 1);                                  // failed: kept
    REQUIRE(dev.update(edited.id, [](Job& j) { j.progress = 1; }));     // pending: kept
    for (const auto& s : w.on_server()) REQUIRE(w.server.erase("alice", "jobs", s.server_id));
    auto rep = dev.pull();
    REQUIRE(rep);
    REQUIRE(rep->removed == 1);
    REQUIRE(dev.get(synced.id).error().code == tether::errc::not_found);
    REQUIRE(reload(dev, edited.id).status == sync_status::pending);
    REQUIRE(reload(dev, failed.id).status == sync_status::failed);
}

TEST_CASE("a pulled server change to an unchanged record replaces it", "[sync]") {
    world w;
    auto dev = w.device();
    auto r = dev.create(Job{"memo", 0, ""}).value();
    REQUIRE(dev.sync());
    auto sid = *reload(dev, r.id).server_id;
    REQUIRE(w.server.put("alice", "jobs", sid, {{"title", "server"}, {"progress", 3}, {"audio_path", ""}}));
    REQUIRE(dev.pull()->pulled == 1);
    auto cur = reload(dev, r.id);
    REQUIRE(cur.value.title == "server");
    REQUIRE(cur.status == sync_status::synced);
    REQUIRE(cur.version == w.on_server()[0].version);
    // The same change pulled again (a duplicate) changes nothing.
    REQUIRE(dev.pull()->pulled == 0);
}

namespace {

/// Sets up a conflict: the record is synced, then changed on the server (title)
/// and locally (progress), with no pull in between.
template <class Engine>
tether::local_id make_conflict(world& w, Engine& dev, tether::timestamp server_time) {
    auto r = dev.create(Job{"memo", 0, "/a"}).value();
    REQUIRE(dev.sync());
    auto sid = *reload(dev, r.id).server_id;
    const auto local_time = w.clock.now();
    w.clock.set(server_time);
    REQUIRE(w.server.put("alice", "jobs", sid, {{"title", "server title"}, {"progress", 0}, {"audio_path", "/a"}}));
    w.clock.set(local_time);
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 50; }));
    return r.id;
}

}  // namespace

TEST_CASE("conflicts: server_wins (default) takes the server's copy", "[sync][conflict]") {
    world w;
    auto dev = w.device();
    auto id = make_conflict(w, dev, w.clock.now());
    auto rep = dev.push();
    REQUIRE(rep->conflicts == 1);
    auto cur = reload(dev, id);
    REQUIRE(cur.status == sync_status::synced);
    REQUIRE(cur.value.title == "server title");
    REQUIRE(cur.value.progress == 0);
    REQUIRE(cur.version == w.on_server()[0].version);
}

TEST_CASE("conflicts: client_wins re-pushes against the server's version", "[sync][conflict]") {
    world w;
    auto dev = w.device(std::string{"alice"}, tether::client_wins{});
    auto id = make_conflict(w, dev, w.clock.now());
    auto rep = dev.push();
    REQUIRE(rep->conflicts == 1);
    REQUIRE(rep->pushed == 1);  // the rerun sent the local copy over the server's
    auto srv = w.on_server()[0];
    REQUIRE(srv.value["title"] == "memo");
    REQUIRE(srv.value["progress"] == 50);
    REQUIRE(reload(dev, id).status == sync_status::synced);
}

TEST_CASE("conflicts: last_writer_wins compares the local and server times", "[sync][conflict]") {
    SECTION("local newer") {
        world w;
        auto dev = w.device(std::string{"alice"}, tether::last_writer_wins{});
        auto id = make_conflict(w, dev, w.clock.now() - 1h);
        REQUIRE(dev.push());
        REQUIRE(reload(dev, id).value.progress == 50);
        REQUIRE(w.on_server()[0].value["progress"] == 50);
    }
    SECTION("server newer") {
        world w;
        auto dev = w.device(std::string{"alice"}, tether::last_writer_wins{});
        auto id = make_conflict(w, dev, w.clock.now() + 1h);
        REQUIRE(dev.push());
        REQUIRE(reload(dev, id).value.title == "server title");
        REQUIRE(reload(dev, id).value.progress == 0);
    }
}

TEST_CASE("conflicts: field_merge keeps local dirty fields over the server's value", "[sync][conflict]") {
    world w;
    auto dev = w.device(std::string{"alice"}, tether::field_merge{});
    auto id = make_conflict(w, dev, w.clock.now());
    REQUIRE(dev.push()->conflicts == 1);
    auto cur = reload(dev, id);
    REQUIRE(cur.value.title == "server title");
    REQUIRE(cur.value.progress == 50);
    REQUIRE(cur.status == sync_status::synced);
    auto srv = w.on_server()[0];
    REQUIRE(srv.value["title"] == "server title");
    REQUIRE(srv.value["progress"] == 50);
}

TEST_CASE("conflicts: resolve_with lets the app decide", "[sync][conflict]") {
    world w;
    int asked = 0;
    auto policy = tether::resolve_with([&asked](const tether::conflict<Job>& c) {
        ++asked;
        Job merged = c.server_value;
        merged.progress = c.local.value.progress + 1;
        return tether::resolution<Job>::merged(merged);
    });
    auto dev = w.device(std::string{"alice"}, policy);
    auto id = make_conflict(w, dev, w.clock.now());
    REQUIRE(dev.push());
    REQUIRE(asked == 1);
    REQUIRE(reload(dev, id).value.progress == 51);
    REQUIRE(w.on_server()[0].value["progress"] == 51);
    REQUIRE(w.on_server()[0].value["title"] == "server title");
}

TEST_CASE("a pull that meets local changes goes to the conflict policy", "[sync][conflict]") {
    world w;
    auto dev = w.device(std::string{"alice"}, tether::field_merge{});
    auto id = make_conflict(w, dev, w.clock.now());
    auto rep = dev.pull();
    REQUIRE(rep->conflicts == 1);
    auto cur = reload(dev, id);
    REQUIRE(cur.status == sync_status::pending);  // merged, still to go up
    REQUIRE(cur.value.title == "server title");
    REQUIRE(cur.value.progress == 50);
    REQUIRE(cur.version == w.on_server()[0].version);
    REQUIRE(dev.push()->pushed == 1);
    REQUIRE(w.on_server()[0].value["progress"] == 50);
}

TEST_CASE("an edit to a record deleted on the server ends in its deletion, reported", "[sync]") {
    world w;
    auto dev = w.device();
    auto r = dev.create(Job{"memo", 0, ""}).value();
    REQUIRE(dev.sync());
    REQUIRE(w.server.erase("alice", "jobs", *reload(dev, r.id).server_id));
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 1; }));
    std::vector<std::string> causes;
    dev.on_transition([&](const tether::transition& t) { causes.push_back(t.cause); });
    auto rep = dev.push();
    REQUIRE(rep->conflicts == 1);
    REQUIRE(dev.get(r.id).error().code == tether::errc::not_found);
    REQUIRE(causes == std::vector<std::string>{"deleted on server"});
}

TEST_CASE("the engine state goes syncing and back, and to error after a failed run", "[sync]") {
    world w;
    auto dev = w.device();
    std::vector<tether::engine_state> states;
    auto sub = dev.watch_state([&](tether::engine_state s) { states.push_back(s); });
    REQUIRE(dev.create(Job{"memo", 0, ""}));
    REQUIRE(dev.sync());
    w.server.fail_next(1, tether::loopback_server::transient_error());
    REQUIRE(dev.create(Job{"memo 2", 0, ""}));
    REQUIRE(dev.sync()->failure);
    REQUIRE(states == std::vector<tether::engine_state>{tether::engine_state::syncing, tether::engine_state::idle,
                                                        tether::engine_state::syncing, tether::engine_state::error});
    auto h = dev.health().value();
    REQUIRE(h.error == 1);
    REQUIRE(h.synced == 1);
}

TEST_CASE("a failed record that keeps its local change in a conflict keeps its error too", "[sync][conflict]") {
    world w;
    auto dev = w.device(std::string{"alice"}, tether::client_wins{});
    auto r = dev.create(Job{"memo", 0, ""}).value();
    REQUIRE(dev.sync());
    w.server.poison(r.id);
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 3; }));
    REQUIRE(dev.push()->failed == 1);
    REQUIRE(w.server.put("alice", "jobs", *reload(dev, r.id).server_id,
                         {{"title", "server"}, {"progress", 0}, {"audio_path", ""}}));
    REQUIRE(dev.pull()->conflicts == 1);
    auto cur = reload(dev, r.id);
    REQUIRE(cur.status == sync_status::failed);
    REQUIRE(cur.last_error);
    REQUIRE(cur.last_error->code == tether::errc::rejected);
    REQUIRE(cur.attempts == 1);
    REQUIRE(cur.version == w.on_server()[0].version);
}

TEST_CASE("field_merge never resurrects a delete whose push failed", "[sync][conflict]") {
    world w;
    auto dev = w.device(std::string{"alice"}, tether::field_merge{});
    auto r = dev.create(Job{"memo", 0, ""}).value();
    REQUIRE(dev.sync());
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 3; }));
    REQUIRE(dev.remove(r.id));
    w.server.fail_next(1, tether::loopback_server::transient_error());
    REQUIRE(dev.push()->retrying == 1);  // the delete is now in `error`
    REQUIRE(reload(dev, r.id).deleted);
    REQUIRE(w.server.put("alice", "jobs", *reload(dev, r.id).server_id,
                         {{"title", "server"}, {"progress", 0}, {"audio_path", ""}}));
    REQUIRE(dev.pull()->conflicts == 1);
    auto cur = reload(dev, r.id);
    REQUIRE(cur.status == sync_status::synced);  // the server's edit restores it, as documented
    REQUIRE_FALSE(cur.deleted);
    REQUIRE(cur.value.title == "server");
    REQUIRE(cur.value.progress == 0);  // no local field merged into a deleted record
}

TEST_CASE("a server without a change feed that pages its list is refused, deleting nothing", "[sync]") {
    struct paging_full_list : tether::loopback_transport {
        using tether::loopback_transport::loopback_transport;
        tether::result<tether::pull_page> pull(std::string_view c, std::string_view cur, std::size_t limit) {
            auto page = tether::loopback_transport::pull(c, cur, limit);
            if (page) page->has_more = true;
            return page;
        }
    };
    world w;
    w.server.set_change_feed(false);
    auto dev = tether::make_engine<Job>(paging_full_list{w.server, "alice"}, w.clock);
    auto r = dev.create(Job{"memo", 0, ""}).value();
    REQUIRE(dev.push()->pushed == 1);
    REQUIRE(w.server.erase("alice", "jobs", *reload(dev, r.id).server_id));
    auto rep = dev.pull();
    REQUIRE(rep->failure);
    REQUIRE(rep->failure->code == tether::errc::protocol);
    REQUIRE(reload(dev, r.id).status == sync_status::synced);
}

TEST_CASE("a lost update response, then another edit: the edit survives under server_wins", "[sync][conflict]") {
    world w;
    auto dev = w.device();
    auto r = dev.create(Job{"memo", 0, ""}).value();
    REQUIRE(dev.sync());
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 50; }));
    w.server.drop_next_responses(1);               // the update applies; its answer is lost
    REQUIRE(dev.push()->retrying == 1);
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 90; }));  // the user edits again
    w.clock.advance(1min);
    auto rep = dev.sync();
    REQUIRE(rep);
    REQUIRE(rep->conflicts == 0);                  // the server's copy is this device's own write
    auto cur = reload(dev, r.id);
    REQUIRE(cur.status == sync_status::synced);
    REQUIRE(cur.value.progress == 90);
    REQUIRE(w.on_server()[0].value["progress"] == 90);
}

TEST_CASE("another device's change is still a conflict even after a lost response", "[sync][conflict]") {
    world w;
    auto dev = w.device();
    auto other = w.device();
    auto r = dev.create(Job{"memo", 0, ""}).value();
    REQUIRE(dev.sync());
    REQUIRE(other.sync());
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 50; }));
    w.server.drop_next_responses(1);
    REQUIRE(dev.push()->retrying == 1);             // applied on the server, answer lost
    REQUIRE(other.sync());                           // other pulls dev's write...
    REQUIRE(other.update(r.id, [](Job& j) { j.title = "other"; }));
    REQUIRE(other.sync()->pushed == 1);              // ...and changes it on top
    REQUIRE(dev.update(r.id, [](Job& j) { j.progress = 60; }));
    w.clock.advance(1min);
    auto rep = dev.sync();
    REQUIRE(rep);
    REQUIRE(rep->conflicts == 1);                    // the server's copy is other's: a real conflict
    auto cur = reload(dev, r.id);
    REQUIRE(cur.status == sync_status::synced);      // server wins
    REQUIRE(cur.value.title == "other");
    REQUIRE(cur.value.progress == 50);
}
