// The live feed in-process: the loopback server relays each change to the
// user's other devices, with its faults; the engine applies the events with
// the pull's rules (transport/live.hpp, engine/detail/live.hpp). Manual clock,
// no sleeps: events are drained by apply_live().
#include "support/entities.hpp"

#include <tether/tether.hpp>
#include <tether/transport/live.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

using tether_test::Job;
using namespace std::chrono_literals;
using tether::sync_status;

namespace {

struct world {
    tether::manual_clock clock;
    tether::loopback_server server{[c = clock] { return c.now(); }};

    auto device(std::string user = "alice") {
        return tether::make_engine<Job>(tether::memory_storage{}, tether::loopback_transport{server, std::move(user)},
                                        clock);
    }
    std::string last_cursor(std::string_view user = "alice") const {
        return std::to_string(server.last_change(user, "jobs"));
    }
};

using device_type = decltype(std::declval<world&>().device());

template <class E>
concept can_follow = requires(E& e) { e.follow(); };

std::string cursor_of(const device_type& d) {
    auto c = d.store().get_meta("pull_cursor");
    REQUIRE(c);
    return c->value_or("");
}

tether::record<Job> only(const device_type& d) {
    auto all = d.list();
    REQUIRE(all);
    REQUIRE(all->size() == 1);
    return all->front();
}

// A device that holds the record of `writer` (created and synced there).
void share(device_type& writer, device_type& reader, Job j) {
    REQUIRE(writer.create(std::move(j)));
    REQUIRE(writer.sync());
    REQUIRE(reader.sync());
}

void edit(device_type& d, int progress) {
    const auto id = only(d).id;
    REQUIRE(d.update(id, [&](Job& j) { j.progress = progress; }));
    auto rep = d.sync();
    REQUIRE(rep);
    REQUIRE(rep->pushed == 1);
}

}  // namespace

TEST_CASE("live: a transport without a feed keeps polling, the loopback one has it", "[live]") {
    struct polling_only {
        using policy_kind = tether::transport_tag;
        tether::result<std::vector<tether::push_outcome>> push(std::string_view, std::span<const tether::push_op>) {
            return tether::unexpected{tether::make_error(tether::errc::offline)};
        }
        tether::result<tether::pull_page> pull(std::string_view, std::string_view, std::size_t) {
            return tether::unexpected{tether::make_error(tether::errc::offline)};
        }
        tether::result<tether::server_record> fetch(std::string_view, std::string_view) {
            return tether::unexpected{tether::make_error(tether::errc::offline)};
        }
        std::size_t max_batch() const { return 1; }
        bool has_change_feed() const { return true; }
    };
    STATIC_REQUIRE(tether::transport_policy<polling_only>);
    STATIC_REQUIRE(!tether::live_transport<polling_only>);
    STATIC_REQUIRE(tether::live_transport<tether::loopback_transport>);
    using polling_engine = decltype(tether::make_engine<Job>(polling_only{}));
    STATIC_REQUIRE(!can_follow<polling_engine>);
    STATIC_REQUIRE(can_follow<device_type>);
}

TEST_CASE("live: a change goes to the user's other devices, not back to its origin nor to another user", "[live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    auto laptop = w.device();
    auto bob = w.device("bob");
    REQUIRE(desk.follow());
    REQUIRE(phone.follow());
    REQUIRE(laptop.follow());
    REQUIRE(bob.follow());
    std::vector<std::string> heard;
    auto sub = phone.watch([&](const tether::change<Job>& c) { heard.push_back(c.cause); });

    REQUIRE(desk.create(Job{"memo", 10, "/a"}));
    REQUIRE(desk.sync());
    CHECK(phone.live_status().queued == 1);
    CHECK(laptop.live_status().queued == 1);
    CHECK(desk.live_status().queued == 0);  // its own change
    CHECK(bob.live_status().queued == 0);   // another user's

    const auto before = w.server.requests();
    auto rep = phone.apply_live();
    REQUIRE(rep);
    CHECK(rep->pulled == 1);
    CHECK(w.server.requests() == before + 1);  // a record not held: fetched once (the create may be stale), no pull
    const auto got = only(phone);
    const auto srv = w.server.records("alice", "jobs");
    REQUIRE(srv.size() == 1);
    CHECK(got.status == sync_status::synced);
    CHECK(got.server_id == srv[0].server_id);
    CHECK(got.version == srv[0].version);
    CHECK(got.value.title == "memo");
    CHECK(heard == std::vector<std::string>{"live"});
    CHECK(cursor_of(phone) == w.last_cursor());  // contiguous with the empty cursor: the first change
    REQUIRE(laptop.apply_live());
    CHECK(only(laptop).value == got.value);
    REQUIRE(bob.apply_live());
    CHECK(bob.list()->empty());
    CHECK(w.server.events().faults().published == 2);  // phone and laptop: not desk (its origin), not bob
}

