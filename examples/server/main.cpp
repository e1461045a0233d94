// tether-server: the reference server of wire protocol v1 (docs/server.md).
//
// The sync service over a SQLite file (tether::server::sqlite_store, WAL), or
// over PostgreSQL with --postgres (tether::server::postgres_store, when built
// with tether::postgres), behind the HTTP face (tether::server::http_face) on
// cpp-httplib. Prints one line, `listening on HOST:PORT`, once it accepts connections. SIGTERM or
// SIGINT: stop accepting, finish the requests in flight, close the database,
// exit 0. SIGHUP: read the JWT key files again (a failed reload keeps the
// keys and says why on stderr). Signals are taken by sigwait on the main
// thread (blocked in every thread before any starts), so no handler ever runs.
#include <tether/server/http.hpp>
#if TETHER_HAS_JWT
#include <tether/server/http/jwt.hpp>
#endif
#include <tether/server/sqlite_store.hpp>
#if defined(TETHER_SERVER_POSTGRES)
#include <tether/server/postgres/live_feed.hpp>
#include <tether/server/postgres_store.hpp>
#endif
#include <tether/server/sync_service.hpp>

#include <CLI/CLI.hpp>
#include <httplib.h>

#include <arpa/inet.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

struct endpoint {
    std::string host;
    int port = 0;
};

// `HOST:PORT` or `[V6]:PORT`; the port 0 to 65535.
std::optional<endpoint> parse_listen(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon + 1 == text.size()) return std::nullopt;
    std::string host = text.substr(0, colon);
    const std::string port = text.substr(colon + 1);
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    const int p = std::stoi(port);
    if (p > 65535) return std::nullopt;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty()) return std::nullopt;
    return endpoint{host, p};
}

bool is_loopback(const std::string& host) {
    if (host == "localhost") return true;
    in_addr v4{};
    if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6{};
    if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
    return false;
}

// Who the bearer tokens stand for: a token file, or JWTs signed with the given keys.
struct auth_flags {
    std::string tokens_path;
    std::vector<std::string> hs256_files;
    std::vector<std::string> rs256_files;
    std::string issuer;
    std::string audience;
    int leeway = 30;
};

void add_auth_options(CLI::App& app, auth_flags& f) {
    app.add_option("--tokens", f.tokens_path, "file of `token user` lines (blank lines and # comments skipped): "
                                              "who each bearer token stands for (or JWT keys instead)");
#if TETHER_HAS_JWT
    app.add_option("--jwt-hs256-secret-file", f.hs256_files,
                   "take JWTs signed with HS256 with the secret in FILE (its bytes less a trailing newline, at "
                   "least 32); the user is the token's `sub`. KID=FILE: the key of the tokens whose header names "
                   "kid KID. Give it twice while rolling a key; SIGHUP reads the files again")
        ->type_name("[KID=]FILE");
    app.add_option("--jwt-rs256-public-key-file", f.rs256_files,
                   "take JWTs signed with RS256 by the private half of the PEM public key in FILE (KID=FILE: as "
                   "above). Give it twice while rolling a key")
        ->type_name("[KID=]PEM");
    app.add_option("--jwt-issuer", f.issuer, "a JWT's `iss` must be this");
    app.add_option("--jwt-audience", f.audience, "a JWT's `aud` must be or hold this");
    app.add_option("--jwt-leeway", f.leeway, "seconds a JWT's `exp` and `nbf` may be off this server's clock")
        ->capture_default_str()->check(CLI::Range(0, 3600));
#endif
}

// The authenticator, and what SIGHUP does: reload the JWT keys, returning the line to log.
struct auth_setup {
    tether::server::authenticator authenticate;
    std::function<std::string()> reload;
};

#if TETHER_HAS_JWT
// KID=FILE or FILE; a part before '=' holding a '/' is a path (./a=b.pem is a file).
tether::server::jwt_key_file key_file(tether::server::jwt_alg alg, const std::string& flag) {
    const auto eq = flag.find('=');
    if (eq == std::string::npos || flag.substr(0, eq).find('/') != std::string::npos) return {alg, flag, std::nullopt};
    return {alg, flag.substr(eq + 1), flag.substr(0, eq)};
}
#endif

