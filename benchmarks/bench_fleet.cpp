// Scale-out over PostgreSQL: push records/s and create -> acknowledged latency
// with 1, 2 and 3 tether-server --postgres processes over one database, beside
// one tether-server over SQLite, in one run.
//
// The PostgreSQL is a throwaway cluster this program starts and stops itself
// (tests/postgres/pg_fixture.sh: fsync and synchronous_commit off, as in the
// tests); each configuration gets a fresh schema, the SQLite server a fresh
// file (synchronous NORMAL, its default). Clients are tether engines over
// memory storage and tether_test::fleet_transport, which sends every request to
// one of the configuration's processes at random.
//
// - push: `--clients` clients (threads; each its own user) each create
//   records/clients records locally, then all push at once in batches of 100;
//   records/s is all records over the wall time until the last push is done.
// - create -> ack: one client (its own user, the servers otherwise idle)
//   creates a record and syncs until it is synced, 200 times; p50 and p90.
//
// Usage: tether_bench_fleet [--records N] [--clients C]
// (figures in docs/benchmarks.md). Wall time: several processes work on each request.
#include "postgres/fleet.hpp"
#include "support/note.hpp"
#include "support/temp_dir.hpp"

#include <tether/server/postgres/connection.hpp>
#include <tether/tether.hpp>
#include <tether/transport/http.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifndef TETHER_PG_FIXTURE
#error "TETHER_PG_FIXTURE must name tests/postgres/pg_fixture.sh"
#endif

namespace {

using steady = std::chrono::steady_clock;
using tether_bench::note;

double seconds_since(steady::time_point t0) { return std::chrono::duration<double>(steady::now() - t0).count(); }

/// The throwaway PostgreSQL cluster, started by the tests' fixture script and
/// stopped when this goes out of scope.
class pg_cluster {
public:
    explicit pg_cluster(std::string state) : state_(std::move(state)) {
        if (std::system(("'" + std::string{TETHER_PG_FIXTURE} + "' start '" + state_ + "' >/dev/null").c_str()) != 0)
            throw std::runtime_error{"the PostgreSQL fixture did not start"};
        std::ifstream in{state_ + "/conninfo"};
        std::getline(in, conninfo_);
    }
    pg_cluster(const pg_cluster&) = delete;
    pg_cluster& operator=(const pg_cluster&) = delete;
    ~pg_cluster() { (void)std::system(("'" + std::string{TETHER_PG_FIXTURE} + "' stop '" + state_ + "'").c_str()); }

    /// The conninfo of a new, empty schema `name`.
    std::string fresh_schema(const std::string& name) const {
        auto c = tether::server::detail::pg_connection::open(conninfo_);
        if (!c) throw std::runtime_error{"cannot connect: " + c.error().message};
        if (!c->exec(("CREATE SCHEMA " + name).c_str())) throw std::runtime_error{"CREATE SCHEMA failed"};
        return conninfo_ + " options='-c search_path=" + name + "'";
    }

private:
    std::string state_;
    std::string conninfo_;
};

auto open_client(const std::vector<int>& ports, std::size_t user, std::uint64_t seed) {
    tether::http_options o;
    o.token = tether_test::fleet_token(user);
    o.max_batch = 100;
    return tether::make_engine<note>(
        tether_test::fleet_transport{ports, o, seed, std::make_shared<tether_test::fleet_routes>()},
        tether::engine_options{.pull_limit = 100, .push_batch = 100});
}

struct figures {
    double push = 0, p50_ms = 0, p90_ms = 0;
};

/// Both measurements against the processes listening on `ports`.
figures measure(const std::vector<int>& ports, std::size_t records, std::size_t clients) {
    figures f;
    using engine = decltype(open_client(ports, 0, 0));
    std::vector<std::unique_ptr<engine>> engines;  // engines do not move: each built in place
    for (std::size_t c = 0; c < clients; ++c) {
        engines.emplace_back(new engine(open_client(ports, c, c + 1)));
        for (const auto& v : tether_bench::make_notes(records / clients, c * records)) (void)engines.back()->create(v).value();
    }
    std::vector<std::size_t> pushed(clients, 0);
    const auto t0 = steady::now();
    std::vector<std::thread> threads;
    for (std::size_t c = 0; c < clients; ++c)
        threads.emplace_back([&, c] {
            if (auto r = engines[c]->push()) pushed[c] = r->pushed;
        });
    for (auto& t : threads) t.join();
    const double s = seconds_since(t0);
    std::size_t all = 0;
    for (auto n : pushed) all += n;
    if (all != records / clients * clients) throw std::runtime_error{"a push did not go through"};
    f.push = static_cast<double>(all) / s;

    auto e = open_client(ports, clients, 99);
    std::vector<double> ms;
    for (std::size_t i = 0; i < 200; ++i) {
        auto rec = e.create(tether_bench::make_notes(1, 10'000'000 + i).front()).value();
        const auto t1 = steady::now();
        while (e.get(rec.id).value().status != tether::sync_status::synced) (void)e.sync().value();
        ms.push_back(seconds_since(t1) * 1000);
    }
    std::sort(ms.begin(), ms.end());
    f.p50_ms = ms[ms.size() / 2];
    f.p90_ms = ms[ms.size() * 9 / 10];
    return f;
}

void report(const char* what, const figures& f, const figures& base) {
    std::printf("%-24s push %8.0f rec/s (%.2fx)   create->ack p50 %6.3f ms (%.2fx)  p90 %6.3f ms\n", what, f.push,
                base.push > 0 ? f.push / base.push : 0, f.p50_ms, base.p50_ms > 0 ? f.p50_ms / base.p50_ms : 0,
                f.p90_ms);
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t records = 12'000;
    std::size_t clients = 6;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--records") records = std::strtoul(argv[i + 1], nullptr, 10);
        else if (a == "--clients") clients = std::strtoul(argv[i + 1], nullptr, 10);
        else {
            std::fprintf(stderr, "usage: %s [--records N] [--clients C]\n", argv[0]);
            return 2;
        }
    }
    if (clients == 0 || records < clients) {
        std::fprintf(stderr, "need at least one client and one record per client\n");
        return 2;
    }
    try {
        tether_test::temp_dir dir{"tether-bench-fleet"};
        pg_cluster pg{dir.file("pg")};
        {
            std::ofstream out{dir.file("fleet-tokens.txt")};
            for (std::size_t u = 0; u <= clients; ++u) out << tether_test::fleet_token(u) << " user" << u << "\n";
        }
        std::printf("%zu records of ~250 bytes pushed by %zu clients at once; create->ack over 200 creates\n",
                    records, clients);
        figures sqlite;
        {
            tether_test::server_process s{TETHER_SERVER_BINARY,
                                          {"--listen", "127.0.0.1:0", "--db", dir.file("server.db"), "--tokens",
                                           dir.file("fleet-tokens.txt"), "--keep-alive", "1"}};
            sqlite = measure({s.port()}, records, clients);
            report("1 process, SQLite", sqlite, sqlite);
            (void)s.stop();
        }
        for (std::size_t k = 1; k <= 3; ++k) {
            tether_test::fleet f{dir, pg.fresh_schema("bench" + std::to_string(k)), k, clients + 1};
            std::vector<int> ports;
            for (std::size_t i = 0; i < k; ++i) ports.push_back(f.port(i));
            const auto got = measure(ports, records, clients);
            const std::string what = std::to_string(k) + (k == 1 ? " process, PostgreSQL" : " processes, PostgreSQL");
            report(what.c_str(), got, sqlite);
            (void)f.stop_all();
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_fleet: %s\n", e.what());
        return 1;
    }
}