TEST_CASE("live: updates and deletions apply in order and move the cursor", "[live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    share(desk, phone, Job{"memo", 0, "/a"});
    REQUIRE(phone.follow());
    edit(desk, 40);
    edit(desk, 80);
    REQUIRE(phone.apply_live());
    CHECK(only(phone).value.progress == 80);
    CHECK(only(phone).version == only(desk).version);
    CHECK(phone.live_status().applied == 2);
    CHECK(phone.live_status().fetches == 0);
    CHECK(cursor_of(phone) == w.last_cursor());

    REQUIRE(desk.remove(only(desk).id));
    REQUIRE(desk.sync());
    auto rep = phone.apply_live();
    REQUIRE(rep);
    CHECK(rep->removed == 1);
    CHECK(phone.list()->empty());
    CHECK(cursor_of(phone) == w.last_cursor());
}

TEST_CASE("live: a duplicate event is dropped", "[live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    share(desk, phone, Job{"memo", 0, "/a"});
    REQUIRE(phone.follow());
    auto events = w.server.events();
    events.duplicate_next(1);
    std::size_t heard = 0;
    auto sub = phone.watch([&](const tether::change<Job>&) { ++heard; });
    edit(desk, 50);
    CHECK(phone.live_status().queued == 2);
    REQUIRE(phone.apply_live());
    CHECK(heard == 1);
    CHECK(phone.live_status().applied == 1);
    CHECK(phone.live_status().duplicates == 1);
    CHECK(phone.live_status().fetches == 0);
    CHECK(events.faults().duplicated == 1);
    CHECK(only(phone).value.progress == 50);
}

TEST_CASE("live: a reordered pair is repaired by one fetch, and the cursor catches up", "[live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    share(desk, phone, Job{"memo", 0, "/a"});
    REQUIRE(phone.follow());
    auto events = w.server.events();
    events.reorder_next(1);
    edit(desk, 30);
    CHECK(events.held() == 1);
    edit(desk, 60);  // delivered first, then the held one
    CHECK(events.held() == 0);
    const auto before = w.server.requests();
    REQUIRE(phone.apply_live());
    CHECK(w.server.requests() == before + 1);  // the fetch
    const auto st = phone.live_status();
    CHECK(st.fetches == 1);
    CHECK(st.duplicates == 1);  // the older one, after the fetch
    CHECK(only(phone).value.progress == 60);
    CHECK(only(phone).version == only(desk).version);
    CHECK(cursor_of(phone) == w.last_cursor());  // the older one was contiguous, and the newer chained on
}

TEST_CASE("live: a lost event shows as a gap, the next is repaired by a fetch, the cursor waits for the pull", "[live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    share(desk, phone, Job{"memo", 0, "/a"});
    REQUIRE(phone.follow());
    const auto cursor = cursor_of(phone);
    auto events = w.server.events();
    events.drop_next(1);
    edit(desk, 30);
    edit(desk, 60);
    REQUIRE(phone.apply_live());
    CHECK(events.faults().dropped == 1);
    CHECK(phone.live_status().fetches == 1);
    CHECK(only(phone).value.progress == 60);
    CHECK(cursor_of(phone) == cursor);  // not contiguous: the lost change is the pull's
    auto rep = phone.sync();
    REQUIRE(rep);
    CHECK(rep->pulled == 0);  // nothing new: the fetch brought it
    CHECK(cursor_of(phone) == w.last_cursor());
}

TEST_CASE("live: N events for a record the device does not have cause one fetch", "[live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    REQUIRE(desk.create(Job{"memo", 0, "/a"}));
    REQUIRE(desk.sync());
    REQUIRE(phone.follow());  // subscribed after the create: the record is not here
    edit(desk, 10);
    edit(desk, 20);
    edit(desk, 30);
    CHECK(phone.live_status().queued == 3);
    const auto before = w.server.requests();
    REQUIRE(phone.apply_live());
    CHECK(w.server.requests() == before + 1);
    const auto st = phone.live_status();
    CHECK(st.fetches == 1);
    CHECK(st.applied == 1);
    CHECK(st.duplicates == 2);  // applied again after the fetch: below what it brought
    CHECK(only(phone).value.progress == 30);
    CHECK(only(phone).version == only(desk).version);
}

