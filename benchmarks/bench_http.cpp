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
// Also: the same push and pull against a plain versioned REST API (style (b)
// of docs/rest.md, tests/http/rest_servers.hpp, in its own process) through
// tether::rest_transport, one request per record pushed, beside the figures
// against tether-server (ratio).
//
// Usage: tether_bench_http [--records N] [--server PATH-TO-tether-server]
// (figures in docs/benchmarks.md). Wall time, not CPU time: two processes work
// on each request.
#include "http/rest_servers.hpp"
#include "support/http_baseline.hpp"
#include "support/processes.hpp"
#include "support/temp_dir.hpp"

#include <tether/storage/sqlite.hpp>
#include <tether/tether.hpp>
#include <tether/transport/http.hpp>
#include <tether/transport/rest.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
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

/// A versioned REST API (style (b)) in a child process of its own, so the
/// parent starts no thread.
class rest_api_process {
public:
    rest_api_process() {
        int fds[2];
        if (::pipe(fds) != 0) throw std::runtime_error{"pipe failed"};
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error{"fork failed"};
        if (pid_ == 0) {
            ::close(fds[0]);
            tether_test::versioned_api api{{.tick = true}};
            const auto url = api.url();
            const int port = std::stoi(url.substr(url.rfind(':') + 1));
            if (::write(fds[1], &port, sizeof port) != static_cast<ssize_t>(sizeof port)) ::_exit(1);
            for (;;) ::pause();
        }
        ::close(fds[1]);
        if (::read(fds[0], &port_, sizeof port_) != static_cast<ssize_t>(sizeof port_))
            throw std::runtime_error{"the REST API did not start"};
        ::close(fds[0]);
    }
    rest_api_process(const rest_api_process&) = delete;
    rest_api_process& operator=(const rest_api_process&) = delete;
    ~rest_api_process() {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    [[nodiscard]] int port() const { return port_; }

private:
    pid_t pid_ = -1;
    int port_ = 0;
};

/// The notes as tasks of the versioned API (docs/rest.md, style (b)).
tether::rest_options rest_client_options(int port) {
    tether::rest_mapping m;
    m.collection = "notes";
    m.collection_url = "/v2/tasks";
    m.item_url = "/v2/tasks/{id}";
    m.idempotency_key = true;
    m.version_field = "version";
    m.send_version = tether::rest_version_send::if_match;
    m.updated_at_field = "updatedAt";
    m.deleted_field = "deletedAt";
    m.listing = tether::rest_listing::delta_query;
    m.paging = tether::rest_paging::cursor;
    m.items_field = "data";
    m.next_field = "nextCursor";
    m.limit_param = "limit";
    m.since_param = "updatedSince";
    m.sort = {"sort", "updatedAt,id"};
    m.include_deleted = {"includeDeleted", "true"};
    tether::rest_options o;
    o.http.base_url = "http://127.0.0.1:" + std::to_string(port);
    o.http.max_batch = 100;
    o.collections.push_back(std::move(m));
    return o;
}

auto open_rest_engine(const std::string& file, int port) {
    tether::sqlite_options so;
    so.synchronous = tether::sqlite_options::sync_mode::normal;
    return tether::make_engine<note>(tether::sqlite_storage{tether::sqlite_database::open(file, so).value()},
                                     tether::rest_transport{rest_client_options(port)},
                                     tether::engine_options{.pull_limit = 100, .push_batch = 100});
}

/// Push and pull of `n` notes through rest_transport (synchronous NORMAL).
figures bench_rest(const std::string& dir, std::size_t n) {
    rest_api_process api;
    figures f;
    auto push = tether_bench::in_child([&] {
        auto e = open_rest_engine(dir + "/rest-client.db", api.port());
        for (const auto& v : tether_bench::make_notes(n)) (void)e.create(v).value();
        const auto t0 = steady::now();
        auto r = e.push().value();
        const double s = seconds_since(t0);
        return std::vector<double>{r.pushed == n ? static_cast<double>(n) / s : 0};
    });
    f.push = push.values.at(0);
    f.push_rss_kb = push.max_rss_kb;
    auto pull = tether_bench::in_child([&] {
        auto e = open_rest_engine(dir + "/rest-empty.db", api.port());
        const auto t0 = steady::now();
        auto r = e.pull().value();
        const double s = seconds_since(t0);
        return std::vector<double>{r.pulled == n ? static_cast<double>(n) / s : 0};
    });
    f.pull = pull.values.at(0);
    f.pull_rss_kb = pull.max_rss_kb;
    return f;
}

void report_rest(const figures& r, const figures& t, std::size_t n) {
    std::printf("\n== a plain versioned REST API through rest_transport (synchronous=NORMAL), %zu records\n", n);
    std::printf("push   REST %9.0f rec/s   tether-server %9.0f rec/s   ratio %.2fx  (one request per record)\n", r.push,
                t.push, t.push > 0 ? r.push / t.push : 0);
    std::printf("pull   REST %9.0f rec/s   tether-server %9.0f rec/s   ratio %.2fx\n", r.pull, t.pull,
                t.pull > 0 ? r.pull / t.pull : 0);
    std::printf("peak RSS client push %.1f MiB, pull %.1f MiB\n", r.push_rss_kb / 1024.0, r.pull_rss_kb / 1024.0);
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
        if (!full) report_rest(bench_rest(dir.path.string(), n), t, n);
    }
}
