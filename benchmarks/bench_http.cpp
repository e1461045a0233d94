// tether over HTTP against the same job done by hand, in one run.
//
// tether: a client engine on SQLite (tether::sqlite_storage) pushing to and
// pulling from a real `tether-server` process (SQLite store) over
// tether::http_transport on 127.0.0.1. By hand: a plain program reading 100
// pending rows from a local SQLite table, posting them with cpp-httplib to a
// plain handler (its own process) that inserts them into SQLite in one
// transaction, parsing the answer and marking the rows synced in one local
// transaction; and for pull, a plain handler serving pages of 100 from SQLite
// and a client inserting each page in one transaction. Batches of 100 on both
// sides; WAL everywhere; synchronous NORMAL, then FULL.
//
// Every measured client runs in a child process of its own, so its peak RSS is
// its own (wait4's ru_maxrss); the servers' peak RSS is read from /proc. The
// parent starts no thread, so fork() is safe.
//
// Usage: tether_bench_http [--records N] [--server PATH-TO-tether-server]
// (figures in docs/benchmarks.md). Wall time, not CPU time: two processes work
// on each request.
#include "support/http_baseline.hpp"
#include "support/processes.hpp"
#include "support/temp_dir.hpp"

#include <tether/storage/sqlite.hpp>
#include <tether/tether.hpp>
#include <tether/transport/http.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using tether_bench::note;
using tether_bench::seconds_since;
using steady = std::chrono::steady_clock;

tether::http_options client_options(int port) {
    tether::http_options o;
    o.base_url = "http://127.0.0.1:" + std::to_string(port);
    o.token = "bench-token";
    o.max_batch = 100;
    return o;
}

auto open_engine(const std::string& file, int port, tether::sqlite_options::sync_mode mode) {
    tether::sqlite_options so;
    so.synchronous = mode;
    return tether::make_engine<note>(tether::sqlite_storage{tether::sqlite_database::open(file, so).value()},
                                     tether::http_transport{client_options(port)},
                                     tether::engine_options{.pull_limit = 100, .push_batch = 100});
}

struct figures {
    double push = 0, pull = 0, update = 0, p50_ms = 0, p90_ms = 0;
    long push_rss_kb = 0, pull_rss_kb = 0, server_push_rss_kb = 0, server_pull_rss_kb = 0;
};

