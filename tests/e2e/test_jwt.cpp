// The real tether-server taking JWTs (--jwt-hs256-secret-file, --jwt-rs256-public-key-file)
// from a test issuer: a good token syncs; an expired one is a 401 whose body
// says so; the client's token provider is asked once per 401 and the retry
// with its fresh token succeeds.
#include "e2e/e2e.hpp"

#if TETHER_HAS_JWT
#include "support/entities.hpp"
#include "support/jwt_issuer.hpp"

#include <tether/clock/manual.hpp>
#include <tether/engine/sync_engine.hpp>
#include <tether/protocol/error_body.hpp>
#include <tether/storage/memory.hpp>
#include <tether/transport/http.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>

namespace {

const std::string secret = "e2e-hs256-secret-with-more-than-32-bytes";
constexpr const char* issuer = "https://auth.test";

// A tether-server taking JWTs signed with the key in `key_file` by `issuer`.
struct jwt_server {
    explicit jwt_server(std::string key_flag, const std::string& key_text) {
        std::ofstream{dir.file("key")} << key_text;
        proc = std::make_unique<tether_test::server_process>(
            TETHER_SERVER_BINARY,
            std::vector<std::string>{"--listen", "127.0.0.1:0", "--db", dir.file("server.db"), std::move(key_flag),
                                     dir.file("key"), "--jwt-issuer", issuer, "--keep-alive", "1"});
    }

    tether::http_options options() const {
        tether::http_options o;
        o.base_url = proc->url();
        o.timeouts.connect = std::chrono::seconds{5};
        o.timeouts.read = std::chrono::seconds{30};
        return o;
    }

    tether_test::temp_dir dir{"tether-e2e-jwt"};
    std::unique_ptr<tether_test::server_process> proc;
};

// A token for `user` expiring `ttl` seconds from now (negative: already expired).
std::string hs_token(const std::string& user, long ttl) {
    const long now = static_cast<long>(std::time(nullptr));
    return tether_test::mint_jwt(JWT_ALG_HS256, secret, {{"sub", user}, {"iss", issuer}, {"iat", now}, {"exp", now + ttl}});
}

// The error body of a 401, decoded.
tether::error refusal_of(const httplib::Result& res) {
    REQUIRE(res);
    CHECK(res->status == 401);
    auto e = tether::protocol::decode_error_body(res->body);
    REQUIRE(e);
    CHECK(e->code == tether::errc::unauthorized);
    return *e;
}

}  // namespace

TEST_CASE("tether-server with JWT: a good token syncs, a bad one is a 401 saying why", "[e2e][jwt]") {
    jwt_server server{"--jwt-hs256-secret-file", secret + "\n"};
    tether::manual_clock clock;

    auto o = server.options();
    o.token = hs_token("alice", 3600);
    auto alice = tether::make_engine<tether_test::Job>(tether::memory_storage{}, tether::http_transport{o}, clock);
    REQUIRE(alice.create(tether_test::Job{"Standup memo", 0, "a.wav"}));
    auto pushed = alice.sync();
    REQUIRE(pushed);
    CHECK_FALSE(pushed->failure);
    CHECK(pushed->pushed == 1);

    httplib::Client c{"127.0.0.1", server.proc->port()};
    auto ok = c.Get("/v1/jobs/changes", tether_test::bearer(hs_token("alice", 3600)));
    REQUIRE(ok);
    CHECK(ok->status == 200);
    // The user is the sub: bob sees none of alice's records.
    auto bobs = c.Get("/v1/jobs/changes", tether_test::bearer(hs_token("bob", 3600)));
    REQUIRE(bobs);
    CHECK(bobs->status == 200);
    CHECK(bobs->body.find("Standup memo") == std::string::npos);

    CHECK(refusal_of(c.Get("/v1/jobs/changes", tether_test::bearer(hs_token("alice", -3600)))).message.rfind(
              "token expired", 0) == 0);
    const auto none = tether_test::forge_jwt({{"alg", "none"}}, {{"sub", "alice"}, {"iss", issuer}});
    CHECK(refusal_of(c.Get("/v1/info", tether_test::bearer(none))).message ==
          "token algorithm not accepted: 'none' (this server takes HS256)");
    const long now = static_cast<long>(std::time(nullptr));
    const auto stranger =
        tether_test::mint_jwt(JWT_ALG_HS256, secret, {{"sub", "alice"}, {"iss", "someone"}, {"exp", now + 60}});
    CHECK(refusal_of(c.Get("/v1/info", tether_test::bearer(stranger))).message == "token issuer does not match");
    CHECK(refusal_of(c.Get("/v1/info", tether_test::bearer("alice-token"))).message.rfind("token malformed", 0) == 0);
    CHECK(server.proc->stop() == 0);
}

