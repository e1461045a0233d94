// The record transitions of sync, each on its own: no engine, store or transport.
#include "support/entities.hpp"

#include <tether/core/transitions.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <set>
#include <string_view>

using tether_test::Job;
using tether::cause;
using tether::sync_status;
namespace tr = tether::transitions;
using namespace std::chrono_literals;

namespace {
const tether::timestamp t0{std::chrono::milliseconds{1'700'000'000'000}};

tether::record<Job> pending(Job v) {
    tether::record<Job> r;
    r.value = std::move(v);
    r.status = sync_status::pending;
    r.local_rev = 1;
    return r;
}
}  // namespace

TEST_CASE("fail_attempt counts the attempt and backs off, or fails without a delay", "[transitions]") {
    auto r = pending(Job{"a", 0, ""});
    const tether::error e{tether::errc::transient, "down", 503, std::nullopt};
    CHECK(tr::fail_attempt(r, e, t0, std::optional{30s}));
    CHECK(r.status == sync_status::error);
    CHECK(r.attempts == 1);
    CHECK(r.last_attempt_at == t0);
    CHECK(r.next_attempt_at == t0 + 30s);
    CHECK(r.last_error == e);
    CHECK_FALSE(tr::fail_attempt(r, e, t0 + 1min, std::nullopt));
    CHECK(r.status == sync_status::failed);
    CHECK(r.attempts == 2);
    CHECK_FALSE(r.next_attempt_at);
}

TEST_CASE("applied: the server's answer wins, only edits since the snapshot stay dirty", "[transitions]") {
    SECTION("unchanged since the push: synced with the answer, server-filled fields kept") {
        auto r = pending(Job{"memo", 0, ""});
        r.attempts = 2;
        const auto why = tr::applied(r, Job{"memo", 0, ""}, Job{"memo", 0, "/srv"}, false, "s1", 3);
        CHECK(why == cause::push_applied);
        CHECK(r.status == sync_status::synced);
        CHECK(r.value == Job{"memo", 0, "/srv"});
        CHECK(r.server_id == "s1");
        CHECK(r.version == 3);
        CHECK(r.attempts == 0);
        CHECK(r.dirty.empty());
    }
    SECTION("edited during the push: the edit is laid over the answer and stays dirty") {
        auto r = pending(Job{"memo", 7, ""});
        r.dirty = tether::field_set{"title", "progress"};
        const auto why = tr::applied(r, Job{"memo", 0, ""}, Job{"memo", 0, "/srv"}, false, "s1", 3);
        CHECK(why == cause::push_applied_changed);
        CHECK(r.status == sync_status::pending);
        CHECK(r.value == Job{"memo", 7, "/srv"});
        CHECK(r.dirty == tether::field_set{"progress"});
    }
    SECTION("a replayed create: every edit since creation goes up over the older answer") {
        auto r = pending(Job{"memo", 60, ""});
        r.dirty = tether::field_set{"progress"};
        const auto why = tr::applied(r, Job{"memo", 60, ""}, Job{"memo", 0, "/srv"}, true, "s1", 1);
        CHECK(why == cause::push_applied_replayed_changes);
        CHECK(r.value == Job{"memo", 60, "/srv"});
        CHECK(r.dirty == tether::field_set{"progress"});
    }
    SECTION("removed during the push: stays a delete") {
        auto r = pending(Job{"memo", 0, ""});
        r.deleted = true;
        CHECK(tr::applied(r, r.value, r.value, false, "s1", 2) == cause::push_applied_deleted);
        CHECK(r.status == sync_status::pending_deletion);
    }
    SECTION("an answer that does not decode keeps the local value") {
        auto r = pending(Job{"memo", 1, ""});
        CHECK(tr::applied(r, Job{"memo", 1, ""}, std::nullopt, false, "s1", 2) == cause::push_applied);
        CHECK(r.value == Job{"memo", 1, ""});
        CHECK(r.status == sync_status::synced);
    }
}

