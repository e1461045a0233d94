// The server-store conformance suite: the memory store passes it, and it names
// each rule a deliberately broken store breaks.
#include <tether/server/memory_store.hpp>
#include <tether/server/store.hpp>
#include <tether/testing/server_store_conformance.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using tether::result;
using tether::server::collection_info;
using tether::server::memory_store;
using tether::server::scope;
using tether::server::stored_record;

std::set<std::string> checks(const std::vector<tether::testing::conformance_failure>& fs) {
    std::set<std::string> out;
    for (const auto& f : fs) out.insert(f.check);
    return out;
}

std::string describe(const std::vector<tether::testing::conformance_failure>& fs) {
    std::string s;
    for (const auto& f : fs) s += f.check + ": " + f.what + "\n";
    return s;
}

/// What the broken store gets wrong (one rule each).
enum class flaw {
    keeps_failed_writes,  // a transaction that returns an error commits anyway
    unordered_changes,    // changes_after answers newest first
    lists_tombstones,     // list() includes deleted records
    shared_counter,       // one change counter for every scope
    repeats_server_ids,   // new_server_id always answers "s1"
};

/// The read half of a broken transaction: forwards to the memory store's, bending one rule.
template <class Tx>
struct broken_reads {
    Tx* inner;
    flaw how;

    result<std::optional<stored_record>> find_by_server_id(scope s, std::string_view sid) const {
        return inner->find_by_server_id(s, sid);
    }
    result<std::optional<stored_record>> find_by_local_id(scope s, const tether::local_id& id) const {
        return inner->find_by_local_id(s, id);
    }
    result<std::vector<stored_record>> changes_after(scope s, std::uint64_t n, std::size_t limit) const {
        if (how != flaw::unordered_changes) return inner->changes_after(s, n, limit);
        auto all = inner->changes_after(s, n, 1000);
        if (all) {
            std::reverse(all->begin(), all->end());
            if (all->size() > limit) all->resize(limit);
        }
        return all;
    }
    result<std::vector<stored_record>> list(scope s) const {
        if (how != flaw::lists_tombstones) return inner->list(s);
        return inner->changes_after(s, 0, 1000).transform([](std::vector<stored_record> v) {
            std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
                return tether::server::server_id_less{}(a.record.server_id, b.record.server_id);
            });
            return v;
        });
    }
    result<std::optional<collection_info>> collection(scope s) const {
        if (how == flaw::shared_counter) return inner->collection(scope{"", ""});
        return inner->collection(s);
    }
};

struct broken_write : broken_reads<memory_store::write_transaction> {
    result<collection_info> lock_collection(scope s) {
        if (how == flaw::shared_counter) (void)inner->lock_collection(scope{"", ""});
        return inner->lock_collection(s);
    }
    result<std::uint64_t> next_change(scope s) {
        return inner->next_change(how == flaw::shared_counter ? scope{"", ""} : s);
    }
    result<void> put(scope s, const stored_record& r) { return inner->put(s, r); }
    result<std::string> new_server_id() {
        if (how == flaw::repeats_server_ids) return std::string{"s1"};
        return inner->new_server_id();
    }
};

/// memory_store with one rule of the contract broken, as a store author might.
struct broken_store {
    using read_transaction = broken_reads<memory_store::read_transaction>;
    using write_transaction = broken_write;
    memory_store inner;
    flaw how;

    template <class F>
    auto write(F&& f) {
        using R = std::invoke_result_t<F&, write_transaction&>;
        std::optional<R> failed;
        auto r = inner.write([&](memory_store::write_transaction& tx) -> R {
            write_transaction w{{&tx, how}};
            R out = f(w);
            if (!out && how == flaw::keeps_failed_writes) {
                failed.emplace(std::move(out));
                return R{};  // commits
            }
            return out;
        });
        if (failed) return std::move(*failed);
        return r;
    }
    template <class F>
    auto read(F&& f) const {
        return inner.read([&](memory_store::read_transaction& tx) {
            read_transaction r{&tx, how};
            return f(r);
        });
    }
};
static_assert(tether::server::server_store<broken_store>);

}  // namespace

TEST_CASE("memory_store passes the server-store conformance suite", "[server]") {
    static_assert(tether::server::server_store<memory_store>);
    static_assert(tether::server::restorable_server_store<memory_store>);
    const auto failures = tether::testing::check_server_store([] { return memory_store{}; });
    INFO(describe(failures));
    CHECK(failures.empty());
}

TEST_CASE("the server-store conformance suite names each broken rule", "[server]") {
    using tether::testing::server_store_conformance_options;
    const server_store_conformance_options quick{.threads = 2, .transactions_per_thread = 5};
    struct expectation {
        flaw how;
        const char* rule;
    };
    for (const auto& [how, rule] : {expectation{flaw::keeps_failed_writes, "rollback on error"},
                                    expectation{flaw::unordered_changes, "change order"},
                                    expectation{flaw::lists_tombstones, "list"},
                                    expectation{flaw::shared_counter, "scopes apart"},
                                    expectation{flaw::repeats_server_ids, "new server ids"}}) {
        const auto failures = tether::testing::check_server_store([how = how] { return broken_store{memory_store{}, how}; }, quick);
        INFO(rule << "\n" << describe(failures));
        CHECK(checks(failures).contains(rule));
        CHECK_FALSE(checks(failures).contains("empty store"));
    }
}

TEST_CASE("memory_store: a rolled back transaction leaves nothing, a restore keeps numbering forward", "[server]") {
    memory_store store;
    const scope s{"alice", "jobs"};
    auto failed = store.write([&](memory_store::write_transaction& tx) -> result<void> {
        (void)tx.lock_collection(s);
        (void)tx.new_server_id();
        auto n = tx.next_change(s);
        stored_record r;
        r.record.server_id = "s1";
        r.record.version = *n;
        (void)tx.put(s, r);
        return tether::unexpected{tether::make_error(tether::errc::rejected, "no")};
    });
    REQUIRE_FALSE(failed.has_value());
    CHECK_FALSE(store.read([&](const auto& tx) { return tx.collection(s); }).value().has_value());
    // The server id counter went back too: the next id is s1 again.
    CHECK(store.write([](memory_store::write_transaction& tx) { return tx.new_server_id(); }).value() == "s1");

    // Copies share one store.
    memory_store copy = store;
    (void)copy.write([&](memory_store::write_transaction& tx) { return tx.lock_collection(s); });
    CHECK(store.read([&](const auto& tx) { return tx.collection(s); }).value().has_value());
}
