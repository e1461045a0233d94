#include <tether/clock/clock.hpp>
#include <tether/conflict/callback.hpp>
#include <tether/conflict/client_wins.hpp>
#include <tether/conflict/conflict.hpp>
#include <tether/conflict/field_merge.hpp>
#include <tether/conflict/last_writer_wins.hpp>
#include <tether/conflict/server_wins.hpp>
#include <tether/core/entity.hpp>
#include <tether/core/record.hpp>
#include <tether/core/status.hpp>

#include <boost/hana/define_struct.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

using namespace std::chrono_literals;
using tether::conflict;
using tether::conflict_policy;
using tether::field_set;
using tether::record;
using tether::resolution;
using tether::resolution_kind;
using tether::sync_status;
using tether::timestamp;

namespace {

struct Note {
    BOOST_HANA_DEFINE_STRUCT(Note, (std::string, title), (std::string, body), (int, stars));
    static constexpr std::string_view collection = "notes";
};

constexpr timestamp t0{std::chrono::milliseconds{1'700'000'000'000}};

// A local record based on {"base title", "base body", 3}, edited as given.
record<Note> local_edit(Note value, field_set dirty, timestamp updated_at = t0) {
    record<Note> r;
    r.server_id = "srv-1";
    r.value = std::move(value);
    r.status = sync_status::pending;
    r.version = 4;
    r.local_rev = 2;
    r.dirty = std::move(dirty);
    r.created_at = t0 - 1h;
    r.updated_at = updated_at;
    return r;
}

record<Note> local_delete(timestamp updated_at = t0) {
    auto r = local_edit(Note{"base title", "base body", 3}, {}, updated_at);
    r.status = sync_status::pending_deletion;
    return r;
}

conflict<Note> make_conflict(const record<Note>& local, const Note& server,
                             std::optional<timestamp> server_updated_at = std::nullopt) {
    return conflict<Note>{local, server, 5, server_updated_at};
}

bool same(const Note& a, const Note& b) { return tether::entity_ops<Note>::equal(a, b); }

const Note server_note{"base title", "server body", 3};

/// The fields a resolution's value changes against the server's copy: what the
/// engine pushes after it (none for take_server or keep_local).
field_set pushed_fields(const resolution<Note>& r) {
    return r.value ? tether::entity_ops<Note>::diff(server_note, *r.value) : field_set{};
}

}  // namespace

TEST_CASE("stock conflict policies satisfy conflict_policy", "[conflict]") {
    STATIC_REQUIRE(tether::entity<Note>);
    STATIC_REQUIRE(tether::collection_of<Note>() == "notes");
    STATIC_REQUIRE(conflict_policy<tether::server_wins, Note>);
    STATIC_REQUIRE(conflict_policy<tether::client_wins, Note>);
    STATIC_REQUIRE(conflict_policy<tether::last_writer_wins, Note>);
    STATIC_REQUIRE(conflict_policy<tether::field_merge, Note>);
    auto cb = tether::resolve_with([](const conflict<Note>&) { return resolution<Note>::take_server(); });
    STATIC_REQUIRE(conflict_policy<decltype(cb), Note>);
    // a capture-less callback adds no size
    STATIC_REQUIRE(sizeof(cb) == 1);
}

TEST_CASE("server_wins always takes the server's copy", "[conflict]") {
    const auto edit = local_edit(Note{"mine", "base body", 3}, {"title"}, t0 + 1h);
    const auto del = local_delete(t0 + 1h);
    const tether::server_wins p;
    CHECK(p.resolve(make_conflict(edit, server_note, t0)).kind == resolution_kind::take_server);
    CHECK(p.resolve(make_conflict(del, server_note)).kind == resolution_kind::take_server);
    const auto r = p.resolve(make_conflict(edit, server_note));
    CHECK_FALSE(r.value.has_value());
    CHECK(pushed_fields(r).empty());
}

TEST_CASE("client_wins always keeps the local change", "[conflict]") {
    const auto edit = local_edit(Note{"mine", "base body", 3}, {"title"}, t0 - 1h);
    const auto del = local_delete(t0 - 1h);
    const tether::client_wins p;
    CHECK(p.resolve(make_conflict(edit, server_note, t0)).kind == resolution_kind::keep_local);
    CHECK(p.resolve(make_conflict(del, server_note, t0)).kind == resolution_kind::keep_local);
    const auto r = p.resolve(make_conflict(edit, server_note));
    CHECK_FALSE(r.value.has_value());
    CHECK(pushed_fields(r).empty());
}

TEST_CASE("last_writer_wins compares local and server update times", "[conflict]") {
    const tether::last_writer_wins p;
    const Note mine{"mine", "base body", 3};

    SECTION("local newer: keep local") {
        const auto local = local_edit(mine, {"title"}, t0 + 1ms);
        CHECK(p.resolve(make_conflict(local, server_note, t0)).kind == resolution_kind::keep_local);
    }
    SECTION("local older: take server") {
        const auto local = local_edit(mine, {"title"}, t0 - 1ms);
        CHECK(p.resolve(make_conflict(local, server_note, t0)).kind == resolution_kind::take_server);
    }
    SECTION("equal times: the server wins the tie") {
        const auto local = local_edit(mine, {"title"}, t0);
        CHECK(p.resolve(make_conflict(local, server_note, t0)).kind == resolution_kind::take_server);
    }
    SECTION("server time unknown: take server") {
        const auto local = local_edit(mine, {"title"}, t0 + 1h);
        CHECK(p.resolve(make_conflict(local, server_note, std::nullopt)).kind == resolution_kind::take_server);
    }
    SECTION("a newer local delete is sent again") {
        const auto local = local_delete(t0 + 1s);
        CHECK(p.resolve(make_conflict(local, server_note, t0)).kind == resolution_kind::keep_local);
    }
}

