// Real sync engines over rest_transport against the two REST styles
// (rest_servers.hpp): creates (a lost answer and its retry), updates, deletes,
// conflicts, changes and deletions made behind tether's back, paging with
// many records in one timestamp, two devices converging. Manual clocks.
#include "http/rest_mappings.hpp"
#include "http/rest_servers.hpp"
#include "support/entities.hpp"

#include <tether/tether.hpp>
#include <tether/transport/rest.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using tether_test::Job;
using namespace std::chrono_literals;

namespace {

using engine_type = decltype(tether::make_engine<Job>(std::declval<tether::rest_transport>(), tether::manual_clock{},
                                                      tether::exponential_backoff{}, tether::engine_options{}));

/// One device syncing with `url` by `m`, on the test's clock.
engine_type device(const std::string& url, const tether::rest_mapping& m, const tether::manual_clock& clock,
                   std::uint64_t seed, std::size_t pull_limit = 7) {
    return tether::make_engine<Job>(tether::rest_transport{tether_test::rest_options_for(url, m)},
                                    tether::manual_clock{clock},
                                    tether::exponential_backoff{.base = 1s, .cap = 30s, .max_attempts = 0},
                                    tether::engine_options{.id_seed = seed, .pull_limit = pull_limit});
}

/// Syncs every device a few rounds, the clock past every backoff.
template <class... E>
void settle(tether::manual_clock& clock, E&... devices) {
    for (int round = 0; round < 3; ++round) {
        clock.advance(1h);
        auto one = [](auto& d) { REQUIRE(d.sync()); };
        (one(devices), ...);
    }
}

std::vector<Job> values(const engine_type& e) {
    std::vector<Job> out;
    for (const auto& r : e.list().value()) {
        CHECK(r.status == tether::sync_status::synced);
        out.push_back(r.value);
    }
    std::sort(out.begin(), out.end(), [](const Job& a, const Job& b) { return a.title < b.title; });
    return out;
}

}  // namespace

TEST_CASE("rest sync, style (a): two devices converge over a minimal JSON API", "[http][rest][sync]") {
    const bool client_ids = GENERATE(false, true);
    tether_test::minimal_api api{{.client_ids = client_ids, .store_client_id = true, .paged = true}};
    auto m = client_ids ? tether_test::minimal_client_id_mapping() : tether_test::minimal_mapping();
    m.paging = tether::rest_paging::offset;
    m.limit_param = "limit";
    tether::manual_clock clock;
    auto phone = device(api.url(), m, clock, 1);
    auto laptop = device(api.url(), m, clock, 2);

    // A create whose answer is lost goes up once.
    api.lose_next_answer();
    auto memo = phone.create(Job{"memo", 0, "a.wav"}).value();
    (void)phone.sync();  // the create is in doubt
    CHECK(api.records().size() == 1);
    settle(clock, phone, laptop);
    CHECK(api.records().size() == 1);
    CHECK(phone.get(memo.id)->status == tether::sync_status::synced);
    REQUIRE(laptop.get(memo.id));  // found by its local id
    CHECK(laptop.get(memo.id)->value.audio_path == "a.wav");

    // Edits of different fields on two devices both land (PATCH of the changed fields).
    REQUIRE(phone.update(memo.id, [](Job& j) { j.title = "memo (final)"; }));
    REQUIRE(laptop.update(memo.id, [](Job& j) { j.progress = 60; }));
    settle(clock, phone, laptop);
    CHECK(values(phone) == std::vector<Job>{{"memo (final)", 60, "a.wav"}});
    CHECK(values(laptop) == values(phone));

    // A change made by another writer reaches both, though the API has no versions.
    const auto sid = *phone.get(memo.id)->server_id;
    api.edit(sid, "progress", 99);
    settle(clock, phone, laptop);
    CHECK(phone.get(memo.id)->value.progress == 99);
    CHECK(laptop.get(memo.id)->value.progress == 99);

    // Many records over several pages of the full list; one deleted on the server.
    for (int i = 0; i < 20; ++i) REQUIRE(laptop.create(Job{"job " + std::to_string(i), i, ""}));
    settle(clock, phone, laptop);
    CHECK(phone.list()->size() == 21);
    CHECK(laptop.list()->size() == 21);
    api.erase(sid);
    settle(clock, phone, laptop);
    CHECK_FALSE(phone.get(memo.id));
    CHECK_FALSE(laptop.get(memo.id));
    CHECK(phone.list()->size() == 20);

    // A delete goes up; the other device sees it from the list.
    const auto first = laptop.list()->front().id;
    REQUIRE(laptop.remove(first));
    settle(clock, phone, laptop);
    CHECK(api.records().size() == 19);
    CHECK(values(phone) == values(laptop));
}

