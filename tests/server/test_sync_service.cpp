// sync_service over the memory store: the protocol's rules, with no face in front.
#include <tether/clock/manual.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/server/memory_store.hpp>
#include <tether/server/sync_service.hpp>
#include <tether/transport/transport.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using tether::errc;
using tether::push_op;
using tether::push_outcome;
using tether::server_record;
using tether::server::memory_store;
using tether::server::scope;
using tether::server::service_limits;
using json = nlohmann::json;
using service = tether::server::sync_service<memory_store>;
using kind = push_outcome::kind;

tether::local_id make_id(std::uint64_t n) {
    return tether::local_id::from_parts(tether::manual_clock::default_start, static_cast<std::uint16_t>(n), n);
}

push_op create_op(std::uint64_t n, json value, std::string origin = "dev-a") {
    return push_op{tether::op_kind::create, make_id(n), std::nullopt, 0, std::move(value), std::move(origin)};
}

push_op update_op(const server_record& r, std::uint64_t base, json fields, std::string origin = "dev-a") {
    return push_op{tether::op_kind::update, r.id.value_or(tether::local_id{}), r.server_id, base, std::move(fields),
                   std::move(origin)};
}

push_op remove_op(const server_record& r, std::uint64_t base, std::string origin = "dev-a") {
    return push_op{tether::op_kind::remove, r.id.value_or(tether::local_id{}), r.server_id, base, nullptr,
                   std::move(origin)};
}

struct fixture {
    explicit fixture(service_limits limits = {}) : svc(memory_store{}, limits, [c = clock] { return c.now(); }) {}

    tether::manual_clock clock;
    service svc;

    std::vector<push_outcome> push(std::vector<push_op> ops, std::string_view user = "alice",
                                   std::string_view origin = {}) {
        auto r = svc.push({.user = user, .collection = "jobs", .ops = ops, .origin = origin});
        REQUIRE(r.has_value());
        REQUIRE(r->size() == ops.size());
        return std::move(r).value();
    }
    push_outcome push_one(push_op op, std::string_view user = "alice") { return push({std::move(op)}, user).at(0); }
    tether::result<tether::pull_page> pull(std::string_view cursor, std::size_t limit = 100,
                                           std::string_view user = "alice") {
        return svc.pull({.user = user, .collection = "jobs", .cursor = cursor, .limit = limit});
    }
};

}  // namespace

TEST_CASE("sync_service creates number changes per collection and keep the origin and time", "[server]") {
    fixture f;
    auto a = f.push_one(create_op(1, {{"n", 1}}));
    REQUIRE(a.outcome == kind::applied);
    CHECK_FALSE(a.replayed);
    CHECK(a.record.server_id == "s1");
    CHECK(a.record.version == 1);
    CHECK(a.record.id == make_id(1));
    CHECK(a.record.origin == "dev-a");
    CHECK(a.record.updated_at == f.clock.now());
    f.clock.advance(std::chrono::seconds{1});
    // The request's origin stands in for an op without one.
    auto b = f.push({create_op(2, {{"n", 2}}, "")}, "alice", "dev-b").at(0);
    CHECK(b.record.server_id == "s2");
    CHECK(b.record.version == 2);
    CHECK(b.record.origin == "dev-b");
    CHECK(b.record.updated_at == f.clock.now());
    // Another collection numbers its own changes; server ids are unique across the store.
    std::vector<push_op> note{create_op(1, {{"t", "x"}})};
    auto n = f.svc.push({.user = "alice", .collection = "notes", .ops = note});
    REQUIRE(n.has_value());
    CHECK(n->at(0).record.version == 1);
    CHECK(n->at(0).record.server_id == "s3");
}

TEST_CASE("sync_service keeps users apart", "[server]") {
    fixture f;
    auto a = f.push_one(create_op(1, {{"n", 1}})).record;
    auto stolen = f.push_one(update_op(a, a.version, {{"n", 9}}), "bob");
    CHECK(stolen.outcome == kind::rejected);
    CHECK(stolen.failure.code == errc::not_found);
    CHECK(f.pull("", 100, "bob")->records.empty());
    CHECK(f.svc.fetch({.user = "bob", .collection = "jobs", .server_id = a.server_id}).error().code == errc::not_found);
    // Bob's create with the same local id is his own record.
    auto mine = f.push_one(create_op(1, {{"n", 2}}), "bob");
    CHECK(mine.outcome == kind::applied);
    CHECK_FALSE(mine.replayed);
    CHECK(mine.record.server_id != a.server_id);
    CHECK(f.svc.fetch({.user = "alice", .collection = "jobs", .server_id = a.server_id})->value == json{{"n", 1}});
}

