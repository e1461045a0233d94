#pragma once

// tether::testing: the transport conformance suite. Checks that a transport and
// the server behind it keep the protocol rules the engine relies on. Framework
// free: it returns the failures, and a test of any framework asserts there are
// none.
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/transport/transport.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::testing {

/// @brief One broken rule: which check, and what was seen.
struct conformance_failure {
    std::string check;  ///< the rule, e.g. "idempotent create"
    std::string what;   ///< what the transport did instead
};

/// @brief Settings of `check_transport`.
struct transport_conformance_options {
    /// The collection the checks write to (records with fresh local ids; other
    /// records in it are left alone).
    std::string collection = "conformance";
    /// Seed of the local ids the checks create (vary it to run twice on one server).
    std::uint64_t seed = 1;
    /// True if the server pages its change feed (false: full-list mode, where
    /// the cursor and tombstone checks do not apply).
    bool change_feed = true;
};

namespace detail {

/// The failures of one conformance run and the rule being checked: what the
/// storage and server-store suites share.
class rule_run {
public:
    std::vector<conformance_failure> failures;
    std::string rule;

    /// Notes a failure of the current rule.
    void fail(std::string what) { failures.push_back({rule, std::move(what)}); }

    /// Notes `what` unless `cond`; returns `cond`.
    bool expect(bool cond, std::string what) {
        if (!cond) fail(std::move(what));
        return cond;
    }

    /// Notes a failure if `r` is an error (`doing` says what was asked); true if it is a value.
    template <class T>
    bool ok(const result<T>& r, std::string_view doing) {
        if (r) return true;
        fail(std::string{doing} + " failed: " + r.error().message);
        return false;
    }

    /// The value `r` holds, or a failure (absent, or an error) and nullopt.
    template <class T>
    std::optional<T> present(const result<std::optional<T>>& r, std::string_view doing) {
        if (!ok(r, doing)) return std::nullopt;
        if (!r->has_value()) {
            fail(std::string{doing} + " found nothing");
            return std::nullopt;
        }
        return **r;
    }
};

class conformance_run {
public:
    conformance_run(transport_conformance_options o) : opt_(std::move(o)), ids_(opt_.seed) {}

    std::vector<conformance_failure> failures;

    void fail(std::string check, std::string what) { failures.push_back({std::move(check), std::move(what)}); }

    local_id fresh_id() { return ids_(timestamp{std::chrono::milliseconds{1'700'000'000'000}} + std::chrono::milliseconds{++n_}); }

    const std::string& collection() const { return opt_.collection; }
    const transport_conformance_options& options() const { return opt_; }

    static push_op create(local_id id, nlohmann::json value, std::string origin) {
        return push_op{op_kind::create, id, std::nullopt, 0, std::move(value), std::move(origin)};
    }
    static push_op update(local_id id, std::optional<std::string> sid, std::uint64_t base, nlohmann::json value,
                          std::string origin) {
        return push_op{op_kind::update, id, std::move(sid), base, std::move(value), std::move(origin)};
    }
    static push_op remove(local_id id, std::optional<std::string> sid, std::uint64_t base, std::string origin) {
        return push_op{op_kind::remove, id, std::move(sid), base, nullptr, std::move(origin)};
    }

    /// Pushes one op; the single outcome, or a failure noted under `check`.
    template <class T>
    std::optional<push_outcome> push_one(T& t, const std::string& check, push_op op) {
        std::vector<push_op> ops{std::move(op)};
        auto out = t.push(collection(), std::span<const push_op>{ops});
        if (!out) {
            fail(check, "push failed: " + out.error().message);
            return std::nullopt;
        }
        if (out->size() != 1) {
            fail(check, "one op answered with " + std::to_string(out->size()) + " outcomes");
            return std::nullopt;
        }
        return std::move(out->front());
    }

    /// Pulls every page from `cursor`; the records and tombstones, or empty after a failure.
    template <class T>
    std::optional<pull_page> pull_all(T& t, const std::string& check, std::string cursor) {
        pull_page all;
        all.next_cursor = cursor;
        for (int pages = 0; pages < 100000; ++pages) {
            auto page = t.pull(collection(), cursor, 50);
            if (!page) {
                fail(check, "pull failed: " + page.error().message);
                return std::nullopt;
            }
            all.records.insert(all.records.end(), page->records.begin(), page->records.end());
            all.tombstones.insert(all.tombstones.end(), page->tombstones.begin(), page->tombstones.end());
            all.next_cursor = page->next_cursor;
            if (!page->has_more) return all;
            if (page->next_cursor == cursor) {
                fail(check, "has_more without moving the cursor");
                return std::nullopt;
            }
            cursor = page->next_cursor;
        }
        fail(check, "more than 100000 pages");
        return std::nullopt;
    }

private:
    transport_conformance_options opt_;
    local_id_generator ids_;
    std::int64_t n_ = 0;
};

inline const server_record* find_record(const pull_page& p, std::string_view sid) {
    for (const auto& r : p.records)
        if (r.server_id == sid) return &r;
    return nullptr;
}

inline bool has_tombstone(const pull_page& p, std::string_view sid) {
    for (const auto& t : p.tombstones)
        if (t.server_id == sid) return true;
    return false;
}

}  // namespace detail

/// @brief Checks the protocol rules a transport and its server must keep;
/// returns every rule broken (empty: conformant).
///
/// `device()` makes a transport for one device of one user; it is called twice
/// for two devices of that user (they share records). The checks write new
/// records (fresh local ids) into `options.collection` and read them back:
/// - a create applies, answers a server id, a version above 0 and the local id;
/// - a repeated create of the same local id (a lost response) is idempotent:
///   the same server id, no second record, `replayed` set;
/// - a replayed create of a record another device changed since is a `conflict`;
/// - the pushing device's `origin` is kept with the change (answer and pull);
/// - an update on the current version applies and raises the version; one on a
///   stale version is a `conflict` carrying the current record;
/// - an update named by local id only with `base_version` 0 skips the version
///   check (its sender never learnt a version);
/// - after a remove, an update answers `not_found`, a fetch `not_found`, and a
///   pull from an earlier cursor carries a tombstone (with a change feed);
/// - a fetch of a live record returns it; a pull from a cursor returns what
///   changed after it and not what came before.
///
/// @code
/// tether::loopback_server server;
/// auto failures = tether::testing::check_transport([&] { return tether::loopback_transport{server, "alice"}; });
/// for (const auto& f : failures) std::cerr << f.check << ": " << f.what << '\n';
/// @endcode
template <class MakeTransport>
[[nodiscard]] std::vector<conformance_failure> check_transport(MakeTransport device,
                                                               transport_conformance_options options = {}) {
    detail::conformance_run run{std::move(options)};
    auto a = device();
    auto b = device();
    const std::string origin_a = "device-a-" + std::to_string(run.options().seed);
    const std::string origin_b = "device-b-" + std::to_string(run.options().seed);
    std::string cursor;
    if (run.options().change_feed) {
        auto start = run.pull_all(a, "cursor", "");
        if (!start) return std::move(run.failures);
        cursor = start->next_cursor;
    }

    // Create, and the idempotent replay.
    const auto id = run.fresh_id();
    auto created = run.push_one(a, "create", detail::conformance_run::create(id, {{"title", "one"}, {"n", 1}}, origin_a));
    if (!created) return std::move(run.failures);
    const auto& c = created->record;
    if (created->outcome != push_outcome::kind::applied) run.fail("create", "a new record was not applied");
    if (c.server_id.empty()) run.fail("create", "no server id in the answer");
    if (c.version == 0) run.fail("create", "version 0 in the answer");
    // (A create stored as sent may be answered in short form: no local id, origin or value.)
    if (c.id && *c.id != id) run.fail("create", "the answer carries another local id");
    if (created->replayed) run.fail("create", "a fresh create answered as replayed");
    if (!c.origin.empty() && c.origin != origin_a) run.fail("origin kept", "create answered origin '" + c.origin + "'");
    const std::string sid = c.server_id;
    auto again = run.push_one(a, "idempotent create",
                              detail::conformance_run::create(id, {{"title", "one"}, {"n", 1}}, origin_a));
    if (again) {
        if (again->outcome != push_outcome::kind::applied) run.fail("idempotent create", "the replay was not applied");
        if (again->record.server_id != sid) run.fail("idempotent create", "the replay made a second record");
        if (again->record.version != c.version) run.fail("idempotent create", "the replay changed the version");
        if (!again->replayed) run.fail("idempotent create", "the replay is not marked replayed");
    }

    // Updates: on the current version, on a stale one, by local id with base 0.
    auto upd = run.push_one(a, "update", detail::conformance_run::update(id, sid, c.version, {{"n", 2}}, origin_a));
    std::uint64_t version = c.version;
    if (upd) {
        if (upd->outcome != push_outcome::kind::applied) run.fail("update", "an update on the current version was not applied");
        if (upd->record.version <= c.version) run.fail("update", "the version did not increase");
        if (upd->record.value.value("title", std::string{}) != "one" || upd->record.value.value("n", 0) != 2) {
            run.fail("update", "the changed field was not merged into the record: " + upd->record.value.dump());
        }
        version = upd->record.version;
    }
    auto stale = run.push_one(b, "stale update conflicts",
                              detail::conformance_run::update(id, sid, c.version, {{"n", 3}}, origin_b));
    if (stale) {
        if (stale->outcome != push_outcome::kind::conflict) run.fail("stale update conflicts", "not a conflict");
        else if (stale->record.version != version) run.fail("stale update conflicts", "the conflict does not carry the current version");
    }
    auto by_local = run.push_one(b, "base_version 0", detail::conformance_run::update(id, std::nullopt, 0, {{"n", 4}}, origin_b));
    if (by_local) {
        if (by_local->outcome != push_outcome::kind::applied) run.fail("base_version 0", "an update by local id with base 0 was not applied");
        if (by_local->record.origin != origin_b) run.fail("origin kept", "update answered origin '" + by_local->record.origin + "'");
        version = by_local->record.version;
    }
    // The record changed since its create: a replayed create must not overwrite that.
    auto replay_changed = run.push_one(a, "replayed create of a changed record",
                                       detail::conformance_run::create(id, {{"title", "one"}, {"n", 1}}, origin_a));
    if (replay_changed && replay_changed->outcome != push_outcome::kind::conflict) {
        run.fail("replayed create of a changed record", "not a conflict");
    }

    // Fetch, and the pull from the cursor.
    auto fetched = a.fetch(run.collection(), sid);
    if (!fetched) run.fail("fetch", "a live record was not fetched: " + fetched.error().message);
    else if (fetched->version != version) run.fail("fetch", "fetch answered an old version");
    if (run.options().change_feed) {
        auto since = run.pull_all(a, "cursor", cursor);
        if (since) {
            const auto* r = detail::find_record(*since, sid);
            if (r == nullptr) run.fail("cursor", "a pull from an earlier cursor misses the new record");
            else if (r->origin != origin_b) run.fail("origin kept", "pull answered origin '" + r->origin + "'");
            auto later = run.pull_all(a, "cursor", since->next_cursor);
            if (later && detail::find_record(*later, sid) != nullptr) {
                run.fail("cursor", "a pull from the latest cursor repeats a record it already gave");
            }
            cursor = since->next_cursor;
        }
    }

    // Remove: then the record is gone for every request.
    auto removed = run.push_one(a, "remove", detail::conformance_run::remove(id, sid, version, origin_a));
    if (removed && removed->outcome != push_outcome::kind::applied) run.fail("remove", "a remove on the current version was not applied");
    auto after = run.push_one(b, "not_found after delete",
                              detail::conformance_run::update(id, sid, version + 1, {{"n", 5}}, origin_b));
    if (after && !(after->outcome == push_outcome::kind::rejected && after->failure.code == errc::not_found)) {
        run.fail("not_found after delete", "an update of a deleted record was not rejected not_found");
    }
    auto gone = a.fetch(run.collection(), sid);
    if (gone || gone.error().code != errc::not_found) run.fail("not_found after delete", "fetch of a deleted record did not answer not_found");
    if (run.options().change_feed) {
        auto tomb = run.pull_all(b, "tombstones", cursor);
        if (tomb && !detail::has_tombstone(*tomb, sid)) run.fail("tombstones", "a pull after a delete has no tombstone");
        if (tomb && detail::find_record(*tomb, sid) != nullptr) run.fail("tombstones", "a deleted record is pulled as live");
    }
    return std::move(run.failures);
}

}  // namespace tether::testing