TEST_CASE("rest sync, style (b): two devices converge over a versioned API", "[http][rest][sync]") {
    const bool cursor = GENERATE(true, false);
    tether_test::versioned_api api{{.cursor_paging = cursor}};
    auto m = tether_test::versioned_mapping();
    if (!cursor) {
        m.paging = tether::rest_paging::none;
        m.after_id_param = "afterId";
    }
    tether::manual_clock clock;
    auto phone = device(api.url(), m, clock, 1);
    auto laptop = device(api.url(), m, clock, 2);

    api.lose_next_answer();
    auto memo = phone.create(Job{"", 0, "a.wav"}).value();
    (void)phone.sync();
    settle(clock, phone, laptop);
    CHECK(api.records().size() == 1);
    CHECK(phone.get(memo.id)->value.title == "untitled");  // the server's default comes back
    REQUIRE(laptop.list()->size() == 1);
    const auto there = laptop.list()->front().id;

    // A conflict: both edit the title from version 1; the second gets 412, the server wins.
    api.advance(10);
    REQUIRE(phone.update(memo.id, [](Job& j) { j.title = "phone's"; }));
    REQUIRE(phone.sync());
    REQUIRE(laptop.update(there, [](Job& j) { j.title = "laptop's"; }));
    auto report = laptop.sync();
    REQUIRE(report);
    CHECK(report->conflicts == 1);
    settle(clock, phone, laptop);
    CHECK(phone.get(memo.id)->value.title == "phone's");
    CHECK(laptop.get(there)->value.title == "phone's");

    // Many records in one server timestamp, over pages of 7.
    for (int i = 0; i < 25; ++i) api.insert(nlohmann::json{{"title", "same " + std::to_string(i)}, {"progress", i}});
    settle(clock, phone, laptop);
    CHECK(phone.list()->size() == 26);
    CHECK(laptop.list()->size() == 26);
    auto quiet = phone.sync();
    REQUIRE(quiet);
    CHECK(quiet->pulled == 0);  // the ties at the watermark came again and were dropped

    // Another writer's edit and a soft delete on the server reach both.
    api.advance(10);
    const auto sid = *phone.get(memo.id)->server_id;
    api.edit(sid, "progress", 42);
    settle(clock, phone, laptop);
    CHECK(laptop.get(there)->value.progress == 42);
    api.advance(10);
    api.erase(sid);
    settle(clock, phone, laptop);
    CHECK_FALSE(phone.get(memo.id));
    CHECK_FALSE(laptop.get(there));

    // A delete from a device is a soft delete on the server.
    const auto one = phone.list()->front().id;
    REQUIRE(phone.remove(one));
    api.advance(10);
    settle(clock, phone, laptop);
    CHECK(api.live() == 24);
    CHECK(values(phone) == values(laptop));
    CHECK(values(phone).size() == 24);
}

namespace {

/// The warnings `e` logs, kept in `into`.
void keep_warnings(engine_type& e, std::vector<std::string>& into) {
    e.on_log([&into](tether::log_level l, std::string_view m) {
        if (l >= tether::log_level::warning) into.emplace_back(m);
    });
}

bool mentions(const std::vector<std::string>& logged, const std::string& bit) {
    for (const auto& m : logged)
        if (m.find(bit) != std::string::npos) return true;
    return false;
}

}  // namespace