TEST_CASE("sync_service creates are idempotent on the local id, and say so", "[server]") {
    fixture f;
    auto first = f.push_one(create_op(1, {{"n", 1}})).record;
    auto again = f.push_one(create_op(1, {{"n", 99}}));
    CHECK(again.outcome == kind::applied);
    CHECK(again.replayed);
    CHECK(again.record.value == json{{"n", 1}});  // what the server holds, not what was sent
    CHECK(again.record.version == first.version);
    CHECK(f.pull("")->next_cursor == "1");  // no change was made

    // Changed since its create: a replay is a conflict, also replayed.
    auto changed = f.push_one(update_op(first, first.version, {{"n", 2}}, "dev-b")).record;
    auto stale = f.push_one(create_op(1, {{"n", 1}}));
    CHECK(stale.outcome == kind::conflict);
    CHECK(stale.replayed);
    CHECK(stale.failure.code == errc::conflict);
    CHECK(stale.record.version == changed.version);
    CHECK(stale.record.value == json{{"n", 2}});

    // Deleted since: not_found, not a replay.
    REQUIRE(f.push_one(remove_op(changed, changed.version)).outcome == kind::applied);
    auto gone = f.push_one(create_op(1, {{"n", 1}}));
    CHECK(gone.outcome == kind::rejected);
    CHECK(gone.failure.code == errc::not_found);
    CHECK(gone.failure.http_status == 404);
    CHECK_FALSE(gone.replayed);
}

TEST_CASE("sync_service checks base_version, except for an op named by local id with base 0", "[server]") {
    fixture f;
    auto r = f.push_one(create_op(1, {{"n", 1}, {"t", "a"}})).record;
    auto up = f.push_one(update_op(r, r.version, {{"n", 2}}, "dev-b"));
    REQUIRE(up.outcome == kind::applied);
    CHECK(up.record.value == json{{"n", 2}, {"t", "a"}});  // the sent fields merged
    CHECK(up.record.origin == "dev-b");
    CHECK(up.record.version == 2);

    auto stale = f.push_one(update_op(r, r.version, {{"n", 3}}));
    CHECK(stale.outcome == kind::conflict);
    CHECK(stale.failure.code == errc::conflict);
    CHECK(stale.failure.http_status == 409);
    CHECK(stale.record.version == 2);
    CHECK(stale.record.origin == "dev-b");  // the conflict carries the current record, origin included
    CHECK(f.push_one(remove_op(r, r.version)).outcome == kind::conflict);
    // By server id, base 0 is a version like any other.
    CHECK(f.push_one(update_op(up.record, 0, {{"n", 4}})).outcome == kind::conflict);

    // By local id alone with base 0: the sender never learnt a version.
    push_op blind{tether::op_kind::update, make_id(1), std::nullopt, 0, {{"n", 5}}, "dev-c"};
    auto applied = f.push_one(blind);
    CHECK(applied.outcome == kind::applied);
    CHECK(applied.record.value["n"] == 5);
    CHECK(applied.record.origin == "dev-c");
}

