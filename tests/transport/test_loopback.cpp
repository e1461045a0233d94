#include <tether/clock/manual.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/transport/loopback.hpp>
#include <tether/transport/transport.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace {

using tether::errc;
using tether::loopback_server;
using tether::loopback_transport;
using tether::push_op;
using tether::push_outcome;
using json = nlohmann::json;

tether::local_id make_id(std::uint64_t n) {
    return tether::local_id::from_parts(tether::manual_clock::default_start, static_cast<std::uint16_t>(n), n);
}

push_op create_op(const tether::local_id& id, json value) {
    return push_op{tether::op_kind::create, id, std::nullopt, 0, std::move(value)};
}

push_op update_op(const tether::server_record& r, std::uint64_t base, json fields) {
    return push_op{tether::op_kind::update, r.id.value_or(tether::local_id{}), r.server_id, base, std::move(fields)};
}

push_op remove_op(const tether::server_record& r, std::uint64_t base) {
    return push_op{tether::op_kind::remove, r.id.value_or(tether::local_id{}), r.server_id, base, nullptr};
}

// Pushes one op and returns its outcome (the request itself must succeed).
push_outcome push_one(loopback_transport& t, const push_op& op, const char* collection = "jobs") {
    auto r = t.push(collection, std::span<const push_op>{&op, 1});
    REQUIRE(r.has_value());
    REQUIRE(r->size() == 1);
    return r->front();
}

struct fixture {
    tether::manual_clock clock;
    loopback_server server{[c = clock] { return c.now(); }};
    loopback_transport alice{server, "alice"};
};

}  // namespace

TEST_CASE("loopback_transport is a transport policy", "[transport]") {
    STATIC_REQUIRE(tether::transport_policy<loopback_transport>);
    loopback_transport t;
    CHECK(t.max_batch() == 100);
    CHECK(t.has_change_feed());
    CHECK(t.token() == "local");
    auto created = push_one(t, create_op(make_id(1), {{"title", "x"}}));
    CHECK(created.outcome == push_outcome::kind::applied);
    CHECK(t.server().records("local", "jobs").size() == 1);
}

TEST_CASE("loopback create assigns ids and is idempotent on the local id", "[transport]") {
    fixture f;
    const auto id = make_id(1);
    auto first = push_one(f.alice, create_op(id, {{"title", "memo"}, {"n", 1}}));
    REQUIRE(first.outcome == push_outcome::kind::applied);
    CHECK(first.record.server_id == "s1");
    CHECK(first.record.id == id);
    CHECK(first.record.version == 1);
    CHECK(first.record.value == json{{"title", "memo"}, {"n", 1}});
    CHECK(first.record.updated_at == f.clock.now());

    f.clock.advance(std::chrono::seconds{5});
    auto again = push_one(f.alice, create_op(id, {{"title", "other"}}));
    REQUIRE(again.outcome == push_outcome::kind::applied);
    CHECK(again.record.server_id == first.record.server_id);
    CHECK(again.record.version == first.record.version);
    CHECK(again.record.value == first.record.value);
    CHECK(f.server.count_with_local_id("alice", "jobs", id) == 1);
    CHECK(f.server.records("alice", "jobs").size() == 1);

    auto second = push_one(f.alice, create_op(make_id(2), {{"title", "b"}}));
    CHECK(second.record.server_id == "s2");
    CHECK(second.record.version == 2);

    auto fetched = f.alice.fetch("jobs", "s1");
    REQUIRE(fetched.has_value());
    CHECK(fetched->value == first.record.value);
    auto missing = f.alice.fetch("jobs", "s99");
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().code == errc::not_found);
}

TEST_CASE("loopback update merges the sent fields when base_version matches", "[transport]") {
    fixture f;
    auto created = push_one(f.alice, create_op(make_id(1), {{"title", "memo"}, {"n", 1}})).record;
    f.clock.advance(std::chrono::seconds{1});
    auto updated = push_one(f.alice, update_op(created, created.version, {{"n", 2}, {"tag", "new"}}));
    REQUIRE(updated.outcome == push_outcome::kind::applied);
    CHECK(updated.record.version > created.version);
    CHECK(updated.record.value == json{{"title", "memo"}, {"n", 2}, {"tag", "new"}});
    CHECK(updated.record.updated_at == f.clock.now());
    CHECK(f.server.records("alice", "jobs").at(0).value == updated.record.value);

    SECTION("a stale base_version is a conflict carrying the current record") {
        auto stale = push_one(f.alice, update_op(created, created.version, {{"n", 3}}));
        REQUIRE(stale.outcome == push_outcome::kind::conflict);
        CHECK(stale.record.version == updated.record.version);
        CHECK(stale.record.value == updated.record.value);
        CHECK(f.server.records("alice", "jobs").at(0).value["n"] == 2);
    }
    SECTION("an update of an unknown record is not_found") {
        auto ghost = created;
        ghost.server_id = "s42";
        ghost.id = make_id(42);
        auto r = push_one(f.alice, update_op(ghost, 1, {{"n", 3}}));
        REQUIRE(r.outcome == push_outcome::kind::rejected);
        CHECK(r.failure.code == errc::not_found);
    }
    SECTION("an update naming a server id no record holds (lost in a restore) finds the record by local id") {
        auto lost = created;
        lost.server_id = "s42";
        auto r = push_one(f.alice, update_op(lost, 1, {{"n", 3}}));
        REQUIRE(r.outcome == push_outcome::kind::conflict);  // its base is another record's version
        CHECK(r.record.server_id == created.server_id);
        CHECK(r.record.value == updated.record.value);
    }
    SECTION("an update without a server id finds the record by local id") {
        push_op op{tether::op_kind::update, *created.id, std::nullopt, updated.record.version, {{"n", 9}}};
        auto r = push_one(f.alice, op);
        REQUIRE(r.outcome == push_outcome::kind::applied);
        CHECK(r.record.value["n"] == 9);
    }
    SECTION("a malformed op is rejected with errc::protocol, the rest of the batch applies") {
        std::vector<push_op> ops{update_op(created, updated.record.version, json::array({1, 2})),
                                 create_op(make_id(2), {{"title", "ok"}}), create_op(make_id(3), "not an object")};
        auto r = f.alice.push("jobs", ops);
        REQUIRE(r.has_value());
        REQUIRE(r->size() == 3);
        CHECK((*r)[0].outcome == push_outcome::kind::rejected);
        CHECK((*r)[0].failure.code == errc::protocol);
        CHECK((*r)[1].outcome == push_outcome::kind::applied);
        CHECK((*r)[2].failure.code == errc::protocol);
        CHECK(f.server.records("alice", "jobs").size() == 2);
    }
}