TEST_CASE("tether-server with JWT: the provider is asked once per 401 and the retry succeeds", "[e2e][jwt]") {
    jwt_server server{"--jwt-hs256-secret-file", secret};
    tether::manual_clock clock;

    std::atomic<int> asked{0};
    auto o = server.options();
    o.token_provider = [&]() -> tether::result<std::string> {
        // The first token it hands out has expired (a device back from a long sleep).
        return hs_token("alice", asked.fetch_add(1) == 0 ? -3600 : 3600);
    };
    auto alice = tether::make_engine<tether_test::Job>(tether::memory_storage{}, tether::http_transport{o}, clock);
    REQUIRE(alice.create(tether_test::Job{"Standup memo", 0, "a.wav"}));
    auto first = alice.sync();
    REQUIRE(first);
    CHECK_FALSE(first->failure);
    CHECK(first->pushed == 1);
    CHECK(asked.load() == 2);  // the first token, then one fresh one after its 401
    REQUIRE(alice.create(tether_test::Job{"Retro notes", 0, "b.wav"}));
    auto second = alice.sync();
    REQUIRE(second);
    CHECK(second->pushed == 1);
    CHECK(asked.load() == 2);  // the fresh token is kept

    // A provider that only has expired tokens: one refresh, then the engine pauses.
    std::atomic<int> stale_asked{0};
    auto s = server.options();
    s.token_provider = [&]() -> tether::result<std::string> {
        stale_asked.fetch_add(1);
        return hs_token("bob", -3600);
    };
    auto bob = tether::make_engine<tether_test::Job>(tether::memory_storage{}, tether::http_transport{s}, clock);
    REQUIRE(bob.create(tether_test::Job{"Bob's memo", 0, "c.wav"}));
    auto refused = bob.sync();
    const auto failure = refused ? refused->failure : std::optional<tether::error>{refused.error()};
    REQUIRE(failure);
    CHECK(failure->code == tether::errc::unauthorized);
    CHECK(failure->message.find("token expired") != std::string::npos);
    CHECK(stale_asked.load() == 2);
    CHECK(bob.state() == tether::engine_state::unauthorized);
    CHECK(server.proc->stop() == 0);
}

TEST_CASE("tether-server with JWT: RS256 with the issuer's public key", "[e2e][jwt]") {
    const auto pair = tether_test::make_rsa_key_pair();
    jwt_server server{"--jwt-rs256-public-key-file", pair.public_pem};
    const long now = static_cast<long>(std::time(nullptr));
    const nlohmann::json claims{{"sub", "alice"}, {"iss", issuer}, {"exp", now + 600}};
    httplib::Client c{"127.0.0.1", server.proc->port()};
    auto ok = c.Get("/v1/info", tether_test::bearer(tether_test::mint_jwt(JWT_ALG_RS256, pair.private_pem, claims)));
    REQUIRE(ok);
    CHECK(ok->status == 200);
    // HS256 "signed" with the public key is not taken.
    const auto confused = tether_test::mint_jwt(JWT_ALG_HS256, pair.public_pem, claims);
    CHECK(refusal_of(c.Get("/v1/info", tether_test::bearer(confused))).message ==
          "token algorithm not accepted: 'HS256' (this server takes RS256)");
    CHECK(server.proc->stop() == 0);
}

TEST_CASE("tether-server refuses to start without exactly one way to authenticate", "[e2e][jwt][cli]") {
    tether_test::temp_dir dir{"tether-e2e-jwt-cli"};
    std::ofstream{dir.file("tokens")} << "alice-token alice\n";
    std::ofstream{dir.file("key")} << secret;
    auto starts = [&](std::vector<std::string> flags) -> std::string {
        flags.insert(flags.begin(), {"--listen", "127.0.0.1:0", "--db", ":memory:"});
        try {
            tether_test::server_process p{TETHER_SERVER_BINARY, flags};
            p.stop();
            return "started";
        } catch (const std::exception& e) {
            return e.what();
        }
    };
    const std::string one_of = "give exactly one of --tokens FILE or JWT keys";
    CHECK_THAT(starts({"--tokens", dir.file("tokens"), "--jwt-hs256-secret-file", dir.file("key")}),
               Catch::Contains(one_of));
    CHECK_THAT(starts({}), Catch::Contains(one_of));
    std::ofstream{dir.file("short")} << "too-short";
    CHECK_THAT(starts({"--jwt-hs256-secret-file", dir.file("short")}), Catch::Contains("at least 32 bytes"));
    CHECK(starts({"--jwt-hs256-secret-file", dir.file("key")}) == "started");
}

