#pragma once

// tether::testing: the storage conformance suite. Checks that a storage policy
// keeps the whole `record_store` contract the engine relies on. Framework free:
// it returns the failures, and a test of any framework asserts there are none.
#include <tether/clock/clock.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/core/status.hpp>
#include <tether/storage/storage.hpp>
#include <tether/testing/transport_conformance.hpp>

#include <boost/hana/define_struct.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace tether::testing {

/// @brief The entity `check_storage` stores (collection `"conformance_items"`):
/// a string, a signed integer and a vector, so a store's encoding of each is
/// exercised.
struct conformance_item {
    BOOST_HANA_DEFINE_STRUCT(conformance_item, (std::string, title), (std::int64_t, count),
                             (std::vector<std::string>, tags));
    static constexpr std::string_view collection = "conformance_items";
    friend bool operator==(const conformance_item&, const conformance_item&) = default;
};

/// @brief A second entity type (collection `"conformance_notes"`), to check that
/// types sharing one policy stay apart.
struct conformance_note {
    BOOST_HANA_DEFINE_STRUCT(conformance_note, (std::string, text));
    static constexpr std::string_view collection = "conformance_notes";
    friend bool operator==(const conformance_note&, const conformance_note&) = default;
};

/// @brief Settings of `check_storage`.
struct storage_conformance_options {
    /// True if a store built from a *copy* of the policy sees the same records
    /// and metadata (the policy is a handle on one database, as `memory_storage`
    /// and `sqlite_storage` are). False for a policy whose every store is a
    /// database of its own: the "copies share" rule is then skipped.
    bool copies_share = true;
    /// Threads of the "concurrent transactions" rule (0 skips it).
    int threads = 4;
    /// Transactions each of those threads runs.
    int transactions_per_thread = 25;
};