TEST_CASE("loopback remove leaves a tombstone a pull reports", "[transport]") {
    fixture f;
    const auto id = make_id(1);
    auto created = push_one(f.alice, create_op(id, {{"title", "memo"}})).record;
    auto removed = push_one(f.alice, remove_op(created, created.version));
    REQUIRE(removed.outcome == push_outcome::kind::applied);
    CHECK(removed.record.version > created.version);
    CHECK(f.server.records("alice", "jobs").empty());
    CHECK(f.server.count_with_local_id("alice", "jobs", id) == 1);

    auto page = f.alice.pull("jobs", "", 10);
    REQUIRE(page.has_value());
    CHECK(page->records.empty());
    REQUIRE(page->tombstones.size() == 1);
    CHECK(page->tombstones[0].server_id == created.server_id);
    CHECK(page->tombstones[0].id == id);
    CHECK(page->tombstones[0].version == removed.record.version);

    CHECK(f.alice.fetch("jobs", created.server_id).error().code == errc::not_found);

    SECTION("removing again is applied and changes nothing") {
        auto again = push_one(f.alice, remove_op(created, created.version));
        CHECK(again.outcome == push_outcome::kind::applied);
        CHECK(again.record.version == removed.record.version);
        auto ghost = created;
        ghost.server_id = "s77";
        CHECK(push_one(f.alice, remove_op(ghost, 3)).outcome == push_outcome::kind::applied);
        auto after = f.alice.pull("jobs", page->next_cursor, 10);
        REQUIRE(after.has_value());
        CHECK(after->tombstones.empty());
        CHECK(after->records.empty());
    }
    SECTION("creating a deleted local id again is not_found, never a second record") {
        auto r = push_one(f.alice, create_op(id, {{"title", "memo"}}));
        REQUIRE(r.outcome == push_outcome::kind::rejected);
        CHECK(r.failure.code == errc::not_found);
        CHECK(f.server.count_with_local_id("alice", "jobs", id) == 1);
    }
}

TEST_CASE("loopback remove with a stale base_version is a conflict", "[transport]") {
    fixture f;
    auto created = push_one(f.alice, create_op(make_id(1), {{"n", 1}})).record;
    auto updated = push_one(f.alice, update_op(created, created.version, {{"n", 2}})).record;
    auto r = push_one(f.alice, remove_op(created, created.version));
    REQUIRE(r.outcome == push_outcome::kind::conflict);
    CHECK(r.record.version == updated.version);
    CHECK(f.server.records("alice", "jobs").size() == 1);

    SECTION("a remove naming the record only by local id, base 0, skips the version check") {
        push_op op{tether::op_kind::remove, *created.id, std::nullopt, 0, nullptr};
        CHECK(push_one(f.alice, op).outcome == push_outcome::kind::applied);
        CHECK(f.server.records("alice", "jobs").empty());
    }
}