tether::result<auth_setup> make_authenticator(const auth_flags& f) {
    auto bad = [](std::string why) { return tether::unexpected{tether::make_error(tether::errc::invalid_argument, why)}; };
    const bool jwt = !f.hs256_files.empty() || !f.rs256_files.empty();
    if (f.tokens_path.empty() == !jwt)
#if TETHER_HAS_JWT
        return bad("give exactly one of --tokens FILE or JWT keys (--jwt-hs256-secret-file, "
                   "--jwt-rs256-public-key-file)");
#else
        return bad("--tokens FILE is required");
#endif
    if (!jwt) {
        if (!f.issuer.empty() || !f.audience.empty()) return bad("--jwt-issuer and --jwt-audience need JWT keys");
        auto tokens = tether::server::token_table::load(f.tokens_path);
        if (!tokens) return tether::unexpected{tokens.error()};
        return auth_setup{tether::server::authenticate_by(std::move(*tokens)),
                          [] { return std::string{"SIGHUP: nothing to reload (--tokens is read once)"}; }};
    }
#if TETHER_HAS_JWT
    namespace ts = tether::server;
    std::vector<ts::jwt_key_file> files;
    for (const auto& flag : f.hs256_files) files.push_back(key_file(ts::jwt_alg::hs256, flag));
    for (const auto& flag : f.rs256_files) files.push_back(key_file(ts::jwt_alg::rs256, flag));
    ts::jwt_options o;
    auto keys = ts::load_jwt_keys(files);
    if (!keys) return tether::unexpected{keys.error()};
    o.keys = std::move(*keys);
    if (!f.issuer.empty()) o.issuer = f.issuer;
    if (!f.audience.empty()) o.audience = f.audience;
    o.leeway = std::chrono::seconds{f.leeway};
    auto verifier = ts::jwt_verifier<>::make(std::move(o));
    if (!verifier) return tether::unexpected{verifier.error()};
    // The copy the authenticator holds shares its keys with this one.
    auto reload = [files, v = *verifier]() mutable -> std::string {
        const auto kept = std::to_string(v.keys()->size());
        auto fresh = ts::load_jwt_keys(files);
        if (!fresh) return "JWT keys not reloaded, keeping the " + kept + " loaded before: " + fresh.error().message;
        const auto count = std::to_string(fresh->size());
        if (auto r = v.replace_keys(std::move(*fresh)); !r)
            return "JWT keys not reloaded, keeping the " + kept + " loaded before: " + r.error().message;
        return "JWT keys reloaded: " + count + " keys";
    };
    return auth_setup{ts::authenticate_by(std::move(*verifier)), std::move(reload)};
#else
    return bad("this tether-server was built without JWT support (libjwt)");
#endif
}

#if defined(TETHER_SERVER_POSTGRES)
constexpr const char* no_store = "give --db FILE (SQLite) or --postgres CONNINFO (PostgreSQL)";
#else
constexpr const char* no_store = "--db is required";
#endif