#endif  // TETHER_HAS_JWT

#if TETHER_HAS_JWT

namespace {

const std::string secret_b = "e2e-hs256-second-secret-of-32-bytes-plus";
const std::string secret_c = "e2e-hs256-third-secret-with-32-bytes-too";

std::string kid_token(const std::string& key, const std::string& kid, const std::string& user = "alice") {
    const long now = static_cast<long>(std::time(nullptr));
    return tether_test::mint_jwt(JWT_ALG_HS256, key, {{"sub", user}, {"iss", issuer}, {"iat", now}, {"exp", now + 3600}},
                                 kid);
}

// Polls the server's stderr (bounded) until it holds `line` `times` times.
bool logged(const tether_test::server_process& p, const std::string& line, int times = 1) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
    for (;;) {
        const std::string err = p.err();
        int n = 0;
        for (auto at = err.find(line); at != std::string::npos; at = err.find(line, at + 1)) ++n;
        if (n >= times) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::yield();
    }
}

}  // namespace

TEST_CASE("tether-server with JWT: kid picks the key, SIGHUP reloads the key files, a bad reload keeps the keys",
          "[e2e][jwt][kid]") {
    tether_test::temp_dir dir{"tether-e2e-jwt-kid"};
    std::ofstream{dir.file("a.key")} << secret << "\n";
    std::ofstream{dir.file("b.key")} << secret_b << "\n";
    tether_test::server_process proc{
        TETHER_SERVER_BINARY,
        {"--listen", "127.0.0.1:0", "--db", dir.file("server.db"), "--jwt-hs256-secret-file", "a=" + dir.file("a.key"),
         "--jwt-hs256-secret-file", "b=" + dir.file("b.key"), "--jwt-issuer", issuer, "--keep-alive", "1"}};
    httplib::Client c{"127.0.0.1", proc.port()};
    auto status = [&](const std::string& token) {
        auto res = c.Get("/v1/jobs/changes", tether_test::bearer(token));
        return res ? res->status : -1;
    };
    CHECK(status(kid_token(secret, "a")) == 200);
    CHECK(status(kid_token(secret_b, "b")) == 200);
    CHECK(refusal_of(c.Get("/v1/info", tether_test::bearer(kid_token(secret, "b")))).message ==
          "token signature does not verify");
    CHECK(refusal_of(c.Get("/v1/info", tether_test::bearer(kid_token(secret, "c")))).message ==
          "token key id (kid) not known: 'c'");
    CHECK(refusal_of(c.Get("/v1/info", tether_test::bearer(hs_token("alice", 3600)))).message ==
          "token names no key id (kid), and this server's keys all have one");

    // Key b rolled on disk, then SIGHUP: the new secret verifies, the old no more.
    std::ofstream{dir.file("b.key"), std::ios::trunc} << secret_c << "\n";
    REQUIRE(::kill(proc.pid(), SIGHUP) == 0);
    REQUIRE(logged(proc, "JWT keys reloaded: 2 keys"));
    CHECK(status(kid_token(secret_c, "b")) == 200);
    CHECK(refusal_of(c.Get("/v1/info", tether_test::bearer(kid_token(secret_b, "b")))).message ==
          "token signature does not verify");
    CHECK(status(kid_token(secret, "a")) == 200);

    // A reload that fails (a secret too short) keeps every key, and says why.
    std::ofstream{dir.file("a.key"), std::ios::trunc} << "short\n";
    REQUIRE(::kill(proc.pid(), SIGHUP) == 0);
    REQUIRE(logged(proc, "JWT keys not reloaded, keeping the 2 loaded before: key file '" + dir.file("a.key") + "'"));
    CHECK(status(kid_token(secret, "a")) == 200);
    CHECK(status(kid_token(secret_c, "b")) == 200);
    CHECK(proc.err().find(secret) == std::string::npos);  // never a key in the log
    CHECK(proc.stop() == 0);
}

#endif
