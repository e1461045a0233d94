// The storage conformance suite: it passes against the example's map_storage
// and names each rule a deliberately broken store breaks. (memory_storage runs
// it in tests/storage/, sqlite_storage in tests/integration/test_sqlite.cpp.)
#include "custom_policy/map_storage.hpp"
#include "storage/conformance.hpp"

#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/storage/memory.hpp>
#include <tether/storage/storage.hpp>
#include <tether/testing/storage_conformance.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

/// What the broken store gets wrong (one rule each).
enum class flaw {
    due_ignores_priority,  // due() orders by age and id only
    due_ignores_limit,     // due() returns every due record
    keeps_failed_writes,   // a transaction that returns an error commits anyway
    swallows_exceptions,   // transact turns an exception into an error result
    find_misses,           // find_by_server_id() never finds anything
    miscounts,             // counts() counts one pending record too many
    copies_apart,          // a copy of the policy is a new, empty database
};

template <class E>
class broken_store;

/// memory_storage with one rule of the contract broken, as a storage author might.
struct broken_storage {
    using policy_kind = tether::storage_tag;
    template <class E>
    using rebind = broken_store<E>;

    explicit broken_storage(flaw f) : how(f) {}
    broken_storage(const broken_storage& other)
        : inner(other.how == flaw::copies_apart ? tether::memory_storage{} : other.inner), how(other.how) {}
    broken_storage& operator=(const broken_storage&) = default;

    tether::memory_storage inner;
    flaw how;
};

template <class E>
class broken_store {
public:
    using transaction = typename tether::memory_store<E>::transaction;

    explicit broken_store(const broken_storage& p) : inner_(p.inner), how_(p.how) {}

    template <class F>
    tether::result<void> transact(F&& f) {
        if (how_ == flaw::keeps_failed_writes) {
            std::optional<tether::error> failed;
            auto r = inner_.transact([&](transaction& tx) -> tether::result<void> {
                auto res = f(tx);
                if (!res) failed = res.error();
                return {};  // commits whatever f wrote
            });
            if (!r) return r;
            if (failed) return tether::unexpected{*failed};
            return {};
        }
        if (how_ == flaw::swallows_exceptions) {
            try {
                return inner_.transact(std::forward<F>(f));
            } catch (...) {
                return tether::unexpected{tether::make_error(tether::errc::storage, "the transaction threw")};
            }
        }
        return inner_.transact(std::forward<F>(f));
    }

    tether::result<std::optional<tether::record<E>>> get(const tether::local_id& id) const { return inner_.get(id); }
    tether::result<std::optional<tether::record<E>>> find_by_server_id(std::string_view sid) const {
        if (how_ == flaw::find_misses) return std::optional<tether::record<E>>{};
        return inner_.find_by_server_id(sid);
    }
    tether::result<std::vector<tether::record<E>>> list() const { return inner_.list(); }
    tether::result<std::vector<tether::record<E>>> due(tether::timestamp now, std::size_t limit) const {
        if (how_ == flaw::due_ignores_limit) return inner_.due(now, std::numeric_limits<std::size_t>::max());
        if (how_ != flaw::due_ignores_priority) return inner_.due(now, limit);
        auto all = inner_.due(now, std::numeric_limits<std::size_t>::max());
        if (!all) return all;
        std::stable_sort(all->begin(), all->end(), [](const auto& a, const auto& b) {
            if (a.updated_at != b.updated_at) return a.updated_at < b.updated_at;
            return a.id < b.id;
        });
        if (all->size() > limit) all->resize(limit);
        return all;
    }
    tether::result<std::optional<tether::timestamp>> earliest_next_attempt() const {
        return inner_.earliest_next_attempt();
    }
    tether::result<tether::status_counts> counts() const {
        auto c = inner_.counts();
        if (c && how_ == flaw::miscounts) ++c->pending;
        return c;
    }
    tether::result<std::optional<std::string>> get_meta(std::string_view key) const { return inner_.get_meta(key); }

private:
    tether::memory_store<E> inner_;
    flaw how_;
};

static_assert(tether::storage_policy<broken_storage, tether::testing::conformance_item>);

}  // namespace

TEST_CASE("the storage conformance suite names each broken rule", "[testing][conformance][storage]") {
    struct expectation {
        flaw how;
        std::string rule;
    };
    for (const auto& [how, rule] : std::vector<expectation>{{flaw::due_ignores_priority, "due order"},
                                                            {flaw::due_ignores_limit, "due limit"},
                                                            {flaw::keeps_failed_writes, "rollback on error"},
                                                            {flaw::swallows_exceptions, "rollback on exception"},
                                                            {flaw::find_misses, "find_by_server_id"},
                                                            {flaw::miscounts, "counts"},
                                                            {flaw::copies_apart, "copies share"}}) {
        INFO("expected a failure of: " << rule);
        auto failures = tether::testing::check_storage([how = how] { return broken_storage{how}; });
        INFO(tether_test::describe(failures));
        CHECK(tether_test::rules_of(failures).contains(rule));
    }
}

TEST_CASE("the storage conformance suite names only the broken rules", "[testing][conformance][storage]") {
    // A flaw confined to one member fails the rules that look at that member,
    // not a cascade of others.
    {
        auto failures = tether::testing::check_storage([] { return broken_storage{flaw::due_ignores_priority}; });
        INFO(tether_test::describe(failures));
        CHECK((tether_test::rules_of(failures) == std::set<std::string>{"due order"}));
    }
    {
        auto failures = tether::testing::check_storage([] { return broken_storage{flaw::miscounts}; });
        INFO(tether_test::describe(failures));
        CHECK((tether_test::rules_of(failures) == std::set<std::string>{"empty store", "counts", "entity types apart"}));
    }
}

TEST_CASE("the storage conformance suite can skip the optional rules", "[testing][conformance][storage]") {
    auto failures = tether::testing::check_storage([] { return broken_storage{flaw::copies_apart}; },
                                                   {.copies_share = false, .threads = 0});
    INFO(tether_test::describe(failures));
    CHECK(failures.empty());
}

TEST_CASE("the example's own storage keeps every storage rule", "[testing][conformance][storage]") {
    // Every custom::map_store is a database of its own (a store built from a
    // copy of the policy starts empty), so the "copies share" rule does not apply.
    tether_test::require_conformant(
        tether::testing::check_storage([] { return custom::map_storage{}; }, {.copies_share = false}));
}