TEST_CASE("loopback pull pages through changes with limit and cursor", "[transport]") {
    fixture f;
    std::vector<push_op> ops;
    for (std::uint64_t i = 1; i <= 5; ++i) ops.push_back(create_op(make_id(i), {{"n", i}}));
    REQUIRE(f.alice.push("jobs", ops).has_value());

    auto p1 = f.alice.pull("jobs", "", 2);
    REQUIRE(p1.has_value());
    REQUIRE(p1->records.size() == 2);
    CHECK(p1->records[0].version == 1);
    CHECK(p1->records[1].version == 2);
    CHECK(p1->next_cursor == "2");
    CHECK(p1->has_more);

    auto p2 = f.alice.pull("jobs", p1->next_cursor, 2);
    REQUIRE(p2.has_value());
    REQUIRE(p2->records.size() == 2);
    CHECK(p2->records[0].value["n"] == 3);
    CHECK(p2->next_cursor == "4");
    CHECK(p2->has_more);

    auto p3 = f.alice.pull("jobs", p2->next_cursor, 2);
    REQUIRE(p3.has_value());
    REQUIRE(p3->records.size() == 1);
    CHECK(p3->next_cursor == "5");
    CHECK_FALSE(p3->has_more);

    auto empty = f.alice.pull("jobs", "5", 2);
    REQUIRE(empty.has_value());
    CHECK(empty->records.empty());
    CHECK(empty->next_cursor == "5");
    CHECK_FALSE(empty->has_more);

    // A change moves a record to the end of the feed.
    auto first = p1->records[0];
    REQUIRE(push_one(f.alice, update_op(first, first.version, {{"n", 100}})).outcome == push_outcome::kind::applied);
    auto p4 = f.alice.pull("jobs", "5", 0);  // limit 0 counts as 1
    REQUIRE(p4.has_value());
    REQUIRE(p4->records.size() == 1);
    CHECK(p4->records[0].server_id == first.server_id);
    CHECK(p4->records[0].version == 6);
    CHECK(p4->next_cursor == "6");

    auto all = f.alice.pull("jobs", "", 100);
    REQUIRE(all.has_value());
    CHECK(all->records.size() == 5);
    CHECK(all->records.back().server_id == first.server_id);

    for (const char* bad : {"abc", "-1", "1x", " 1", "99999999999999999999999"}) {
        auto r = f.alice.pull("jobs", bad, 10);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == errc::invalid_argument);
    }
}

TEST_CASE("loopback full-list mode returns every live record and no tombstones", "[transport]") {
    fixture f;
    auto a = push_one(f.alice, create_op(make_id(1), {{"n", 1}})).record;
    push_one(f.alice, create_op(make_id(2), {{"n", 2}}));
    REQUIRE(push_one(f.alice, remove_op(a, a.version)).outcome == push_outcome::kind::applied);
    f.server.set_change_feed(false);
    CHECK_FALSE(f.alice.has_change_feed());
    for (const char* cursor : {"", "3", "garbage"}) {
        auto page = f.alice.pull("jobs", cursor, 1);
        REQUIRE(page.has_value());
        REQUIRE(page->records.size() == 1);
        CHECK(page->records[0].value["n"] == 2);
        CHECK(page->tombstones.empty());
        CHECK_FALSE(page->has_more);
        CHECK(page->next_cursor.empty());
    }
    f.server.set_change_feed(true);
    CHECK(f.alice.has_change_feed());
}

TEST_CASE("loopback users never see each other's records", "[transport]") {
    fixture f;
    loopback_transport bob{f.server, "bob"};
    const auto id = make_id(1);
    auto mine = push_one(f.alice, create_op(id, {{"owner", "alice"}})).record;

    auto page = bob.pull("jobs", "", 10);
    REQUIRE(page.has_value());
    CHECK(page->records.empty());
    CHECK(bob.fetch("jobs", mine.server_id).error().code == errc::not_found);
    CHECK(push_one(bob, update_op(mine, mine.version, {{"owner", "bob"}})).failure.code == errc::not_found);

    // The same local id is a separate record per user.
    auto theirs = push_one(bob, create_op(id, {{"owner", "bob"}})).record;
    CHECK(theirs.server_id != mine.server_id);
    CHECK(f.server.records("alice", "jobs").at(0).value["owner"] == "alice");
    CHECK(f.server.records("bob", "jobs").size() == 1);
    CHECK(f.server.records("alice", "other").empty());
}

TEST_CASE("loopback revoked or empty tokens are unauthorized", "[transport]") {
    fixture f;
    f.server.revoke("alice");
    auto r = f.alice.push("jobs", std::vector<push_op>{create_op(make_id(1), {{"n", 1}})});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::unauthorized);
    CHECK(r.error().http_status == 401);
    CHECK(f.alice.pull("jobs", "", 1).error().code == errc::unauthorized);
    CHECK(f.alice.fetch("jobs", "s1").error().code == errc::unauthorized);
    CHECK(f.server.records("alice", "jobs").empty());

    f.server.restore("alice");
    CHECK(f.alice.pull("jobs", "", 1).has_value());

    f.alice.set_token("");
    CHECK(f.alice.pull("jobs", "", 1).error().code == errc::unauthorized);
    CHECK(f.server.faults() == tether::fault_counts{});  // auth failures are not injected faults
}

TEST_CASE("loopback put and erase edit records server-side", "[transport]") {
    fixture f;
    auto created = push_one(f.alice, create_op(make_id(1), {{"n", 1}})).record;
    auto put = f.server.put("alice", "jobs", created.server_id, {{"n", 5}});
    REQUIRE(put.has_value());
    CHECK(put->version == 2);
    CHECK(put->id == created.id);
    auto fresh = f.server.put("alice", "jobs", "", {{"n", 7}});
    REQUIRE(fresh.has_value());
    CHECK(fresh->server_id == "s2");
    CHECK_FALSE(fresh->id.has_value());
    CHECK(f.server.put("alice", "jobs", "", json::array()).error().code == errc::invalid_argument);

    REQUIRE(f.server.erase("alice", "jobs", created.server_id).has_value());
    CHECK(f.server.erase("alice", "jobs", "s404").error().code == errc::not_found);
    auto page = f.alice.pull("jobs", "1", 10);
    REQUIRE(page.has_value());
    REQUIRE(page->records.size() == 1);
    CHECK(page->records[0].server_id == "s2");
    REQUIRE(page->tombstones.size() == 1);
    CHECK(page->tombstones[0].version == 4);
}

