// The server's token verifiers without a network: the authenticator, the token
// table as a verifier, and jwt_verifier on tokens minted here by libjwt (HS256,
// RS256 with a key pair made by OpenSSL), every refusal and the leeway at its
// edges, on a manual clock.
#include <tether/server/http/auth.hpp>
#include <tether/server/http/tokens.hpp>

#if TETHER_HAS_JWT
#include "support/jwt_issuer.hpp"

#include <tether/clock/manual.hpp>
#include <tether/protocol/error_body.hpp>
#include <tether/server/http/jwt.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>
#endif

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

using tether::errc;
namespace server = tether::server;

TEST_CASE("authenticator: a callable of either shape, or nothing", "[http][auth]") {
    server::authenticator none;
    CHECK_FALSE(none);
    auto refused = none("anything");
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == errc::unauthorized);
    CHECK(refused.error().http_status == 401);

    server::authenticator by_optional{[](std::string_view t) -> std::optional<std::string> {
        if (t == "good") return std::string{"alice"};
        if (t == "empty") return std::string{};
        return std::nullopt;
    }};
    CHECK(by_optional("good").value() == "alice");
    CHECK(by_optional("bad").error().message == "unknown or revoked token");
    CHECK(by_optional("empty").error().http_status == 401);  // an empty user is no user

    server::authenticator by_result{[](std::string_view t) -> tether::result<std::string> {
        if (t == "down") return tether::unexpected{tether::make_error(errc::transient, "session store down")};
        if (t == "no") return tether::unexpected{tether::make_error(errc::unauthorized, "signed out")};
        return std::string{"bob"};
    }};
    CHECK(by_result("x").value() == "bob");
    CHECK(by_result("down").error().code == errc::transient);  // answered with its own status
    CHECK(by_result("no").error().http_status == 401);        // an unauthorized error gets its 401
}

TEST_CASE("token_table is a token_verifier", "[http][auth]") {
    auto table = server::token_table::parse("s3cret-a alice\n").value();
    CHECK(table.verify("s3cret-a").value() == "alice");
    auto no = table.verify("s3cret-b");
    REQUIRE_FALSE(no);
    CHECK(no.error().code == errc::unauthorized);
    CHECK(no.error().message == "unknown or revoked token");
    auto auth = server::authenticate_by(table);
    CHECK(auth("s3cret-a").value() == "alice");
}

#if TETHER_HAS_JWT

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr std::int64_t T = 1'800'000'000;  // the clock's time, in seconds
const std::string secret = "an-hs256-secret-of-at-least-32-bytes!";
const std::string other_secret = "another-hs256-secret-of-32-bytes-or-more";

tether::manual_clock clock_at_t() { return tether::manual_clock{tether::timestamp{std::chrono::seconds{T}}}; }

json claims(std::string sub = "alice") { return json{{"sub", std::move(sub)}, {"exp", T + 600}, {"iat", T}}; }

server::jwt_verifier<tether::manual_clock> hs_verifier(tether::manual_clock clock, server::jwt_options o = {}) {
    o.keys.push_back(server::jwt_key::hs256(secret).value());
    return server::jwt_verifier<tether::manual_clock>::make(std::move(o), clock).value();
}

// The refusal's message, after checking it is a 401 that never quotes the token.
std::string refusal(const server::jwt_verifier<tether::manual_clock>& v, const std::string& token) {
    auto r = v.verify(token);
    if (r) return "accepted as " + *r;
    CHECK(r.error().code == errc::unauthorized);
    CHECK(r.error().http_status == 401);
    CHECK(r.error().message.find(token) == std::string::npos);
    return r.error().message;
}

