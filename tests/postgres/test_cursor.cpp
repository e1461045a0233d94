// Cursors that never skip: the out-of-order commit that defeats change numbers
// taken from a sequence, forced on purpose, against a naive sequence-numbered
// store (which must skip, or the test proves nothing) and against
// postgres_store behind the sync service (which must not).
//
// The scenario, the same for both: transaction 1 takes a change number and
// writes its record but does not commit yet; transaction 2, on another
// connection (another server process, as far as PostgreSQL can tell), takes
// the next number, writes and commits; a reader pulls and keeps its cursor;
// transaction 1 commits; the reader pulls after its cursor.
#include "pg_test.hpp"

#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/server/postgres_store.hpp>
#include <tether/server/sync_service.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using tether::server::postgres_store;
using service = tether::server::sync_service<postgres_store>;
using tether_test::pg_exec;

/// One way of numbering changes: the two writers and the reader of the scenario.
struct writers {
    virtual ~writers() = default;
    /// Transaction 1 takes a change number and writes; it stays open.
    virtual void first_takes_a_number() = 0;
    /// Transaction 1 commits.
    virtual void first_commits() = 0;
    /// Transaction 2, whole: takes a number, writes, commits (on its own thread).
    virtual void second_runs() = 0;
    /// True while transaction 2 waits for a lock.
    virtual bool second_waits() = 0;
    /// The change numbers after `cursor`, and the cursor to pull from next.
    virtual std::pair<std::vector<std::uint64_t>, std::string> pull(const std::string& cursor) = 0;
};

struct outcome {
    std::vector<std::uint64_t> seen;       // what the reader got, following its cursor
    std::vector<std::uint64_t> committed;  // what is there in the end
    bool second_waited = false;            // transaction 2 waited for transaction 1
};

outcome out_of_order_commit(writers& w) {
    w.first_takes_a_number();
    std::atomic<bool> second_done{false};
    std::thread second{[&] {
        w.second_runs();
        second_done = true;
    }};
    // Transaction 2 commits (a sequence lets it), or blocks (a lock makes it wait).
    tether_test::pg_wait_for([&] { return second_done.load() || w.second_waits(); },
                             "transaction 2 to commit or to wait for a lock");
    outcome out;
    out.second_waited = !second_done.load();
    auto [early, cursor] = w.pull("");
    w.first_commits();
    second.join();
    auto [late, end] = w.pull(cursor);
    out.seen = std::move(early);
    out.seen.insert(out.seen.end(), late.begin(), late.end());
    out.committed = w.pull("").first;
    return out;
}

/// Changes numbered by `nextval` when the statement runs: the design store.hpp rules out.
class naive_sequence : public writers {
public:
    naive_sequence() : conninfo_(tether_test::pg_fresh_schema(&schema_)) {
        a_ = open_();
        b_ = open_();
        reader_ = open_();
        pg_exec(*a_, "CREATE SEQUENCE naive_changes");
        pg_exec(*a_, "CREATE TABLE naive_records (version bigint PRIMARY KEY, name text NOT NULL)");
    }
    void first_takes_a_number() override {
        pg_exec(*a_, "BEGIN");
        pg_exec(*a_, "INSERT INTO naive_records VALUES (nextval('naive_changes'), 'first')");
    }
    void first_commits() override { pg_exec(*a_, "COMMIT"); }
    void second_runs() override {
        (void)b_->exec("BEGIN");
        (void)b_->exec("INSERT INTO naive_records VALUES (nextval('naive_changes'), 'second')");
        (void)b_->exec("COMMIT");
    }
    bool second_waits() override { return tether_test::pg_lock_waiters(*reader_, schema_) > 0; }
    std::pair<std::vector<std::uint64_t>, std::string> pull(const std::string& cursor) override {
        const std::string after = cursor.empty() ? "0" : cursor;
        pg_exec(*reader_, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        auto r = pg_exec(*reader_, "SELECT version FROM naive_records WHERE version > " + after + " ORDER BY version");
        pg_exec(*reader_, "COMMIT");
        std::pair<std::vector<std::uint64_t>, std::string> page{{}, cursor};
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            page.first.push_back(std::stoull(PQgetvalue(r.get(), i, 0)));
            page.second = PQgetvalue(r.get(), i, 0);
        }
        return page;
    }

private:
    std::optional<tether::server::detail::pg_connection> open_() {
        auto c = tether::server::detail::pg_connection::open(conninfo_);
        if (!c) FAIL(c.error().message);
        return std::move(*c);
    }
    std::string schema_;
    std::string conninfo_;
    std::optional<tether::server::detail::pg_connection> a_, b_, reader_;
};