TEST_CASE("loopback fail_next fails requests before anything applies", "[transport]") {
    fixture f;
    f.server.fail_next(2, loopback_server::rate_limited_error(std::chrono::seconds{30}));
    std::vector<push_op> ops{create_op(make_id(1), {{"n", 1}})};
    auto r1 = f.alice.push("jobs", ops);
    REQUIRE_FALSE(r1.has_value());
    CHECK(r1.error().code == errc::rate_limited);
    CHECK(r1.error().http_status == 429);
    CHECK(r1.error().retry_after == std::chrono::milliseconds{30000});
    auto r2 = f.alice.pull("jobs", "", 1);
    CHECK(r2.error().code == errc::rate_limited);
    CHECK(f.server.records("alice", "jobs").empty());
    CHECK(f.alice.push("jobs", ops).has_value());
    CHECK(f.server.records("alice", "jobs").size() == 1);
    CHECK(f.server.faults().failed_injected == 2);
    CHECK(f.server.requests() == 3);

    CHECK(loopback_server::transient_error().code == errc::transient);
    CHECK(loopback_server::unauthorized_error().http_status == 401);
    CHECK(loopback_server::rejected_error().code == errc::rejected);
    CHECK(loopback_server::rejected_error().http_status == 400);

    f.server.reset_fault_counts();
    CHECK(f.server.faults() == tether::fault_counts{});
}

TEST_CASE("loopback drop_next_requests loses the request before it applies", "[transport]") {
    fixture f;
    f.server.drop_next_requests(1);
    std::vector<push_op> ops{create_op(make_id(1), {{"n", 1}})};
    auto r = f.alice.push("jobs", ops);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::transient);
    CHECK(r.error().message == "request lost");
    CHECK(f.server.records("alice", "jobs").empty());
    CHECK(f.server.faults().dropped_requests == 1);
    CHECK(f.alice.push("jobs", ops).has_value());
    CHECK(f.server.records("alice", "jobs").size() == 1);
}

TEST_CASE("loopback drop_next_responses applies, loses the answer, and a retry is idempotent", "[transport]") {
    fixture f;
    int hook_calls = 0;
    f.server.set_push_hook([&] { ++hook_calls; });
    f.server.drop_next_responses(1);
    const auto id = make_id(1);
    std::vector<push_op> ops{create_op(id, {{"n", 1}})};
    auto lost = f.alice.push("jobs", ops);
    REQUIRE_FALSE(lost.has_value());
    CHECK(lost.error().code == errc::transient);
    CHECK(lost.error().message == "response lost");
    CHECK(hook_calls == 1);
    REQUIRE(f.server.records("alice", "jobs").size() == 1);
    const auto stored = f.server.records("alice", "jobs").front();

    auto retried = f.alice.push("jobs", ops);
    REQUIRE(retried.has_value());
    CHECK(retried->at(0).outcome == push_outcome::kind::applied);
    CHECK(retried->at(0).record.server_id == stored.server_id);
    CHECK(retried->at(0).record.version == stored.version);
    CHECK(f.server.count_with_local_id("alice", "jobs", id) == 1);
    CHECK(f.server.faults().dropped_responses == 1);

    f.server.drop_next_responses(1);
    CHECK(f.alice.pull("jobs", "", 10).error().message == "response lost");
    CHECK(f.alice.pull("jobs", "", 10)->records.size() == 1);
}

TEST_CASE("loopback poison rejects one record's ops, the rest of the batch applies", "[transport]") {
    fixture f;
    const auto bad = make_id(2);
    f.server.poison(bad);
    std::vector<push_op> ops{create_op(make_id(1), {{"n", 1}}), create_op(bad, {{"n", 2}}),
                             create_op(make_id(3), {{"n", 3}})};
    auto r = f.alice.push("jobs", ops);
    REQUIRE(r.has_value());
    REQUIRE(r->size() == 3);
    CHECK((*r)[0].outcome == push_outcome::kind::applied);
    CHECK((*r)[1].outcome == push_outcome::kind::rejected);
    CHECK((*r)[1].failure.code == errc::rejected);
    CHECK_FALSE(tether::is_retryable((*r)[1].failure));
    CHECK((*r)[2].outcome == push_outcome::kind::applied);
    CHECK(f.server.records("alice", "jobs").size() == 2);
    CHECK(f.server.count_with_local_id("alice", "jobs", bad) == 0);
    CHECK(f.server.faults().rejected_ops == 1);

    f.server.unpoison(bad);
    auto again = f.alice.push("jobs", std::span<const push_op>{&ops[1], 1});
    REQUIRE(again.has_value());
    CHECK(again->at(0).outcome == push_outcome::kind::applied);
}

namespace {

// Runs a fixed script of requests against `server`; returns a trace of what happened.
std::vector<std::string> run_script(loopback_server server) {
    loopback_transport t{server, "alice"};
    std::vector<std::string> trace;
    for (std::uint64_t i = 1; i <= 200; ++i) {
        std::vector<push_op> ops{create_op(make_id(i), {{"n", i}}), create_op(make_id(1000 + i), {{"n", i}})};
        auto r = t.push("jobs", ops);
        if (!r) {
            trace.push_back(std::string{tether::to_string(r.error().code)} + ":" + r.error().message);
        } else {
            std::string s;
            for (const auto& o : *r) s += o.outcome == push_outcome::kind::applied ? "A" : "R";
            trace.push_back(s);
        }
        auto p = t.pull("jobs", "", 1);
        trace.push_back(p ? std::string{"page"} : std::string{tether::to_string(p.error().code)});
    }
    return trace;
}

}  // namespace

