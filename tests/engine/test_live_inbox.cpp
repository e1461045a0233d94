// The live inbox's bound (engine_options::live_inbox_limit, engine/detail/live.hpp):
// past it the queued events are dropped and the next live pass pulls from the
// cursor instead. Loopback server, manual clock, no sleeps.
#include "support/entities.hpp"

#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using tether_test::Job;
using tether::sync_status;

namespace {

struct world {
    tether::manual_clock clock;
    tether::loopback_server server{[c = clock] { return c.now(); }};

    auto device(std::size_t inbox_limit) {
        return tether::make_engine<Job>(tether::memory_storage{}, tether::loopback_transport{server, "alice"}, clock,
                                        tether::engine_options{.id_seed = 7 + inbox_limit, .live_inbox_limit = inbox_limit});
    }
};

/// `n` records created on `desk` (and pushed), each then updated once (and pushed): 2n events.
template <class D>
void write_burst(D& desk, int n) {
    std::vector<tether::local_id> ids;
    for (int i = 0; i < n; ++i) {
        auto r = desk.create(Job{"job " + std::to_string(i), i, ""});
        REQUIRE(r);
        ids.push_back(r->id);
    }
    REQUIRE(desk.sync());
    for (const auto& id : ids) REQUIRE(desk.update(id, [](Job& j) { j.progress += 100; }));
    REQUIRE(desk.sync());
}

template <class D>
void require_same(const D& a, const D& b) {
    auto la = a.list();
    auto lb = b.list();
    REQUIRE(la);
    REQUIRE(lb);
    REQUIRE(la->size() == lb->size());
    for (const auto& r : *la) {
        auto other = b.get(r.id);
        REQUIRE(other);
        CHECK(other->value.title == r.value.title);
        CHECK(other->value.progress == r.value.progress);
        CHECK(other->status == sync_status::synced);
    }
}

}  // namespace

TEST_CASE("live inbox: past its bound it drops the events, and the next live pass pulls them", "[live]") {
    world w;
    auto desk = w.device(4096);
    auto phone = w.device(8);
    std::vector<std::string> warnings;
    phone.on_log([&](tether::log_level l, std::string_view m) {
        if (l == tether::log_level::warning) warnings.emplace_back(m);
    });
    REQUIRE(phone.follow());
    write_burst(desk, 10);  // 20 events: the ninth finds 8 queued

    auto st = phone.live_status();
    CHECK(st.received == 20);
    CHECK(st.overflows == 2);          // at the 9th and the 18th event
    CHECK(st.overflow_dropped == 18);  // 9 + 9: the last 2 stay queued
    CHECK(st.queued == 2);
    CHECK(st.catching_up);

    const auto requests = w.server.requests();
    auto rep = phone.apply_live();
    REQUIRE(rep);
    CHECK_FALSE(rep->failure);
    CHECK(rep->pulled == 10);                    // the catch-up pull brought every record
    CHECK(w.server.requests() == requests + 1);  // one page, no fetch per event
    st = phone.live_status();
    CHECK_FALSE(st.catching_up);
    CHECK(st.queued == 0);  // the two left were settled by the pull
    CHECK(st.covered == 2);
    CHECK(st.applied == 0);
    require_same(desk, phone);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings.front().find("live inbox overflowed") != std::string::npos);

    // Back to events one by one once repaired.
    write_burst(desk, 1);
    CHECK(phone.apply_live());
    CHECK(phone.live_status().applied >= 1);
    CHECK(phone.live_status().queued == 0);
    CHECK(phone.live_status().overflows == 2);
    require_same(desk, phone);
}

TEST_CASE("live inbox: a catch-up pull that fails keeps it catching up until one goes through", "[live]") {
    world w;
    auto desk = w.device(4096);
    auto phone = w.device(3);
    REQUIRE(phone.follow());
    write_burst(desk, 3);  // 6 events: one overflow
    REQUIRE(phone.live_status().overflows == 1);

    w.server.fail_next(1, tether::make_error(tether::errc::transient, "service unavailable"));
    auto rep = phone.apply_live();
    REQUIRE(rep);
    CHECK(rep->failure);
    CHECK(phone.live_status().catching_up);  // nothing is lost: the cursor never passed a dropped event

    w.clock.advance(std::chrono::minutes{10});  // past the pull's backoff
    rep = phone.apply_live();
    REQUIRE(rep);
    CHECK_FALSE(rep->failure);
    CHECK_FALSE(phone.live_status().catching_up);
    require_same(desk, phone);
}

TEST_CASE("live inbox: a sync's pull also repairs an overflow, and 0 means no bound", "[live]") {
    world w;
    auto desk = w.device(4096);
    auto phone = w.device(2);
    auto tablet = w.device(0);
    REQUIRE(phone.follow());
    REQUIRE(tablet.follow());
    write_burst(desk, 5);
    CHECK(phone.live_status().catching_up);
    CHECK(tablet.live_status().overflows == 0);
    CHECK(tablet.live_status().queued == 10);

    REQUIRE(phone.sync());
    CHECK_FALSE(phone.live_status().catching_up);
    require_same(desk, phone);
    REQUIRE(tablet.apply_live());
    require_same(desk, tablet);
}
