// End to end over HTTP: the transport conformance suite and an engine, against
// a loopback server behind the protocol's codec on 127.0.0.1.
#include "http/loopback_http.hpp"
#include "support/entities.hpp"

#include <tether/testing/transport_conformance.hpp>
#include <tether/tether.hpp>
#include <tether/transport/http.hpp>

#include <catch2/catch.hpp>

#include <string>

using tether_test::Job;

TEST_CASE("http_transport passes the transport conformance suite", "[http][conformance]") {
    tether_test::loopback_http backend;
    auto failures = tether::testing::check_transport(
        [&] { return tether::http_transport{backend.options("alice")}; });
    std::string all;
    for (const auto& f : failures) all += f.check + ": " + f.what + "\n";
    INFO(all);
    CHECK(failures.empty());
}

TEST_CASE("two engines sync over HTTP: create, edit, conflict, delete", "[http][conformance]") {
    tether_test::loopback_http backend;
    auto phone = tether::make_engine<Job>(tether::http_transport{backend.options("alice")}, tether::manual_clock{});
    auto laptop = tether::make_engine<Job>(tether::http_transport{backend.options("alice")}, tether::manual_clock{});

    auto job = phone.create(Job{"Standup memo", 0, "a.wav"}).value();
    auto pushed = phone.sync();
    REQUIRE(pushed);
    CHECK(pushed->pushed == 1);
    CHECK(phone.get(job.id)->status == tether::sync_status::synced);

    REQUIRE(laptop.sync());
    auto there = laptop.get(job.id);
    REQUIRE(there);
    CHECK(there->value.title == "Standup memo");

    REQUIRE(laptop.update(job.id, [](Job& j) { j.progress = 50; }));
    REQUIRE(laptop.sync());
    REQUIRE(phone.update(job.id, [](Job& j) { j.title = "Standup memo (final)"; }));
    auto report = phone.sync();  // stale base: a conflict, server wins by default
    REQUIRE(report);
    CHECK(phone.get(job.id)->value.progress == 50);

    REQUIRE(phone.remove(job.id));
    REQUIRE(phone.sync());
    REQUIRE(laptop.sync());
    CHECK_FALSE(laptop.get(job.id));
    CHECK(backend.server().records("alice", "jobs").empty());
}