TEST_CASE("settle applies each kind of decision", "[transitions]") {
    const Job server{"theirs", 5, "/s"};
    SECTION("take_server") {
        auto r = pending(Job{"mine", 1, ""});
        CHECK(tr::settle(r, tether::resolution<Job>::take_server(), server, "s1", 9) == cause::conflict_server_wins);
        CHECK(r.value == server);
        CHECK(r.status == sync_status::synced);
        CHECK(r.version == 9);
    }
    SECTION("keep_local keeps the edit, dirty against the server's copy") {
        auto r = pending(Job{"mine", 5, "/s"});
        CHECK(tr::settle(r, tether::resolution<Job>::keep_local(), server, "s1", 9) == cause::conflict_local_kept);
        CHECK(r.status == sync_status::pending);
        CHECK(r.dirty == tether::field_set{"title"});
    }
    SECTION("keep_local of a failed record leaves it failed with its attempts") {
        auto r = pending(Job{"mine", 5, "/s"});
        r.status = sync_status::failed;
        r.attempts = 5;
        CHECK(tr::settle(r, tether::resolution<Job>::keep_local(), server, "s1", 9) == cause::conflict_local_kept);
        CHECK(r.status == sync_status::failed);
        CHECK(r.attempts == 5);
    }
    SECTION("a merge equal to the server's copy is the server's copy") {
        auto r = pending(Job{"mine", 1, ""});
        CHECK(tr::settle(r, tether::resolution<Job>::merged(server), server, "s1", 9) ==
              cause::conflict_merge_equals_server);
        CHECK(r.status == sync_status::synced);
    }
    SECTION("merged") {
        auto r = pending(Job{"mine", 1, ""});
        const Job merged{"mine", 5, "/s"};
        CHECK(tr::settle(r, tether::resolution<Job>::merged(merged), server, "s1", 9) ==
              cause::conflict_merged);
        CHECK(r.value == merged);
        CHECK(r.dirty == tether::field_set{"title"});
        CHECK(r.status == sync_status::pending);
    }
    SECTION("the server's version is the base even below the local one (a restored server)") {
        auto r = pending(Job{"mine", 5, "/s"});
        r.version = 40;  // seen before the server went back to a backup
        CHECK(tr::settle(r, tether::resolution<Job>::keep_local(), server, "s1", 9) == cause::conflict_local_kept);
        CHECK(r.version == 9);  // the next update names 9, which the server holds: no endless conflict
    }
}

TEST_CASE("rebase_on_own_write takes the server's version as the base", "[transitions]") {
    auto r = pending(Job{"memo", 9, ""});
    r.attempts = 1;
    CHECK(tr::rebase_on_own_write(r, Job{"memo", 5, ""}, "s1", 4) == cause::own_write_changes_kept);
    CHECK(r.version == 4);
    CHECK(r.dirty == tether::field_set{"progress"});
    CHECK(r.attempts == 0);
    auto same = pending(Job{"memo", 5, ""});
    CHECK(tr::rebase_on_own_write(same, Job{"memo", 5, ""}, "s1", 4) == cause::own_write_confirmed);
    CHECK(same.status == sync_status::synced);
    auto restored = pending(Job{"memo", 9, ""});
    restored.version = 30;  // the server went back to a backup since
    CHECK(tr::rebase_on_own_write(restored, Job{"memo", 5, ""}, "s1", 4) == cause::own_write_changes_kept);
    CHECK(restored.version == 4);
}

TEST_CASE("remove_locally makes a delete waiting to go up, attempts afresh", "[transitions]") {
    auto r = pending(Job{"memo", 1, ""});
    r.status = sync_status::error;
    r.attempts = 3;
    r.next_attempt_at = t0 + 1min;
    r.last_error = tether::error{tether::errc::transient, "down", 503, std::nullopt};
    CHECK(tr::remove_locally(r, t0) == cause::remove);
    CHECK(r.deleted);
    CHECK(r.status == sync_status::pending_deletion);
    CHECK(r.local_rev == 2);
    CHECK(r.attempts == 0);
    CHECK_FALSE(r.next_attempt_at);
    CHECK_FALSE(r.last_error);
    CHECK(r.updated_at == t0);
}