TEST_CASE("sync_service removes leave tombstones and are idempotent", "[server]") {
    fixture f;
    auto r = f.push_one(create_op(1, {{"n", 1}})).record;
    auto keep = f.push_one(create_op(2, {{"n", 2}})).record;
    auto removed = f.push_one(remove_op(r, r.version, "dev-b"));
    REQUIRE(removed.outcome == kind::applied);
    CHECK(removed.record.version == 3);
    CHECK(removed.record.origin == "dev-b");
    auto again = f.push_one(remove_op(r, r.version));
    CHECK(again.outcome == kind::applied);
    CHECK(again.record.version == 3);  // nothing changed
    // Never seen (or lost in a restore): applied, answering with what is known, and
    // a tombstone under the server id named.
    push_op unknown{tether::op_kind::remove, make_id(7), std::string{"s99"}, 4, nullptr, "dev-a"};
    auto never = f.push_one(unknown);
    CHECK(never.outcome == kind::applied);
    CHECK(never.record.server_id == "s99");
    CHECK(never.record.id == make_id(7));

    auto page = f.pull("");
    REQUIRE(page.has_value());
    REQUIRE(page->records.size() == 1);
    CHECK(page->records[0].server_id == keep.server_id);
    REQUIRE(page->tombstones.size() == 2);
    CHECK(page->tombstones[0].server_id == r.server_id);
    CHECK(page->tombstones[0].id == make_id(1));
    CHECK(page->tombstones[0].version == 3);
    CHECK(page->tombstones[1].server_id == "s99");
    CHECK(page->tombstones[1].id == make_id(7));
    CHECK(f.svc.fetch({.user = "alice", .collection = "jobs", .server_id = r.server_id}).error().code == errc::not_found);
    auto upd = f.push_one(update_op(removed.record, 3, {{"n", 2}}));
    CHECK(upd.outcome == kind::rejected);
    CHECK(upd.failure.code == errc::not_found);
}

TEST_CASE("sync_service pages the change feed with opaque cursors", "[server]") {
    fixture f;
    for (std::uint64_t i = 1; i <= 5; ++i) f.push_one(create_op(i, {{"n", i}}));
    auto p1 = f.pull("", 2);
    REQUIRE(p1.has_value());
    CHECK(p1->records.size() == 2);
    CHECK(p1->next_cursor == "2");
    CHECK(p1->has_more);
    auto p2 = f.pull(p1->next_cursor, 2);
    CHECK(p2->records.at(0).version == 3);
    CHECK(p2->next_cursor == "4");
    auto p3 = f.pull(p2->next_cursor, 2);
    CHECK(p3->records.size() == 1);
    CHECK_FALSE(p3->has_more);
    CHECK(p3->next_cursor == "5");
    CHECK(f.pull("5")->records.empty());
    CHECK(f.pull("5")->next_cursor == "5");
    CHECK(f.pull("", 0)->records.size() == 1);  // a limit of 0 counts as 1

    auto beyond = f.pull("6");
    REQUIRE_FALSE(beyond.has_value());
    CHECK(beyond.error().code == errc::cursor_expired);
    CHECK(beyond.error().http_status == 410);
    for (const char* bad : {"x", "5@", "@1", "-1", "5 ", "1@x"}) {
        auto r = f.pull(bad);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == errc::invalid_argument);
        CHECK(r.error().http_status == 400);
    }
    // A collection the server never held has nothing after any cursor.
    auto none = f.svc.pull({.user = "carol", .collection = "jobs", .cursor = "3", .limit = 10});
    REQUIRE(none.has_value());
    CHECK(none->next_cursor == "3");
    CHECK_FALSE(none->has_more);
}

TEST_CASE("sync_service cursors carry the epoch: a restored server expires them", "[server]") {
    fixture f;
    auto a = f.push_one(create_op(1, {{"n", 1}})).record;
    const auto before = f.svc.store().snapshot("alice", "jobs");
    f.push_one(update_op(a, a.version, {{"n", 2}}));
    const std::string old = f.pull("")->next_cursor;
    CHECK(old == "2");
    f.svc.store().restore(before);
    auto expired = f.pull(old);
    REQUIRE_FALSE(expired.has_value());
    CHECK(expired.error().code == errc::cursor_expired);
    auto fresh = f.pull("");
    REQUIRE(fresh.has_value());
    CHECK(fresh->records.at(0).value == json{{"n", 1}});
    CHECK(fresh->next_cursor == "3@1");
    CHECK(f.pull("3@1")->records.empty());
    CHECK(f.pull("3").error().code == errc::cursor_expired);  // the right number from the wrong epoch
    CHECK(f.push_one(create_op(2, {{"n", 3}})).record.version == 4);
    CHECK(f.pull("3@1")->next_cursor == "4@1");
}

