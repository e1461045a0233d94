#pragma once

// What the PostgreSQL tests share: the throwaway server the CTest fixture
// started (pg_fixture.sh writes its conninfo to the file that
// TETHER_PG_CONNINFO_FILE names), a fresh schema per store, and raw SQL.
// Without a server the tests fail and say why; they never pass silently.
#include <tether/server/postgres/connection.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

namespace tether_test {

/// The fixture server's conninfo; fails the test if there is none.
inline std::string pg_conninfo() {
    const char* file = std::getenv("TETHER_PG_CONNINFO_FILE");
    if (file == nullptr || *file == '\0')
        FAIL("TETHER_PG_CONNINFO_FILE is not set: run the PostgreSQL tests through ctest, whose fixture "
             "(postgres.start, tests/postgres/pg_fixture.sh) starts the server and sets it");
    std::ifstream in{file};
    std::string conninfo;
    std::getline(in, conninfo);
    if (conninfo.empty())
        FAIL("no PostgreSQL conninfo in " << file << ": the fixture postgres.start did not start the server "
                                                     "(see its output)");
    return conninfo;
}

/// An admin connection to the fixture server.
inline tether::server::detail::pg_connection pg_admin() {
    auto c = tether::server::detail::pg_connection::open(pg_conninfo());
    if (!c) FAIL("cannot connect to the fixture's PostgreSQL: " << c.error().message);
    return std::move(*c);
}

/// Runs `sql` on `c`; fails the test if it fails.
inline tether::server::detail::pg_result pg_exec(tether::server::detail::pg_connection& c, const std::string& sql) {
    auto r = c.exec(sql.c_str());
    if (!r) FAIL(r.error().message);
    return std::move(*r);
}

/// The conninfo of a new, empty schema of the fixture server (its name in
/// `name`, if given); its connections carry the schema's name as their
/// application_name, so a test can tell its own sessions in pg_stat_activity.
inline std::string pg_fresh_schema(std::string* name = nullptr) {
    static std::atomic<int> n{0};
    const std::string schema = "t" + std::to_string(::getpid()) + "_" + std::to_string(++n);
    auto admin = pg_admin();
    pg_exec(admin, "CREATE SCHEMA " + schema);
    if (name != nullptr) *name = schema;
    return pg_conninfo() + " application_name=" + schema + " options='-c search_path=" + schema + "'";
}

/// How many sessions with application_name `app` wait for a lock now.
inline int pg_lock_waiters(tether::server::detail::pg_connection& admin, const std::string& app) {
    auto r = pg_exec(admin, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND application_name = '" + app + "'");
    return std::stoi(PQgetvalue(r.get(), 0, 0));
}

/// Polls `done()` against the real server until it holds, for at most 30 s;
/// fails the test with `what` if it never does.
template <class Done>
void pg_wait_for(Done done, const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) FAIL("timed out waiting: " << what);
        std::this_thread::yield();
    }
}

}  // namespace tether_test
