// Devices on real SQLite files syncing over rest_transport with a REST API of
// opaque ETags and `updatedAt` in unix milliseconds (rest_servers.hpp): a
// conflict by 412, a device reopened from its file (its transport has
// forgotten every tag) writing again, an edit and a soft delete behind the
// devices' backs, and both files agreeing with the server. Manual clocks.
#ifdef TETHER_HTTP_TESTS_SQLITE
#include "http/rest_mappings.hpp"
#include "http/rest_servers.hpp"
#include "support/entities.hpp"
#include "support/temp_dir.hpp"

#include <tether/storage/sqlite.hpp>
#include <tether/tether.hpp>
#include <tether/transport/rest.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

using tether_test::Job;
using namespace std::chrono_literals;

namespace {

tether::rest_mapping etag_mapping() {
    auto m = tether_test::versioned_mapping();
    m.version_field.clear();
    m.opaque_etag = true;
    m.updated_at_format = tether::rest_time_format::unix_ms;
    return m;
}

/// One device on its own SQLite file, syncing with `url`, on the test's clock.
auto device(const std::string& file, const std::string& url, const tether::manual_clock& clock, std::uint64_t seed) {
    auto db = tether::sqlite_database::open(file);
    REQUIRE(db);
    return tether::make_engine<Job>(tether::sqlite_storage{std::move(*db)},
                                    tether::rest_transport{tether_test::rest_options_for(url, etag_mapping())},
                                    tether::manual_clock{clock},
                                    tether::exponential_backoff{.base = 1s, .cap = 30s, .max_attempts = 0},
                                    tether::engine_options{.id_seed = seed, .pull_limit = 5});
}

using engine_type = decltype(device("", "", std::declval<const tether::manual_clock&>(), 0));

/// The local id of the record `sid` on `e`.
tether::local_id local_of(const engine_type& e, const std::string& sid) {
    for (const auto& r : e.list().value())
        if (r.server_id == sid) return r.id;
    FAIL("no record " << sid);
    return {};
}

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

TEST_CASE("rest sync on SQLite files: opaque ETags, unix-ms times, a device reopened from its file",
          "[http][rest][sync][sqlite]") {
    tether_test::versioned_api api{{.tick = true, .opaque_etags = true, .time_format = tether::rest_time_format::unix_ms}};
    tether_test::temp_dir dir{"tether-rest-sqlite"};
    tether::manual_clock clock;
    auto laptop = device(dir.file("laptop.db"), api.url(), clock, 2);
    tether::local_id memo;
    std::string sid;
    tether::local_id there;
    {
        auto phone = device(dir.file("phone.db"), api.url(), clock, 1);
        memo = phone.create(Job{"memo", 0, "a.wav"}).value().id;
        for (int i = 0; i < 12; ++i) REQUIRE(laptop.create(Job{"note " + std::to_string(i), i, ""}));
        settle(clock, phone, laptop);
        REQUIRE(api.live() == 13);
        REQUIRE(laptop.list()->size() == 13);
        sid = *phone.get(memo)->server_id;
        there = local_of(laptop, sid);
        CHECK(api.records().at(sid)["updatedAt"].is_number_integer());

        // A conflict: both edit from one tag; the second write gets 412, the server's copy wins.
        REQUIRE(phone.update(memo, [](Job& j) { j.title = "phone's"; }));
        REQUIRE(phone.sync());
        REQUIRE(laptop.update(there, [](Job& j) { j.title = "laptop's"; }));
        auto report = laptop.sync();
        REQUIRE(report);
        CHECK(report->conflicts == 1);
        settle(clock, phone, laptop);
        CHECK(laptop.get(there)->value.title == "phone's");
    }  // the phone quits

    // ... and opens its file again: a new transport, no tags kept.
    auto phone = device(dir.file("phone.db"), api.url(), clock, 1);
    REQUIRE(phone.get(memo)->value.title == "phone's");
    REQUIRE(phone.update(memo, [](Job& j) { j.progress = 70; }));
    settle(clock, phone, laptop);
    CHECK(api.records().at(sid)["progress"] == 70);
    CHECK(laptop.get(there)->value.progress == 70);

    // Another writer's edit and a soft delete on the server reach both files.
    std::string other;
    for (const auto& r : laptop.list().value())
        if (r.server_id != sid) other = *r.server_id;
    api.edit(sid, "progress", 99);
    api.erase(other);
    settle(clock, phone, laptop);
    REQUIRE(phone.get(memo));
    CHECK(phone.get(memo)->value.progress == 99);
    CHECK(phone.list()->size() == 12);
    CHECK(values(phone) == values(laptop));
    CHECK(api.live() == 12);
}
#endif