TEST_CASE("sync_service after a restore: ops naming a server id the restore lost", "[server]") {
    fixture f;
    const auto before = f.svc.store().snapshot("alice", "jobs");
    const auto lost = f.push_one(create_op(1, {{"n", 1}})).record;
    const auto removed = f.push_one(create_op(2, {{"n", 2}})).record;
    f.svc.store().restore(before);  // both records are gone, without a trace
    // Another device that held the first one sends it again: a new server id.
    const auto again = f.push_one(create_op(1, {{"n", 5}}, "dev-b"));
    REQUIRE(again.outcome == kind::applied);
    CHECK_FALSE(again.replayed);
    // An update under the lost id finds it by its local id: a conflict with the new copy.
    const auto up = f.push_one(update_op(lost, lost.version, {{"n", 9}}));
    CHECK(up.outcome == kind::conflict);
    CHECK(up.record.server_id == again.record.server_id);
    CHECK(up.record.value == json{{"n", 5}});
    // The first device's create of it, sent again, meets another device's create.
    const auto replay = f.push_one(create_op(1, {{"n", 1}}));
    CHECK(replay.outcome == kind::conflict);
    CHECK(replay.replayed);
    // A remove under a lost id is applied and leaves a tombstone under that id...
    CHECK(f.push_one(remove_op(removed, removed.version)).outcome == kind::applied);
    const auto page = f.pull("");
    REQUIRE(page.has_value());
    REQUIRE(page->tombstones.size() == 1);
    CHECK(page->tombstones[0].server_id == removed.server_id);
    CHECK(page->tombstones[0].id == make_id(2));
    // ...so the record, sent again by a device that still held it, stays deleted.
    CHECK(f.push_one(create_op(2, {{"n", 2}}, "dev-b")).failure.code == errc::not_found);
    // A remove naming no record at all (no server id, a nil local id) leaves nothing.
    CHECK(f.push_one(push_op{tether::op_kind::remove, tether::local_id{}, std::nullopt, 0, nullptr, "dev-a"}).outcome ==
          kind::applied);
    CHECK(f.pull("")->tombstones.size() == 1);
}

// A device held a record the restore lost and forgot its server id in the full
// resync (its edits go up again as a create); it then removed it, by local id
// alone. Another device still holds an older unsynced edit of the record and
// sends it again as a create: it must meet the delete, not bring the record
// back (found by the hostile simulator's restore knob, seeds 18 and 588).
TEST_CASE("sync_service: a remove by local id of a record it does not hold keeps a tombstone", "[server]") {
    fixture f;
    const auto removed = f.push_one(push_op{tether::op_kind::remove, make_id(3), std::nullopt, 0, nullptr, "dev-a"});
    REQUIRE(removed.outcome == kind::applied);
    CHECK(removed.record.id == make_id(3));
    CHECK_FALSE(removed.record.server_id.empty());
    const auto page = f.pull("");
    REQUIRE(page.has_value());
    CHECK(page->records.empty());
    REQUIRE(page->tombstones.size() == 1);
    CHECK(page->tombstones[0].server_id == removed.record.server_id);
    CHECK(page->tombstones[0].id == make_id(3));
    // The older edit, sent again as a create by another device, meets the deletion.
    CHECK(f.push_one(create_op(3, {{"n", 1}}, "dev-b")).failure.code == errc::not_found);
    CHECK(f.svc.fetch({.user = "alice", .collection = "jobs", .server_id = removed.record.server_id}).error().code ==
          errc::not_found);
    // Removed again: idempotent, no second tombstone.
    CHECK(f.push_one(push_op{tether::op_kind::remove, make_id(3), std::nullopt, 0, nullptr, "dev-a"}).outcome ==
          kind::applied);
    CHECK(f.pull("")->tombstones.size() == 1);
}

TEST_CASE("sync_service full-list mode lists every live record", "[server]") {
    fixture f;
    auto a = f.push_one(create_op(1, {{"n", 1}})).record;
    f.push_one(create_op(2, {{"n", 2}}));
    f.push_one(remove_op(a, a.version));
    f.svc.set_change_feed(false);
    CHECK_FALSE(f.svc.has_change_feed());
    auto page = f.pull("whatever", 1);  // the cursor and the limit are ignored
    REQUIRE(page.has_value());
    REQUIRE(page->records.size() == 1);
    CHECK(page->records[0].server_id == "s2");
    CHECK(page->tombstones.empty());
    CHECK(page->next_cursor.empty());
    CHECK_FALSE(page->has_more);
}

