// A server process killed in the middle of a push batch: PostgreSQL rolls its
// transaction back, so nothing of the batch is kept, its change numbers are
// given back, and the scope's lock is free for the next push.
#include "pg_test.hpp"

#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/server/postgres_store.hpp>
#include <tether/server/sync_service.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace {

using tether::server::postgres_store;
using service = tether::server::sync_service<postgres_store>;

std::vector<tether::push_op> creates(std::uint64_t first, std::uint64_t count) {
    std::vector<tether::push_op> ops;
    for (std::uint64_t n = first; n < first + count; ++n)
        ops.push_back({tether::op_kind::create,
                       tether::local_id::from_parts(tether::timestamp{std::chrono::milliseconds{1'700'000'000'000}},
                                                    static_cast<std::uint16_t>(n), n),
                       std::nullopt, 0, nlohmann::json{{"n", n}}, "dev-a"});
    return ops;
}

/// A child process that pushes five creates and, inside the batch's
/// transaction after three were written, tells the parent and waits to be killed.
class doomed_pusher {
public:
    explicit doomed_pusher(const std::string& conninfo) {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        const auto ops = creates(1, 5);  // made before fork: the child only runs the push
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::close(fds[0]);
            auto store = postgres_store::open(conninfo);
            if (!store) ::_exit(2);
            service svc{std::move(*store)};
            int screened = 0;
            (void)svc.push({.user = "alice", .collection = "jobs", .ops = ops},
                           [&](const tether::push_op&) -> std::optional<tether::error> {
                               if (++screened == 4) {
                                   const char ready = 'r';
                                   (void)::write(fds[1], &ready, 1);
                                   for (;;) ::pause();  // killed here, mid-batch
                               }
                               return std::nullopt;
                           });
            ::_exit(3);  // never reached
        }
        ::close(fds[1]);
        ready_fd_ = fds[0];
    }
    doomed_pusher(const doomed_pusher&) = delete;
    doomed_pusher& operator=(const doomed_pusher&) = delete;
    ~doomed_pusher() {
        kill();
        ::close(ready_fd_);
    }

    /// True once the child is held inside its batch (waits at most 30 s).
    bool wait_until_mid_batch() {
        pollfd p{ready_fd_, POLLIN, 0};
        char c = 0;
        return ::poll(&p, 1, 30'000) == 1 && ::read(ready_fd_, &c, 1) == 1 && c == 'r';
    }

    /// SIGKILL, reaped; true if it died of it.
    bool kill() {
        if (pid_ <= 0) return false;
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    }

private:
    pid_t pid_ = -1;
    int ready_fd_ = -1;
};

}  // namespace

TEST_CASE("postgres_store: a server process killed mid-batch leaves nothing of the batch", "[postgres][crash]") {
    std::string schema;
    const auto conninfo = tether_test::pg_fresh_schema(&schema);
    service svc{postgres_store::open(conninfo).value()};
    auto admin = tether_test::pg_admin();
    {
        doomed_pusher child{conninfo};
        REQUIRE(child.wait_until_mid_batch());
        // Three creates are written, uncommitted, in the child's open transaction.
        auto open = tether_test::pg_exec(admin, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" +
                                                    schema + "' AND state = 'idle in transaction'");
        CHECK(std::string{PQgetvalue(open.get(), 0, 0)} == "1");
        REQUIRE(child.kill());
    }
    auto page = svc.pull({.user = "alice", .collection = "jobs"});
    REQUIRE(page.has_value());
    CHECK(page->records.empty());
    CHECK(page->next_cursor.empty());  // not even the scope stayed known
    // The next push takes the lock the dead batch held and the numbers it took.
    const auto ops = creates(1, 2);
    auto out = svc.push({.user = "alice", .collection = "jobs", .ops = ops});
    REQUIRE(out.has_value());
    CHECK(out->at(0).outcome == tether::push_outcome::kind::applied);
    CHECK_FALSE(out->at(0).replayed);
    CHECK(out->at(0).record.version == 1);
    CHECK(out->at(1).record.version == 2);
}