TEST_CASE("field_merge keeps local dirty fields over the server's value", "[conflict]") {
    const tether::field_merge p;

    SECTION("different fields changed: merged") {
        // local changed the title, the server changed the body
        const auto local = local_edit(Note{"local title", "base body", 3}, {"title"});
        const auto r = p.resolve(make_conflict(local, server_note, t0));
        REQUIRE(r.kind == resolution_kind::merged);
        REQUIRE(r.value.has_value());
        CHECK(r.value->title == "local title");
        CHECK(r.value->body == "server body");
        CHECK(r.value->stars == 3);
        CHECK((pushed_fields(r) == field_set{"title"}));
    }
    SECTION("same field changed on both sides: the local side wins that field") {
        const auto local = local_edit(Note{"base title", "local body", 5}, {"body", "stars"});
        const auto r = p.resolve(make_conflict(local, server_note));
        REQUIRE(r.kind == resolution_kind::merged);
        REQUIRE(r.value.has_value());
        CHECK((same(*r.value, Note{"base title", "local body", 5})));
        CHECK((pushed_fields(r) == field_set{"body", "stars"}));
    }
    SECTION("only the fields that differ from the server are dirty") {
        // stars is dirty locally but the server already has the same value
        const auto local = local_edit(Note{"local title", "base body", 3}, {"title", "stars"});
        const auto r = p.resolve(make_conflict(local, server_note));
        REQUIRE(r.kind == resolution_kind::merged);
        CHECK((pushed_fields(r) == field_set{"title"}));
    }
    SECTION("local dirty field already equals the server's: take server") {
        const auto local = local_edit(Note{"base title", "server body", 1}, {"body"});
        const auto r = p.resolve(make_conflict(local, server_note));
        CHECK(r.kind == resolution_kind::take_server);
        CHECK_FALSE(r.value.has_value());
        CHECK(pushed_fields(r).empty());
    }
    SECTION("no dirty fields: take server") {
        const auto local = local_edit(Note{"local title", "local body", 1}, {});
        CHECK(p.resolve(make_conflict(local, server_note)).kind == resolution_kind::take_server);
    }
    SECTION("an edit in error or failed state merges too") {
        auto local = local_edit(Note{"local title", "base body", 3}, {"title"});
        local.status = GENERATE(sync_status::error, sync_status::failed);
        CHECK(p.resolve(make_conflict(local, server_note)).kind == resolution_kind::merged);
    }
    SECTION("local delete: take server (the server's edit restores the record)") {
        const auto local = local_delete(t0 + 1h);
        const auto r = p.resolve(make_conflict(local, server_note, t0));
        CHECK(r.kind == resolution_kind::take_server);
        CHECK_FALSE(r.value.has_value());
    }
}

TEST_CASE("resolve_with asks the callback", "[conflict]") {
    const auto local = local_edit(Note{"local title", "base body", 3}, {"title"});
    const auto c = make_conflict(local, server_note, t0);

    SECTION("the callback's merged value is returned as is") {
        const auto p = tether::resolve_with([](const conflict<Note>& k) {
            Note m = k.server_value;
            m.title = k.local.value.title + " / " + k.server_value.title;
            return resolution<Note>::merged(std::move(m));
        });
        STATIC_REQUIRE(conflict_policy<std::remove_cvref_t<decltype(p)>, Note>);
        const auto r = p.resolve(c);
        REQUIRE(r.kind == resolution_kind::merged);
        REQUIRE(r.value.has_value());
        CHECK((same(*r.value, Note{"local title / base title", "server body", 3})));
        CHECK((pushed_fields(r) == field_set{"title"}));
    }
    SECTION("a stateful function object works and is copied into the policy") {
        struct pick {
            resolution_kind kind;
            resolution<Note> operator()(const conflict<Note>&) const {
                return kind == resolution_kind::keep_local ? resolution<Note>::keep_local()
                                                           : resolution<Note>::take_server();
            }
        };
        const auto p = tether::resolve_with(pick{resolution_kind::keep_local});
        STATIC_REQUIRE(conflict_policy<std::remove_cvref_t<decltype(p)>, Note>);
        CHECK(p.resolve(c).kind == resolution_kind::keep_local);
    }
    SECTION("a throwing callback falls back to take_server without propagating") {
        const auto p = tether::resolve_with([](const conflict<Note>&) -> resolution<Note> {
            throw std::runtime_error("boom");
        });
        STATIC_REQUIRE(noexcept(p.resolve(c)));
        resolution<Note> r = resolution<Note>::keep_local();
        REQUIRE_NOTHROW(r = p.resolve(c));
        CHECK(r.kind == resolution_kind::take_server);
        CHECK_FALSE(r.value.has_value());
    }
    SECTION("a callback that throws a non-exception type also falls back") {
        const auto p = tether::resolve_with([](const conflict<Note>&) -> resolution<Note> { throw 42; });
        CHECK(p.resolve(c).kind == resolution_kind::take_server);
    }
}