TEST_CASE("sync_service rejects malformed ops one by one, the rest of the batch applies", "[server]") {
    fixture f;
    auto held = f.push_one(create_op(9, {{"n", 9}})).record;
    push_op nil_id{tether::op_kind::create, tether::local_id{}, std::nullopt, 0, {{"n", 1}}, "dev-a"};
    push_op bad_kind = create_op(5, {{"n", 5}});
    bad_kind.kind = static_cast<tether::op_kind>(7);
    auto out = f.push({create_op(1, json::array({1, 2})), create_op(2, {{"n", 2}}), nil_id,
                       update_op(held, held.version, "not fields"), bad_kind, create_op(3, {{"n", 3}})});
    for (std::size_t i : {0U, 2U, 3U, 4U}) {
        INFO("op " << i);
        CHECK(out[i].outcome == kind::rejected);
        CHECK(out[i].failure.code == errc::protocol);
        CHECK(out[i].failure.http_status == 400);
    }
    CHECK(out[1].outcome == kind::applied);
    CHECK(out[5].outcome == kind::applied);
    CHECK(f.svc.store().read([](const auto& tx) { return tx.list({"alice", "jobs"}); })->size() == 3);
}

TEST_CASE("sync_service: one oversized value is rejected alone, next to a malformed op", "[server]") {
    fixture f{service_limits{.max_ops = 500, .max_value_bytes = 64}};
    const std::string big(100, 'x');
    auto out = f.push({create_op(1, {{"n", 1}}), create_op(2, {{"t", big}}), create_op(3, "malformed"),
                       create_op(4, {{"n", 4}})});
    CHECK(out[0].outcome == kind::applied);
    REQUIRE(out[1].outcome == kind::rejected);
    CHECK(out[1].failure.code == errc::too_large);
    CHECK(out[1].failure.http_status == 413);
    CHECK(out[2].outcome == kind::rejected);
    CHECK(out[2].failure.code == errc::protocol);
    CHECK(out[3].outcome == kind::applied);
    CHECK(out[3].record.version == 2);  // the refused ops took no change number
    // An update is measured by the value it would leave: a small edit of a record near the limit fails too.
    auto r = out[0].record;
    auto grown = f.push_one(update_op(r, r.version, {{"t", std::string(60, 'y')}}));
    CHECK(grown.outcome == kind::rejected);
    CHECK(grown.failure.code == errc::too_large);
    CHECK(f.svc.fetch({.user = "alice", .collection = "jobs", .server_id = r.server_id})->value == json{{"n", 1}});
    CHECK(f.push_one(update_op(r, r.version, {{"n", 2}})).outcome == kind::applied);
}

TEST_CASE("sync_service refuses a batch over the ops limit whole", "[server]") {
    fixture f;
    CHECK(f.svc.limits().max_ops == 500);
    CHECK(f.svc.limits().max_value_bytes == 1024 * 1024);
    std::vector<push_op> ops;
    for (std::uint64_t i = 1; i <= 501; ++i) ops.push_back(create_op(i, {{"n", i}}));
    auto over = f.svc.push({.user = "alice", .collection = "jobs", .ops = ops});
    REQUIRE_FALSE(over.has_value());
    CHECK(over.error().code == errc::too_large);
    CHECK(over.error().http_status == 413);
    CHECK(f.pull("")->records.empty());  // nothing applied
    auto fits = f.svc.push({.user = "alice", .collection = "jobs", .ops = std::span<const push_op>{ops}.first(500)});
    REQUIRE(fits.has_value());
    CHECK(fits->size() == 500);
}

