#pragma once

/// @file
/// @brief tether::testing: the server-store conformance suite. Checks that a
/// server store keeps the `tether::server::server_store` contract that
/// `sync_service` relies on. Framework free: it returns the failures, and a
/// test of any framework asserts there are none.
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/server/store.hpp>
#include <tether/testing/transport_conformance.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace tether::testing {

/// @brief Settings of `check_server_store`.
struct server_store_conformance_options {
    /// Threads of the "concurrent writes" rule, all on one store (0 skips
    /// it). A reader thread runs beside them.
    int threads = 4;
    /// Write transactions each of those threads runs.
    int transactions_per_thread = 25;
};

namespace detail {

/// The scopes the checks use.
inline constexpr server::scope alice_jobs{"alice", "jobs"};
inline constexpr server::scope bob_jobs{"bob", "jobs"};
inline constexpr server::scope alice_notes{"alice", "notes"};

/// Local ids that differ by `n`.
inline local_id store_id_n(std::uint64_t n) {
    return local_id::from_parts(timestamp{std::chrono::milliseconds{1'700'000'000'000 + static_cast<std::int64_t>(n)}},
                                static_cast<std::uint16_t>(n * 7), n * 0x9E37'79B9'7F4A'7C15ull);
}

/// A stored record with every field set: server id `sid`, local id `#n` (none
/// for `n` 0), `version`, a value that exercises JSON's types.
inline server::stored_record stored_n(std::string sid, std::uint64_t n, std::uint64_t version, bool deleted = false) {
    server::stored_record r;
    r.record.server_id = std::move(sid);
    if (n != 0) r.record.id = store_id_n(n);
    r.record.version = version;
    r.record.value = {{"title", "r\xc3\xa9" + std::to_string(n)},
                      {"n", n},
                      {"neg", -3},
                      {"ratio", 0.25},
                      {"tags", {"a", "b"}},
                      {"nested", {{"on", true}, {"none", nullptr}}}};
    r.record.updated_at = timestamp{std::chrono::milliseconds{1'700'000'100'000 + static_cast<std::int64_t>(version)}};
    r.record.origin = "device-" + std::to_string(n % 3);
    r.deleted = deleted;
    r.created_version = version;
    return r;
}

/// The first field in which `got` differs from `want`, or empty.
inline std::string stored_difference(const server::stored_record& want, const server::stored_record& got) {
    if (got.record.server_id != want.record.server_id) return "server_id";
    if (got.record.id != want.record.id) return "local id";
    if (got.record.version != want.record.version) return "version";
    if (got.record.value != want.record.value) return "value";
    if (got.record.updated_at != want.record.updated_at) return "updated_at";
    if (got.record.origin != want.record.origin) return "origin";
    if (got.deleted != want.deleted) return "deleted";
    if (got.created_version != want.created_version) return "created_version";
    return {};
}

/// The versions of `v`, in order.
inline std::vector<std::uint64_t> versions_of(const std::vector<server::stored_record>& v) {
    std::vector<std::uint64_t> out;
    for (const auto& r : v) out.push_back(r.record.version);
    return out;
}

/// The server ids of `v`, in order.
inline std::vector<std::string> server_ids_of(const std::vector<server::stored_record>& v) {
    std::vector<std::string> out;
    for (const auto& r : v) out.push_back(r.record.server_id);
    return out;
}

/// `[a, b, c]` for a vector of numbers or strings.
template <class T>
std::string show(const std::vector<T>& v) {
    std::string out = "[";
    for (const auto& x : v) {
        if (out.size() > 1) out += ", ";
        if constexpr (std::is_arithmetic_v<T>) out += std::to_string(x);
        else out += x;
    }
    return out + "]";
}

/// The failures of one `check_server_store` run, and the rule being checked.
class server_store_run : public rule_run {
public:
    /// True if `r` is a value holding nothing.
    bool absent(const result<std::optional<server::stored_record>>& r, std::string_view doing) {
        if (!ok(r, doing)) return false;
        if (!r->has_value()) return true;
        fail(std::string{doing} + " found " + (*r)->record.server_id);
        return false;
    }

    /// True if `got` is `want`, field for field.
    bool same(const server::stored_record& want, const server::stored_record& got, std::string_view doing) {
        const auto d = stored_difference(want, got);
        if (d.empty()) return true;
        fail(std::string{doing} + " returned " + got.record.server_id + " with another " + d + " than was put");
        return false;
    }

    /// True if the versions of `got` are `want`.
    bool same_versions(const std::vector<std::uint64_t>& want, const std::vector<server::stored_record>& got,
                       std::string_view doing) {
        const auto v = versions_of(got);
        return expect(v == want, std::string{doing} + " returned versions " + show(v) + ", expected " + show(want));
    }
};

/// Runs `body(store)` on a fresh store as rule `name`; an exception out of it
/// (or out of the factory) is a failure of the rule.
template <class Make, class Body>
void run_server_rule(server_store_run& run, std::string name, Make& make_store, Body&& body) {
    run.rule = std::move(name);
    try {
        auto store = make_store();
        std::forward<Body>(body)(store);
    } catch (const std::exception& e) {
        run.fail(std::string{"threw: "} + e.what());
    } catch (...) {
        run.fail("threw an exception not derived from std::exception");
    }
}

/// Locks `s` and puts `recs` in one write transaction.
template <class S>
result<void> put_all(S& store, server::scope s, const std::vector<server::stored_record>& recs) {
    return store.write([&](auto& tx) -> result<void> {
        if (auto c = tx.lock_collection(s); !c) return unexpected{c.error()};
        for (const auto& r : recs)
            if (auto ok = tx.put(s, r); !ok) return ok;
        return {};
    });
}

/// Allocates `n` change numbers of `s` in one write transaction; the last one.
template <class S>
result<std::uint64_t> take_changes(S& store, server::scope s, int n) {
    return store.write([&](auto& tx) -> result<std::uint64_t> {
        if (auto c = tx.lock_collection(s); !c) return unexpected{c.error()};
        std::uint64_t last = 0;
        for (int i = 0; i < n; ++i) {
            auto next = tx.next_change(s);
            if (!next) return next;
            last = *next;
        }
        return last;
    });
}

/// The scope's info as a read sees it (empty: unknown).
template <class S>
result<std::optional<server::collection_info>> info_of(const S& store, server::scope s) {
    return store.read([&](auto& tx) { return tx.collection(s); });
}

}  // namespace detail

/// @brief Runs the server-store conformance suite on stores from `make_store()`
/// (a fresh, empty store per rule); returns the broken rules (empty: it conforms).
///
/// The rules, by the name each failure carries:
/// - "empty store": finds, lists, changes and the scope's info are empty;
/// - "lock makes the scope known": after a committed `lock_collection` the
///   scope's info is all zero; other scopes stay unknown;
/// - "change numbers": `next_change` counts 1, 2, 3, ... per scope, across
///   transactions, and `last_change` follows; the epoch stays 0;
/// - "put and find": a record comes back from both finds field for field;
/// - "put replaces": a second put of a server id replaces the record, its old
///   version leaves the change feed, and a tombstone stays findable but not listed;
/// - "change order": `changes_after` gives live and deleted records above a
///   number in version order, at most `limit` (0 gives none);
/// - "list": live records only, in `server_id_less` order;
/// - "local id unique": a second record with a local id held in the scope is
///   `errc::conflict` and changes nothing; other scopes may hold it;
/// - "version unique": likewise for a version held by another record;
/// - "empty server id refused": `errc::invalid_argument`;
/// - "scopes apart": one server id, local id and change counter per scope;
/// - "own writes visible": a write transaction's reads see its writes;
/// - "new server ids": distinct, within and across transactions;
/// - "rollback on error": a transaction returning an error leaves no record,
///   replacement, change number or newly known scope, and `write` returns
///   that error;
/// - "rollback on exception": likewise when it throws (rethrown), and the
///   store is usable afterwards;
/// - "concurrent writes": write transactions on one scope from `threads`
///   threads lose no change number and no record, while a reader beside them
///   always sees versions 1..last_change without a gap (change order is commit
///   order; skipped with `threads = 0`);
/// - "snapshot and restore", for a `restorable_server_store`: records come
///   back, the last change number passes every issued one, the epoch goes up
///   by one, and later changes are numbered after.
/// That the store satisfies `server_store` is checked at compile time.
///
/// @code
/// auto failures = tether::testing::check_server_store([] { return my_store{}; });
/// for (const auto& f : failures) std::cerr << f.check << ": " << f.what << '\n';
/// @endcode
template <class MakeStore>
[[nodiscard]] std::vector<conformance_failure> check_server_store(MakeStore make_store,
                                                                  server_store_conformance_options options = {}) {
    using S = std::remove_cvref_t<std::invoke_result_t<MakeStore&>>;
    static_assert(server::server_store<S>,
                  "tether::testing::check_server_store(make_store): make_store() must return a server store "
                  "(see <tether/server/store.hpp>)");
    using server::stored_record;
    using detail::alice_jobs;
    using detail::alice_notes;
    using detail::bob_jobs;
    using detail::stored_n;
    detail::server_store_run run;
    auto rule = [&](std::string name, auto body) { detail::run_server_rule(run, std::move(name), make_store, body); };

    rule("empty store", [&](S& store) {
        auto r = store.read([&](auto& tx) -> result<void> {
            run.absent(tx.find_by_server_id(alice_jobs, "s1"), "find_by_server_id");
            run.absent(tx.find_by_local_id(alice_jobs, detail::store_id_n(1)), "find_by_local_id");
            if (auto c = tx.changes_after(alice_jobs, 0, 10); run.ok(c, "changes_after"))
                run.expect(c->empty(), "changes_after of an empty store is not empty");
            if (auto l = tx.list(alice_jobs); run.ok(l, "list")) run.expect(l->empty(), "list of an empty store is not empty");
            if (auto i = tx.collection(alice_jobs); run.ok(i, "collection"))
                run.expect(!i->has_value(), "an empty store knows the scope");
            return {};
        });
        run.ok(r, "read");
    });

    rule("lock makes the scope known", [&](S& store) {
        auto locked = store.write([&](auto& tx) { return tx.lock_collection(alice_jobs); });
        if (!run.ok(locked, "lock_collection")) return;
        run.expect(*locked == server::collection_info{}, "a new scope's info is not all zero");
        if (auto i = detail::info_of(store, alice_jobs); run.ok(i, "collection"))
            run.expect(i->has_value() && **i == server::collection_info{}, "a locked scope is not known with zero info");
        if (auto i = detail::info_of(store, bob_jobs); run.ok(i, "collection"))
            run.expect(!i->has_value(), "locking one scope made another known");
    });

    rule("change numbers", [&](S& store) {
        auto first = detail::take_changes(store, alice_jobs, 3);
        if (!run.ok(first, "next_change")) return;
        run.expect(*first == 3, "three next_change calls ended at " + std::to_string(*first) + ", not 3");
        auto second = detail::take_changes(store, alice_jobs, 1);
        if (!run.ok(second, "next_change")) return;
        run.expect(*second == 4, "the next transaction's number is " + std::to_string(*second) + ", not 4");
        if (auto i = detail::info_of(store, alice_jobs); run.ok(i, "collection") && run.expect(i->has_value(), "scope unknown")) {
            run.expect((*i)->last_change == 4, "last_change is " + std::to_string((*i)->last_change) + ", not 4");
            run.expect((*i)->epoch == 0, "writes changed the epoch");
        }
    });

    rule("put and find", [&](S& store) {
        const auto rec = stored_n("s1", 1, 1);
        auto tomb = stored_n("s2", 2, 2, true);
        tomb.created_version = 0;
        tomb.record.origin.clear();
        tomb.record.updated_at.reset();
        if (!run.ok(detail::put_all(store, alice_jobs, {rec, tomb}), "put")) return;
        (void)store.read([&](auto& tx) -> result<void> {
            if (auto f = run.present(tx.find_by_server_id(alice_jobs, "s1"), "find_by_server_id")) run.same(rec, *f, "find_by_server_id");
            if (auto f = run.present(tx.find_by_local_id(alice_jobs, *rec.record.id), "find_by_local_id")) run.same(rec, *f, "find_by_local_id");
            if (auto f = run.present(tx.find_by_server_id(alice_jobs, "s2"), "find_by_server_id of a tombstone")) run.same(tomb, *f, "find_by_server_id of a tombstone");
            return {};
        });
    });

    rule("put replaces", [&](S& store) {
        if (!run.ok(detail::put_all(store, alice_jobs, {stored_n("s1", 1, 1), stored_n("s2", 2, 2)}), "put")) return;
        auto changed = stored_n("s1", 1, 3, true);
        changed.record.value = {{"title", "gone"}};
        changed.created_version = 1;
        if (!run.ok(detail::put_all(store, alice_jobs, {changed}), "a second put of s1")) return;
        (void)store.read([&](auto& tx) -> result<void> {
            if (auto f = run.present(tx.find_by_server_id(alice_jobs, "s1"), "find_by_server_id")) run.same(changed, *f, "find_by_server_id");
            if (auto f = run.present(tx.find_by_local_id(alice_jobs, *changed.record.id), "find_by_local_id")) run.same(changed, *f, "find_by_local_id");
            if (auto c = tx.changes_after(alice_jobs, 0, 10); run.ok(c, "changes_after")) run.same_versions({2, 3}, *c, "changes_after");
            if (auto l = tx.list(alice_jobs); run.ok(l, "list"))
                run.expect(detail::server_ids_of(*l) == std::vector<std::string>{"s2"}, "list holds " + detail::show(detail::server_ids_of(*l)) + ", expected [s2]");
            return {};
        });
    });

    rule("change order", [&](S& store) {
        if (!run.ok(detail::put_all(store, alice_jobs, {stored_n("s3", 3, 5), stored_n("s1", 1, 2, true), stored_n("s2", 2, 4)}), "put")) return;
        (void)store.read([&](auto& tx) -> result<void> {
            if (auto c = tx.changes_after(alice_jobs, 0, 10); run.ok(c, "changes_after")) run.same_versions({2, 4, 5}, *c, "changes_after(0, 10)");
            if (auto c = tx.changes_after(alice_jobs, 2, 10); run.ok(c, "changes_after")) run.same_versions({4, 5}, *c, "changes_after(2, 10)");
            if (auto c = tx.changes_after(alice_jobs, 3, 1); run.ok(c, "changes_after")) run.same_versions({4}, *c, "changes_after(3, 1)");
            if (auto c = tx.changes_after(alice_jobs, 0, 0); run.ok(c, "changes_after")) run.same_versions({}, *c, "changes_after(0, 0)");
            if (auto c = tx.changes_after(alice_jobs, 5, 10); run.ok(c, "changes_after")) run.same_versions({}, *c, "changes_after(5, 10)");
            if (auto c = tx.changes_after(alice_jobs, 0, 10); run.ok(c, "changes_after") && c->size() == 3)
                run.expect((*c)[0].deleted && !(*c)[1].deleted, "changes_after lost the deleted flag");
            return {};
        });
    });

    rule("list", [&](S& store) {
        if (!run.ok(detail::put_all(store, alice_jobs, {stored_n("s10", 1, 1), stored_n("s2", 2, 2), stored_n("x", 3, 3),
                                                        stored_n("s1", 4, 4), stored_n("s3", 5, 5, true)}), "put")) return;
        auto l = store.read([&](auto& tx) { return tx.list(alice_jobs); });
        if (!run.ok(l, "list")) return;
        const std::vector<std::string> want{"x", "s1", "s2", "s10"};
        run.expect(detail::server_ids_of(*l) == want, "list holds " + detail::show(detail::server_ids_of(*l)) + ", expected " + detail::show(want));
    });

    rule("local id unique", [&](S& store) {
        if (!run.ok(detail::put_all(store, alice_jobs, {stored_n("s1", 1, 1)}), "put")) return;
        auto twin = detail::put_all(store, alice_jobs, {stored_n("s2", 2, 2), stored_n("s3", 1, 3)});
        if (run.expect(!twin, "a second record with a held local id was stored"))
            run.expect(twin.error().code == errc::conflict, "a held local id gave " + std::string{to_string(twin.error().code)} + ", not conflict");
        (void)store.read([&](auto& tx) -> result<void> {
            if (auto f = run.present(tx.find_by_local_id(alice_jobs, detail::store_id_n(1)), "find_by_local_id"))
                run.expect(f->record.server_id == "s1", "the local id moved to " + f->record.server_id);
            run.absent(tx.find_by_server_id(alice_jobs, "s2"), "find_by_server_id of a record of the refused transaction");
            return {};
        });
        run.ok(detail::put_all(store, alice_notes, {stored_n("s3", 1, 1)}), "the same local id in another scope");
        run.ok(detail::put_all(store, alice_jobs, {stored_n("s1", 1, 5)}), "a replacement keeping its local id");
    });

    rule("version unique", [&](S& store) {
        if (!run.ok(detail::put_all(store, alice_jobs, {stored_n("s1", 1, 1)}), "put")) return;
        auto twin = detail::put_all(store, alice_jobs, {stored_n("s2", 2, 1)});
        if (run.expect(!twin, "a second record with a held version was stored"))
            run.expect(twin.error().code == errc::conflict, "a held version gave " + std::string{to_string(twin.error().code)} + ", not conflict");
        run.ok(detail::put_all(store, bob_jobs, {stored_n("s2", 2, 1)}), "the same version in another scope");
    });

    rule("empty server id refused", [&](S& store) {
        auto r = detail::put_all(store, alice_jobs, {stored_n("", 1, 1)});
        if (run.expect(!r, "a record with an empty server id was stored"))
            run.expect(r.error().code == errc::invalid_argument, "an empty server id gave " + std::string{to_string(r.error().code)} + ", not invalid_argument");
    });

    rule("scopes apart", [&](S& store) {
        const auto a = stored_n("s1", 1, 1);
        auto b = stored_n("s1", 1, 1);
        b.record.value = {{"who", "bob"}};
        auto n = stored_n("s1", 1, 1);
        n.record.value = {{"who", "notes"}};
        if (!run.ok(detail::put_all(store, alice_jobs, {a}), "put") || !run.ok(detail::put_all(store, bob_jobs, {b}), "put") ||
            !run.ok(detail::put_all(store, alice_notes, {n}), "put"))
            return;
        (void)detail::take_changes(store, alice_jobs, 2);
        (void)detail::take_changes(store, bob_jobs, 1);
        (void)store.read([&](auto& tx) -> result<void> {
            for (const auto& [s, want] : {std::pair{alice_jobs, a}, std::pair{bob_jobs, b}, std::pair{alice_notes, n}}) {
                const std::string where = std::string{s.user} + "/" + std::string{s.collection};
                if (auto f = run.present(tx.find_by_server_id(s, "s1"), "find_by_server_id in " + where)) run.same(want, *f, "find_by_server_id in " + where);
                if (auto f = run.present(tx.find_by_local_id(s, *want.record.id), "find_by_local_id in " + where)) run.same(want, *f, "find_by_local_id in " + where);
                if (auto l = tx.list(s); run.ok(l, "list")) run.expect(l->size() == 1, where + " lists " + std::to_string(l->size()) + " records");
            }
            auto last = [&](server::scope s) {
                auto i = tx.collection(s);
                return i && *i ? (*i)->last_change : 0;
            };
            run.expect(last(alice_jobs) == 2 && last(bob_jobs) == 1 && last(alice_notes) == 0, "change counters are shared between scopes");
            return {};
        });
    });

    rule("own writes visible", [&](S& store) {
        auto r = store.write([&](auto& tx) -> result<void> {
            if (auto c = tx.lock_collection(alice_jobs); !c) return unexpected{c.error()};
            auto v = tx.next_change(alice_jobs);
            if (!v) return unexpected{v.error()};
            const auto rec = stored_n("s1", 1, *v);
            if (auto ok = tx.put(alice_jobs, rec); !ok) return ok;
            if (auto f = run.present(tx.find_by_server_id(alice_jobs, "s1"), "find_by_server_id in the transaction")) run.same(rec, *f, "find_by_server_id in the transaction");
            if (auto f = run.present(tx.find_by_local_id(alice_jobs, *rec.record.id), "find_by_local_id in the transaction")) run.same(rec, *f, "find_by_local_id in the transaction");
            if (auto c = tx.changes_after(alice_jobs, 0, 10); run.ok(c, "changes_after")) run.same_versions({*v}, *c, "changes_after in the transaction");
            if (auto l = tx.list(alice_jobs); run.ok(l, "list")) run.expect(l->size() == 1, "list in the transaction misses its put");
            if (auto i = tx.collection(alice_jobs); run.ok(i, "collection"))
                run.expect(i->has_value() && (*i)->last_change == *v, "collection in the transaction misses its change number");
            return {};
        });
        run.ok(r, "write");
    });

    rule("new server ids", [&](S& store) {
        std::vector<std::string> ids;
        for (int t = 0; t < 2; ++t) {
            auto r = store.write([&](auto& tx) -> result<void> {
                for (int i = 0; i < 3; ++i) {
                    auto sid = tx.new_server_id();
                    if (!sid) return unexpected{sid.error()};
                    ids.push_back(*sid);
                }
                return {};
            });
            if (!run.ok(r, "new_server_id")) return;
        }
        for (std::size_t i = 0; i < ids.size(); ++i) {
            run.expect(!ids[i].empty(), "new_server_id gave an empty id");
            for (std::size_t j = 0; j < i; ++j)
                if (ids[i] == ids[j]) run.fail("new_server_id gave " + ids[i] + " twice");
        }
    });

    auto check_untouched = [&](S& store, std::string_view how) {
        (void)store.read([&](auto& tx) -> result<void> {
            const std::string after = std::string{" after "} + std::string{how};
            if (auto f = run.present(tx.find_by_server_id(alice_jobs, "s1"), "find_by_server_id" + after)) run.same(stored_n("s1", 1, 1), *f, "find_by_server_id" + after);
            run.absent(tx.find_by_server_id(alice_jobs, "s2"), "find_by_server_id" + after);
            run.absent(tx.find_by_local_id(alice_jobs, detail::store_id_n(2)), "find_by_local_id" + after);
            if (auto c = tx.changes_after(alice_jobs, 0, 10); run.ok(c, "changes_after")) run.same_versions({1}, *c, "changes_after" + after);
            if (auto i = tx.collection(alice_jobs); run.ok(i, "collection"))
                run.expect(i->has_value() && (*i)->last_change == 1, "the change number survived" + after);
            if (auto i = tx.collection(bob_jobs); run.ok(i, "collection"))
                run.expect(!i->has_value(), "a scope made known stayed known" + after);
            return {};
        });
        auto next = detail::take_changes(store, alice_jobs, 1);
        if (run.ok(next, "next_change" + std::string{" after "} + std::string{how}))
            run.expect(*next == 2, "the next change number" + std::string{" after "} + std::string{how} + " is " + std::to_string(*next));
    };
    // A transaction that replaces s1, adds s2, takes a number and makes bob/jobs known, then fails.
    auto doomed = [&](auto& tx) -> result<void> {
        if (auto c = tx.lock_collection(alice_jobs); !c) return unexpected{c.error()};
        if (auto c = tx.lock_collection(bob_jobs); !c) return unexpected{c.error()};
        auto v = tx.next_change(alice_jobs);
        if (!v) return unexpected{v.error()};
        auto changed = stored_n("s1", 1, *v);
        changed.record.value = {{"title", "changed"}};
        if (auto ok = tx.put(alice_jobs, changed); !ok) return ok;
        if (auto ok = tx.put(alice_jobs, stored_n("s2", 2, 9)); !ok) return ok;
        if (auto ok = tx.put(bob_jobs, stored_n("s1", 1, 1)); !ok) return ok;
        return {};
    };
    auto seed_one = [&](S& store) {
        return run.ok(detail::take_changes(store, alice_jobs, 1), "next_change") &&
               run.ok(detail::put_all(store, alice_jobs, {stored_n("s1", 1, 1)}), "put");
    };

    rule("rollback on error", [&](S& store) {
        if (!seed_one(store)) return;
        auto r = store.write([&](auto& tx) -> result<void> {
            if (auto ok = doomed(tx); !ok) return ok;
            return unexpected{make_error(errc::rejected, "on purpose")};
        });
        if (run.expect(!r, "write returned a value for a failed transaction"))
            run.expect(r.error().code == errc::rejected && r.error().message == "on purpose", "write did not return the transaction's error");
        check_untouched(store, "an error");
    });

    rule("rollback on exception", [&](S& store) {
        if (!seed_one(store)) return;
        bool rethrown = false;
        try {
            (void)store.write([&](auto& tx) -> result<void> {
                if (auto ok = doomed(tx); !ok) return ok;
                throw std::runtime_error{"on purpose"};
            });
        } catch (const std::runtime_error&) {
            rethrown = true;
        }
        run.expect(rethrown, "the exception was not rethrown");
        check_untouched(store, "an exception");
    });

    if (options.threads > 0) {
        rule("concurrent writes", [&](S& store) {
            const int per = options.transactions_per_thread;
            std::atomic<bool> done{false};
            std::atomic<int> failed{0};
            std::string reader_failure;
            std::thread reader{[&] {
                while (!done.load()) {
                    auto r = store.read([&](auto& tx) -> result<std::string> {
                        auto i = tx.collection(alice_jobs);
                        if (!i) return unexpected{i.error()};
                        const std::uint64_t last = *i ? (*i)->last_change : 0;
                        auto c = tx.changes_after(alice_jobs, 0, static_cast<std::size_t>(last) + 1);
                        if (!c) return unexpected{c.error()};
                        for (std::size_t k = 0; k < c->size(); ++k)
                            if ((*c)[k].record.version != k + 1)
                                return "a read saw versions " + detail::show(detail::versions_of(*c)) + " with last_change " + std::to_string(last);
                        if (c->size() != last) return "a read saw " + std::to_string(c->size()) + " changes with last_change " + std::to_string(last);
                        return std::string{};
                    });
                    if (!r) {
                        reader_failure = "a read failed: " + r.error().message;
                        return;
                    }
                    if (!r->empty()) {
                        reader_failure = *r;
                        return;
                    }
                }
            }};
            std::vector<std::thread> writers;
            for (int t = 0; t < options.threads; ++t) {
                writers.emplace_back([&, t] {
                    for (int i = 0; i < per; ++i) {
                        auto r = store.write([&](auto& tx) -> result<void> {
                            if (auto c = tx.lock_collection(alice_jobs); !c) return unexpected{c.error()};
                            auto v = tx.next_change(alice_jobs);
                            if (!v) return unexpected{v.error()};
                            return tx.put(alice_jobs, stored_n("t" + std::to_string(t) + "-" + std::to_string(i), 0, *v));
                        });
                        if (!r) ++failed;
                    }
                });
            }
            for (auto& w : writers) w.join();
            done = true;
            reader.join();
            run.expect(failed.load() == 0, std::to_string(failed.load()) + " write transactions failed");
            if (!reader_failure.empty()) run.fail(reader_failure);
            const auto total = static_cast<std::uint64_t>(options.threads) * static_cast<std::uint64_t>(per);
            if (auto i = detail::info_of(store, alice_jobs); run.ok(i, "collection") && run.expect(i->has_value(), "scope unknown"))
                run.expect((*i)->last_change == total - static_cast<std::uint64_t>(failed.load()),
                           "last_change is " + std::to_string((*i)->last_change) + " after " + std::to_string(total) + " transactions");
            auto c = store.read([&](auto& tx) { return tx.changes_after(alice_jobs, 0, static_cast<std::size_t>(total) + 1); });
            if (run.ok(c, "changes_after"))
                run.expect(c->size() == total - static_cast<std::uint64_t>(failed.load()), "changes_after holds " + std::to_string(c->size()) + " records");
        });
    }

    if constexpr (server::restorable_server_store<S>) {
        rule("snapshot and restore", [&](S& store) {
            if (!run.ok(detail::take_changes(store, alice_jobs, 2), "next_change")) return;
            if (!run.ok(detail::put_all(store, alice_jobs, {stored_n("s1", 1, 1), stored_n("s2", 2, 2)}), "put")) return;
            const auto whole = store.snapshot();
            const auto jobs = store.snapshot(alice_jobs.user, alice_jobs.collection);
            if (!run.ok(detail::take_changes(store, alice_jobs, 1), "next_change")) return;
            if (!run.ok(detail::put_all(store, alice_jobs, {stored_n("s3", 3, 3)}), "put")) return;
            if (!run.ok(detail::put_all(store, alice_notes, {stored_n("s4", 4, 1)}), "put")) return;
            store.restore(jobs);
            auto info = detail::info_of(store, alice_jobs);
            if (run.ok(info, "collection") && run.expect(info->has_value(), "a restored scope is unknown")) {
                run.expect((*info)->last_change == 4, "last_change after a restore is " + std::to_string((*info)->last_change) + ", not 4 (one past 3)");
                run.expect((*info)->epoch == 1, "the epoch after a restore is " + std::to_string((*info)->epoch) + ", not 1");
            }
            (void)store.read([&](auto& tx) -> result<void> {
                if (auto c = tx.changes_after(alice_jobs, 0, 10); run.ok(c, "changes_after")) run.same_versions({1, 2}, *c, "changes_after after a restore");
                if (auto l = tx.list(alice_notes); run.ok(l, "list")) run.expect(l->size() == 1, "restoring one scope touched another");
                return {};
            });
            auto next = detail::take_changes(store, alice_jobs, 1);
            if (run.ok(next, "next_change")) run.expect(*next == 5, "the first change after a restore is " + std::to_string(*next) + ", not 5");
            store.restore(whole);
            if (auto l = store.read([&](auto& tx) { return tx.list(alice_notes); }); run.ok(l, "list"))
                run.expect(l->empty(), "a whole-store restore kept a scope made known since");
            if (auto i = detail::info_of(store, alice_jobs); run.ok(i, "collection") && i->has_value())
                run.expect((*i)->epoch == 2 && (*i)->last_change == 6, "a second restore left epoch " + std::to_string((*i)->epoch) + ", last_change " + std::to_string((*i)->last_change));
        });
    }
    return std::move(run.failures);
}

}  // namespace tether::testing
