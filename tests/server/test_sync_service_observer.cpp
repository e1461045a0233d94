// sync_service's observer: every committed change, after commit, in order,
// with the version it replaces and the cursors around it.
#include <tether/server/memory_store.hpp>
#include <tether/server/sync_service.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

using service = tether::server::sync_service<tether::server::memory_store>;

struct seen {
    std::string user;
    tether::live_event event;
};

tether::push_op create_op(std::uint64_t n, std::string origin = "dev-1") {
    tether::push_op op;
    op.kind = tether::op_kind::create;
    op.id = tether::local_id::from_parts(tether::timestamp{}, 7, n);
    op.value = {{"title", "t" + std::to_string(n)}};
    op.origin = std::move(origin);
    return op;
}

}  // namespace

TEST_CASE("observer: creates, updates and removes, with replaced versions and contiguous cursors", "[server][live]") {
    service svc{tether::server::memory_store{}};
    std::vector<seen> log;
    svc.set_observer([&](std::string_view user, const tether::live_event& e) { log.push_back({std::string{user}, e}); });

    std::vector<tether::push_op> ops{create_op(1), create_op(2)};
    auto out = svc.push({.user = "alice", .collection = "jobs", .ops = ops});
    REQUIRE(out);
    REQUIRE(log.size() == 2);
    CHECK(log[0].user == "alice");
    CHECK(log[0].event.kind == tether::live_kind::created);
    CHECK(log[0].event.collection == "jobs");
    CHECK(log[0].event.replaces == 0);
    CHECK(log[0].event.version == 1);
    CHECK(log[0].event.previous_cursor.empty());  // the collection's first change
    CHECK(log[0].event.cursor == "1");
    CHECK(log[0].event.record.origin == "dev-1");
    CHECK(log[1].event.previous_cursor == log[0].event.cursor);
    CHECK(log[1].event.cursor == "2");

    tether::push_op upd;
    upd.kind = tether::op_kind::update;
    upd.id = ops[0].id;
    upd.server_id = (*out)[0].record.server_id;
    upd.base_version = 1;
    upd.value = {{"title", "changed"}};
    upd.origin = "dev-2";
    REQUIRE(svc.push({.user = "alice", .collection = "jobs", .ops = std::span{&upd, 1}}));
    REQUIRE(log.size() == 3);
    CHECK(log[2].event.kind == tether::live_kind::updated);
    CHECK(log[2].event.replaces == 1);
    CHECK(log[2].event.version == 3);
    CHECK(log[2].event.record.value["title"] == "changed");
    CHECK(log[2].event.record.origin == "dev-2");
    CHECK(log[2].event.previous_cursor == "2");

    tether::push_op rm = upd;
    rm.kind = tether::op_kind::remove;
    rm.base_version = 3;
    rm.value = nullptr;
    REQUIRE(svc.push({.user = "alice", .collection = "jobs", .ops = std::span{&rm, 1}}));
    REQUIRE(log.size() == 4);
    CHECK(log[3].event.kind == tether::live_kind::deleted);
    CHECK(log[3].event.replaces == 3);
    CHECK(log[3].event.as_tombstone().server_id == upd.server_id);
    CHECK(log[3].event.as_tombstone().version == 4);

    // What a pull hands out after the last change is the last event's cursor.
    auto page = svc.pull({.user = "alice", .collection = "jobs", .cursor = "", .limit = 100});
    REQUIRE(page);
    CHECK(page->next_cursor == log[3].event.cursor);
}

TEST_CASE("observer: nothing for what did not commit, admin edits have no origin, users apart", "[server][live]") {
    service svc{tether::server::memory_store{}, tether::server::service_limits{.max_ops = 1}};
    std::vector<seen> log;
    svc.set_observer([&](std::string_view user, const tether::live_event& e) { log.push_back({std::string{user}, e}); });

    std::vector<tether::push_op> two{create_op(1), create_op(2)};
    CHECK_FALSE(svc.push({.user = "alice", .collection = "jobs", .ops = two}));  // over max_ops: nothing applies
    CHECK(log.empty());

    tether::push_op replay = create_op(1);
    REQUIRE(svc.push({.user = "bob", .collection = "jobs", .ops = std::span{&replay, 1}}));
    REQUIRE(svc.push({.user = "bob", .collection = "jobs", .ops = std::span{&replay, 1}}));  // replayed: no change
    REQUIRE(log.size() == 1);
    CHECK(log[0].user == "bob");

    auto put = svc.put({"alice", "jobs"}, "", {{"title", "admin"}});
    REQUIRE(put);
    REQUIRE(log.size() == 2);
    CHECK(log[1].user == "alice");
    CHECK(log[1].event.kind == tether::live_kind::created);
    CHECK(log[1].event.record.origin.empty());
    REQUIRE(svc.erase({"alice", "jobs"}, put->server_id));
    REQUIRE(log.size() == 3);
    CHECK(log[2].event.kind == tether::live_kind::deleted);
    CHECK(log[2].event.replaces == log[1].event.version);

    svc.set_observer({});
    REQUIRE(svc.put({"alice", "jobs"}, "", {{"title", "quiet"}}));
    CHECK(log.size() == 3);
}