TEST_CASE("sync_service admin edits: put and erase are changes from elsewhere", "[server]") {
    fixture f;
    const scope s{"alice", "jobs"};
    auto made = f.svc.put(s, "", {{"n", 1}});
    REQUIRE(made.has_value());
    CHECK(made->server_id == "s1");
    CHECK_FALSE(made->id.has_value());
    CHECK(made->origin.empty());
    CHECK(made->version == 1);
    auto r = f.push_one(create_op(1, {{"n", 2}})).record;
    auto replaced = f.svc.put(s, r.server_id, {{"whole", true}});
    REQUIRE(replaced.has_value());
    CHECK(replaced->value == json{{"whole", true}});  // the whole value, not a merge
    CHECK(replaced->id == make_id(1));
    CHECK(replaced->origin.empty());
    // The record changed since its create: a replayed create conflicts.
    CHECK(f.push_one(create_op(1, {{"n", 2}})).outcome == kind::conflict);

    REQUIRE(f.svc.erase(s, r.server_id).has_value());
    CHECK(f.svc.erase(s, r.server_id).has_value());  // already deleted: nothing changes
    CHECK(f.pull("")->next_cursor == "4");
    CHECK(f.svc.erase(s, "s99").error().code == errc::not_found);
    auto back = f.svc.put(s, r.server_id, {{"n", 3}});  // a deleted record comes back
    REQUIRE(back.has_value());
    CHECK(f.svc.fetch({.user = "alice", .collection = "jobs", .server_id = r.server_id})->value == json{{"n", 3}});
    // An unknown server id names the new record; a fresh id skips it.
    REQUIRE(f.svc.put(s, "s3", {{"n", 4}}).has_value());
    CHECK(f.push_one(create_op(2, {{"n", 5}})).record.server_id == "s4");
    CHECK(f.svc.put(s, "", json::array()).error().code == errc::invalid_argument);
}

TEST_CASE("sync_service create filler fills server-side fields on create only", "[server]") {
    fixture f;
    f.svc.set_create_filler([](json& v) { v["owner"] = "server"; });
    auto made = f.push_one(create_op(1, {{"n", 1}}));
    CHECK(made.record.value == json{{"n", 1}, {"owner", "server"}});
    CHECK(f.push_one(create_op(1, {{"n", 1}})).replayed);
    auto up = f.push_one(update_op(made.record, made.record.version, {{"owner", "me"}}));
    CHECK(up.record.value["owner"] == "me");
    f.svc.set_create_filler([](json& v) { v = 5; });
    auto broken = f.push_one(create_op(2, {{"n", 2}}));
    CHECK(broken.outcome == kind::rejected);
    CHECK(broken.failure.code == errc::protocol);
    f.svc.set_create_filler({});
    CHECK(f.push_one(create_op(3, {{"n", 3}})).record.value == json{{"n", 3}});
}

TEST_CASE("sync_service push screens refuse single ops", "[server]") {
    fixture f;
    std::vector<push_op> ops{create_op(1, {{"n", 1}}), create_op(2, {{"n", 2}}), create_op(3, {{"n", 3}})};
    std::vector<tether::local_id> seen;
    auto out = f.svc.push({.user = "alice", .collection = "jobs", .ops = ops}, [&](const push_op& op) {
        seen.push_back(op.id);
        return op.id == make_id(2) ? std::optional{tether::make_error(errc::rejected, "screened")} : std::nullopt;
    });
    REQUIRE(out.has_value());
    CHECK(seen == std::vector{make_id(1), make_id(2), make_id(3)});
    CHECK(out->at(0).outcome == kind::applied);
    CHECK(out->at(1).outcome == kind::rejected);
    CHECK(out->at(1).failure.message == "screened");
    CHECK(out->at(2).outcome == kind::applied);
}

namespace {

/// A memory store whose `put` fails from the `fail_at`-th call on (1-based), as a disk might.
struct failing_store {
    using read_transaction = memory_store::read_transaction;
    struct write_transaction {
        memory_store::write_transaction* inner;
        int* puts;
        int fail_at;
        auto find_by_server_id(scope s, std::string_view sid) const { return inner->find_by_server_id(s, sid); }
        auto find_by_local_id(scope s, const tether::local_id& id) const { return inner->find_by_local_id(s, id); }
        auto changes_after(scope s, std::uint64_t n, std::size_t l) const { return inner->changes_after(s, n, l); }
        auto list(scope s) const { return inner->list(s); }
        auto collection(scope s) const { return inner->collection(s); }
        auto lock_collection(scope s) { return inner->lock_collection(s); }
        auto next_change(scope s) { return inner->next_change(s); }
        auto new_server_id() { return inner->new_server_id(); }
        tether::result<void> put(scope s, const tether::server::stored_record& r) {
            if (++*puts >= fail_at) return tether::unexpected{tether::make_error(errc::storage, "disk full")};
            return inner->put(s, r);
        }
    };
    memory_store inner;
    int puts = 0;
    int fail_at = 1000;

