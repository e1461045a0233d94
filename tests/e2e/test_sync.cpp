// The real tether-server through tether::http_transport: the transport
// conformance suite, and two devices (each its own SQLite file) syncing through it.
#include "e2e/e2e.hpp"
#include "support/entities.hpp"

#include <tether/clock/manual.hpp>
#include <tether/core/status.hpp>
#include <tether/engine/sync_engine.hpp>
#include <tether/storage/sqlite.hpp>
#include <tether/testing/transport_conformance.hpp>
#include <tether/transport/http.hpp>

#include <catch2/catch.hpp>

#include <string>

using tether_test::Job;

TEST_CASE("http_transport to tether-server passes the transport conformance suite", "[e2e][conformance]") {
    tether_test::e2e_server server;
    for (std::uint64_t seed : {1u, 2u}) {  // twice on one server: the suite leaves other records alone
        tether::testing::transport_conformance_options o;
        o.seed = seed;
        auto failures =
            tether::testing::check_transport([&] { return tether::http_transport{server.options()}; }, o);
        std::string all;
        for (const auto& f : failures) all += f.check + ": " + f.what + "\n";
        INFO("seed " << seed << "\n" << all);
        CHECK(failures.empty());
    }
    CHECK(server.stop() == 0);
}

TEST_CASE("two devices, each on its own SQLite file, converge through tether-server", "[e2e][sync]") {
    tether_test::e2e_server server;
    tether_test::temp_dir files{"tether-e2e-devices"};
    auto phone_db = tether::sqlite_database::open(files.file("phone.db"));
    auto laptop_db = tether::sqlite_database::open(files.file("laptop.db"));
    REQUIRE(phone_db);
    REQUIRE(laptop_db);
    tether::manual_clock clock;
    auto phone = tether::make_engine<Job>(tether::sqlite_storage{*phone_db}, tether::http_transport{server.options()}, clock);
    auto laptop = tether::make_engine<Job>(tether::sqlite_storage{*laptop_db}, tether::http_transport{server.options()}, clock);

    // create
    auto job = phone.create(Job{"Standup memo", 0, "a.wav"});
    REQUIRE(job);
    auto pushed = phone.sync();
    REQUIRE(pushed);
    CHECK(pushed->pushed == 1);
    CHECK(phone.get(job->id)->status == tether::sync_status::synced);
    REQUIRE(laptop.sync());
    auto there = laptop.get(job->id);
    REQUIRE(there);
    CHECK(there->value == job->value);
    CHECK(there->server_id == phone.get(job->id)->server_id);

    // update, one way and back
    REQUIRE(laptop.update(job->id, [](Job& j) { j.progress = 50; }));
    REQUIRE(laptop.sync());
    REQUIRE(phone.sync());
    CHECK(phone.get(job->id)->value.progress == 50);

    // conflict: both edit the same version; the laptop's reaches the server first
    REQUIRE(laptop.update(job->id, [](Job& j) { j.progress = 80; }));
    REQUIRE(phone.update(job->id, [](Job& j) { j.title = "Standup memo (final)"; }));
    REQUIRE(laptop.sync());
    auto settled = phone.sync();
    REQUIRE(settled);
    CHECK(settled->conflicts >= 1);
    for (int i = 0; i < 3; ++i) {  // let each device see the other's last word
        REQUIRE(phone.sync());
        REQUIRE(laptop.sync());
    }
    auto p = phone.get(job->id);
    auto l = laptop.get(job->id);
    REQUIRE(p);
    REQUIRE(l);
    CHECK(p->value == l->value);
    CHECK(p->value.progress == 80);  // server wins by default: the laptop's edit stands
    CHECK(p->status == tether::sync_status::synced);
    CHECK(l->status == tether::sync_status::synced);

    // delete
    REQUIRE(phone.remove(job->id));
    REQUIRE(phone.sync());
    REQUIRE(laptop.sync());
    CHECK_FALSE(phone.get(job->id));
    CHECK_FALSE(laptop.get(job->id));
    auto left = tether::http_transport{server.options()}.pull("jobs", "", 100);
    REQUIRE(left);
    CHECK(left->records.empty());
    CHECK(left->tombstones.size() == 1);

    CHECK(server.stop() == 0);
}