figures bench_tether(const std::string& server_bin, const std::string& dir, std::size_t n, bool full) {
    const auto mode = full ? tether::sqlite_options::sync_mode::full : tether::sqlite_options::sync_mode::normal;
    const std::string tag = full ? "full" : "normal";
    tether_bench::server_process server{{server_bin, "--listen", "127.0.0.1:0", "--db", dir + "/server-" + tag + ".db",
                                         "--tokens", dir + "/tokens", "--synchronous", tag,
                                         "--access-log", dir + "/access-" + tag + ".log"}};
    const int port = server.port();
    const std::string client = dir + "/client-" + tag + ".db";
    figures f;
    auto push = tether_bench::in_child([&] {
        auto e = open_engine(client, port, mode);
        for (const auto& v : tether_bench::make_notes(n)) (void)e.create(v).value();
        const auto t0 = steady::now();
        auto r = e.push().value();
        const double s = seconds_since(t0);
        return std::vector<double>{r.pushed == n ? static_cast<double>(n) / s : 0};
    });
    f.push = push.values.at(0);
    f.push_rss_kb = push.max_rss_kb;
    f.server_push_rss_kb = server.peak_rss_kb();
    auto pull = tether_bench::in_child([&] {
        auto e = open_engine(dir + "/empty-" + tag + ".db", port, mode);
        const auto t0 = steady::now();
        auto r = e.pull().value();
        const double s = seconds_since(t0);
        return std::vector<double>{r.pulled == n ? static_cast<double>(n) / s : 0};
    });
    f.pull = pull.values.at(0);
    f.pull_rss_kb = pull.max_rss_kb;
    f.server_pull_rss_kb = server.peak_rss_kb();
    auto update = tether_bench::in_child([&] {
        auto e = open_engine(client, port, mode);
        auto all = e.list().value();
        const std::size_t k = std::min<std::size_t>(1000, all.size());
        for (std::size_t i = 0; i < k; ++i) (void)e.update(all[i].id, [](note& v) { v.status = "reviewed"; }).value();
        const auto t0 = steady::now();
        auto r = e.push().value();
        const double s = seconds_since(t0);
        return std::vector<double>{r.pushed == k ? static_cast<double>(k) / s : 0};
    });
    f.update = update.values.at(0);
    auto latency = tether_bench::in_child([&] {
        auto e = open_engine(client, port, mode);
        std::vector<double> ms;
        for (int i = 0; i < 50; ++i) {
            auto rec = e.create(tether_bench::make_notes(1, 100'000 + i).front()).value();
            const auto t0 = steady::now();
            while (e.get(rec.id).value().status != tether::sync_status::synced) (void)e.sync().value();
            ms.push_back(seconds_since(t0) * 1000);
        }
        std::sort(ms.begin(), ms.end());
        return std::vector<double>{ms[24], ms[44]};
    });
    f.p50_ms = latency.values.at(0);
    f.p90_ms = latency.values.at(1);
    server.stop();
    return f;
}

figures bench_by_hand(const std::string& dir, std::size_t n, bool full) {
    const std::string tag = full ? "full" : "normal";
    tether_bench::baseline_server server{dir + "/hand-server-" + tag + ".db", full};
    const int port = server.port();
    figures f;
    auto push = tether_bench::in_child([&] {
        tether_bench::baseline_client c{dir + "/hand-client-" + tag + ".db", full, port};
        c.insert_pending(tether_bench::make_notes(n));
        const auto t0 = steady::now();
        const auto pushed = c.push_all();
        const double s = seconds_since(t0);
        return std::vector<double>{pushed == n ? static_cast<double>(n) / s : 0};
    });
    f.push = push.values.at(0);
    f.push_rss_kb = push.max_rss_kb;
    f.server_push_rss_kb = server.peak_rss_kb();
    auto pull = tether_bench::in_child([&] {
        tether_bench::baseline_client c{dir + "/hand-empty-" + tag + ".db", full, port};
        const auto t0 = steady::now();
        const auto pulled = c.pull_all();
        const double s = seconds_since(t0);
        return std::vector<double>{pulled == n ? static_cast<double>(n) / s : 0};
    });
    f.pull = pull.values.at(0);
    f.pull_rss_kb = pull.max_rss_kb;
    f.server_pull_rss_kb = server.peak_rss_kb();
    return f;
}

void report(const char* mode, const figures& t, const figures& h, std::size_t n) {
    std::printf("\n== synchronous=%s, %zu records of ~250 bytes\n", mode, n);
    std::printf("push   tether %9.0f rec/s   by hand %9.0f rec/s   ratio %.2fx  (target >= 0.7x, >= 40000 rec/s)\n",
                t.push, h.push, h.push > 0 ? t.push / h.push : 0);
    std::printf("pull   tether %9.0f rec/s   by hand %9.0f rec/s   ratio %.2fx  (target >= 0.7x, >= 50000 rec/s)\n",
                t.pull, h.pull, h.pull > 0 ? t.pull / h.pull : 0);
    std::printf("update push of 1000: tether %9.0f rec/s\n", t.update);
    std::printf("create -> synced with %zu present: p50 %.3f ms, p90 %.3f ms  (target p50 <= 1, p90 <= 2)\n", n,
                t.p50_ms, t.p90_ms);
    std::printf("peak RSS client push: tether %.1f MiB, by hand %.1f MiB; pull: tether %.1f MiB, by hand %.1f MiB"
                "  (target tether <= 34)\n",
                t.push_rss_kb / 1024.0, h.push_rss_kb / 1024.0, t.pull_rss_kb / 1024.0, h.pull_rss_kb / 1024.0);
    std::printf("peak RSS server after push: tether %.1f MiB, by hand %.1f MiB; after pull: tether %.1f MiB, by hand "
                "%.1f MiB  (target tether <= 18)\n",
                t.server_push_rss_kb / 1024.0, h.server_push_rss_kb / 1024.0, t.server_pull_rss_kb / 1024.0,
                h.server_pull_rss_kb / 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t n = 10'000;
    std::string server_bin = TETHER_SERVER_BIN;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--records") n = std::strtoul(argv[i + 1], nullptr, 10);
        else if (a == "--server") server_bin = argv[i + 1];
        else {
            std::fprintf(stderr, "usage: %s [--records N] [--server PATH]\n", argv[0]);
            return 2;
        }
    }
    tether_test::temp_dir dir{"tether-bench"};
    tether_bench::write_file(dir.file("tokens"), "bench-token bench\n");
    for (const bool full : {false, true}) {
        const auto t = bench_tether(server_bin, dir.path.string(), n, full);
        const auto h = bench_by_hand(dir.path.string(), n, full);
        report(full ? "FULL" : "NORMAL", t, h, n);
    }
}
