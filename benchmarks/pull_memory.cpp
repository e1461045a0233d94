// The client's peak RSS pulling a large collection: memory must stay in
// proportion to a page, not to the collection (target <= 64 MiB for 1,000,000
// records of ~250 bytes).
//
// 1. Fills a server SQLite database straight through the server store
//    (tether::server::sqlite_store, big write transactions): N notes as
//    another device's creates, each with its local id, change number and
//    origin, as a push would have stored them. Not timed against anything.
// 2. Starts the real `tether-server` on it, on 127.0.0.1.
// 3. In a child process of its own (so its peak RSS is its own, wait4's
//    ru_maxrss): an engine on tether::sqlite_storage over
//    tether::http_transport pulls everything into an empty client database.
//    Every `--sample-every` records pulled it reads its own VmHWM and VmRSS
//    (/proc/self/status), so a figure that grows with the records pulled
//    shows where.
// 4. Prints records/s, the client's peak RSS, the server's VmHWM and the
//    samples, and checks the client ended with N synced records. Exits 1 if
//    it did not or the peak is over the target.
//
// Usage: tether_pull_memory [--records N] [--page N] [--sample-every N]
//                           [--server PATH-TO-tether-server]
// Not run by CI (a 1,000,000-record run takes minutes); figures in
// docs/benchmarks.md. The temp directory and the server go at the end, also
// on a failure or on SIGINT / SIGTERM / SIGHUP.
#include "support/note.hpp"
#include "support/processes.hpp"
#include "support/rss_sampler.hpp"
#include "support/temp_dir.hpp"

#include <tether/server/sqlite_store.hpp>
#include <tether/storage/sqlite.hpp>
#include <tether/tether.hpp>
#include <tether/transport/http.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using tether_bench::note;
using tether_bench::seconds_since;
using steady = std::chrono::steady_clock;

constexpr const char* user = "bench";
constexpr std::size_t fill_chunk = 50'000;  // records per server write transaction
constexpr double target_mib = 64;

struct settings {
    std::size_t records = 1'000'000;
    std::size_t page = 100;
    std::size_t sample_every = 100'000;
    std::string server_bin = TETHER_SERVER_BIN;
};

/// Stores `n` notes in a new server database at `path`, as creates from
/// another device would have; returns records/s. Runs in a child, so the
/// memory it uses never counts towards the client's.
double fill_server(const std::string& path, std::size_t n) {
    tether::server::sqlite_store_options so;
    so.synchronous = tether::sqlite_options::sync_mode::normal;
    auto store = tether::server::sqlite_store::open(path, so).value();
    const tether::server::scope s{user, tether::collection_of<note>()};
    tether::local_id_generator ids{7};
    const auto t0 = steady::now();
    for (std::size_t first = 0; first < n; first += fill_chunk) {
        const auto notes = tether_bench::make_notes(std::min(fill_chunk, n - first), first);
        const auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
        auto done = store.write([&](auto& tx) -> tether::result<void> {
            if (auto locked = tx.lock_collection(s); !locked) return tether::unexpected{std::move(locked).error()};
            for (const auto& v : notes) {
                auto sid = tx.new_server_id();
                if (!sid) return tether::unexpected{std::move(sid).error()};
                auto change = tx.next_change(s);
                if (!change) return tether::unexpected{std::move(change).error()};
                tether::server::stored_record rec{
                    tether::server_record{std::move(*sid), ids(now), *change, tether::entity_ops<note>::to_json(v), now,
                                          "bench-device"},
                    false, *change};
                if (auto put = tx.put(s, rec); !put) return put;
            }
            return {};
        });
        if (!done) throw std::runtime_error{"filling the server database: " + done.error().message};
    }
    return static_cast<double>(n) / seconds_since(t0);
}

/// What the client child reports, flattened into doubles for the pipe.
struct client_figures {
    double pulled = 0, seconds = 0, synced = 0, hwm_after_pull_kb = 0;
    std::vector<tether_bench::rss_sample> samples;

    [[nodiscard]] std::vector<double> flat() const {
        std::vector<double> out{pulled, seconds, synced, hwm_after_pull_kb};
        for (const auto& x : samples) out.insert(out.end(), {static_cast<double>(x.records), x.hwm_kb, x.rss_kb});
        return out;
    }
    static client_figures from(const std::vector<double>& v) {
        if (v.size() < 4) throw std::runtime_error{"the client reported nothing"};
        client_figures f{v[0], v[1], v[2], v[3], {}};
        for (std::size_t i = 4; i + 2 < v.size(); i += 3)
            f.samples.push_back({static_cast<std::size_t>(v[i]), v[i + 1], v[i + 2]});
        return f;
    }
};

/// Pulls everything from the server at `port` into the empty database `path`.
client_figures run_client(const std::string& path, int port, const settings& cfg) {
    tether::http_options o;
    o.base_url = "http://127.0.0.1:" + std::to_string(port);
    o.token = "bench-token";
    tether::sqlite_options so;
    so.synchronous = tether::sqlite_options::sync_mode::normal;
    auto sampler = std::make_shared<tether_bench::rss_sampler>(cfg.sample_every);
    auto e = tether::make_engine<note>(
        tether::sqlite_storage{tether::sqlite_database::open(path, so).value()},
        tether_bench::sampling_transport<tether::http_transport>{tether::http_transport{o}, sampler},
        tether::engine_options{.pull_limit = cfg.page});
    sampler->sample();  // the engine open, nothing pulled yet
    client_figures f;
    const auto t0 = steady::now();
    for (int failures = 0;;) {  // "until done": a run cut short by a failure goes on from its cursor
        auto r = e.pull().value();
        f.pulled += static_cast<double>(r.pulled);
        if (r.failure) {
            std::fprintf(stderr, "pull: %s\n", r.failure->message.c_str());
            if (++failures == 3) break;
            continue;
        }
        if (r.pulled == 0) break;
    }
    f.seconds = seconds_since(t0);
    f.hwm_after_pull_kb = static_cast<double>(tether_bench::self_status_kb("VmHWM:"));
    f.synced = static_cast<double>(e.health().value().synced);
    f.samples = sampler->samples();
    return f;
}