TEST_CASE("loopback random faults are deterministic for a seed and counted", "[transport]") {
    tether::fault_rates rates;
    rates.drop_request = 0.1;
    rates.drop_response = 0.1;
    rates.transient = 0.1;
    rates.rate_limited = 0.1;
    rates.unauthorized = 0.05;
    rates.reject_op = 0.1;
    rates.retry_after = std::chrono::milliseconds{250};

    loopback_server a;
    loopback_server b;
    a.set_random_faults(rates, 42);
    b.set_random_faults(rates, 42);
    const auto trace_a = run_script(a);
    const auto trace_b = run_script(b);
    CHECK(trace_a == trace_b);
    CHECK(a.faults() == b.faults());
    CHECK(a.records("alice", "jobs").size() == b.records("alice", "jobs").size());

    const auto counts = a.faults();
    CHECK(counts.dropped_requests > 0);
    CHECK(counts.dropped_responses > 0);
    CHECK(counts.transient > 0);
    CHECK(counts.rate_limited > 0);
    CHECK(counts.unauthorized > 0);
    CHECK(counts.rejected_ops > 0);
    CHECK(counts.failed_injected == 0);
    CHECK(a.requests() == 400);
    // Roughly 45% of 400 requests meet a request-level fault.
    const auto request_faults = counts.dropped_requests + counts.dropped_responses + counts.transient +
                                counts.rate_limited + counts.unauthorized;
    CHECK(request_faults > 120);
    CHECK(request_faults < 240);

    // The trace and the counters agree on request-level faults that fail early.
    const auto failed = std::count_if(trace_a.begin(), trace_a.end(), [](const std::string& s) {
        return s != "page" && s.find_first_not_of("AR") != std::string::npos;
    });
    CHECK(static_cast<std::uint64_t>(failed) ==
          counts.dropped_requests + counts.dropped_responses + counts.transient + counts.rate_limited +
              counts.unauthorized);

    // A random unauthorized fault does not revoke the token: later requests get through.
    const auto unauthorized = std::find_if(trace_a.begin(), trace_a.end(),
                                           [](const std::string& s) { return s.rfind("unauthorized", 0) == 0; });
    REQUIRE(unauthorized != trace_a.end());
    CHECK(std::find(unauthorized, trace_a.end(), std::string{"page"}) != trace_a.end());

    // Another seed, other faults.
    loopback_server c;
    c.set_random_faults(rates, 7);
    const auto trace_c = run_script(c);
    CHECK(trace_c != trace_a);

    loopback_server d;
    d.set_random_faults(rates, 42);
    d.clear_random_faults();
    const auto clean = run_script(d);
    CHECK(d.faults() == tether::fault_counts{});
    CHECK(std::all_of(clean.begin(), clean.end(), [](const std::string& s) { return s == "AA" || s == "page"; }));
    CHECK(d.count_with_local_id("alice", "jobs", make_id(1)) == 1);
}

TEST_CASE("loopback push hook runs after the push applied, outside the lock", "[transport]") {
    fixture f;
    std::size_t seen = 0;
    f.server.set_push_hook([&] {
        seen = f.server.records("alice", "jobs").size();  // would deadlock if called under the lock
    });
    REQUIRE(f.alice.push("jobs", std::vector<push_op>{create_op(make_id(1), {{"n", 1}})}).has_value());
    CHECK(seen == 1);

    f.server.fail_next(1, loopback_server::transient_error());
    seen = 99;
    CHECK_FALSE(f.alice.push("jobs", std::vector<push_op>{create_op(make_id(2), {{"n", 2}})}).has_value());
    CHECK(seen == 99);  // nothing applied: no hook

    f.server.set_push_hook({});
    CHECK(f.alice.push("jobs", std::vector<push_op>{create_op(make_id(2), {{"n", 2}})}).has_value());
    CHECK(seen == 99);
}

TEST_CASE("loopback push beyond max_batch is refused whole", "[transport]") {
    tether::manual_clock clock;
    loopback_server server{[clock] { return clock.now(); }};
    loopback_transport t{server, "alice", 2};
    CHECK(t.max_batch() == 2);
    std::vector<push_op> ops;
    for (std::uint64_t i = 1; i <= 3; ++i) ops.push_back(create_op(make_id(i), {{"n", i}}));
    auto r = t.push("jobs", ops);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::too_large);
    CHECK(r.error().http_status == 413);
    CHECK(server.records("alice", "jobs").empty());
    CHECK(t.push("jobs", std::span<const push_op>{ops}.first(2)).has_value());
    CHECK(server.records("alice", "jobs").size() == 2);
    CHECK(loopback_transport{server, "alice", 0}.max_batch() == 1);
}