int fail(const std::string& why) {
    std::cerr << "tether-server: " << why << std::endl;
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    // glibc gives a worker thread's free memory back to the system once 128 KiB
    // lie unused at the top of its heap, and every request then faults it in
    // again (a push body and its JSON are about that size): a quarter of the
    // server's CPU time went there. Up to 1 MiB stays.
    mallopt(M_TRIM_THRESHOLD, 1 << 20);
    // Every thread started from here on inherits this mask: the signals wait for sigwait below.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGUSR1);  // the listener thread's "I stopped"
    sigaddset(&signals, SIGHUP);   // reload the JWT keys
    if (pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) return fail("cannot block signals");

    CLI::App app{"tether-server: the reference sync server of tether's wire protocol v1, over one SQLite file\n"
                 "(--db) or a PostgreSQL database (--postgres).\n"
                 "Prints `listening on HOST:PORT` once it accepts connections; SIGTERM or SIGINT stops it\n"
                 "cleanly (requests in flight finish, the database is closed, exit status 0)."};
    std::string listen = "127.0.0.1:8787";
    bool allow_remote = false;
    std::string db_path;
    auth_flags auth_options;
    std::string access_log_path;
    tether::protocol::limits limits;
    std::uint32_t rate_limit = 0;
    int keep_alive = 5;
    std::string synchronous = "full";
    tether::server::event_options events;
    int heartbeat_seconds = 15;
    app.add_option("--listen", listen, "HOST:PORT to listen on; port 0 picks a free port (the line printed says which)")
        ->capture_default_str();
    bool restored = false;
    app.add_flag("--restored-from-backup", restored,
                 "the --db file (or --postgres database) was just put back from a backup: every cursor handed out before answers 410 (the "
                 "clients resync in full) and change numbers and server ids jump past any handed out since the "
                 "backup (run it once, on the first start after the restore)");
    app.add_flag("--allow-remote", allow_remote,
                 "allow a --listen address other than loopback. Off by default because tether-server speaks plain "
                 "HTTP: bearer tokens and records would cross the network unencrypted. Put it behind a proxy that "
                 "terminates TLS, and listen on loopback, instead");
    auto* db_option = app.add_option("--db", db_path, "the SQLite file of the server's records (created if missing; "
                                                      "WAL mode); `:memory:` keeps them in memory until exit");
    std::string postgres;
#if defined(TETHER_SERVER_POSTGRES)
    app.add_option("--postgres", postgres, "keep the records in PostgreSQL instead of --db: a libpq conninfo "
                                           "(\"host=... dbname=...\" or postgresql://...); the schema is created "
                                           "or migrated on start; any number of servers may share the database")
        ->excludes(db_option);
#endif
    std::string postgres_listen;
#if defined(TETHER_SERVER_POSTGRES)
    app.add_option("--postgres-listen", postgres_listen,
                   "with --postgres: the conninfo of the one connection that LISTENs for the other processes' "
                   "changes (live events), when --postgres goes through a pooler in transaction mode; by default "
                   "the --postgres conninfo");
#endif
    add_auth_options(app, auth_options);
    app.add_option("--max-body-bytes", limits.max_body_bytes, "largest request body, after gzip is undone (413 over it)")
        ->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--max-ops", limits.max_ops, "most ops in one push (413 over it)")
        ->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--max-depth", limits.max_depth, "deepest JSON nesting of a request body (413 over it)")
        ->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--max-value-bytes", limits.max_value_bytes,
                   "largest record value as JSON; a larger one is rejected alone inside the push's answer")
        ->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--rate-limit", rate_limit, "requests a second per user, in bursts of as many (429 with "
                                               "Retry-After over it); 0: no limit")
        ->capture_default_str();
    app.add_option("--access-log", access_log_path, "where the access log goes, one line per request: a FILE "
                                                    "(appended to), or - for standard output; none if not given");
    app.add_option("--keep-alive", keep_alive, "seconds an idle keep-alive connection is kept (also the longest "
                                               "a stop waits for idle clients)")
        ->capture_default_str()->check(CLI::Range(1, 300));
    app.add_option("--synchronous", synchronous, "SQLite's synchronous setting: full (an acknowledged push "
                                                 "survives power loss) or normal (survives a crash of the "
                                                 "server, not of the machine; faster)")
        ->capture_default_str()->check(CLI::IsMember({"full", "normal"}));
    app.add_option("--event-streams", events.max_streams,
                   "live event streams (GET /v1/{collection}/events) open at once; one more is answered 503 with "
                   "Retry-After. Each holds a worker thread of its own (the pool has this many more); 0: no events")
        ->capture_default_str();
    app.add_option("--event-heartbeat", heartbeat_seconds, "seconds of silence on an event stream before a "
                                                           "heartbeat comment is sent")
        ->capture_default_str()->check(CLI::Range(1, 3600));
    app.add_option("--event-history", events.history, "events kept per user and collection to resume a stream "
                                                      "from (Last-Event-ID); an older cursor is told `reset`")
        ->capture_default_str();
    app.add_option("--event-queue", events.queue_limit, "events queued for one stream not yet written; one more "
                                                        "and the stream is told `reset` and ends")
        ->capture_default_str()->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);
    events.heartbeat = std::chrono::seconds{heartbeat_seconds};

    if (db_path.empty() && postgres.empty()) return fail(no_store);
    const auto where = parse_listen(listen);
    if (!where) return fail("--listen: expected HOST:PORT, got '" + listen + "'");
    if (!is_loopback(where->host) && !allow_remote)
        return fail("--listen " + listen + " is not a loopback address; tether-server speaks plain HTTP, so pass "
                    "--allow-remote only behind a TLS-terminating proxy or on a trusted network");

    auto authenticate = make_authenticator(auth_options);
    if (!authenticate) return fail(authenticate.error().message);

    std::ofstream log_file;
    tether::server::http_face_options options;
    options.limits = limits;
    options.rate_limit = rate_limit;
    options.events = events;
    tether::server::access_sink sink;
    if (access_log_path == "-") {
        sink = tether::server::stream_sink(std::cout);
    } else if (!access_log_path.empty()) {
        log_file.open(access_log_path, std::ios::app);
        if (!log_file) return fail("--access-log: cannot open '" + access_log_path + "'");
        sink = tether::server::stream_sink(log_file);
    }
    std::atomic<bool> ready{false};  // requests before the readiness line (a warm-up) are not logged
    if (sink)
        options.access_log = [&ready, sink](const tether::server::access_entry& e) {
            if (ready.load(std::memory_order_acquire)) sink(e);
        };

    // Serves `service` (a sync_service over either store) until SIGTERM or SIGINT; the exit status.
    auto serve = [&](auto& service) -> int {
        tether::server::http_face face{service, std::move(authenticate->authenticate), options};
        httplib::Server http;
        face.mount(http);
        http.set_keep_alive_timeout(keep_alive);
        // An open event stream holds a worker thread until it ends: room for
        // every stream allowed, and the usual pool for the requests besides.
        const std::size_t workers = CPPHTTPLIB_THREAD_POOL_COUNT + events.max_streams;
        http.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };

        int port = where->port;
        if (port == 0) port = http.bind_to_any_port(where->host);
        else if (!http.bind_to_port(where->host, port)) port = -1;
        if (port <= 0) return fail("cannot listen on " + listen);

