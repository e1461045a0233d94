// sync_service's append op: a chunk added to a string member, checked against
// the text's length; a resend already applied is acknowledged, not applied
// twice; a bad append answers for itself alone; the observer tells `appended`.
#include <tether/protocol/append.hpp>
#include <tether/protocol/push.hpp>
#include <tether/server/memory_store.hpp>
#include <tether/server/sync_service.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

using service = tether::server::sync_service<tether::server::memory_store>;
using kind = tether::push_outcome::kind;

struct dictation {
    service svc;
    std::vector<tether::live_event> events;
    tether::push_op created;
    std::string sid;

    explicit dictation(tether::server::service_limits lim = {}) : svc{tether::server::memory_store{}, lim} {
        svc.set_observer([this](std::string_view, const tether::live_event& e) { events.push_back(e); });
        created.kind = tether::op_kind::create;
        created.id = tether::local_id::from_parts(tether::timestamp{}, 7, 1);
        created.value = {{"title", "memo"}, {"transcript", "Hello"}, {"words", 1}};
        created.origin = "desktop";
        auto out = push({created});
        REQUIRE(out.size() == 1);
        REQUIRE(out[0].outcome == kind::applied);
        sid = out[0].record.server_id;
    }

    std::vector<tether::push_outcome> push(std::vector<tether::push_op> ops) {
        auto out = svc.push({.user = "alice", .collection = "dictations", .ops = ops});
        REQUIRE(out);
        REQUIRE(out->size() == ops.size());
        return std::move(*out);
    }

    tether::push_op append(std::string chunk, std::uint64_t before, std::uint64_t base, std::string member = "transcript") {
        tether::push_op op;
        op.kind = tether::op_kind::append;
        op.id = created.id;
        op.server_id = sid;
        op.base_version = base;
        op.value = tether::protocol::to_json(tether::protocol::append_value{std::move(member), std::move(chunk), before});
        op.origin = "desktop";
        return op;
    }

    std::string text() const {
        auto r = svc.fetch({.user = "alice", .collection = "dictations", .server_id = sid});
        REQUIRE(r);
        return r->value.at("transcript").get<std::string>();
    }
    std::uint64_t version() const {
        auto r = svc.fetch({.user = "alice", .collection = "dictations", .server_id = sid});
        REQUIRE(r);
        return r->version;
    }
};

}  // namespace

TEST_CASE("append: the chunk is added, the version bumped, and the observer tells appended", "[server][append]") {
    dictation d;
    auto out = d.push({d.append(", world", 5, 1)});
    REQUIRE(out[0].outcome == kind::applied);
    CHECK_FALSE(out[0].replayed);
    CHECK(out[0].record.version == 2);
    CHECK(out[0].record.value.at("transcript") == "Hello, world");
    CHECK(out[0].record.value.at("words") == 1);  // the other members stay
    CHECK(d.text() == "Hello, world");
    REQUIRE(d.events.size() == 2);
    const auto& e = d.events[1];
    CHECK(e.kind == tether::live_kind::appended);
    CHECK(e.version == 2);
    CHECK(e.replaces == 1);
    CHECK(e.record.origin == "desktop");
    REQUIRE(e.append);
    CHECK(e.append->member == "transcript");
    CHECK(e.append->chunk == ", world");
    CHECK(e.append->length_before == 5);
    CHECK(e.append->length_after == 12);
}

TEST_CASE("append: a resend already applied is acknowledged as replayed, not applied twice", "[server][append]") {
    dictation d;
    const auto op = d.append(" again", 5, 1);
    REQUIRE(d.push({op})[0].outcome == kind::applied);
    auto again = d.push({op});  // its answer was lost: the same op once more
    REQUIRE(again[0].outcome == kind::applied);
    CHECK(again[0].replayed);
    CHECK(again[0].record.version == 2);
    CHECK(d.text() == "Hello again");
    CHECK(d.version() == 2);
    CHECK(d.events.size() == 2);  // no second change
}