TEST_CASE("loopback server copies share one thread-safe server", "[transport]") {
    loopback_server server;
    std::vector<std::thread> threads;
    for (std::uint64_t t = 0; t < 4; ++t) {
        threads.emplace_back([server, t] {  // each thread its own handle and transport
            loopback_transport device{server, "alice"};
            for (std::uint64_t i = 1; i <= 50; ++i) {
                // Every thread creates the same 50 shared ids, plus 50 of its own.
                std::vector<push_op> ops{create_op(make_id(i), {{"n", i}}),
                                         create_op(make_id(1000 * (t + 1) + i), {{"t", t}})};
                (void)device.push("jobs", ops);
                (void)device.pull("jobs", "", 10);
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(server.records("alice", "jobs").size() == 50 + 4 * 50);
    CHECK(server.count_with_local_id("alice", "jobs", make_id(7)) == 1);
    CHECK(server.requests() == 4 * 100);
}

// ---- the hostile server's knobs ----------------------------------------------

TEST_CASE("loopback marks a create answered with a record it already held as replayed", "[transport]") {
    fixture f;
    const auto id = make_id(1);
    auto first = push_one(f.alice, create_op(id, {{"n", 1}}));
    CHECK(first.outcome == push_outcome::kind::applied);
    CHECK_FALSE(first.replayed);

    auto again = push_one(f.alice, create_op(id, {{"n", 2}}));  // its first response was "lost"
    CHECK(again.outcome == push_outcome::kind::applied);
    CHECK(again.replayed);
    CHECK(again.record.value == json{{"n", 1}});  // what the server holds, not what was sent
    CHECK(f.server.faults().replayed_creates == 1);

    // Changed since its create: the replay is a conflict, and still a replay.
    REQUIRE(f.server.put("alice", "jobs", first.record.server_id, {{"n", 9}}).has_value());
    auto conflicting = push_one(f.alice, create_op(id, {{"n", 3}}));
    CHECK(conflicting.outcome == push_outcome::kind::conflict);
    CHECK(conflicting.replayed);
    CHECK(conflicting.record.value == json{{"n", 9}});
    CHECK(f.server.faults().replayed_creates == 2);

    // Other outcomes are never replays.
    CHECK_FALSE(push_one(f.alice, update_op(conflicting.record, conflicting.record.version, {{"n", 4}})).replayed);
}

TEST_CASE("loopback create filler fills server-side fields on create only", "[transport]") {
    fixture f;
    int calls = 0;
    f.server.set_create_filler([&](json& v) {
        ++calls;
        v["created_by_server"] = calls;
    });
    const auto id = make_id(1);
    auto created = push_one(f.alice, create_op(id, {{"n", 1}}));
    REQUIRE(created.outcome == push_outcome::kind::applied);
    CHECK(created.record.value == json{{"n", 1}, {"created_by_server", 1}});  // the answer differs from what was sent
    CHECK(f.server.records("alice", "jobs").front().value == created.record.value);
    CHECK(f.server.faults().filled_creates == 1);

    auto replay = push_one(f.alice, create_op(id, {{"n", 1}}));
    CHECK(replay.replayed);
    CHECK(replay.record.value == created.record.value);
    CHECK(calls == 1);  // not called for a replay...
    auto upd = push_one(f.alice, update_op(created.record, created.record.version, {{"n", 2}}));
    CHECK(upd.record.value == json{{"n", 2}, {"created_by_server", 1}});
    REQUIRE(f.server.put("alice", "jobs", "", {{"n", 7}}).has_value());
    CHECK(calls == 1);  // ...an update, or a put

    // A filler that changes nothing is not counted; one that breaks the value rejects the create.
    f.server.set_create_filler([](json&) {});
    CHECK(push_one(f.alice, create_op(make_id(2), {{"n", 2}})).outcome == push_outcome::kind::applied);
    CHECK(f.server.faults().filled_creates == 1);
    f.server.set_create_filler([](json& v) { v = 5; });
    auto broken = push_one(f.alice, create_op(make_id(3), {{"n", 3}}));
    CHECK(broken.outcome == push_outcome::kind::rejected);
    CHECK(broken.failure.code == errc::protocol);

    f.server.set_create_filler({});  // off
    CHECK(push_one(f.alice, create_op(make_id(4), {{"n", 4}})).record.value == json{{"n", 4}});
}

TEST_CASE("loopback can omit local ids from pull pages", "[transport]") {
    fixture f;
    auto a = push_one(f.alice, create_op(make_id(1), {{"n", 1}})).record;
    auto b = push_one(f.alice, create_op(make_id(2), {{"n", 2}})).record;
    REQUIRE(push_one(f.alice, remove_op(b, b.version)).outcome == push_outcome::kind::applied);

    f.server.set_omit_local_ids(true);
    auto page = f.alice.pull("jobs", "", 10);
    REQUIRE(page.has_value());
    REQUIRE(page->records.size() == 1);
    CHECK_FALSE(page->records[0].id.has_value());
    CHECK(page->records[0].server_id == a.server_id);
    REQUIRE(page->tombstones.size() == 1);
    CHECK_FALSE(page->tombstones[0].id.has_value());
    CHECK(f.server.faults().omitted_local_ids == 2);
    CHECK(f.alice.fetch("jobs", a.server_id)->id == a.id);  // fetch and push answers keep theirs
    CHECK(push_one(f.alice, create_op(make_id(3), {{"n", 3}})).record.id == make_id(3));

    f.server.set_change_feed(false);  // the full list too
    CHECK_FALSE(f.alice.pull("jobs", "", 10)->records.front().id.has_value());
    f.server.set_change_feed(true);

    f.server.set_omit_local_ids(false);
    CHECK(f.alice.pull("jobs", "", 10)->records.front().id == a.id);

    tether::fault_rates rates;
    rates.omit_local_id = 1.0;
    f.server.set_random_faults(rates, 7);
    CHECK_FALSE(f.alice.pull("jobs", "", 10)->records.front().id.has_value());
}

TEST_CASE("loopback bad page items", "[transport]") {
    fixture f;
    auto a = push_one(f.alice, create_op(make_id(1), {{"title", "a"}, {"n", 1}})).record;

    SECTION("nil local id, before its source") {
        f.server.bad_next_pages(tether::bad_item::nil_local_id, 1);
        auto page = f.alice.pull("jobs", "", 10);
        REQUIRE(page->records.size() == 2);
        CHECK(page->records[0].id == tether::local_id{});
        CHECK(page->records[0].server_id == a.server_id);
        CHECK(page->records[1].id == a.id);
    }
    SECTION("empty server id") {
        f.server.bad_next_pages(tether::bad_item::empty_server_id, 1);
        auto page = f.alice.pull("jobs", "", 10);
        REQUIRE(page->records.size() == 2);
        CHECK(page->records[1].server_id.empty());
        CHECK_FALSE(page->records[1].id.has_value());
        CHECK(page->records[1].value == a.value);
    }
    SECTION("tombstone with an empty server id and a live record's local id") {
        f.server.bad_next_pages(tether::bad_item::empty_server_id_tombstone, 1);
        auto page = f.alice.pull("jobs", "", 10);
        REQUIRE(page->tombstones.size() == 1);
        CHECK(page->tombstones[0].server_id.empty());
        CHECK(page->tombstones[0].id == a.id);
        CHECK(f.server.records("alice", "jobs").size() == 1);  // nothing was deleted
    }
    SECTION("duplicate server id with a decoy value and an unused local id") {
        f.server.bad_next_pages(tether::bad_item::duplicate_server_id, 1);
        auto page = f.alice.pull("jobs", "", 10);
        REQUIRE(page->records.size() == 2);
        CHECK(page->records[1].server_id == a.server_id);
        CHECK(page->records[1].version == a.version);
        CHECK(page->records[1].id != a.id);
        CHECK(page->records[1].value == json{{"title", "a~dup"}, {"n", 1}});
    }
    CHECK(f.server.faults().bad_page_items == 1);
    CHECK(f.alice.pull("jobs", "", 10)->records.size() == 1);  // only the next page
}

TEST_CASE("loopback bad pages wait for a page with a source, and can come at random", "[transport]") {
    fixture f;
    f.server.bad_next_pages(tether::bad_item::nil_local_id, 2);
    CHECK(f.alice.pull("jobs", "", 10)->records.empty());  // no source yet: nothing added, nothing counted
    CHECK(f.server.faults().bad_page_items == 0);
    auto a = push_one(f.alice, create_op(make_id(1), {{"n", 1}})).record;
    f.server.drop_next_responses(1);
    CHECK_FALSE(f.alice.pull("jobs", "", 10).has_value());  // a dropped page does not count
    CHECK(f.alice.pull("jobs", "", 10)->records.size() == 2);
    CHECK(f.alice.pull("jobs", "", 10)->records.size() == 2);
    CHECK(f.alice.pull("jobs", "", 10)->records.size() == 1);
    CHECK(f.server.faults().bad_page_items == 2);
    f.server.bad_next_pages(tether::bad_item::nil_local_id, 5);
    f.server.bad_next_pages(tether::bad_item::nil_local_id, 0);  // a second call replaces the first
    CHECK(f.alice.pull("jobs", "", 10)->records.size() == 1);

    tether::fault_rates rates;
    rates.bad_page_item = 1.0;
    f.server.set_random_faults(rates, 11);
    for (int i = 0; i < 20; ++i) {
        auto page = f.alice.pull("jobs", "", 10);
        REQUIRE(page.has_value());
        CHECK(page->records.size() + page->tombstones.size() == 2);
    }
    CHECK(f.server.faults().bad_page_items == 22);
    CHECK(f.server.records("alice", "jobs").size() == 1);
    CHECK(f.server.records("alice", "jobs").front().value == a.value);
}

TEST_CASE("loopback value limit refuses a push holding a too large value, whole", "[transport]") {
    fixture f;
    f.server.set_value_limit(64);
    const std::string big(100, 'x');
    std::vector<push_op> ops{create_op(make_id(1), {{"n", 1}}), create_op(make_id(2), {{"t", big}}),
                             create_op(make_id(3), {{"n", 3}})};
    auto r = f.alice.push("jobs", ops);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::too_large);
    CHECK(r.error().http_status == 413);
    CHECK(f.server.records("alice", "jobs").empty());  // nothing of it applied
    CHECK(f.server.faults().too_large == 1);

    // Split: the small ones go through, the big one alone fails.
    auto small = f.alice.push("jobs", std::vector<push_op>{ops[0], ops[2]});
    REQUIRE(small.has_value());
    CHECK(f.server.records("alice", "jobs").size() == 2);
    CHECK(f.alice.push("jobs", std::span<const push_op>{&ops[1], 1}).error().code == errc::too_large);

    // An update counts only the fields it sends.
    auto rec = small->at(0).record;
    CHECK(push_one(f.alice, update_op(rec, rec.version, {{"n", 5}})).outcome == push_outcome::kind::applied);
    CHECK(f.alice.push("jobs", std::vector<push_op>{update_op(rec, rec.version + 1, {{"t", big}})})
              .error()
              .code == errc::too_large);
    CHECK(f.server.faults().too_large == 3);

    f.server.set_value_limit(0);  // no limit
    CHECK(push_one(f.alice, ops[1]).outcome == push_outcome::kind::applied);
}

TEST_CASE("loopback restore takes the server back in time and expires every cursor", "[transport]") {
    fixture f;
    auto a = push_one(f.alice, create_op(make_id(1), {{"n", 1}})).record;
    auto b = push_one(f.alice, create_op(make_id(2), {{"n", 2}})).record;
    REQUIRE(push_one(f.alice, create_op(make_id(1), {{"n", 1}}), "notes").outcome == push_outcome::kind::applied);
    const auto whole = f.server.snapshot();
    const auto jobs = f.server.snapshot("alice", "jobs");

    // Changes after the snapshot.
    REQUIRE(push_one(f.alice, update_op(a, a.version, {{"n", 10}})).outcome == push_outcome::kind::applied);
    REQUIRE(push_one(f.alice, remove_op(b, b.version)).outcome == push_outcome::kind::applied);
    auto c = push_one(f.alice, create_op(make_id(3), {{"n", 3}})).record;
    REQUIRE(push_one(f.alice, create_op(make_id(2), {{"n", 2}}), "notes").outcome == push_outcome::kind::applied);
    auto before = f.alice.pull("jobs", "", 10);
    REQUIRE(before.has_value());
    const std::string old_cursor = before->next_cursor;  // "5"
    CHECK(old_cursor == "5");

    CHECK(f.server.last_change("alice", "jobs") == 5);
    f.server.restore(jobs);
    CHECK(f.server.faults().restores == 1);
    CHECK(f.server.last_change("alice", "jobs") == 6);  // a mark past every issued number
    CHECK(f.server.last_change("bob", "jobs") == 0);
    auto recs = f.server.records("alice", "jobs");
    REQUIRE(recs.size() == 2);  // a and b as they were; c forgotten
    CHECK(recs[0].value == json{{"n", 1}});
    CHECK(recs[1].server_id == b.server_id);
    CHECK_FALSE(f.server.find("alice", "jobs", c.server_id).has_value());
    CHECK(f.server.count_with_local_id("alice", "jobs", make_id(3)) == 0);
    CHECK(f.server.records("alice", "notes").size() == 2);  // the scoped restore touched nothing else

    // Every cursor issued before the restore expires; a full pull works and ends past them.
    for (const char* stale : {"1", "3", "5"}) {
        auto p = f.alice.pull("jobs", stale, 10);
        REQUIRE_FALSE(p.has_value());
        CHECK(p.error().code == errc::cursor_expired);
        CHECK(p.error().http_status == 410);
    }
    CHECK(f.server.faults().expired_cursors == 3);
    auto fresh = f.alice.pull("jobs", "", 10);
    REQUIRE(fresh.has_value());
    CHECK(fresh->records.size() == 2);
    CHECK(fresh->tombstones.empty());
    CHECK(fresh->next_cursor == "6@1");  // the last change number, and the restores so far
    CHECK(f.alice.pull("jobs", fresh->next_cursor, 10)->records.empty());
    CHECK(f.alice.pull("jobs", "7@1", 10).error().code == errc::cursor_expired);  // beyond the last change
    CHECK(f.alice.pull("jobs", "1@x", 10).error().code == errc::invalid_argument);

    // Restored records keep their old versions: cursors issued page by page after the restore still work.
    auto p1 = f.alice.pull("jobs", "", 1);
    REQUIRE(p1.has_value());
    CHECK(p1->records.at(0).version == 1);
    CHECK(p1->next_cursor == "1@1");
    CHECK(p1->has_more);
    auto p2 = f.alice.pull("jobs", p1->next_cursor, 1);
    REQUIRE(p2.has_value());
    CHECK(p2->records.at(0).server_id == b.server_id);
    CHECK(p2->next_cursor == "6@1");

    // New changes are numbered after every number issued before; server ids are never reused.
    auto d = push_one(f.alice, create_op(make_id(4), {{"n", 4}})).record;
    CHECK(d.version == 7);
    CHECK(d.server_id != c.server_id);
    auto after = f.alice.pull("jobs", fresh->next_cursor, 10);
    REQUIRE(after.has_value());
    REQUIRE(after->records.size() == 1);
    CHECK(after->records[0].server_id == d.server_id);
    CHECK(push_one(f.alice, create_op(make_id(3), {{"n", 3}})).record.server_id != c.server_id);  // a new record

    // The whole state, twice: every collection, notes included, goes back again.
    f.server.restore(whole);
    f.server.restore(whole);
    CHECK(f.server.records("alice", "jobs").size() == 2);
    CHECK(f.server.records("alice", "notes").size() == 1);
    CHECK(f.alice.pull("jobs", "6@1", 10).error().code == errc::cursor_expired);
    CHECK(f.alice.pull("jobs", "", 10)->next_cursor == "10@3");
    CHECK(f.server.faults().restores == 3);
    f.server.restore(loopback_server::backup{});  // an empty backup empties the server
    CHECK(f.server.records("alice", "jobs").empty());
}