TEST_CASE("rest sync, delta: one record shown broken never fails the page, counted, fetched, applied once repaired",
          "[http][rest][sync][refused]") {
    const bool cursor = GENERATE(true, false);
    tether_test::versioned_api api{{.cursor_paging = cursor, .tick = true}};
    auto m = tether_test::versioned_mapping();
    if (!cursor) {
        m.paging = tether::rest_paging::none;
        m.after_id_param = "afterId";
    }
    tether::manual_clock clock;
    auto phone = device(api.url(), m, clock, 1, 3);
    auto laptop = device(api.url(), m, clock, 2, 3);
    for (int i = 0; i < 6; ++i) REQUIRE(phone.create(Job{"job " + std::to_string(i), i, ""}));
    settle(clock, phone);
    std::vector<std::string> sids;
    for (const auto& [id, row] : api.records()) sids.push_back(id);
    REQUIRE(sids.size() == 6);
    api.show_broken(sids[2], "version", "seven");  // between good ones, in every page that holds it
    std::vector<std::string> warnings;
    keep_warnings(laptop, warnings);

    auto first = laptop.sync();
    REQUIRE(first);
    CHECK_FALSE(first->failure);
    CHECK(first->unapplied == 1);
    CHECK(laptop.list()->size() == 5);  // the good ones, on both sides of it
    CHECK(laptop.health()->unapplied == 1);
    CHECK(mentions(warnings, sids[2]));
    CHECK(mentions(warnings, "'version'"));

    // The next sync works: another writer's change arrives; the broken one is fetched once, and counted.
    api.edit(sids[0], "progress", 50);
    auto second = laptop.sync();
    REQUIRE(second);
    CHECK_FALSE(second->failure);
    CHECK(second->unapplied == 1);
    CHECK(laptop.list()->size() == 5);
    bool edited = false;
    for (const auto& r : laptop.list().value()) edited |= r.server_id == sids[0] && r.value.progress == 50;
    CHECK(edited);

    // Repaired (it did not change, so no delta shows it again): the fetch applies it.
    api.repair(sids[2]);
    auto third = laptop.sync();
    REQUIRE(third);
    CHECK(third->unapplied == 0);
    CHECK(laptop.list()->size() == 6);
    settle(clock, phone, laptop);
    CHECK(values(laptop) == values(phone));
}

TEST_CASE("rest sync, full list: a record without a usable id is counted, the others page on, none taken for deleted",
          "[http][rest][sync][refused]") {
    tether_test::minimal_api api{{.store_client_id = true, .paged = true}};
    auto m = tether_test::minimal_mapping();
    m.paging = tether::rest_paging::offset;
    m.limit_param = "limit";
    tether::manual_clock clock;
    auto phone = device(api.url(), m, clock, 1, 2);
    auto laptop = device(api.url(), m, clock, 2, 2);
    for (int i = 0; i < 5; ++i) REQUIRE(phone.create(Job{"job " + std::to_string(i), i, ""}));
    settle(clock, phone, laptop);
    REQUIRE(laptop.list()->size() == 5);
    REQUIRE(api.records().contains("3"));
    api.edit("3", "id", 3.5);  // no usable id, and still third in the list (pages of 2: it shares one)
    std::vector<std::string> warnings;
    keep_warnings(laptop, warnings);

    auto first = laptop.sync();
    REQUIRE(first);
    CHECK_FALSE(first->failure);
    CHECK(first->unapplied == 1);
    CHECK(laptop.list()->size() == 5);  // its local copy is not taken for deleted
    CHECK(mentions(warnings, "no usable id"));
    CHECK(mentions(warnings, "no deletion on the server is inferred"));

    // A device new to the list gets every other record: offset paging counted the broken one.
    auto tablet = device(api.url(), m, clock, 3, 2);
    auto fresh = tablet.sync();
    REQUIRE(fresh);
    CHECK_FALSE(fresh->failure);
    CHECK(fresh->unapplied == 1);
    CHECK(tablet.list()->size() == 4);

    // Changes go on; a deletion on the server waits while the list holds a record it cannot name.
    api.edit("4", "progress", 44);
    api.erase("5");
    clock.advance(1h);
    auto second = laptop.sync();
    REQUIRE(second);
    CHECK_FALSE(second->failure);
    bool edited = false;
    for (const auto& r : laptop.list().value()) edited |= r.server_id == "4" && r.value.progress == 44;
    CHECK(edited);
    CHECK(laptop.list()->size() == 5);

    // Repaired: the deletion is seen, and nothing is refused any more.
    api.edit("3", "id", 3);
    clock.advance(1h);
    auto third = laptop.sync();
    REQUIRE(third);
    CHECK(third->unapplied == 0);
    CHECK(laptop.list()->size() == 4);
}