namespace detail {

/// A timestamp `ms` milliseconds after the epoch.
inline timestamp at_ms(std::int64_t ms) { return timestamp{std::chrono::milliseconds{ms}}; }

/// The time field of the ids `id_n` makes: 1'700'000'000'000 + n.
inline constexpr std::int64_t id_epoch_ms = 1'700'000'000'000;

/// Ids that sort by `n` (UUID v7 with `n` in the time field) and differ in their random bits.
inline local_id id_n(std::uint64_t n) {
    return local_id::from_parts(at_ms(id_epoch_ms + static_cast<std::int64_t>(n)), static_cast<std::uint16_t>(n * 7),
                                n * 0x9E37'79B9'7F4A'7C15ull);
}

/// `#n` for an id made by `id_n(n)`, else its canonical form.
inline std::string label(const local_id& id) {
    const auto n = id.time().time_since_epoch().count() - id_epoch_ms;
    if (n >= 0 && n < (std::int64_t{1} << 32) && id_n(static_cast<std::uint64_t>(n)) == id) {
        return "#" + std::to_string(n);
    }
    return id.is_nil() ? std::string{"the nil id"} : id.to_string();
}

inline std::string labels(const std::vector<local_id>& ids) {
    std::string out = "[";
    for (const auto& id : ids) {
        if (out.size() > 1) out += ", ";
        out += label(id);
    }
    return out + "]";
}

/// A minimal record: `pending`, medium priority, created and updated at `updated`.
template <class E = conformance_item>
record<E> make_record(std::uint64_t n, sync_status s = sync_status::pending, std::int64_t updated = 1000,
                      tether::priority p = tether::priority::medium) {
    record<E> r;
    r.id = id_n(n);
    if constexpr (std::is_same_v<E, conformance_item>) {
        r.value = conformance_item{"item " + std::to_string(n), static_cast<std::int64_t>(n), {}};
    } else {
        r.value = E{};
    }
    r.status = s;
    r.priority = p;
    r.created_at = at_ms(updated);
    r.updated_at = at_ms(updated);
    return r;
}

/// A record with every field set to something unusual.
inline record<conformance_item> full_record(std::uint64_t n) {
    record<conformance_item> r;
    r.id = id_n(n);
    r.server_id = "srv-\"" + std::to_string(n) + "'; --";
    r.value = conformance_item{"Title \"quoted\" \xC3\xBCn\xC3\xAF\x63\xC3\xB8\x64\xC3\xA9 \n\t\\", -42, {"a", "", "c d"}};
    r.status = sync_status::error;
    r.deleted = true;
    r.version = 0x8000'0000'0000'0005ull;  // above INT64_MAX
    r.local_rev = 0xFFFF'FFFF'FFFF'FFFFull;
    r.dirty = {"title", "count"};
    r.attempts = 3;
    r.last_attempt_at = at_ms(1'700'000'000'123);
    r.next_attempt_at = at_ms(1'700'000'060'123);
    r.last_error = error{errc::rate_limited, "slow down", 429, std::chrono::milliseconds{30'000}};
    r.priority = tether::priority::critical;
    r.created_at = at_ms(-5);  // before the epoch
    r.updated_at = at_ms(1'700'000'000'000);
    return r;
}

/// Puts every record in one transaction.
template <class S, class E>
result<void> put_all(S& store, const std::vector<record<E>>& recs) {
    return store.transact([&](auto& tx) -> result<void> {
        for (const auto& r : recs) {
            if (auto x = tx.put(r); !x) return x;
        }
        return {};
    });
}

template <class E>
std::vector<local_id> ids_of(const std::vector<record<E>>& recs) {
    std::vector<local_id> out;
    out.reserve(recs.size());
    for (const auto& r : recs) out.push_back(r.id);
    return out;
}

/// The first member in which `got` differs from `want` (empty if none).
template <class E>
std::string record_difference(const record<E>& want, const record<E>& got) {
    if (got.id != want.id) return "id";
    if (got.server_id != want.server_id) return "server_id";
    if (!(got.value == want.value)) return "value";
    if (got.status != want.status) return "status";
    if (got.deleted != want.deleted) return "deleted";
    if (got.version != want.version) return "version";
    if (got.local_rev != want.local_rev) return "local_rev";
    if (got.dirty != want.dirty) return "dirty";
    if (got.attempts != want.attempts) return "attempts";
    if (got.last_attempt_at != want.last_attempt_at) return "last_attempt_at";
    if (got.next_attempt_at != want.next_attempt_at) return "next_attempt_at";
    if (got.last_error != want.last_error) return "last_error";
    if (got.priority != want.priority) return "priority";
    if (got.created_at != want.created_at) return "created_at";
    if (got.updated_at != want.updated_at) return "updated_at";
    return {};
}

/// The failures of one `check_storage` run, and the rule being checked.
class storage_run : public rule_run {
public:
    /// True if `got` is `want`, field for field; else a failure naming the first difference.
    template <class E>
    bool same(const record<E>& want, const record<E>& got, std::string_view doing) {
        const auto d = record_difference(want, got);
        if (d.empty()) return true;
        fail(std::string{doing} + " returned " + label(got.id) + " with another " + d + " than was put");
        return false;
    }

    /// True if `got` lists `want` in that order; else a failure showing both.
    bool same_ids(const std::vector<local_id>& want, const std::vector<local_id>& got, std::string_view doing) {
        if (want == got) return true;
        fail(std::string{doing} + " returned " + labels(got) + ", expected " + labels(want));
        return false;
    }
};

/// Runs `body(policy, store)` on a store from a fresh policy as rule `name`;
/// an exception out of it (or out of the factory) is a failure of the rule.
template <class S, class MakePolicy, class Body>
void run_rule(storage_run& run, std::string name, MakePolicy& make_policy, Body&& body) {
    run.rule = std::move(name);
    try {
        auto policy = make_policy();
        S store{policy};
        std::forward<Body>(body)(policy, store);
    } catch (const std::exception& e) {
        run.fail(std::string{"threw: "} + e.what());
    } catch (...) {
        run.fail("threw an exception not derived from std::exception");
    }
}

/// The records `due()` and `counts()` are checked on, at `now` = 10'000.
inline std::vector<record<conformance_item>> due_population() {
    using st = sync_status;
    using tether::priority;
    std::vector<record<conformance_item>> v;
    v.push_back(make_record(1, st::pending, 100));                         // due
    v.push_back(make_record(2, st::synced, 2));                            // never due
    v.push_back(make_record(3, st::failed, 1));                            // never due
    v.push_back(make_record(4, st::error, 100));                           // due later
    v.back().next_attempt_at = at_ms(20'000);
    v.push_back(make_record(5, st::error, 300));                           // due exactly now
    v.back().next_attempt_at = at_ms(10'000);
    v.push_back(make_record(6, st::error, 200, priority::high));           // due since 5'000
    v.back().next_attempt_at = at_ms(5'000);
    v.push_back(make_record(7, st::pending_deletion, 50, priority::low));  // due
    v.push_back(make_record(8, st::pending, 900, priority::critical));     // due, first
    v.push_back(make_record(9, st::pending, 100));                         // due, after #1 (same time)
    v.push_back(make_record(10, st::error, 400));                          // due: no next attempt
    v.push_back(make_record(11, st::pending, 60));                         // held back until 15'000
    v.back().next_attempt_at = at_ms(15'000);
    return v;
}

/// What `due(t, unlimited)` must return for `v`: the contract, written plainly.
inline std::vector<local_id> reference_due(std::vector<record<conformance_item>> v, std::int64_t t) {
    std::erase_if(v, [&](const auto& r) { return !is_due(r, at_ms(t)); });
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
        if (a.priority != b.priority) return a.priority > b.priority;
        if (a.updated_at != b.updated_at) return a.updated_at < b.updated_at;
        return a.id < b.id;
    });
    return ids_of(v);
}

}  // namespace detail

/// @brief Checks the `record_store` contract (`<tether/storage/storage.hpp>`)
/// on stores of `make_policy()`; returns every rule broken (empty: conformant).
///
/// `make_policy()` is called once per rule and must return a storage policy
/// over an *empty* database; the suite builds stores from it as the engine does
/// (`store_for_t<P, E>{policy}`) for `conformance_item` and `conformance_note`.
/// Nothing escapes: a store that throws fails the rule it threw in. The rules,
/// by the name a failure carries:
/// - "empty store": an empty store gets, finds, lists, counts nothing and has no metadata;
/// - "put and get": a record put reads back field for field (`get`,
///   `find_by_server_id`), including quotes and UTF-8 in strings, a version above
///   INT64_MAX and a time before the epoch;
/// - "put replaces": a put of an id already stored replaces that record;
/// - "nil id refused": a put with a nil id is `errc::invalid_argument` and the
///   transaction rolls back;
/// - "find_by_server_id": the server id index follows changes of a record's
///   server id, its removal, and the record's erasure;
/// - "server id unique": a second record with a server id already in use is
///   `errc::storage`, and nothing of that transaction applies;
/// - "erase": erase removes the record; erasing an absent one succeeds;
/// - "list order": `list()` returns every record in `local_id` order;
/// - "due selects": `due(now, limit)` returns exactly the records `is_due` at `now`;
/// - "due order": highest priority first, then least `updated_at`, then `local_id`;
/// - "due limit": at most `limit` records, the first of the unlimited answer (0 gives none);
/// - "due returns whole records": a due record equals what `get` returns;
/// - "counts": `counts()` per status, and `oldest_pending` skips synced and failed;
/// - "nothing unreadable": records that were put all decode: `counts().unreadable`
///   is 0, and with `reports_unreadable`, `unreadable()` is empty and
///   `tx.unreadable(id)` false for a present and an absent id;
/// - "metadata": `set_meta` / `get_meta` in and out of transactions, empty values;
/// - "rollback on error": a transaction returning an error applies none of its
///   puts, erases, server id changes or metadata, and `transact` returns that error;
/// - "rollback on exception": likewise when it throws, the exception is rethrown,
///   and the store is usable afterwards;
/// - "own writes visible": `tx.get`, `tx.find_by_server_id`, `tx.get_meta` see
///   the transaction's own puts, erases and metadata;
/// - "read-modify-write": each transaction sees what the previous one committed;
/// - "copies share": a store from a copy of the policy sees the same records and
///   metadata, and writes through it are seen (skipped with `copies_share = false`);
/// - "entity types apart": two entity types on one policy keep separate records,
///   server ids and metadata, even with the same local ids;
/// - "concurrent transactions": transactions from `threads` threads are
///   serialised (a counter in metadata loses no increment), and reads beside them
///   succeed (skipped with `threads = 0`).
/// That the policy satisfies `storage_policy` for both entity types is checked
/// at compile time.
///
/// @code
/// auto failures = tether::testing::check_storage([] { return my_storage{}; });
/// for (const auto& f : failures) std::cerr << f.check << ": " << f.what << '\n';
/// @endcode
template <class MakePolicy>
[[nodiscard]] std::vector<conformance_failure> check_storage(MakePolicy make_policy,
                                                             storage_conformance_options options = {}) {
    using P = std::remove_cvref_t<std::invoke_result_t<MakePolicy&>>;
    using item = conformance_item;
    using S = store_for_t<P, item>;
    static_assert(storage_policy<P, conformance_item>,
                  "tether::testing::check_storage(make_policy): make_policy() must return a storage policy for "
                  "tether::testing::conformance_item (see <tether/storage/storage.hpp>)");
    static_assert(storage_policy<P, conformance_note>,
                  "tether::testing::check_storage(make_policy): make_policy() must return a storage policy for "
                  "tether::testing::conformance_note (see <tether/storage/storage.hpp>)");
    using detail::at_ms;
    using detail::id_n;
    using detail::ids_of;
    using detail::make_record;
    using detail::put_all;

    detail::storage_run run;
    auto rule = [&](std::string name, auto body) { detail::run_rule<S>(run, std::move(name), make_policy, body); };
    const auto far_future = at_ms(std::int64_t{1} << 50);

    rule("empty store", [&](P&, S& store) {
        auto g = store.get(id_n(1));
        if (run.ok(g, "get")) run.expect(!g->has_value(), "get found a record in an empty store");
        auto f = store.find_by_server_id("nope");
        if (run.ok(f, "find_by_server_id")) run.expect(!f->has_value(), "find_by_server_id found a record in an empty store");
        auto l = store.list();
        if (run.ok(l, "list")) run.expect(l->empty(), "list of an empty store is not empty");
        auto d = store.due(far_future, 100);
        if (run.ok(d, "due")) run.expect(d->empty(), "due of an empty store is not empty");
        auto c = store.counts();
        if (run.ok(c, "counts")) run.expect(*c == status_counts{}, "counts of an empty store are not all zero");
        auto m = store.get_meta("cursor");
        if (run.ok(m, "get_meta")) run.expect(!m->has_value(), "get_meta found a value in an empty store");
    });

    rule("put and get", [&](P&, S& store) {
        const auto full = detail::full_record(1);
        const auto minimal = make_record(2);
        if (!run.ok(put_all(store, std::vector{full, minimal}), "put of two records")) return;
        if (auto g = run.present(store.get(full.id), "get")) run.same(full, *g, "get");
        if (auto g = run.present(store.get(minimal.id), "get")) run.same(minimal, *g, "get");
        if (auto f = run.present(store.find_by_server_id(*full.server_id), "find_by_server_id")) {
            run.same(full, *f, "find_by_server_id");
        }
    });

    rule("put replaces", [&](P&, S& store) {
        auto r = make_record(1);
        if (!run.ok(put_all(store, std::vector{r}), "put")) return;
        r.value.title = "changed";
        r.status = sync_status::synced;
        r.server_id = "s-1";
        r.version = 4;
        if (!run.ok(put_all(store, std::vector{r}), "a second put of the same id")) return;
        auto l = store.list();
        if (!run.ok(l, "list")) return;
        if (run.expect(l->size() == 1, "two puts of one id left " + std::to_string(l->size()) + " records")) {
            run.same(r, l->front(), "list after the second put");
        }
    });

    // A store may write only the columns a put changes (SQLite does): each
    // field, changed alone on a record the transaction read, reads back.
    rule("put after get, one field at a time", [&](P&, S& store) {
        auto want = detail::full_record(1);
        want.deleted = false;
        if (!run.ok(put_all(store, std::vector{want}), "put")) return;
        const std::vector<std::pair<std::string, std::function<void(record<item>&)>>> edits{
            {"nothing", [](record<item>&) {}},
            {"server_id", [](record<item>& r) { r.server_id = "s-2"; }},
            {"server_id cleared", [](record<item>& r) { r.server_id.reset(); }},
            {"status", [](record<item>& r) { r.status = sync_status::pending; }},
            {"deleted", [](record<item>& r) { r.deleted = true; }},
            {"version", [](record<item>& r) { r.version += 1; }},
            {"local_rev", [](record<item>& r) { r.local_rev = 7; }},
            {"dirty", [](record<item>& r) { r.dirty = {"tags"}; }},
            {"attempts", [](record<item>& r) { r.attempts = 9; }},
            {"last_attempt_at", [&](record<item>& r) { r.last_attempt_at = at_ms(5); }},
            {"next_attempt_at cleared", [](record<item>& r) { r.next_attempt_at.reset(); }},
            {"priority", [](record<item>& r) { r.priority = tether::priority::low; }},
            {"created_at", [&](record<item>& r) { r.created_at = at_ms(6); }},
            {"updated_at", [&](record<item>& r) { r.updated_at = at_ms(7); }},
            {"last_error", [](record<item>& r) { r.last_error = error{errc::transient, "again", 503, std::nullopt}; }},
            {"last_error cleared", [](record<item>& r) { r.last_error.reset(); }},
            {"value", [](record<item>& r) { r.value.title = "new title"; }},
        };
        for (const auto& entry : edits) {
            const std::string& what = entry.first;  // not a structured binding: lambdas capture it (clang 14)
            const auto& edit = entry.second;
            edit(want);
            auto w = store.transact([&](auto& tx) -> result<void> {
                auto cur = tx.get(want.id);
                if (!cur) return unexpected{std::move(cur).error()};
                if (!*cur) return unexpected{make_error(errc::storage, "the record is gone")};
                record<item> next = **cur;
                edit(next);
                return tx.put(std::move(next));
            });
            if (!run.ok(w, "put after get (" + what + ")")) return;
            if (auto g = run.present(store.get(want.id), "get")) run.same(want, *g, "get after changing " + what);
        }
    });

    rule("nil id refused", [&](P&, S& store) {
        record<item> r = make_record(1);
        r.id = local_id{};
        auto res = put_all(store, std::vector{make_record(2), r});
        if (!run.expect(!res, "a put with a nil id succeeded")) return;
        run.expect(res.error().code == errc::invalid_argument,
                   "a put with a nil id gave " + std::string{to_string(res.error().code)} + ", not invalid_argument");
        auto l = store.list();
        if (run.ok(l, "list")) run.same_ids({}, ids_of(*l), "list after the refused transaction");
    });

    rule("find_by_server_id", [&](P&, S& store) {
        auto r1 = make_record(1);
        r1.server_id = "s1";
        auto r2 = make_record(2);
        if (!run.ok(put_all(store, std::vector{r1, r2}), "put")) return;
        auto found = [&](std::string_view sid, std::optional<local_id> want, std::string_view when) {
            auto f = store.find_by_server_id(sid);
            if (!run.ok(f, "find_by_server_id")) return;
            const std::optional<local_id> got = f->has_value() ? std::optional{(*f)->id} : std::nullopt;
            if (got == want) return;
            run.fail("find_by_server_id(\"" + std::string{sid} + "\") " + std::string{when} + " found " +
                     (got ? detail::label(*got) : std::string{"nothing"}) + ", expected " +
                     (want ? detail::label(*want) : std::string{"nothing"}));
        };
        found("s1", r1.id, "after a put");
        found("s2", std::nullopt, "before any record has it");
        r1.server_id = "s2";
        if (!run.ok(put_all(store, std::vector{r1}), "put")) return;
        found("s1", std::nullopt, "after the record's server id changed");
        found("s2", r1.id, "after the record's server id changed to it");
        r1.server_id.reset();
        if (!run.ok(put_all(store, std::vector{r1}), "put")) return;
        found("s2", std::nullopt, "after the record's server id was removed");
        r1.server_id = "s3";
        if (!run.ok(put_all(store, std::vector{r1}), "put")) return;
        found("s3", r1.id, "after a server id was set again");
        if (!run.ok(store.transact([&](auto& tx) { return tx.erase(r1.id); }), "erase")) return;
        found("s3", std::nullopt, "after the record was erased");
    });

    rule("server id unique", [&](P&, S& store) {
        auto r1 = make_record(1);
        r1.server_id = "s1";
        if (!run.ok(put_all(store, std::vector{r1}), "put")) return;
        auto r2 = make_record(2);
        r2.server_id = "s1";
        auto res = put_all(store, std::vector{make_record(3), r2});
        if (run.expect(!res, "a second record with server id s1 was accepted")) {
            run.expect(res.error().code == errc::storage,
                       "a second record with a server id in use gave " + std::string{to_string(res.error().code)} +
                           ", not storage");
        }
        if (auto f = run.present(store.find_by_server_id("s1"), "find_by_server_id(\"s1\")")) {
            run.expect(f->id == r1.id, "server id s1 now names " + detail::label(f->id) + ", not #1");
        }
        auto l = store.list();
        if (run.ok(l, "list")) run.same_ids({id_n(1)}, ids_of(*l), "list after the refused transaction");
    });

    rule("erase", [&](P&, S& store) {
        auto r = make_record(1);
        if (!run.ok(put_all(store, std::vector{r, make_record(2)}), "put")) return;
        run.ok(store.transact([&](auto& tx) { return tx.erase(r.id); }), "erase");
        run.ok(store.transact([&](auto& tx) { return tx.erase(r.id); }), "a second erase of the same id");
        run.ok(store.transact([&](auto& tx) { return tx.erase(id_n(99)); }), "erase of an absent id");
        auto g = store.get(r.id);
        if (run.ok(g, "get")) run.expect(!g->has_value(), "an erased record is still there");
        auto l = store.list();
        if (run.ok(l, "list")) run.same_ids({id_n(2)}, ids_of(*l), "list after an erase");
    });

    rule("list order", [&](P&, S& store) {
        std::vector<record<item>> recs;
        for (std::uint64_t n : {5, 3, 9, 1, 7, 300, 256}) recs.push_back(make_record(n));
        if (!run.ok(put_all(store, recs), "put")) return;
        auto l = store.list();
        if (run.ok(l, "list")) {
            run.same_ids({id_n(1), id_n(3), id_n(5), id_n(7), id_n(9), id_n(256), id_n(300)}, ids_of(*l), "list");
        }
    });

    // due(): one population, three rules, each on its own store.
    const std::int64_t now = 10'000;
    const auto population = detail::due_population();
    const auto expected = detail::reference_due(population, now);
    auto sorted = [](std::vector<local_id> v) {
        std::sort(v.begin(), v.end());
        return v;
    };

    rule("due selects", [&](P&, S& store) {
        if (!run.ok(put_all(store, population), "put")) return;
        for (std::int64_t t : {now, std::int64_t{30'000}}) {
            auto all = store.due(at_ms(t), 1000);
            if (!run.ok(all, "due")) return;
            const auto want = detail::reference_due(population, t);
            run.same_ids(sorted(want), sorted(ids_of(*all)), "due at " + std::to_string(t) + " (sorted by id)");
        }
    });

    rule("due order", [&](P&, S& store) {
        if (!run.ok(put_all(store, population), "put")) return;
        auto all = store.due(at_ms(now), 1000);
        if (!run.ok(all, "due")) return;
        // Judge the order only of what was selected ("due selects" judges the selection).
        std::vector<local_id> want;
        const auto got = ids_of(*all);
        for (const auto& id : expected) {
            if (std::find(got.begin(), got.end(), id) != got.end()) want.push_back(id);
        }
        std::vector<local_id> seen;
        for (const auto& id : got) {
            if (std::find(expected.begin(), expected.end(), id) != expected.end()) seen.push_back(id);
        }
        run.same_ids(want, seen, "due (priority, then updated_at, then id)");
    });

    rule("due limit", [&](P&, S& store) {
        if (!run.ok(put_all(store, population), "put")) return;
        // Judged against the store's own unlimited answer ("due order" judges the order).
        auto all = store.due(at_ms(now), 1000);
        if (!run.ok(all, "due")) return;
        const auto every = ids_of(*all);
        for (std::size_t limit : {std::size_t{3}, std::size_t{1}}) {
            auto some = store.due(at_ms(now), limit);
            if (!run.ok(some, "due")) return;
            const auto want = std::min(limit, every.size());
            if (!run.expect(some->size() == want, "due with limit " + std::to_string(limit) + " returned " +
                                                      std::to_string(some->size()) + " records, expected " +
                                                      std::to_string(want))) {
                continue;
            }
            run.same_ids(std::vector(every.begin(), every.begin() + static_cast<std::ptrdiff_t>(want)), ids_of(*some),
                         "due with limit " + std::to_string(limit) + " (the first of the unlimited answer)");
        }
        auto none = store.due(at_ms(now), 0);
        if (run.ok(none, "due with limit 0")) {
            run.expect(none->empty(), "due with limit 0 returned " + std::to_string(none->size()) + " records");
        }
    });

    rule("due returns whole records", [&](P&, S& store) {
        if (!run.ok(put_all(store, population), "put")) return;
        auto all = store.due(at_ms(30'000), 1000);
        if (!run.ok(all, "due")) return;
        for (const auto& r : *all) {
            const auto it = std::find_if(population.begin(), population.end(), [&](const auto& p) { return p.id == r.id; });
            if (!run.expect(it != population.end(), "due returned " + detail::label(r.id) + ", which was never put")) {
                continue;
            }
            run.same(*it, r, "due");
        }
    });

    rule("counts", [&](P&, S& store) {
        if (!run.ok(put_all(store, population), "put")) return;
        auto c = store.counts();
        if (!run.ok(c, "counts")) return;
        auto count = [&](std::size_t got, std::size_t want, std::string_view status) {
            run.expect(got == want, "counts()." + std::string{status} + " is " + std::to_string(got) + ", expected " +
                                        std::to_string(want));
        };
        count(c->pending, 4, "pending");
        count(c->synced, 1, "synced");
        count(c->failed, 1, "failed");
        count(c->error, 4, "error");
        count(c->pending_deletion, 1, "pending_deletion");
        run.expect(c->oldest_pending == at_ms(50),
                   c->oldest_pending ? "counts().oldest_pending is " +
                                           std::to_string(c->oldest_pending->time_since_epoch().count()) +
                                           " ms, expected 50 ms"
                                     : std::string{"counts().oldest_pending is empty, expected 50 ms"});
    });

    rule("earliest next attempt", [&](P&, S& store) {
        auto show = [](const std::optional<timestamp>& t) {
            return t ? std::to_string(t->time_since_epoch().count()) + " ms" : std::string{"empty"};
        };
        auto expect_earliest = [&](std::optional<timestamp> want, std::string_view when) {
            auto got = store.earliest_next_attempt();
            if (!run.ok(got, "earliest_next_attempt")) return;
            run.expect(*got == want, "earliest_next_attempt() " + std::string{when} + " is " + show(*got) +
                                         ", expected " + show(want));
        };
        expect_earliest(std::nullopt, "of an empty store");
        auto v = population;
        v[1].next_attempt_at = at_ms(1);  // a synced record's stale time does not count
        v[2].next_attempt_at = at_ms(2);  // nor a failed one's
        if (!run.ok(put_all(store, v), "put")) return;
        expect_earliest(at_ms(5'000), "of the due population");
        auto six = v[5];  // the earliest (5'000) is settled: the next one (10'000) counts
        six.status = sync_status::synced;
        if (!run.ok(store.transact([&](auto& tx) { return tx.put(six); }), "put")) return;
        expect_earliest(at_ms(10'000), "after the earliest record was synced");
    });

    rule("nothing unreadable", [&](P&, S& store) {
        if (!run.ok(put_all(store, population), "put")) return;
        run.ok(store.list(), "list");
        run.ok(store.due(far_future, 100), "due");
        auto c = store.counts();
        if (run.ok(c, "counts")) {
            run.expect(c->unreadable == 0, "counts().unreadable is " + std::to_string(c->unreadable) +
                                               " after only readable records were put");
        }
        if constexpr (reports_unreadable<S, item>) {
            auto u = store.unreadable();
            if (run.ok(u, "unreadable")) {
                run.expect(u->empty(), "unreadable() lists " + std::to_string(u->size()) + " records");
            }
            run.ok(store.transact([&](auto& tx) -> result<void> {
                run.expect(!tx.unreadable(id_n(1)), "tx.unreadable is true for a record that decodes");
                run.expect(!tx.unreadable(id_n(99)), "tx.unreadable is true for an absent record");
                return {};
            }),
                   "a transaction");
        }
    });

    rule("metadata", [&](P&, S& store) {
        const auto is = [&](std::string_view key, const std::optional<std::string>& want, std::string_view when) {
            auto m = store.get_meta(key);
            if (!run.ok(m, "get_meta")) return;
            run.expect(*m == want, "get_meta(\"" + std::string{key} + "\") " + std::string{when} + " is " +
                                       (*m ? "\"" + **m + "\"" : std::string{"absent"}) + ", expected " +
                                       (want ? "\"" + *want + "\"" : std::string{"absent"}));
        };
        if (!run.ok(store.transact([](auto& tx) { return tx.set_meta("cursor", "c1"); }), "set_meta")) return;
        is("cursor", "c1", "after set_meta");
        run.ok(store.transact([&](auto& tx) -> result<void> {
            if (auto r = tx.set_meta("cursor", "c2"); !r) return r;
            if (auto r = tx.set_meta("empty", ""); !r) return r;
            auto seen = tx.get_meta("cursor");
            if (run.ok(seen, "tx.get_meta")) {
                run.expect(*seen == std::optional<std::string>{"c2"}, "tx.get_meta does not see the transaction's set_meta");
            }
            return {};
        }),
               "a transaction of set_meta");
        is("cursor", "c2", "after a second set_meta");
        is("empty", "", "set to the empty string");
        is("other", std::nullopt, "never set");
    });

    // Committed state for the rollback rules, and the writes a transaction then undoes.
    auto r1 = make_record(1);
    r1.server_id = "s1";
    r1.value.title = "v1";
    const auto r2 = make_record(2);
    auto r3 = make_record(3);
    r3.server_id = "s1";
    auto setup = [&](S& store) {
        return run.ok(put_all(store, std::vector{r1, r2}), "put") &&
               run.ok(store.transact([](auto& tx) { return tx.set_meta("cursor", "c1"); }), "set_meta");
    };
    auto changes = [&](auto& tx) -> result<void> {
        auto r1b = r1;
        r1b.value.title = "v2";
        r1b.server_id = "s2";
        if (auto r = tx.put(r1b); !r) return r;
        if (auto r = tx.put(r3); !r) return r;  // takes over "s1"
        if (auto r = tx.erase(r2.id); !r) return r;
        if (auto r = tx.set_meta("cursor", "c2"); !r) return r;
        return tx.set_meta("new", "x");
    };
    auto check_untouched = [&](S& store) {
        auto l = store.list();
        if (run.ok(l, "list") && run.same_ids({r1.id, r2.id}, ids_of(*l), "list after the rollback")) {
            run.same(r1, l->at(0), "list after the rollback");
            run.same(r2, l->at(1), "list after the rollback");
        }
        if (auto s1 = run.present(store.find_by_server_id("s1"), "find_by_server_id(\"s1\") after the rollback")) {
            run.expect(s1->id == r1.id, "after the rollback server id s1 names " + detail::label(s1->id) + ", not #1");
        }
        auto s2 = store.find_by_server_id("s2");
        if (run.ok(s2, "find_by_server_id")) run.expect(!s2->has_value(), "after the rollback server id s2 still names a record");
        auto cursor = store.get_meta("cursor");
        if (run.ok(cursor, "get_meta")) {
            run.expect(*cursor == std::optional<std::string>{"c1"}, "after the rollback metadata 'cursor' changed");
        }
        auto fresh = store.get_meta("new");
        if (run.ok(fresh, "get_meta")) run.expect(!fresh->has_value(), "after the rollback metadata 'new' is set");
    };

    rule("rollback on error", [&](P&, S& store) {
        if (!setup(store)) return;
        auto res = store.transact([&](auto& tx) -> result<void> {
            if (auto r = changes(tx); !r) {
                run.fail("a write of the transaction failed: " + r.error().message);
                return r;
            }
            return unexpected{make_error(errc::conflict, "boom")};
        });
        if (run.expect(!res, "a transaction whose function returned an error succeeded")) {
            run.expect(res.error().code == errc::conflict && res.error().message == "boom",
                       "transact returned another error than its function's: " + res.error().message);
        }
        check_untouched(store);
    });

    rule("rollback on exception", [&](P&, S& store) {
        if (!setup(store)) return;
        struct kaboom : std::runtime_error {
            kaboom() : std::runtime_error{"kaboom"} {}
        };
        try {
            auto res = store.transact([&](auto& tx) -> result<void> {
                if (auto r = changes(tx); !r) {
                    run.fail("a write of the transaction failed: " + r.error().message);
                    return r;
                }
                throw kaboom{};
            });
            run.fail(res ? std::string{"transact swallowed the exception and succeeded"}
                         : "transact turned the exception into an error: " + res.error().message);
        } catch (const kaboom&) {
            // rethrown, as it must be
        }
        check_untouched(store);
        // The store is usable after the exception.
        if (run.ok(put_all(store, std::vector{make_record(4)}), "a put after the exception")) {
            auto l = store.list();
            if (run.ok(l, "list")) run.same_ids({r1.id, r2.id, id_n(4)}, ids_of(*l), "list after a put after the exception");
        }
    });

    rule("own writes visible", [&](P&, S& store) {
        if (!run.ok(put_all(store, std::vector{r2}), "put")) return;
        run.ok(store.transact([&](auto& tx) -> result<void> {
            if (auto r = tx.put(r1); !r) return r;
            if (auto g = run.present(tx.get(r1.id), "tx.get after tx.put")) run.same(r1, *g, "tx.get after tx.put");
            if (auto f = run.present(tx.find_by_server_id("s1"), "tx.find_by_server_id after tx.put")) {
                run.expect(f->id == r1.id, "tx.find_by_server_id after tx.put found " + detail::label(f->id));
            }
            if (auto r = tx.erase(r2.id); !r) return r;
            auto gone = tx.get(r2.id);
            if (run.ok(gone, "tx.get after tx.erase")) run.expect(!gone->has_value(), "tx.get after tx.erase still finds it");
            if (auto r = tx.set_meta("k", "v"); !r) return r;
            auto m = tx.get_meta("k");
            if (run.ok(m, "tx.get_meta after tx.set_meta")) {
                run.expect(*m == std::optional<std::string>{"v"}, "tx.get_meta does not see the transaction's set_meta");
            }
            return {};
        }),
               "a transaction of put, erase and set_meta");
        auto l = store.list();
        if (run.ok(l, "list")) run.same_ids({r1.id}, ids_of(*l), "list after the transaction");
    });

    rule("read-modify-write", [&](P&, S& store) {
        if (!run.ok(put_all(store, std::vector{r1}), "put")) return;
        for (int i = 0; i < 3; ++i) {
            auto res = store.transact([&](auto& tx) -> result<void> {
                auto g = tx.get(r1.id);
                if (!g) return unexpected{g.error()};
                if (!g->has_value()) return unexpected{make_error(errc::not_found, "tx.get lost the record")};
                auto r = **g;
                ++r.value.count;
                ++r.local_rev;
                return tx.put(r);
            });
            if (!run.ok(res, "a read-modify-write transaction")) return;
        }
        if (auto g = run.present(store.get(r1.id), "get")) {
            run.expect(g->value.count == r1.value.count + 3 && g->local_rev == 3,
                       "three read-modify-write transactions left local_rev " + std::to_string(g->local_rev) +
                           ", expected 3");
        }
    });

    if (options.copies_share) {
        rule("copies share", [&](P& policy, S& store) {
            if (!setup(store)) return;
            P copy = policy;
            S other{copy};
            if (auto g = run.present(other.get(r1.id), "get through a copy of the policy")) {
                run.same(r1, *g, "get through a copy of the policy");
            }
            auto m = other.get_meta("cursor");
            if (run.ok(m, "get_meta through a copy of the policy")) {
                run.expect(*m == std::optional<std::string>{"c1"}, "a copy of the policy does not see the metadata");
            }
            if (!run.ok(put_all(other, std::vector{make_record(4)}), "put through a copy of the policy")) return;
            auto l = store.list();
            if (run.ok(l, "list")) {
                run.same_ids({r1.id, r2.id, id_n(4)}, ids_of(*l), "list after a put through a copy of the policy");
            }
        });
    }

    rule("entity types apart", [&](P& policy, S& store) {
        store_for_t<P, conformance_note> notes{policy};
        auto n = make_record<conformance_note>(1);  // same local_id as r1
        n.value.text = "a note";
        n.server_id = "s1";
        if (!run.ok(put_all(store, std::vector{r1}), "put of an item")) return;
        if (!run.ok(store.transact([](auto& tx) { return tx.set_meta("cursor", "items"); }), "set_meta of items")) return;
        if (!run.ok(put_all(notes, std::vector{n}), "put of a note with an item's id and server id")) return;
        if (!run.ok(notes.transact([](auto& tx) { return tx.set_meta("cursor", "notes"); }), "set_meta of notes")) return;
        auto mi = store.get_meta("cursor");
        if (run.ok(mi, "get_meta")) run.expect(*mi == std::optional<std::string>{"items"}, "the items' metadata was overwritten by the notes'");
        auto mn = notes.get_meta("cursor");
        if (run.ok(mn, "get_meta")) run.expect(*mn == std::optional<std::string>{"notes"}, "the notes' metadata is not theirs");
        if (auto g = run.present(store.get(r1.id), "get of the item")) run.same(r1, *g, "get of the item");
        if (auto g = run.present(notes.get(n.id), "get of the note")) run.same(n, *g, "get of the note");
        if (auto f = run.present(notes.find_by_server_id("s1"), "find_by_server_id of the note")) {
            run.expect(f->value.text == "a note", "find_by_server_id of the note found another record");
        }
        auto ci = store.counts();
        if (run.ok(ci, "counts")) run.expect(ci->pending == 1, "the items' counts include the notes");
        auto cn = notes.counts();
        if (run.ok(cn, "counts")) run.expect(cn->pending == 1, "the notes' counts include the items");
        if (!run.ok(notes.transact([&](auto& tx) { return tx.erase(n.id); }), "erase of the note")) return;
        auto g = store.get(r1.id);
        if (run.ok(g, "get")) run.expect(g->has_value(), "erasing the note erased the item with the same id");
    });

    if (options.threads > 0) {
        rule("concurrent transactions", [&](P&, S& store) {
            const int threads = options.threads;
            const int per_thread = options.transactions_per_thread;
            if (!run.ok(store.transact([](auto& tx) { return tx.set_meta("counter", "0"); }), "set_meta")) return;
            std::atomic<int> failed{0};
            std::atomic<int> threw{0};
            std::vector<std::thread> pool;
            pool.reserve(static_cast<std::size_t>(threads));
            for (int t = 0; t < threads; ++t) {
                pool.emplace_back([&, t] {
                    try {
                        for (int i = 0; i < per_thread; ++i) {
                            auto res = store.transact([&](auto& tx) -> result<void> {
                                auto m = tx.get_meta("counter");
                                if (!m) return unexpected{m.error()};
                                if (!m->has_value()) return unexpected{make_error(errc::storage, "no counter")};
                                if (auto r = tx.set_meta("counter", std::to_string(std::stoll(**m) + 1)); !r) return r;
                                return tx.put(make_record(static_cast<std::uint64_t>(1000 + t * per_thread + i)));
                            });
                            if (!res) ++failed;
                            if (!store.counts()) ++failed;
                        }
                    } catch (...) {
                        ++threw;
                    }
                });
            }
            for (auto& th : pool) th.join();
            run.expect(failed == 0, std::to_string(failed.load()) + " transactions or reads beside them failed");
            run.expect(threw == 0, std::to_string(threw.load()) + " threads met an exception");
            const auto total = static_cast<std::size_t>(threads) * static_cast<std::size_t>(per_thread);
            auto m = store.get_meta("counter");
            if (run.ok(m, "get_meta")) {
                run.expect(*m == std::optional<std::string>{std::to_string(total)},
                           "the counter reads " + m->value_or("nothing") + " after " + std::to_string(total) +
                               " increments: transactions were not serialised");
            }
            auto l = store.list();
            if (run.ok(l, "list")) {
                run.expect(l->size() == total, std::to_string(l->size()) + " records after " + std::to_string(total) +
                                                   " transactions that put one each");
            }
        });
    }

    return std::move(run.failures);
}

}  // namespace tether::testing