tether::push_op create_op(std::uint64_t n) {
    return tether::push_op{tether::op_kind::create,
                           tether::local_id::from_parts(tether::timestamp{std::chrono::milliseconds{1'700'000'000'000}},
                                                        static_cast<std::uint16_t>(n), n),
                           std::nullopt, 0, nlohmann::json{{"n", n}}, "dev-a"};
}

/// postgres_store behind the sync service: transaction 1 is a push of two
/// creates whose second op the screen holds (then refuses), after the first
/// took its change number; transaction 2 is a push from a second store (its
/// own connections, as a second server process has).
class store_behind_service : public writers {
public:
    store_behind_service() {
        const auto conninfo = tether_test::pg_fresh_schema(&schema_);
        one_.emplace(postgres_store::open(conninfo).value());
        two_.emplace(postgres_store::open(conninfo).value());
        admin_.emplace(tether_test::pg_admin());
    }
    ~store_behind_service() override {
        if (first_.joinable()) {
            release_.set_value();
            first_.join();
        }
    }
    void first_takes_a_number() override {
        std::promise<void> took;
        auto took_future = took.get_future();
        first_ = std::thread{[this, &took] {
            const std::vector ops{create_op(1), create_op(2)};
            int screened = 0;
            auto hold_second = [&](const tether::push_op&) -> std::optional<tether::error> {
                if (++screened < 2) return std::nullopt;
                took.set_value();  // op 1 has its change number; the transaction is open
                release_.get_future().wait();
                return tether::make_error(tether::errc::rejected, "held, then refused");
            };
            first_result_ = one_->push({.user = "alice", .collection = "jobs", .ops = ops}, hold_second);
        }};
        took_future.wait();
    }
    void first_commits() override {
        release_.set_value();
        first_.join();
        REQUIRE(first_result_.has_value());
        CHECK(first_result_->at(0).record.version == 1);
    }
    void second_runs() override {
        const std::vector ops{create_op(3)};
        second_result_ = two_->push({.user = "alice", .collection = "jobs", .ops = ops});
    }
    bool second_waits() override { return tether_test::pg_lock_waiters(*admin_, schema_) > 0; }
    std::pair<std::vector<std::uint64_t>, std::string> pull(const std::string& cursor) override {
        auto page = one_->pull({.user = "alice", .collection = "jobs", .cursor = cursor});
        REQUIRE(page.has_value());
        std::pair<std::vector<std::uint64_t>, std::string> out{{}, page->next_cursor};
        for (const auto& r : page->records) out.first.push_back(r.version);
        return out;
    }
    [[nodiscard]] const auto& second_result() const { return second_result_; }

private:
    std::string schema_;
    std::optional<service> one_, two_;
    std::optional<tether::server::detail::pg_connection> admin_;
    std::thread first_;
    std::promise<void> release_;
    tether::result<std::vector<tether::push_outcome>> first_result_{std::vector<tether::push_outcome>{}};
    tether::result<std::vector<tether::push_outcome>> second_result_{std::vector<tether::push_outcome>{}};
};

}  // namespace

TEST_CASE("postgres: a sequence-numbered store lets a cursor skip a change for good", "[postgres][cursor]") {
    // The control: the scenario does defeat change numbers taken when a statement runs.
    naive_sequence naive;
    const auto out = out_of_order_commit(naive);
    CHECK_FALSE(out.second_waited);
    CHECK(out.committed == std::vector<std::uint64_t>{1, 2});
    CHECK(out.seen == std::vector<std::uint64_t>{2});  // change 1 committed below the cursor: never seen
}

TEST_CASE("postgres_store: the same out-of-order commit never makes a cursor skip", "[postgres][cursor]") {
    store_behind_service store;
    const auto out = out_of_order_commit(store);
    // Transaction 2 waited at lock_collection for transaction 1's commit, so it
    // took change 2 after change 1 was committed: change order is commit order.
    CHECK(out.second_waited);
    CHECK(out.committed == std::vector<std::uint64_t>{1, 2});
    CHECK(out.seen == out.committed);
    REQUIRE(store.second_result().has_value());
    CHECK(store.second_result()->at(0).record.version == 2);
}