#if defined(TETHER_SERVER_POSTGRES)
        // Over PostgreSQL the events come from the database (every process's
        // changes, this one's included); the feed listens before the first request.
        std::unique_ptr<tether::server::postgres_live_feed> feed;
        using service_store = typename std::remove_cvref_t<decltype(service)>::store_type;
        if constexpr (std::is_same_v<service_store, tether::server::postgres_store>) {
            if (events.max_streams > 0) {
                face.feed_events_from_elsewhere();
                tether::server::postgres_live_options live;
                live.log = [](std::string_view line) { std::cerr << "tether-server: " << line << std::endl; };
                live.conninfo = postgres_listen;
                feed = std::make_unique<tether::server::postgres_live_feed>(service.store(), face.event_feed(), live);
                const auto until = std::chrono::steady_clock::now() + std::chrono::seconds{10};
                while (!feed->listening() && std::chrono::steady_clock::now() < until)
                    std::this_thread::sleep_for(std::chrono::milliseconds{10});
                if (!feed->listening())
                    std::cerr << "tether-server: the live feed is not listening yet; it keeps trying" << std::endl;
            }
        }
#endif
        std::atomic<bool> stopping{false};
        std::thread listener{[&] {
            http.listen_after_bind();
            ::kill(::getpid(), SIGUSR1);  // wake the main thread, whatever the reason
        }};
        // A bounded poll: the socket is bound and listening; wait for the accept loop.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
        while (!http.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        if (!http.is_running()) {
            http.stop();
            listener.join();
            return fail("the server did not start accepting connections");
        }
#if defined(__SANITIZE_THREAD__)
        // Debian's cpp-httplib is not built for ThreadSanitizer: state it sets up
        // lazily on its first requests is published by synchronisation TSan cannot
        // see inside it, so two workers serving their first requests at once are
        // reported as a race with both stacks inside libcpp-httplib. One GET and
        // one POST, each on a connection that closes, before any client's request
        // take that first time out of the race (as tests/http/scripted_server.hpp does).
        {
            httplib::Client warm{where->host, port};
            warm.set_keep_alive(false);
            (void)warm.Get(std::string{tether::protocol::health_path});
            (void)warm.Post(std::string{tether::protocol::health_path}, "{}", "application/json");
        }
#endif
        ready.store(true, std::memory_order_release);
        const std::string host = where->host.find(':') != std::string::npos ? "[" + where->host + "]" : where->host;
        std::printf("listening on %s:%d\n", host.c_str(), port);
        std::fflush(stdout);

        int sig = 0;
        while (sigwait(&signals, &sig) == 0) {
            if (sig == SIGTERM || sig == SIGINT) {
                stopping = true;
                face.close_streams();  // the event streams end now, so no worker waits on one
                http.stop();  // stops accepting; the pool finishes what it serves, then listen returns
                break;
            }
            if (sig == SIGUSR1 && !http.is_running()) break;  // the listener stopped by itself
            if (sig == SIGHUP) std::cerr << "tether-server: " << authenticate->reload() << std::endl;
        }
        listener.join();
        return stopping ? 0 : fail("the listener stopped unexpectedly");
    };  // the face closes here, after the last request

    int status = 0;
#if defined(TETHER_SERVER_POSTGRES)
    if (!postgres.empty()) {
        auto store = tether::server::postgres_store::open(postgres);
        if (!store) return fail(store.error().message);
        if (restored) {
            if (auto m = store->mark_restored(tether::system_clock{}.now()); !m) return fail(m.error().message);
            std::cerr << "tether-server: the --postgres database marked as restored from a backup" << std::endl;
        }
        tether::server::sync_service<tether::server::postgres_store> service{
            std::move(*store), tether::server::service_limits_for(limits)};
        status = serve(service);
    } else
#endif
    {
        tether::server::sqlite_store_options store_options;
        store_options.synchronous = synchronous == "normal" ? tether::sqlite_options::sync_mode::normal
                                                            : tether::sqlite_options::sync_mode::full;
        auto store = tether::server::sqlite_store::open(db_path, store_options);
        if (!store) return fail(store.error().message);
        if (restored) {
            if (auto m = store->mark_restored(tether::system_clock{}.now()); !m) return fail(m.error().message);
            std::cerr << "tether-server: " << db_path << " marked as restored from a backup" << std::endl;
        }
        tether::server::sync_service<tether::server::sqlite_store> service{
            std::move(*store), tether::server::service_limits_for(limits)};
        status = serve(service);
    }  // the service and the store (the database) close here
    if (log_file.is_open()) log_file.close();
    std::fflush(stdout);
    return status;
}