TEST_CASE("live: the cursor moves only on events contiguous with it", "[live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    REQUIRE(desk.create(Job{"one", 0, "/a"}));
    REQUIRE(desk.sync());
    REQUIRE(phone.follow());  // the pull cursor is still empty: the first change is the pull's
    REQUIRE(desk.create(Job{"two", 0, "/b"}));
    REQUIRE(desk.sync());
    REQUIRE(phone.apply_live());
    CHECK(phone.list()->size() == 1);   // the create, applied whole
    CHECK(cursor_of(phone).empty());    // but not contiguous with the empty cursor
    CHECK(phone.live_status().cursor_advances == 0);
    REQUIRE(phone.pull());
    CHECK(phone.list()->size() == 2);
    CHECK(cursor_of(phone) == w.last_cursor());
    REQUIRE(desk.create(Job{"three", 0, "/c"}));
    REQUIRE(desk.sync());
    REQUIRE(phone.apply_live());
    CHECK(cursor_of(phone) == w.last_cursor());  // contiguous now
    CHECK(phone.live_status().cursor_advances == 1);
}

TEST_CASE("live: a delayed event waits for the manual clock or a release", "[live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    share(desk, phone, Job{"memo", 0, "/a"});
    REQUIRE(phone.follow());
    auto events = w.server.events();
    events.delay_next(1, w.clock.now() + 5s);
    edit(desk, 30);
    CHECK(events.held() == 1);
    events.deliver_due();
    CHECK(phone.live_status().queued == 0);
    w.clock.advance(5s);
    events.deliver_due();
    CHECK(phone.live_status().queued == 1);
    events.delay_next(1);  // until released
    edit(desk, 60);
    w.clock.advance(1h);
    events.deliver_due();
    CHECK(events.held() == 1);
    events.release_held();
    REQUIRE(phone.apply_live());
    CHECK(only(phone).value.progress == 60);
    CHECK(phone.live_status().fetches == 0);
    CHECK(events.faults().delayed == 2);
}

TEST_CASE("live: a dropped subscription is reported, following again resumes", "[live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    share(desk, phone, Job{"memo", 0, "/a"});
    int told = 0;
    REQUIRE(phone.follow([&] { ++told; }));
    CHECK(phone.live_status().following);
    w.server.events().end_subscriptions("alice", "jobs");
    CHECK(told == 1);
    auto st = phone.live_status();
    CHECK_FALSE(st.following);
    REQUIRE(st.ended);
    CHECK(st.ended->code == tether::errc::transient);
    edit(desk, 30);
    CHECK(phone.live_status().queued == 0);  // ended: nothing comes
    REQUIRE(phone.follow([&] { ++told; }));
    CHECK(phone.live_status().following);
    CHECK_FALSE(phone.live_status().ended);
    edit(desk, 60);
    REQUIRE(phone.apply_live());
    CHECK(only(phone).value.progress == 60);
    CHECK(phone.live_status().fetches == 1);  // the change missed while ended shows as a gap
    phone.unfollow();
    CHECK(w.server.events().subscriptions("alice", "jobs") == 0);
}

TEST_CASE("live: a feed that refuses the credentials pauses the engine, as a sync's 401 does", "[live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    share(desk, phone, Job{"memo", 0, "/a"});
    w.server.revoke("alice");
    auto refused = phone.follow();
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == tether::errc::unauthorized);
    CHECK(phone.state() == tether::engine_state::unauthorized);
    CHECK_FALSE(phone.live_status().following);
    auto again = phone.follow();  // gated: the server is not asked again
    REQUIRE_FALSE(again);
    CHECK(again.error().code == tether::errc::unauthorized);
    CHECK(w.server.events().subscriptions("alice", "jobs") == 0);
    w.server.restore("alice");
    phone.set_authenticated(true);
    REQUIRE(phone.follow());
    CHECK(phone.live_status().following);
    edit(desk, 40);
    REQUIRE(phone.apply_live());
    CHECK(only(phone).value.progress == 40);
}