TEST_CASE("reset_failed puts a failed record or delete back in line", "[transitions]") {
    auto r = pending(Job{"memo", 1, ""});
    REQUIRE_FALSE(tr::fail_attempt(r, tether::error{tether::errc::invalid_argument, "no", 400, std::nullopt}, t0,
                                   std::nullopt));
    CHECK(tr::reset_failed(r, t0 + 1s) == cause::reset_failed);
    CHECK(r.status == sync_status::pending);
    CHECK(r.attempts == 0);
    CHECK_FALSE(r.last_error);
    CHECK(r.local_rev == 2);
    CHECK(r.updated_at == t0 + 1s);
    auto d = pending(Job{"memo", 1, ""});
    d.deleted = true;
    d.status = sync_status::failed;
    CHECK(tr::reset_failed(d, t0) == cause::reset_failed);
    CHECK(d.status == sync_status::pending_deletion);
}

TEST_CASE("pulled_new and take_pulled take the server's copy as it is", "[transitions]") {
    const tether::local_id id = tether::local_id_generator{7}(t0);
    const auto r = tr::pulled_new<Job>(id, "s1", Job{"memo", 4, "/srv"}, 9, t0);
    CHECK(r.id == id);
    CHECK(r.server_id == "s1");
    CHECK(r.value == Job{"memo", 4, "/srv"});
    CHECK(r.status == sync_status::synced);
    CHECK(r.version == 9);
    CHECK(r.local_rev == 0);
    CHECK(r.created_at == t0);
    CHECK(r.updated_at == t0);
    auto held = r;
    // A full resync takes a version below the local one.
    CHECK(tr::take_pulled(held, Job{"memo", 5, "/srv"}, 3) == cause::pull);
    CHECK(held.value == Job{"memo", 5, "/srv"});
    CHECK(held.version == 3);
}

TEST_CASE("confirm_create adopts the server's id for an own create whose answer was lost", "[transitions]") {
    auto r = pending(Job{"memo", 0, ""});
    r.dirty = tether::field_set{"title"};
    r.attempts = 1;
    r.last_attempt_at = t0;
    CHECK(tr::confirm_create(r, "s1", 4) == cause::pull_create_confirmed);
    CHECK(r.server_id == "s1");
    CHECK(r.version == 4);
    CHECK(r.status == sync_status::synced);
    CHECK(r.dirty.empty());
    CHECK(r.attempts == 0);
    CHECK(r.last_attempt_at == t0);
}

TEST_CASE("a full resync keeps local changes on the server's version, or forgets a lost server copy",
          "[transitions]") {
    auto kept = pending(Job{"memo", 2, ""});
    kept.server_id = "s1";
    kept.version = 8;
    CHECK(tr::keep_changes_on(kept, 5) == cause::resync_changes_kept);
    CHECK(kept.version == 5);
    CHECK(kept.status == sync_status::pending);

    auto lost = pending(Job{"memo", 2, ""});
    lost.server_id = "s1";
    lost.version = 8;
    lost.dirty = tether::field_set{"progress"};
    lost.status = sync_status::error;
    lost.attempts = 2;
    lost.last_attempt_at = t0;
    lost.next_attempt_at = t0 + 1min;
    CHECK(tr::forget_server_copy(lost, t0 + 2s) == cause::resync_unknown);
    CHECK(lost.server_id == "s1");  // sent again under it: one server id on every device
    CHECK(lost.version == 0);
    CHECK(lost.dirty.empty());      // goes up whole
    CHECK(lost.local_rev == 2);
    CHECK(lost.status == sync_status::pending);
    CHECK(lost.attempts == 0);
    CHECK_FALSE(lost.next_attempt_at);
    CHECK(lost.updated_at == t0 + 2s);

    auto failed = pending(Job{"memo", 2, ""});
    failed.server_id = "s1";
    failed.status = sync_status::failed;
    failed.attempts = 5;
    CHECK(tr::forget_server_copy(failed, t0) == cause::resync_unknown);
    CHECK(failed.status == sync_status::failed);
    CHECK(failed.attempts == 5);
    CHECK(failed.server_id == "s1");
    CHECK(failed.version == 0);
}

TEST_CASE("every cause has its own text", "[transitions]") {
    std::set<std::string_view> texts;
    for (int c = 0; c <= static_cast<int>(cause::merged_twin); ++c) {
        const auto t = tether::to_string(static_cast<cause>(c));
        CHECK(t != "unknown");
        texts.insert(t);
    }
    CHECK(texts.size() == static_cast<std::size_t>(cause::merged_twin) + 1);
}
