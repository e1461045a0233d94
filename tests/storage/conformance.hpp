#pragma once

// The storage conformance suite: the whole `record_store` contract, written once
// and run against every storage (memory_storage in tests/storage/, sqlite_storage
// in tests/integration/).
//
//     TEST_CASE("my_storage passes the storage conformance suite", "[storage]") {
//         tether_test::storage_conformance([] { return my_storage{}; });
//     }
//
// The factory returns a fresh storage *policy* value; the suite builds stores
// from it as the engine does (`store_for_t<P, E>{policy}`). Every SECTION runs on
// a fresh policy (Catch re-enters the TEST_CASE per leaf section).

#include <tether/clock/clock.hpp>
#include <tether/core/entity.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/core/status.hpp>
#include <tether/storage/storage.hpp>

#include <boost/hana/define_struct.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

namespace tether_test {

/// The entity the suite stores.
struct conformance_item {
    BOOST_HANA_DEFINE_STRUCT(conformance_item, (std::string, title), (std::int64_t, count),
                             (std::vector<std::string>, tags));
    static constexpr std::string_view collection = "conformance_items";
    friend bool operator==(const conformance_item&, const conformance_item&) = default;
};

/// A second entity type, to check that types sharing one policy stay apart.
struct conformance_note {
    BOOST_HANA_DEFINE_STRUCT(conformance_note, (std::string, text));
    static constexpr std::string_view collection = "conformance_notes";
    friend bool operator==(const conformance_note&, const conformance_note&) = default;
};

inline tether::timestamp at_ms(std::int64_t ms) { return tether::timestamp{std::chrono::milliseconds{ms}}; }

/// Ids that sort by `n` (UUID v7 with `n` in the time field) and differ in their random bits.
inline tether::local_id id_n(std::uint64_t n) {
    return tether::local_id::from_parts(at_ms(1'700'000'000'000 + static_cast<std::int64_t>(n)),
                                        static_cast<std::uint16_t>(n * 7), n * 0x9E37'79B9'7F4A'7C15ull);
}

/// A minimal record: `pending`, medium priority, created and updated at `updated`.
template <class E = conformance_item>
tether::record<E> make_record(std::uint64_t n, tether::sync_status s = tether::sync_status::pending,
                              std::int64_t updated = 1000, tether::priority p = tether::priority::medium) {
    tether::record<E> r;
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
inline tether::record<conformance_item> full_record(std::uint64_t n) {
    tether::record<conformance_item> r;
    r.id = id_n(n);
    r.server_id = "srv-\"" + std::to_string(n) + "'; --";
    r.value = conformance_item{"Title \"quoted\" \xC3\xBCn\xC3\xAF\x63\xC3\xB8\x64\xC3\xA9 \n\t\\", -42, {"a", "", "c d"}};
    r.status = tether::sync_status::error;
    r.deleted = true;
    r.version = 0x8000'0000'0000'0005ull;  // above INT64_MAX
    r.local_rev = 0xFFFF'FFFF'FFFF'FFFFull;
    r.dirty = {"title", "count"};
    r.attempts = 3;
    r.last_attempt_at = at_ms(1'700'000'000'123);
    r.next_attempt_at = at_ms(1'700'000'060'123);
    r.last_error = tether::error{tether::errc::rate_limited, "slow down", 429, std::chrono::milliseconds{30'000}};
    r.priority = tether::priority::critical;
    r.created_at = at_ms(-5);  // before the epoch
    r.updated_at = at_ms(1'700'000'000'000);
    return r;
}

/// Puts every record in one transaction.
template <class S, class E>
tether::result<void> put_all(S& store, const std::vector<tether::record<E>>& recs) {
    return store.transact([&](auto& tx) -> tether::result<void> {
        for (const auto& r : recs) {
            if (auto x = tx.put(r); !x) return x;
        }
        return {};
    });
}

template <class E>
std::vector<tether::local_id> ids_of(const std::vector<tether::record<E>>& recs) {
    std::vector<tether::local_id> out;
    for (const auto& r : recs) out.push_back(r.id);
    return out;
}

/// Runs the whole `record_store` contract against stores made from `make_policy()`.
template <class MakePolicy>
void storage_conformance(MakePolicy make_policy) {
    using namespace tether;
    using item = conformance_item;
    using P = std::remove_cvref_t<std::invoke_result_t<MakePolicy&>>;
    using S = store_for_t<P, item>;

    STATIC_REQUIRE(storage_policy<P, item>);
    STATIC_REQUIRE(storage_policy<P, conformance_note>);
    STATIC_REQUIRE(record_store<S, item>);
    STATIC_REQUIRE(storage_transaction<typename S::transaction, item>);

    P policy = make_policy();
    S store{policy};

    SECTION("an empty store has nothing") {
        auto g = store.get(id_n(1));
        REQUIRE(g);
        CHECK_FALSE(g->has_value());
        auto f = store.find_by_server_id("nope");
        REQUIRE(f);
        CHECK_FALSE(f->has_value());
        auto l = store.list();
        REQUIRE(l);
        CHECK(l->empty());
        auto d = store.due(at_ms(std::int64_t{1} << 50), 100);
        REQUIRE(d);
        CHECK(d->empty());
        auto c = store.counts();
        REQUIRE(c);
        CHECK((*c == status_counts{}));
        auto m = store.get_meta("cursor");
        REQUIRE(m);
        CHECK_FALSE(m->has_value());
    }

    SECTION("put then get returns the record field for field") {
        const auto full = full_record(1);
        const auto minimal = make_record(2);
        REQUIRE(put_all(store, std::vector{full, minimal}));
        auto g = store.get(full.id);
        REQUIRE(g);
        REQUIRE(g->has_value());
        CHECK((**g == full));
        auto g2 = store.get(minimal.id);
        REQUIRE(g2);
        REQUIRE(g2->has_value());
        CHECK((**g2 == minimal));
        auto f = store.find_by_server_id(*full.server_id);
        REQUIRE(f);
        REQUIRE(f->has_value());
        CHECK((**f == full));
    }

    SECTION("put replaces the record with the same id") {
        auto r = make_record(1);
        REQUIRE(put_all(store, std::vector{r}));
        r.value.title = "changed";
        r.status = sync_status::synced;
        r.server_id = "s-1";
        r.version = 4;
        REQUIRE(put_all(store, std::vector{r}));
        auto l = store.list();
        REQUIRE(l);
        REQUIRE(l->size() == 1);
        CHECK((l->front() == r));
    }

    SECTION("a record without an id is refused") {
        record<item> r = make_record(1);
        r.id = local_id{};
        auto res = put_all(store, std::vector{make_record(2), r});
        REQUIRE_FALSE(res);
        CHECK(res.error().code == errc::invalid_argument);
        auto l = store.list();
        REQUIRE(l);
        CHECK(l->empty());  // the whole transaction rolled back
    }

    SECTION("the server id index follows changes and erasure") {
        auto r1 = make_record(1);
        r1.server_id = "s1";
        auto r2 = make_record(2);
        REQUIRE(put_all(store, std::vector{r1, r2}));
        auto found = [&](std::string_view sid) -> std::optional<local_id> {
            auto f = store.find_by_server_id(sid);
            REQUIRE(f);
            if (!f->has_value()) return std::nullopt;
            return (*f)->id;
        };
        CHECK(found("s1") == r1.id);
        CHECK(found("s2") == std::nullopt);
        r1.server_id = "s2";
        REQUIRE(put_all(store, std::vector{r1}));
        CHECK(found("s1") == std::nullopt);
        CHECK(found("s2") == r1.id);
        r1.server_id.reset();
        REQUIRE(put_all(store, std::vector{r1}));
        CHECK(found("s2") == std::nullopt);
        r1.server_id = "s3";
        REQUIRE(put_all(store, std::vector{r1}));
        CHECK(found("s3") == r1.id);
        REQUIRE(store.transact([&](auto& tx) { return tx.erase(r1.id); }));
        CHECK(found("s3") == std::nullopt);
    }

    SECTION("a second record with a server id already in use is refused, and nothing applies") {
        auto r1 = make_record(1);
        r1.server_id = "s1";
        REQUIRE(put_all(store, std::vector{r1}));
        auto r2 = make_record(2);
        r2.server_id = "s1";
        auto res = put_all(store, std::vector{make_record(3), r2});
        REQUIRE_FALSE(res);
        CHECK(res.error().code == tether::errc::storage);
        auto f = store.find_by_server_id("s1");
        REQUIRE(f);
        REQUIRE(f->has_value());
        CHECK((*f)->id == r1.id);
        auto l = store.list();
        REQUIRE(l);
        CHECK(ids_of(*l) == std::vector{id_n(1)});
    }

    SECTION("erase removes the record; erasing an absent one is fine") {
        auto r = make_record(1);
        REQUIRE(put_all(store, std::vector{r, make_record(2)}));
        REQUIRE(store.transact([&](auto& tx) { return tx.erase(r.id); }));
        REQUIRE(store.transact([&](auto& tx) { return tx.erase(r.id); }));
        REQUIRE(store.transact([&](auto& tx) { return tx.erase(id_n(99)); }));
        auto g = store.get(r.id);
        REQUIRE(g);
        CHECK_FALSE(g->has_value());
        auto l = store.list();
        REQUIRE(l);
        CHECK(ids_of(*l) == std::vector{id_n(2)});
    }

    SECTION("list returns every record in local_id order") {
        std::vector<record<item>> recs;
        for (std::uint64_t n : {5, 3, 9, 1, 7, 300, 256}) recs.push_back(make_record(n));
        REQUIRE(put_all(store, recs));
        auto l = store.list();
        REQUIRE(l);
        CHECK(ids_of(*l) == std::vector{id_n(1), id_n(3), id_n(5), id_n(7), id_n(9), id_n(256), id_n(300)});
    }

    // One population for due() and counts().
    const std::int64_t now = 10'000;
    auto population = [&] {
        using st = sync_status;
        std::vector<record<item>> v;
        v.push_back(make_record(1, st::pending, 100));                             // due
        v.push_back(make_record(2, st::synced, 2));                                // never due
        v.push_back(make_record(3, st::failed, 1));                                // never due
        v.push_back(make_record(4, st::error, 100));                               // due later
        v.back().next_attempt_at = at_ms(20'000);
        v.push_back(make_record(5, st::error, 300));                               // due exactly now
        v.back().next_attempt_at = at_ms(now);
        v.push_back(make_record(6, st::error, 200, priority::high));               // due since 5'000
        v.back().next_attempt_at = at_ms(5'000);
        v.push_back(make_record(7, st::pending_deletion, 50, priority::low));      // due
        v.push_back(make_record(8, st::pending, 900, priority::critical));         // due, first
        v.push_back(make_record(9, st::pending, 100));                             // due, after #1 (same time)
        v.push_back(make_record(10, st::error, 400));                              // due: no next attempt
        v.push_back(make_record(11, st::pending, 60));                             // held back until 15'000
        v.back().next_attempt_at = at_ms(15'000);
        return v;
    };
    auto reference_due = [](std::vector<record<item>> v, std::int64_t t) {
        std::erase_if(v, [&](const auto& r) { return !is_due(r, at_ms(t)); });
        std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
            if (a.priority != b.priority) return a.priority > b.priority;
            if (a.updated_at != b.updated_at) return a.updated_at < b.updated_at;
            return a.id < b.id;
        });
        return ids_of(v);
    };

    SECTION("due filters by status and next attempt, orders by priority, age, id, and honours the limit") {
        const auto pop = population();
        REQUIRE(put_all(store, pop));
        const auto expected = reference_due(pop, now);
        REQUIRE(expected.size() >= 6);
        CHECK(expected.front() == id_n(8));  // critical first
        for (std::uint64_t never : {2, 3, 4}) {
            CHECK(std::find(expected.begin(), expected.end(), id_n(never)) == expected.end());
        }
        auto all = store.due(at_ms(now), 1000);
        REQUIRE(all);
        CHECK(ids_of(*all) == expected);
        auto three = store.due(at_ms(now), 3);
        REQUIRE(three);
        CHECK(ids_of(*three) == std::vector(expected.begin(), expected.begin() + 3));
        auto none = store.due(at_ms(now), 0);
        REQUIRE(none);
        CHECK(none->empty());
        auto later = store.due(at_ms(30'000), 1000);
        REQUIRE(later);
        CHECK(ids_of(*later) == reference_due(pop, 30'000));
        CHECK(std::find(later->begin(), later->end(), pop[3]) != later->end());  // #4 is due by then
        auto got = store.get(id_n(6));
        REQUIRE(got);
        REQUIRE(got->has_value());
        CHECK((*std::find_if(all->begin(), all->end(), [](const auto& r) { return r.id == id_n(6); }) == **got));
    }

    SECTION("counts counts by status; oldest_pending skips synced and failed") {
        REQUIRE(put_all(store, population()));
        auto c = store.counts();
        REQUIRE(c);
        CHECK(c->pending == 4);
        CHECK(c->synced == 1);
        CHECK(c->failed == 1);
        CHECK(c->error == 4);
        CHECK(c->pending_deletion == 1);
        CHECK(c->oldest_pending == at_ms(50));
    }

    SECTION("records that were put all read back: nothing is unreadable") {
        REQUIRE(put_all(store, population()));
        REQUIRE(store.list());
        REQUIRE(store.due(at_ms(std::int64_t{1} << 50), 100));
        auto c = store.counts();
        REQUIRE(c);
        CHECK(c->unreadable == 0);
        if constexpr (reports_unreadable<S, item>) {
            auto u = store.unreadable();
            REQUIRE(u);
            CHECK(u->empty());
            REQUIRE(store.transact([](auto& tx) -> result<void> {
                CHECK_FALSE(tx.unreadable(id_n(1)));   // present, decodes
                CHECK_FALSE(tx.unreadable(id_n(99)));  // absent
                return {};
            }));
        }
    }

    SECTION("metadata is read and written in transactions") {
        REQUIRE(store.transact([](auto& tx) { return tx.set_meta("cursor", "c1"); }));
        auto m = store.get_meta("cursor");
        REQUIRE(m);
        CHECK(*m == std::optional<std::string>{"c1"});
        REQUIRE(store.transact([](auto& tx) -> result<void> {
            if (auto r = tx.set_meta("cursor", "c2"); !r) return r;
            if (auto r = tx.set_meta("empty", ""); !r) return r;
            auto seen = tx.get_meta("cursor");
            if (!seen || *seen != std::optional<std::string>{"c2"}) return unexpected{make_error(errc::storage, "x")};
            return {};
        }));
        CHECK(store.get_meta("cursor").value() == std::optional<std::string>{"c2"});
        CHECK(store.get_meta("empty").value() == std::optional<std::string>{""});
        CHECK(store.get_meta("other").value() == std::nullopt);
    }

    // Committed state for the rollback sections.
    auto r1 = make_record(1);
    r1.server_id = "s1";
    r1.value.title = "v1";
    const auto r2 = make_record(2);
    auto r3 = make_record(3);
    r3.server_id = "s1";
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
    auto check_untouched = [&] {
        auto l = store.list();
        REQUIRE(l);
        REQUIRE(l->size() == 2);
        CHECK((l->at(0) == r1));
        CHECK((l->at(1) == r2));
        auto s1 = store.find_by_server_id("s1");
        REQUIRE(s1);
        REQUIRE(s1->has_value());
        CHECK((*s1)->id == r1.id);
        CHECK_FALSE(store.find_by_server_id("s2").value().has_value());
        CHECK(store.get_meta("cursor").value() == std::optional<std::string>{"c1"});
        CHECK(store.get_meta("new").value() == std::nullopt);
    };

    SECTION("an error result rolls every write back and is returned") {
        REQUIRE(put_all(store, std::vector{r1, r2}));
        REQUIRE(store.transact([](auto& tx) { return tx.set_meta("cursor", "c1"); }));
        auto res = store.transact([&](auto& tx) -> result<void> {
            if (auto r = changes(tx); !r) return r;
            return unexpected{make_error(errc::conflict, "boom")};
        });
        REQUIRE_FALSE(res);
        CHECK(res.error().code == errc::conflict);
        CHECK(res.error().message == "boom");
        check_untouched();
    }

    SECTION("an exception rolls every write back and is rethrown") {
        REQUIRE(put_all(store, std::vector{r1, r2}));
        REQUIRE(store.transact([](auto& tx) { return tx.set_meta("cursor", "c1"); }));
        REQUIRE_THROWS_AS(store.transact([&](auto& tx) -> result<void> {
            if (auto r = changes(tx); !r) return r;
            throw std::runtime_error{"kaboom"};
        }),
                          std::runtime_error);
        check_untouched();
        // The store is usable after the exception.
        REQUIRE(put_all(store, std::vector{make_record(4)}));
        CHECK(store.list().value().size() == 3);
    }

    SECTION("reads inside a transaction see its own writes") {
        REQUIRE(put_all(store, std::vector{r2}));
        REQUIRE(store.transact([&](auto& tx) -> result<void> {
            auto fail = [](const char* what) { return unexpected{make_error(errc::storage, what)}; };
            if (auto r = tx.put(r1); !r) return r;
            auto g = tx.get(r1.id);
            if (!g || !g->has_value() || !(**g == r1)) return fail("get after put");
            auto f = tx.find_by_server_id("s1");
            if (!f || !f->has_value() || (*f)->id != r1.id) return fail("find after put");
            if (auto r = tx.erase(r2.id); !r) return r;
            auto gone = tx.get(r2.id);
            if (!gone || gone->has_value()) return fail("get after erase");
            if (auto r = tx.set_meta("k", "v"); !r) return r;
            auto m = tx.get_meta("k");
            if (!m || *m != std::optional<std::string>{"v"}) return fail("meta after set");
            return {};
        }));
        auto l = store.list();
        REQUIRE(l);
        CHECK(ids_of(*l) == std::vector{r1.id});
    }

    SECTION("a later transaction sees committed data (read-modify-write)") {
        REQUIRE(put_all(store, std::vector{r1}));
        for (int i = 0; i < 3; ++i) {
            REQUIRE(store.transact([&](auto& tx) -> result<void> {
                auto g = tx.get(r1.id);
                if (!g) return unexpected{g.error()};
                if (!g->has_value()) return unexpected{make_error(errc::not_found, "lost")};
                auto r = **g;
                ++r.value.count;
                ++r.local_rev;
                return tx.put(r);
            }));
        }
        auto g = store.get(r1.id);
        REQUIRE(g);
        REQUIRE(g->has_value());
        CHECK((*g)->value.count == r1.value.count + 3);
        CHECK((*g)->local_rev == 3);
    }

    SECTION("another store from a copy of the policy shares the data") {
        REQUIRE(put_all(store, std::vector{r1}));
        REQUIRE(store.transact([](auto& tx) { return tx.set_meta("cursor", "c1"); }));
        P copy = policy;
        S other{copy};
        auto g = other.get(r1.id);
        REQUIRE(g);
        REQUIRE(g->has_value());
        CHECK((**g == r1));
        CHECK(other.get_meta("cursor").value() == std::optional<std::string>{"c1"});
        REQUIRE(put_all(other, std::vector{r2}));
        CHECK(store.list().value().size() == 2);
    }

    SECTION("entity types sharing a policy keep separate records and metadata") {
        store_for_t<P, conformance_note> notes{policy};
        auto n = make_record<conformance_note>(1);  // same local_id as r1
        n.value.text = "a note";
        n.server_id = "s1";
        REQUIRE(put_all(store, std::vector{r1}));
        REQUIRE(store.transact([](auto& tx) { return tx.set_meta("cursor", "items"); }));
        REQUIRE(put_all(notes, std::vector{n}));
        REQUIRE(notes.transact([](auto& tx) { return tx.set_meta("cursor", "notes"); }));
        CHECK(store.get_meta("cursor").value() == std::optional<std::string>{"items"});
        CHECK(notes.get_meta("cursor").value() == std::optional<std::string>{"notes"});
        CHECK((store.get(r1.id).value().value() == r1));
        CHECK((notes.get(n.id).value().value() == n));
        CHECK(notes.find_by_server_id("s1").value().value().value.text == "a note");
        CHECK(store.counts().value().pending == 1);
        CHECK(notes.counts().value().pending == 1);
        REQUIRE(notes.transact([&](auto& tx) { return tx.erase(n.id); }));
        CHECK(store.get(r1.id).value().has_value());
    }

    SECTION("concurrent transactions are serialised") {
        constexpr int threads = 4;
        constexpr int per_thread = 25;
        std::atomic<int> failures{0};
        REQUIRE(store.transact([](auto& tx) { return tx.set_meta("counter", "0"); }));
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) {
            pool.emplace_back([&, t] {
                for (int i = 0; i < per_thread; ++i) {
                    auto res = store.transact([&](auto& tx) -> result<void> {
                        auto m = tx.get_meta("counter");
                        if (!m || !m->has_value()) return unexpected{make_error(errc::storage, "no counter")};
                        if (auto r = tx.set_meta("counter", std::to_string(std::stoi(**m) + 1)); !r) return r;
                        return tx.put(make_record(static_cast<std::uint64_t>(1000 + t * per_thread + i)));
                    });
                    if (!res) ++failures;
                    if (!store.counts()) ++failures;
                }
            });
        }
        for (auto& th : pool) th.join();
        CHECK(failures == 0);
        CHECK(store.get_meta("counter").value() == std::optional<std::string>{std::to_string(threads * per_thread)});
        CHECK(store.list().value().size() == static_cast<std::size_t>(threads * per_thread));
    }
}

}  // namespace tether_test