TEST_CASE("live: a local change meets the event as it meets a pull: the conflict policy decides", "[live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    share(desk, phone, Job{"memo", 0, "/a"});
    REQUIRE(phone.follow());
    REQUIRE(phone.update(only(phone).id, [](Job& j) { j.title = "mine"; }));
    edit(desk, 70);
    auto rep = phone.apply_live();
    REQUIRE(rep);
    CHECK(rep->conflicts == 1);
    CHECK(only(phone).value.progress == 70);  // server_wins: the server's copy
}

TEST_CASE("live: seeded faults never apply an event below the local version, and a pull converges", "[live]") {
    tether::live_fault_counts total;
    std::uint64_t fetches = 0;
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        CAPTURE(seed);
        world w;
        auto desk = w.device();
        auto phone = w.device();
        REQUIRE(phone.follow());
        auto events = w.server.events();
        events.set_random_faults({.drop = 0.1, .duplicate = 0.1, .reorder = 0.1, .delay = 0.1,
                                  .end_subscription = 0.02, .delay_for = 2s},
                                 seed);
        std::map<tether::local_id, std::uint64_t> seen;
        bool regressed = false;
        auto sub = phone.watch([&](const tether::change<Job>& c) {
            if (!c.current) return;
            auto& v = seen[c.id];
            if (c.current->version < v) regressed = true;
            v = c.current->version;
        });
        std::vector<tether::local_id> ids;
        for (int step = 0; step < 30; ++step) {
            const auto pick = (seed * 31 + static_cast<std::uint64_t>(step) * 17) % 5;
            if (ids.empty() || pick == 0) {
                ids.push_back(desk.create(Job{"j" + std::to_string(step), step, "/x"})->id);
            } else if (pick == 4 && ids.size() > 1) {
                REQUIRE(desk.remove(ids.front()));
                ids.erase(ids.begin());
            } else {
                REQUIRE(desk.update(ids[static_cast<std::size_t>(step) % ids.size()], [&](Job& j) { j.progress = step; }));
            }
            REQUIRE(desk.sync());
            w.clock.advance(1s);
            events.deliver_due();
            if (!phone.live_status().following) REQUIRE(phone.follow());
            REQUIRE(phone.apply_live());
        }
        events.release_held();
        REQUIRE(phone.apply_live());
        CHECK_FALSE(regressed);
        REQUIRE(phone.sync());
        auto mine = phone.list().value();
        auto srv = w.server.records("alice", "jobs");
        REQUIRE(mine.size() == srv.size());
        for (const auto& r : srv) {
            auto held = phone.store().find_by_server_id(r.server_id);
            REQUIRE(held);
            REQUIRE(*held);
            CHECK((*held)->version == r.version);
            CHECK((*held)->value.progress == r.value["progress"].get<int>());
        }
        CHECK(cursor_of(phone) == w.last_cursor());
        const auto f = events.faults();
        total.dropped += f.dropped;
        total.duplicated += f.duplicated;
        total.reordered += f.reordered;
        total.delayed += f.delayed;
        total.ended += f.ended;
        fetches += phone.live_status().fetches;
    }
    CHECK(total.dropped > 0);
    CHECK(total.duplicated > 0);
    CHECK(total.reordered > 0);
    CHECK(total.delayed > 0);
    CHECK(total.ended > 0);
    CHECK(fetches > 0);
}

TEST_CASE("live: events delivered on the writer's thread while the reader applies them on its own", "[live][threads]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    share(desk, phone, Job{"memo", 0, "/a"});
    std::atomic<int> notified{0};
    REQUIRE(phone.follow([&] { notified.fetch_add(1); }));
    std::atomic<bool> done{false};
    const auto id = only(desk).id;
    std::thread writer([&] {  // no Catch2 assertions off the main thread
        for (int i = 1; i <= 40; ++i) {
            (void)desk.update(id, [&](Job& j) { j.progress = i; });
            (void)desk.sync();
        }
        done.store(true);
    });
    while (!done.load()) REQUIRE(phone.apply_live());
    writer.join();
    REQUIRE(phone.apply_live());
    CHECK(notified.load() == 40);
    CHECK(only(phone).value.progress == 40);
    CHECK(only(phone).version == only(desk).version);
    CHECK(cursor_of(phone) == w.last_cursor());
    CHECK(phone.live_status().fetches == 0);
}