bool starts(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_CASE("jwt: an HS256 token signed with the secret names its user", "[http][jwt]") {
    auto v = hs_verifier(clock_at_t());
    CHECK(v.verify(tether_test::mint_jwt(JWT_ALG_HS256, secret, claims())).value() == "alice");
    auto auth = server::authenticate_by(v);
    CHECK(auth(tether_test::mint_jwt(JWT_ALG_HS256, secret, claims("bob"))).value() == "bob");
}

TEST_CASE("jwt: RS256 with the issuer's public key, no confusion with HS256", "[http][jwt]") {
    const auto pair = tether_test::make_rsa_key_pair();
    server::jwt_options o;
    o.keys.push_back(server::jwt_key::rs256(pair.public_pem).value());
    auto v = server::jwt_verifier<tether::manual_clock>::make(o, clock_at_t()).value();
    CHECK(v.verify(tether_test::mint_jwt(JWT_ALG_RS256, pair.private_pem, claims())).value() == "alice");

    // Another key pair's signature.
    const auto stranger = tether_test::make_rsa_key_pair();
    CHECK(refusal(v, tether_test::mint_jwt(JWT_ALG_RS256, stranger.private_pem, claims())) ==
          "token signature does not verify");
    // The classic confusion: HS256 "signed" with the public key as the secret.
    const auto confused = tether_test::mint_jwt(JWT_ALG_HS256, pair.public_pem, claims());
    CHECK(starts(refusal(v, confused), "token algorithm not accepted: 'HS256' (this server takes RS256)"));
    // Also when the server takes HS256 too: the public key is no HS256 key.
    o.keys.push_back(server::jwt_key::hs256(secret).value());
    auto both = server::jwt_verifier<tether::manual_clock>::make(o, clock_at_t()).value();
    CHECK(refusal(both, confused) == "token signature does not verify");
    CHECK(both.verify(tether_test::mint_jwt(JWT_ALG_HS256, secret, claims())).value() == "alice");
    CHECK(both.verify(tether_test::mint_jwt(JWT_ALG_RS256, pair.private_pem, claims())).value() == "alice");
}

TEST_CASE("jwt: wrong algorithms, alg none first", "[http][jwt]") {
    auto v = hs_verifier(clock_at_t());
    const auto none = tether_test::forge_jwt({{"alg", "none"}, {"typ", "JWT"}}, claims());
    CHECK(refusal(v, none) == "token algorithm not accepted: 'none' (this server takes HS256)");
    CHECK(starts(refusal(v, tether_test::forge_jwt({{"alg", "None"}}, claims())), "token algorithm not accepted"));
    CHECK(starts(refusal(v, tether_test::mint_jwt(JWT_ALG_HS512, secret, claims())),
                 "token algorithm not accepted: 'HS512'"));
    const auto pair = tether_test::make_rsa_key_pair();
    CHECK(starts(refusal(v, tether_test::mint_jwt(JWT_ALG_RS256, pair.private_pem, claims())),
                 "token algorithm not accepted: 'RS256'"));
    // An alg no one could print is not echoed.
    CHECK(refusal(v, tether_test::forge_jwt({{"alg", "a b\n"}}, claims(), "c2ln")) ==
          "token algorithm not accepted: (unreadable) (this server takes HS256)");
}

TEST_CASE("jwt: bad signatures", "[http][jwt]") {
    auto v = hs_verifier(clock_at_t());
    CHECK(refusal(v, tether_test::mint_jwt(JWT_ALG_HS256, other_secret, claims())) ==
          "token signature does not verify");
    // alice's token with bob's payload.
    const auto good = tether_test::mint_jwt(JWT_ALG_HS256, secret, claims());
    const auto bobs = tether_test::mint_jwt(JWT_ALG_HS256, secret, claims("bob"));
    const auto tampered = good.substr(0, good.find('.')) + bobs.substr(bobs.find('.'), bobs.rfind('.') - bobs.find('.')) +
                          good.substr(good.rfind('.'));
    CHECK(refusal(v, tampered) == "token signature does not verify");
    // HS256 in the header, but no signature at all.
    CHECK(refusal(v, tether_test::forge_jwt({{"alg", "HS256"}}, claims())) == "token signature does not verify");
}

TEST_CASE("jwt: malformed tokens", "[http][jwt]") {
    auto v = hs_verifier(clock_at_t());
    const std::string good = tether_test::mint_jwt(JWT_ALG_HS256, secret, claims());
    for (const std::string& token : {std::string{"opaque-token"}, std::string{"a.b"}, good + ".x", std::string{".."},
                                     std::string{"!!!.e30.c2ln"}, tether_test::base64url("not json") + ".e30.",
                                     tether_test::forge_jwt(json::array({1}), claims()),
                                     tether_test::forge_jwt({{"alg", "HS256"}}, json::array()),
                                     tether_test::forge_jwt({{"typ", "JWT"}}, claims()),
                                     tether_test::forge_jwt({{"alg", 256}}, claims()),
                                     tether_test::forge_jwt({{"alg", "HS256"}, {"typ", "at+jwt"}}, claims(), "c2ln"),
                                     tether_test::forge_jwt({{"alg", "HS256"}, {"crit", {"exp"}}}, claims(), "c2ln"),
                                     good.substr(0, good.rfind('.')) + ".s!g",
                                     std::string(9000, 'a')}) {
        INFO(token.substr(0, 80));
        CHECK(starts(refusal(v, token), "token malformed: "));
    }
    // A claim of the wrong type, properly signed.
    auto bad_exp = claims();
    bad_exp["exp"] = "tomorrow";
    CHECK(refusal(v, tether_test::mint_jwt(JWT_ALG_HS256, secret, bad_exp)) ==
          "token malformed: exp is not a number of seconds");
    auto bad_nbf = claims();
    bad_nbf["nbf"] = 1e300;
    CHECK(refusal(v, tether_test::mint_jwt(JWT_ALG_HS256, secret, bad_nbf)) ==
          "token malformed: nbf is not a number of seconds");
}

TEST_CASE("jwt: exp at the edge of the leeway", "[http][jwt]") {
    auto clock = clock_at_t();
    auto v = hs_verifier(clock);  // leeway 30 s
    auto with_exp = [&](std::int64_t exp) {
        auto c = claims();
        c["exp"] = exp;
        return tether_test::mint_jwt(JWT_ALG_HS256, secret, c);
    };
    CHECK(v.verify(with_exp(T - 29)).value() == "alice");  // 29 s past: inside the leeway
    CHECK(starts(refusal(v, with_exp(T - 30)), "token expired: exp 1799999970 is past, now 1800000000 (leeway 30 s)"));
    clock.advance(999ms);
    CHECK(v.verify(with_exp(T - 29)).has_value());  // T + 0.999 < exp + 30
    clock.advance(1ms);
    CHECK(starts(refusal(v, with_exp(T - 29)), "token expired"));

    server::jwt_options strict;
    strict.leeway = 0s;
    auto exact = hs_verifier(clock_at_t(), strict);
    CHECK(exact.verify(with_exp(T + 1)).has_value());
    CHECK(starts(refusal(exact, with_exp(T)), "token expired"));
    // A fractional exp counts to the millisecond.
    auto c = claims();
    c["exp"] = static_cast<double>(T) + 0.5;
    CHECK(exact.verify(tether_test::mint_jwt(JWT_ALG_HS256, secret, c)).has_value());
}

TEST_CASE("jwt: nbf at the edge of the leeway", "[http][jwt]") {
    auto clock = clock_at_t();
    auto v = hs_verifier(clock);
    auto with_nbf = [&](std::int64_t nbf) {
        auto c = claims();
        c["nbf"] = nbf;
        return tether_test::mint_jwt(JWT_ALG_HS256, secret, c);
    };
    CHECK(v.verify(with_nbf(T + 30)).value() == "alice");  // 30 s ahead: inside the leeway
    CHECK(refusal(v, with_nbf(T + 31)) == "token not yet valid: nbf 1800000031 is ahead, now 1800000000 (leeway 30 s)");
    clock.advance(1s);
    CHECK(v.verify(with_nbf(T + 31)).has_value());
}

TEST_CASE("jwt: exp is required unless told otherwise", "[http][jwt]") {
    auto c = claims();
    c.erase("exp");
    const auto forever = tether_test::mint_jwt(JWT_ALG_HS256, secret, c);
    CHECK(refusal(hs_verifier(clock_at_t()), forever) == "token has no expiry (exp)");
    server::jwt_options o;
    o.require_exp = false;
    CHECK(hs_verifier(clock_at_t(), o).verify(forever).value() == "alice");
}

TEST_CASE("jwt: the subject is the user", "[http][jwt]") {
    auto v = hs_verifier(clock_at_t());
    auto with_sub = [&](const json& sub) {
        auto c = claims();
        if (sub.is_null()) c.erase("sub");
        else c["sub"] = sub;
        return tether_test::mint_jwt(JWT_ALG_HS256, secret, c);
    };
    CHECK(refusal(v, with_sub(nullptr)) == "token has no subject (sub)");
    CHECK(refusal(v, with_sub("")) == "token has no subject (sub)");
    CHECK(refusal(v, with_sub(42)) == "token has no subject (sub)");
    CHECK(starts(refusal(v, with_sub("al ice")), "token has no subject (sub): it is not visible ASCII"));
    CHECK(starts(refusal(v, with_sub(std::string(257, 'a'))), "token has no subject (sub)"));
    CHECK(v.verify(with_sub(std::string(256, 'a'))).value() == std::string(256, 'a'));
}

TEST_CASE("jwt: issuer and audience, when configured", "[http][jwt]") {
    server::jwt_options o;
    o.issuer = "https://auth.example.com";
    o.audience = "tether";
    auto v = hs_verifier(clock_at_t(), o);
    auto with = [&](json extra) {
        auto c = claims();
        c.update(extra);
        return tether_test::mint_jwt(JWT_ALG_HS256, secret, c);
    };
    CHECK(v.verify(with({{"iss", "https://auth.example.com"}, {"aud", "tether"}})).value() == "alice");
    CHECK(v.verify(with({{"iss", "https://auth.example.com"}, {"aud", {"billing", "tether"}}})).value() == "alice");
    CHECK(refusal(v, with({{"aud", "tether"}})) == "token issuer does not match");
    CHECK(refusal(v, with({{"iss", "https://evil.example.com"}, {"aud", "tether"}})) == "token issuer does not match");
    CHECK(refusal(v, with({{"iss", "https://auth.example.com"}})) == "token audience does not match");
    CHECK(refusal(v, with({{"iss", "https://auth.example.com"}, {"aud", {"billing"}}})) ==
          "token audience does not match");
    // Unconfigured, they are not looked at.
    CHECK(hs_verifier(clock_at_t()).verify(with({{"iss", "anyone"}, {"aud", 7}})).value() == "alice");
}

TEST_CASE("jwt: a rotation holds the old and the new key", "[http][jwt]") {
    server::jwt_options o;
    o.keys.push_back(server::jwt_key::hs256(other_secret).value());  // the new key
    auto v = hs_verifier(clock_at_t(), o);                             // and the old one
    CHECK(v.verify(tether_test::mint_jwt(JWT_ALG_HS256, secret, claims())).value() == "alice");
    CHECK(v.verify(tether_test::mint_jwt(JWT_ALG_HS256, other_secret, claims("bob"))).value() == "bob");
    CHECK(refusal(v, tether_test::mint_jwt(JWT_ALG_HS256, secret + "x", claims())) ==
          "token signature does not verify");
}

TEST_CASE("jwt: keys and options are checked when made", "[http][jwt]") {
    CHECK(server::jwt_key::hs256("short").error().code == errc::invalid_argument);
    CHECK(server::jwt_key::hs256(std::string(32, 'k')).has_value());
    const auto pair = tether_test::make_rsa_key_pair();
    CHECK(server::jwt_key::rs256(pair.private_pem).error().message.find("private key") != std::string::npos);
    CHECK(server::jwt_key::rs256("not a pem").error().code == errc::invalid_argument);
    CHECK_FALSE(server::jwt_key::load(server::jwt_alg::hs256, "/nonexistent/secret"));
    CHECK(server::jwt_verifier<>::make({}).error().message == "a JWT verifier needs at least one key");
    server::jwt_options negative;
    negative.keys.push_back(server::jwt_key::hs256(secret).value());
    negative.leeway = -1s;
    CHECK_FALSE(server::jwt_verifier<>::make(negative));
    negative.leeway = std::chrono::seconds::max();
    CHECK_FALSE(server::jwt_verifier<>::make(negative));
    negative.leeway = server::jwt_verifier<>::max_leeway;
    CHECK(server::jwt_verifier<>::make(negative).has_value());
}

TEST_CASE("jwt: no altered token passes as anyone else, none crashes", "[http][jwt]") {
    auto v = hs_verifier(clock_at_t());
    const std::string good = tether_test::mint_jwt(JWT_ALG_HS256, secret, claims());
    const std::string alphabet = "AZaz09-_.=+/ \x01\x7f\xff";
    std::size_t accepted = 0;
    for (std::size_t i = 0; i < good.size(); ++i) {
        for (const char c : alphabet) {
            if (good[i] == c) continue;
            std::string bad = good;
            bad[i] = c;
            auto r = v.verify(bad);
            if (r) ++accepted;
            CHECK((!r ? r.error().code == errc::unauthorized : *r == "alice"));
        }
        auto cut = v.verify(std::string_view{good}.substr(0, i));
        CHECK((!cut && cut.error().http_status == 401));
    }
    // Only the signature's last character has spare bits (base64url of 32 bytes).
    CHECK(accepted <= alphabet.size());
}

TEST_CASE("jwt: a refusal encodes as the protocol's error body", "[http][jwt]") {
    auto refused = hs_verifier(clock_at_t()).verify("opaque-token");
    REQUIRE_FALSE(refused);
    const auto body = tether::protocol::encode_error_body(refused.error()).value();
    const auto decoded = tether::protocol::decode_error_body(body).value();
    CHECK(decoded.code == errc::unauthorized);
    CHECK(decoded.message == "token malformed: expected three parts separated by dots");
    CHECK(body.find("opaque-token") == std::string::npos);
}

#endif  // TETHER_HAS_JWT

#if TETHER_HAS_JWT

namespace {

server::jwt_key key_with_id(const std::string& material, std::string id) {
    auto k = server::jwt_key::hs256(material).value();
    k.id = std::move(id);
    return k;
}

server::jwt_verifier<tether::manual_clock> verifier_of(std::vector<server::jwt_key> keys) {
    server::jwt_options o;
    o.keys = std::move(keys);
    return server::jwt_verifier<tether::manual_clock>::make(std::move(o), clock_at_t()).value();
}

}  // namespace

TEST_CASE("jwt: a token's kid picks its key", "[http][jwt][kid]") {
    auto v = verifier_of({key_with_id(secret, "2026-11"), key_with_id(other_secret, "2026-12")});
    CHECK(v.verify(tether_test::mint_jwt(JWT_ALG_HS256, secret, claims(), "2026-11")).value() == "alice");
    CHECK(v.verify(tether_test::mint_jwt(JWT_ALG_HS256, other_secret, claims("bob"), "2026-12")).value() == "bob");
    // Signed with one key, naming the other: only the named key is tried.
    CHECK(refusal(v, tether_test::mint_jwt(JWT_ALG_HS256, secret, claims(), "2026-12")) ==
          "token signature does not verify");
    CHECK(refusal(v, tether_test::mint_jwt(JWT_ALG_HS256, secret, claims(), "2025-01")) ==
          "token key id (kid) not known: '2025-01'");
    // A long unknown kid is cut in the message.
    const std::string long_kid(100, 'k');
    CHECK(refusal(v, tether_test::mint_jwt(JWT_ALG_HS256, secret, claims(), long_kid)) ==
          "token key id (kid) not known: '" + std::string(64, 'k') + "...'");
}

TEST_CASE("jwt: a kid that is no key id is malformed", "[http][jwt][kid]") {
    auto v = verifier_of({key_with_id(secret, "a")});
    for (const json& kid : {json(""), json(7), json(std::string(129, 'x')), json("has space"), json(nullptr)})
        CHECK(refusal(v, tether_test::forge_jwt({{"alg", "HS256"}, {"kid", kid}}, claims(), "c2ln")) ==
              "token malformed: the header's kid is not 1 to 128 bytes of visible ASCII");
}

TEST_CASE("jwt: a token without kid goes to the only key, or to the keys without an id", "[http][jwt][kid]") {
    // One key, with an id: it is the default key.
    auto one = verifier_of({key_with_id(secret, "only")});
    CHECK(one.verify(tether_test::mint_jwt(JWT_ALG_HS256, secret, claims())).value() == "alice");
    // Several, all with ids: a token must name one.
    auto named = verifier_of({key_with_id(secret, "a"), key_with_id(other_secret, "b")});
    CHECK(refusal(named, tether_test::mint_jwt(JWT_ALG_HS256, secret, claims())) ==
          "token names no key id (kid), and this server's keys all have one");
    // Several, one without an id: tokens without kid go to it alone.
    auto mixed = verifier_of({server::jwt_key::hs256(secret).value(), key_with_id(other_secret, "b")});
    CHECK(mixed.verify(tether_test::mint_jwt(JWT_ALG_HS256, secret, claims())).value() == "alice");
    CHECK(refusal(mixed, tether_test::mint_jwt(JWT_ALG_HS256, other_secret, claims())) ==
          "token signature does not verify");
    CHECK(mixed.verify(tether_test::mint_jwt(JWT_ALG_HS256, other_secret, claims(), "b")).value() == "alice");
}

TEST_CASE("jwt: replace_keys swaps the keys of every copy, a bad set keeps the old", "[http][jwt][kid]") {
    auto v = verifier_of({key_with_id(secret, "old")});
    const auto copy = v;  // as authenticate_by holds one
    const auto old_token = tether_test::mint_jwt(JWT_ALG_HS256, secret, claims(), "old");
    const auto new_token = tether_test::mint_jwt(JWT_ALG_HS256, other_secret, claims("bob"), "new");
    CHECK(copy.verify(old_token).value() == "alice");
    CHECK(refusal(copy, new_token) == "token key id (kid) not known: 'new'");

    REQUIRE(v.replace_keys({key_with_id(other_secret, "new")}).has_value());
    CHECK(copy.verify(new_token).value() == "bob");
    CHECK(refusal(copy, old_token) == "token key id (kid) not known: 'old'");

    CHECK(v.replace_keys({}).error().code == errc::invalid_argument);
    CHECK(v.replace_keys({key_with_id(secret, "x"), key_with_id(other_secret, "x")}).error().message ==
          "the JWT key id 'x' is given twice");
    CHECK(copy.verify(new_token).value() == "bob");  // kept
    REQUIRE(copy.keys()->size() == 1);
    CHECK(copy.keys()->front().id == "new");
}

TEST_CASE("jwt: load_jwt_keys reads key files with their ids", "[http][jwt][kid]") {
    const std::string dir = "tether-jwt-keys-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    const std::string a = dir + "/a.key", b = dir + "/b.key";
    std::ofstream{a} << secret << '\n';
    std::ofstream{b} << other_secret;
    auto keys = server::load_jwt_keys({{server::jwt_alg::hs256, a, "a"}, {server::jwt_alg::hs256, b, std::nullopt}});
    REQUIRE(keys.has_value());
    REQUIRE(keys->size() == 2);
    CHECK((*keys)[0].material == secret);
    CHECK((*keys)[0].id == "a");
    CHECK_FALSE((*keys)[1].id.has_value());
    CHECK(server::load_jwt_keys({{server::jwt_alg::hs256, a, "k"}, {server::jwt_alg::hs256, b, "k"}}).error().message ==
          "key file '" + b + "': key id 'k' is given twice");
    CHECK(server::load_jwt_keys({{server::jwt_alg::hs256, a, "bad id"}}).error().code == errc::invalid_argument);
    const auto missing = server::load_jwt_keys({{server::jwt_alg::hs256, dir + "/none.key", "n"}});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find("cannot be read") != std::string::npos);
    CHECK_FALSE(server::load_jwt_keys({}));
    std::filesystem::remove_all(dir);
}

#endif