    template <class F>
    auto write(F&& f) {
        return inner.write([&](memory_store::write_transaction& tx) {
            write_transaction w{&tx, &puts, fail_at};
            return f(w);
        });
    }
    template <class F>
    auto read(F&& f) const {
        return inner.read(std::forward<F>(f));
    }
};

}  // namespace

TEST_CASE("sync_service: a batch commits whole or not at all", "[server]") {
    static_assert(tether::server::server_store<failing_store>);
    tether::server::sync_service<failing_store> svc{failing_store{memory_store{}, 0, 3}};
    std::vector<push_op> ops{create_op(1, {{"n", 1}}), create_op(2, {{"n", 2}}), create_op(3, {{"n", 3}})};
    auto r = svc.push({.user = "alice", .collection = "jobs", .ops = ops});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::storage);
    CHECK(r.error().message == "disk full");
    auto page = svc.pull({.user = "alice", .collection = "jobs"});
    REQUIRE(page.has_value());
    CHECK(page->records.empty());
    CHECK(page->next_cursor.empty());  // not even the collection stayed known
    svc.store().fail_at = 1000;
    auto again = svc.push({.user = "alice", .collection = "jobs", .ops = ops});
    REQUIRE(again.has_value());
    CHECK(again->at(0).record.version == 1);  // the change numbers were given back
    CHECK(again->at(0).record.server_id == "s1");
}

// Devices that pulled a record without its local id hold it under ids of their
// own. After a restore lost it, each sends it again whole, based on version 0,
// under the server id they all share: the first re-creates it there, the
// others meet it (a conflict), so the server holds it once, and a remove naming
// the id finds it (found by the hostile simulator's restore and omit-ids knobs).
TEST_CASE("sync_service: an update based on version 0 under a lost server id re-creates the record", "[server]") {
    fixture f;
    const auto before = f.svc.store().snapshot("alice", "jobs");
    const auto lost = f.push_one(create_op(1, {{"n", 1}})).record;
    f.svc.store().restore(before);
    push_op again{tether::op_kind::update, make_id(2), lost.server_id, 0, json{{"n", 2}, {"t", "x"}}, "dev-b"};
    const auto back = f.push_one(again);
    REQUIRE(back.outcome == kind::applied);
    CHECK(back.record.server_id == lost.server_id);
    CHECK(back.record.id == make_id(2));
    CHECK(back.record.value == json{{"n", 2}, {"t", "x"}});
    CHECK(back.record.origin == "dev-b");
    const auto page = f.pull("");
    REQUIRE(page.has_value());
    REQUIRE(page->records.size() == 1);
    CHECK(page->records[0].server_id == lost.server_id);
    // A third device sends it again too, under its own local id: it meets the copy there.
    push_op third{tether::op_kind::update, make_id(3), lost.server_id, 0, json{{"n", 3}}, "dev-c"};
    const auto met = f.push_one(third);
    CHECK(met.outcome == kind::conflict);
    CHECK(met.record.value == json{{"n", 2}, {"t", "x"}});
    CHECK(f.pull("")->records.size() == 1);
    // An update with a real base under an unknown server id is still not found.
    push_op stale{tether::op_kind::update, make_id(4), std::string{"s-unknown"}, 7, json{{"n", 4}}, "dev-a"};
    CHECK(f.push_one(stale).failure.code == errc::not_found);
    // A remove naming the id deletes it; sent again after that, it meets the deletion.
    CHECK(f.push_one(remove_op(back.record, back.record.version, "dev-c")).outcome == kind::applied);
    CHECK(f.push_one(again).failure.code == errc::not_found);
    CHECK(f.pull("")->records.empty());
}