TEST_CASE("append: a length that is not the server's is a conflict carrying the record", "[server][append]") {
    dictation d;
    REQUIRE(d.push({d.append(" A", 5, 1)})[0].outcome == kind::applied);
    auto out = d.push({d.append(" B", 5, 1)});  // another writer's idea of the text
    REQUIRE(out[0].outcome == kind::conflict);
    CHECK(out[0].failure.code == tether::errc::conflict);
    CHECK(out[0].record.value.at("transcript") == "Hello A");
    CHECK(d.text() == "Hello A");
    // the right length but a stale version: a conflict, as for an update
    auto stale = d.push({d.append(" C", 7, 1)});
    CHECK(stale[0].outcome == kind::conflict);
    CHECK(d.text() == "Hello A");
}

TEST_CASE("append: a member that is not a string, or missing, is rejected", "[server][append]") {
    dictation d;
    auto out = d.push({d.append("1", 1, 1, "words"), d.append("x", 0, 1, "missing")});
    REQUIRE(out[0].outcome == kind::rejected);
    CHECK(out[0].failure.code == tether::errc::invalid_argument);
    REQUIRE(out[1].outcome == kind::rejected);
    CHECK(out[1].failure.code == tether::errc::invalid_argument);
    CHECK(d.version() == 1);
}

TEST_CASE("append: a malformed append is rejected alone, the rest of its batch applies", "[server][append]") {
    dictation d;
    auto bad = d.append("x", 5, 1);
    bad.value = {{"member", "transcript"}, {"chunk", 3}, {"length_before", 5}};
    auto negative = d.append("x", 5, 1);
    negative.value["length_before"] = -1;
    auto not_utf8 = d.append(std::string{"\xff\xfe"}, 5, 1);
    auto no_object = d.append("x", 5, 1);
    no_object.value = "append";
    auto out = d.push({bad, negative, not_utf8, no_object, d.append("!", 5, 1)});
    for (int i = 0; i < 4; ++i) {
        INFO(i);
        CHECK(out[static_cast<std::size_t>(i)].outcome == kind::rejected);
        CHECK(out[static_cast<std::size_t>(i)].failure.code == tether::errc::protocol);
    }
    CHECK(out[4].outcome == kind::applied);
    CHECK(d.text() == "Hello!");
}

TEST_CASE("append: a chunk that grows the value over the limit is rejected alone", "[server][append]") {
    dictation d{tether::server::service_limits{.max_ops = 500, .max_value_bytes = 100}};
    auto out = d.push({d.append(std::string(200, 'a'), 5, 1), d.append(" there", 5, 1)});
    REQUIRE(out[0].outcome == kind::rejected);
    CHECK(out[0].failure.code == tether::errc::too_large);
    CHECK(out[1].outcome == kind::applied);
    CHECK(d.text() == "Hello there");
}

TEST_CASE("append: a deleted or unknown record is not found", "[server][append]") {
    dictation d;
    auto op = d.append("x", 5, 1);
    op.server_id = "s-none";
    op.id = tether::local_id::from_parts(tether::timestamp{}, 7, 99);
    auto out = d.push({op});
    REQUIRE(out[0].outcome == kind::rejected);
    CHECK(out[0].failure.code == tether::errc::not_found);
}

TEST_CASE("append: the wire form round-trips through the push codec", "[server][append][protocol]") {
    dictation d;
    const std::vector<tether::push_op> ops{d.append(" wire", 5, 1)};
    auto body = tether::protocol::encode_push_request(ops);
    REQUIRE(body);
    CHECK(body->find("\"kind\":\"append\"") != std::string::npos);
    auto back = tether::protocol::decode_push_request(*body);
    REQUIRE(back);
    REQUIRE(back->ops.size() == 1);
    CHECK(back->ops[0].kind == tether::op_kind::append);
    auto a = tether::protocol::append_from_json(back->ops[0].value);
    REQUIRE(a);
    CHECK(a->chunk == " wire");
    CHECK(a->length_before == 5);
    auto out = d.push(back->ops);
    CHECK(out[0].outcome == tether::push_outcome::kind::applied);
    CHECK(d.text() == "Hello wire");
}
