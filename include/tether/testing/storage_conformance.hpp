#pragma once

// tether::testing: the storage conformance suite. Checks that a storage policy
// keeps the whole `record_store` contract the engine relies on. Framework free:
// it returns the failures, and a test of any framework asserts there are none.
#include <tether/testing/conformance_items.hpp>
#include <tether/testing/detail/storage_run.hpp>
#include <tether/testing/detail/storage_transaction_rules.hpp>

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace tether::testing {

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

    detail::storage_transaction_rules<P, S>(run, rule, options);

    return std::move(run.failures);
}

}  // namespace tether::testing