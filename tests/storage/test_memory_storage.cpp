#include "storage/conformance.hpp"

#include <tether/core/error.hpp>
#include <tether/core/record.hpp>
#include <tether/storage/memory.hpp>
#include <tether/storage/storage.hpp>

#include <boost/hana/define_struct.hpp>
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace {

/// Claims the collection of `conformance_item` with a different type.
struct impostor {
    BOOST_HANA_DEFINE_STRUCT(impostor, (int, x));
    static constexpr std::string_view collection = "conformance_items";
};

}  // namespace

TEST_CASE("memory_storage passes the storage conformance suite", "[storage][memory]") {
    tether_test::require_conformant(tether::testing::check_storage([] { return tether::memory_storage{}; }));
}

TEST_CASE("memory_storage: copies share one store", "[storage][memory]") {
    using tether_test::conformance_item;
    tether::memory_storage storage;
    tether::memory_storage copy = storage;  // NOLINT(performance-unnecessary-copy-initialization)
    tether::memory_store<conformance_item> a{storage};
    tether::memory_store<conformance_item> b{copy};
    const auto r = tether_test::make_record(1);
    REQUIRE(tether_test::put_all(a, std::vector{r}));
    auto g = b.get(r.id);
    REQUIRE(g);
    REQUIRE(g->has_value());
    CHECK((**g == r));

    // A storage built separately is a different store.
    tether::memory_store<conformance_item> c{tether::memory_storage{}};
    CHECK(c.list().value().empty());
}

TEST_CASE("memory_storage: two entity types with one collection name is a storage error", "[storage][memory]") {
    tether::memory_storage storage;
    tether::memory_store<tether_test::conformance_item> items{storage};
    tether::memory_store<impostor> clash{storage};
    REQUIRE(tether_test::put_all(items, std::vector{tether_test::make_record(1)}));

    auto l = clash.list();
    REQUIRE_FALSE(l);
    CHECK(l.error().code == tether::errc::storage);
    auto t = clash.transact([](auto&) { return tether::result<void>{}; });
    REQUIRE_FALSE(t);
    CHECK(t.error().code == tether::errc::storage);
    // The first owner is unaffected.
    CHECK(items.list().value().size() == 1);
}

TEST_CASE("memory_storage: edit changes a record in place and a rollback restores it", "[storage][memory]") {
    using tether_test::conformance_item;
    tether::memory_storage storage;
    tether::memory_store<conformance_item> items{storage};
    const auto r = tether_test::make_record(1);
    REQUIRE(tether_test::put_all(items, std::vector{r}));

    SECTION("an absent record gives an empty edit") {
        REQUIRE(items.transact([&](auto& tx) -> tether::result<void> {
            CHECK_FALSE(tx.edit(tether_test::make_record(2).id));
            return {};
        }));
    }
    SECTION("a committed edit is the write; before keeps the old state") {
        REQUIRE(items.transact([&](auto& tx) -> tether::result<void> {
            auto e = tx.edit(r.id);
            REQUIRE(e);
            e.current->local_rev += 10;
            CHECK(e.before->local_rev == r.local_rev);
            CHECK(tx.peek(r.id)->local_rev == r.local_rev + 10);  // the transaction sees its change
            return {};
        }));
        CHECK(items.get(r.id).value()->local_rev == r.local_rev + 10);
    }
    SECTION("an edit in a transaction that fails is undone") {
        auto res = items.transact([&](auto& tx) -> tether::result<void> {
            tx.edit(r.id).current->local_rev += 10;
            return tether::unexpected{tether::make_error(tether::errc::conflict, "undo")};
        });
        REQUIRE_FALSE(res);
        CHECK((items.get(r.id).value() == r));
    }
    SECTION("an edit followed by a put and an erase of the same record is undone in order") {
        auto res = items.transact([&](auto& tx) -> tether::result<void> {
            tx.edit(r.id).current->local_rev += 10;
            auto again = *tx.peek(r.id);
            again.local_rev += 1;
            if (auto p = tx.put(std::move(again)); !p) return p;
            if (auto e = tx.erase(r.id); !e) return e;
            return tether::unexpected{tether::make_error(tether::errc::conflict, "undo")};
        });
        REQUIRE_FALSE(res);
        CHECK((items.get(r.id).value() == r));
    }
}

TEST_CASE("memory_storage: due() follows records changed in place, committed or rolled back", "[storage][memory]") {
    using tether_test::conformance_item;
    tether::memory_storage storage;
    tether::memory_store<conformance_item> items{storage};
    auto a = tether_test::make_record(1);
    auto b = tether_test::make_record(2);
    REQUIRE(tether_test::put_all(items, std::vector{a, b}));
    const auto now = tether_test::at_ms(1'000'000);
    auto due_ids = [&] {
        std::vector<tether::local_id> ids;
        for (const auto& r : items.due(now, 10).value()) ids.push_back(r.id);
        return ids;
    };
    REQUIRE(due_ids() == std::vector{a.id, b.id});  // same priority and age: by id

    SECTION("a committed edit that syncs a record takes it out") {
        REQUIRE(items.transact([&](auto& tx) -> tether::result<void> {
            tx.edit(a.id).current->status = tether::sync_status::synced;
            return {};
        }));
        CHECK(due_ids() == std::vector{b.id});
    }
    SECTION("a committed edit that raises the priority moves it first") {
        REQUIRE(items.transact([&](auto& tx) -> tether::result<void> {
            tx.edit(b.id).current->priority = tether::priority::critical;
            return {};
        }));
        CHECK(due_ids() == std::vector{b.id, a.id});
    }
    SECTION("an edit that is rolled back leaves the order as it was") {
        auto res = items.transact([&](auto& tx) -> tether::result<void> {
            tx.edit(a.id).current->status = tether::sync_status::synced;
            tx.edit(b.id).current->priority = tether::priority::critical;
            return tether::unexpected{tether::make_error(tether::errc::conflict, "undo")};
        });
        REQUIRE_FALSE(res);
        CHECK(due_ids() == std::vector{a.id, b.id});
    }
    SECTION("an edit, then a put and an erase in one transaction") {
        REQUIRE(items.transact([&](auto& tx) -> tether::result<void> {
            tx.edit(a.id).current->priority = tether::priority::critical;
            auto again = *tx.peek(a.id);
            again.status = tether::sync_status::error;
            if (auto p = tx.put(std::move(again)); !p) return p;
            return tx.erase(b.id);
        }));
        CHECK(due_ids() == std::vector{a.id});
    }
}