// ---- cleanup on a signal: stop the children; the temp directory goes as main unwinds.

pid_t main_pid = 0;
volatile sig_atomic_t server_pid = 0;

extern "C" void on_signal(int sig) {
    if (::getpid() != main_pid) ::_exit(128 + sig);  // a measurement child: its parent cleans up
    if (server_pid > 0) ::kill(server_pid, SIGTERM);
    const pid_t child = tether_bench::running_child.load();
    if (child > 0) ::kill(child, SIGKILL);  // in_child then fails, and main unwinds
}

void install_signal_handlers() {
    main_pid = ::getpid();
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (const int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

int run(const settings& cfg) {
    tether_test::temp_dir dir{"tether-pull-memory"};
    const std::string server_db = dir.file("server.db");
    tether_bench::write_file(dir.file("tokens"), "bench-token " + std::string{user} + "\n");

    std::printf("filling the server database with %zu notes...\n", cfg.records);
    std::fflush(stdout);
    const auto fill = tether_bench::in_child([&] { return std::vector<double>{fill_server(server_db, cfg.records)}; });
    std::printf("filled at %.0f records/s (server store, %zu per transaction)\n", fill.values.at(0), fill_chunk);

    tether_bench::server_process server{{cfg.server_bin, "--listen", "127.0.0.1:0", "--db", server_db, "--tokens",
                                         dir.file("tokens"), "--synchronous", "normal", "--access-log",
                                         dir.file("access.log")}};
    server_pid = server.pid();
    const long server_before_kb = server.peak_rss_kb();
    std::printf("pulling into an empty client database (pages of %zu)...\n", cfg.page);
    std::fflush(stdout);
    const auto child = tether_bench::in_child([&] { return run_client(dir.file("client.db"), server.port(), cfg).flat(); });
    const long server_kb = server.peak_rss_kb();
    server.stop();
    server_pid = 0;

    const auto f = client_figures::from(child.values);
    // wait4's figure and the child's own last VmHWM differ by a page or two (the
    // kernel's RSS counters are per-CPU, summed lazily): the larger is the peak.
    const double maxrss_mib = static_cast<double>(child.max_rss_kb) / 1024.0;
    const double client_mib = std::max(maxrss_mib, f.hwm_after_pull_kb / 1024.0);
    std::printf("\n== pull of %zu records of ~250 bytes over HTTP, SQLite (WAL, synchronous=NORMAL) on both ends\n",
                cfg.records);
    std::printf("pull              %9.0f records/s  (%.0f pulled in %.1f s)\n", f.pulled / f.seconds, f.pulled,
                f.seconds);
    std::printf("client peak RSS   %9.1f MiB (wait4 ru_maxrss %.1f MiB, VmHWM as the pull ended %.1f MiB)"
                "  target <= %.0f: %s\n",
                client_mib, maxrss_mib, f.hwm_after_pull_kb / 1024.0, target_mib,
                client_mib <= target_mib ? "met" : "MISSED");
    std::printf("server VmHWM      %9.1f MiB (%.1f MiB before the pull)\n", static_cast<double>(server_kb) / 1024.0,
                static_cast<double>(server_before_kb) / 1024.0);
    std::printf("client RSS while pulling (records received: VmHWM / VmRSS, MiB):\n");
    for (const auto& x : f.samples)
        std::printf("  %9zu: %6.1f / %6.1f\n", x.records, x.hwm_kb / 1024.0, x.rss_kb / 1024.0);
    const bool all = static_cast<std::size_t>(f.synced) == cfg.records;
    std::printf("client holds %.0f synced records: %s\n", f.synced, all ? "all of them" : "WRONG");
    return all && client_mib <= target_mib ? 0 : 1;
}

std::size_t positive(const char* text) {
    const auto v = std::strtoull(text, nullptr, 10);
    if (v == 0) throw std::invalid_argument{std::string{"expected a positive number, got '"} + text + "'"};
    return static_cast<std::size_t>(v);
}

}  // namespace

int main(int argc, char** argv) {
    settings cfg;
    try {
        for (int i = 1; i < argc; i += 2) {
            const std::string a = argv[i];
            if (i + 1 >= argc) throw std::invalid_argument{a + " needs a value"};
            if (a == "--records") cfg.records = positive(argv[i + 1]);
            else if (a == "--page") cfg.page = positive(argv[i + 1]);
            else if (a == "--sample-every") cfg.sample_every = positive(argv[i + 1]);
            else if (a == "--server") cfg.server_bin = argv[i + 1];
            else throw std::invalid_argument{"unknown option " + a};
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\nusage: %s [--records N] [--page N] [--sample-every N] [--server PATH]\n", e.what(),
                     argv[0]);
        return 2;
    }
    install_signal_handlers();
    try {
        return run(cfg);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tether_pull_memory: %s\n", e.what());
        return 1;
    }
}
