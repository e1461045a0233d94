// Bad requests of every kind against the real tether-server: each gets a JSON
// error body with the right status, nothing of a refused push applies, and
// the server keeps serving. Then token secrecy: a unique token, faults of
// every kind, and the token is in no answer, no log line, no output and no
// database file.
#include "e2e/e2e.hpp"
#include "support/entities.hpp"

#include <tether/clock/manual.hpp>
#include <tether/engine/sync_engine.hpp>
#include <tether/protocol/json.hpp>
#include <tether/storage/sqlite.hpp>
#include <tether/transport/http.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

const std::string a_uuid = "01890a5d-ac96-774b-bcce-b302099a8057";

std::string create_op(const std::string& id, const std::string& value = R"({"title":"x"})") {
    return R"({"kind":"create","id":")" + id + R"(","base_version":0,"value":)" + value + "}";
}

std::string push_body(const std::vector<std::string>& ops) {
    std::string b = R"({"origin":"dev","ops":[)";
    for (std::size_t i = 0; i < ops.size(); ++i) b += (i ? "," : "") + ops[i];
    return b + "]}";
}

std::string uuid_n(unsigned n) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "01890a5d-ac96-774b-bcce-%012x", n + 1);
    return buf;
}

// The answer is a JSON error body with `status` and `code`.
void check_error(const httplib::Result& res, int status, const std::string& code) {
    REQUIRE(res);
    INFO(res->status << " " << res->body);
    CHECK(res->status == status);
    CHECK(res->get_header_value("Content-Type").rfind("application/json", 0) == 0);
    auto e = tether::protocol::decode_error_body(res->body);
    REQUIRE(e);
    CHECK(tether::to_string(e->code) == code);
}

void check_serving(tether_test::e2e_server& server) {
    auto c = server.client();
    auto health = c->Get("/healthz");
    REQUIRE(health);
    CHECK(health->status == 200);
    auto info = c->Get("/v1/info", tether_test::bearer("alice-token"));
    REQUIRE(info);
    CHECK(info->status == 200);
}

}  // namespace

TEST_CASE("bad requests of every kind get a JSON error, apply nothing, and the server keeps serving",
          "[e2e][requests]") {
    tether_test::e2e_server server{{"--max-body-bytes", "65536", "--max-ops", "10", "--max-value-bytes", "1024",
                                    "--max-depth", "16"}};
    auto c = server.client();
    const auto alice = tether_test::bearer("alice-token");
    struct push_case {
        const char* what;
        std::string body;
        int status;
        const char* code;
    };
    std::string deep = std::string(20, '[') + std::string(20, ']');
    const std::vector<push_case> pushes{
        {"malformed JSON", "{\"origin\":", 400, "protocol"},
        {"not JSON at all", "hello", 400, "protocol"},
        {"not an object", "[]", 400, "protocol"},
        {"origin of the wrong type", R"({"origin":1,"ops":[]})", 400, "protocol"},
        {"ops missing", R"({"origin":"d"})", 400, "protocol"},
        {"ops not an array", R"({"origin":"d","ops":{}})", 400, "protocol"},
        {"unknown kind", push_body({R"({"kind":"upsert","id":")" + a_uuid + R"(","value":{}})"}), 400, "protocol"},
        {"id not a UUID", push_body({create_op("not-a-uuid")}), 400, "protocol"},
        {"nil id", push_body({create_op("00000000-0000-0000-0000-000000000000")}), 400, "protocol"},
        {"base_version a string", push_body({R"({"kind":"update","id":")" + a_uuid + R"(","base_version":"7","value":{}})"}), 400, "protocol"},
        {"empty server_id", push_body({R"({"kind":"update","id":")" + a_uuid + R"(","server_id":"","value":{}})"}), 400, "protocol"},
        {"value not an object", push_body({create_op(a_uuid, "[1,2]")}), 400, "protocol"},
        {"invalid UTF-8", push_body({create_op(a_uuid, "{\"t\":\"\xff\xfe\"}")}), 400, "protocol"},
        {"too deep", R"({"origin":"d","ops":[)" + create_op(a_uuid, "{\"v\":" + deep + "}") + "]}", 413, "too_large"},
        {"too many ops", push_body(std::vector<std::string>(11, create_op(a_uuid))), 413, "too_large"},
        {"body too big", push_body({create_op(a_uuid, "{\"t\":\"" + std::string(70000, 'x') + "\"}")}), 413, "too_large"},
    };
    for (const auto& p : pushes) {
        INFO(p.what);
        check_error(c->Post("/v1/jobs/push", alice, p.body, "application/json"), p.status, p.code);
    }
    // A gzipped body that is not gzip, and a gzip bomb: refused, never inflated whole.
    {
        httplib::Headers h = alice;
        h.emplace("Content-Encoding", "gzip");
        auto res = c->Post("/v1/jobs/push", h, "this is not gzip", "application/json");
        REQUIRE(res);
        CHECK(res->status >= 400);
        CHECK(res->status < 500);
        CHECK(tether::protocol::decode_error_body(res->body));
    }
    {
        httplib::Headers h = alice;
        h.emplace("Content-Encoding", "gzip");
        std::string big = push_body({create_op(a_uuid, "{\"t\":\"" + std::string(4u << 20, ' ') + "\"}")});
        std::string zipped;
        REQUIRE(httplib::detail::gzip_compressor{}.compress(big.data(), big.size(), true,
                                                              [&](const char* d, std::size_t n) {
                                                                  zipped.append(d, n);
                                                                  return true;
                                                              }));
        REQUIRE(zipped.size() < 65536);
        check_error(c->Post("/v1/jobs/push", h, zipped, "application/json"), 413, "too_large");
    }

    // Auth, routes and parameters.
    check_error(c->Post("/v1/jobs/push", push_body({create_op(a_uuid)}), "application/json"), 401, "unauthorized");
    check_error(c->Get("/v1/jobs/changes", {{"Authorization", "Basic YWxpY2U6c2VjcmV0"}}), 401, "unauthorized");
    check_error(c->Get("/v1/jobs/changes", tether_test::bearer("nobody-token")), 401, "unauthorized");
    check_error(c->Get("/v1/info"), 401, "unauthorized");
    check_error(c->Get("/v1/jobs/nope", alice), 404, "not_found");
    check_error(c->Get("/nope"), 404, "not_found");
    check_error(c->Get("/v1/jobs/records/s-none", alice), 404, "not_found");
    check_error(c->Post("/v1/info", alice, "{}", "application/json"), 405, "rejected");
    check_error(c->Get("/v1/jobs/push", alice), 405, "rejected");
    check_error(c->Post("/v1/.bad/push", alice, push_body({}), "application/json"), 400, "protocol");
    check_error(c->Get("/v1/jobs/records/%zz", alice), 400, "protocol");
    check_error(c->Get("/v1/jobs/changes?limit=0", alice), 400, "protocol");
    check_error(c->Get("/v1/jobs/changes?limit=ten", alice), 400, "protocol");
    check_error(c->Get("/v1/jobs/changes?cursor=zzz", alice), 400, "invalid_argument");

    // Nothing of any refused push applied.
    auto page = c->Get("/v1/jobs/changes", alice);
    REQUIRE(page);
    REQUIRE(page->status == 200);
    auto decoded = tether::protocol::decode_page(page->body);
    REQUIRE(decoded);
    CHECK(decoded->records.empty());

    // One value over the limit inside a batch: that op rejected, the others applied, a 200.
    auto mixed = c->Post("/v1/jobs/push", alice,
                         push_body({create_op(uuid_n(1)), create_op(uuid_n(2), "{\"t\":\"" + std::string(2000, 'y') + "\"}"),
                                    create_op(uuid_n(3))}),
                         "application/json");
    REQUIRE(mixed);
    REQUIRE(mixed->status == 200);
    auto j = nlohmann::json::parse(mixed->body);
    REQUIRE(j["outcomes"].size() == 3);
    CHECK(j["outcomes"][0]["outcome"] == "applied");
    CHECK(j["outcomes"][1]["outcome"] == "rejected");
    CHECK(j["outcomes"][1]["error"]["code"] == "too_large");
    CHECK(j["outcomes"][2]["outcome"] == "applied");

    check_error(c->Get("/v1/jobs/changes?cursor=999", alice), 410, "cursor_expired");  // beyond the last change
    check_serving(server);
    auto info = tether::protocol::decode_info(c->Get("/v1/info", alice)->body);
    REQUIRE(info);
    CHECK(info->server_limits.max_ops == 10);
    CHECK(info->server_limits.max_body_bytes == 65536);
    CHECK(info->server_limits.max_depth == 16);
    CHECK(info->server_limits.max_value_bytes == 1024);

    // Every request has its access-log line, and the log names users, not tokens.
    CHECK(server.stop() == 0);
    const std::string log = tether_test::slurp(server.access_log_path());
    CHECK(log.find("POST /v1/jobs/push 413") != std::string::npos);
    CHECK(log.find("GET /nope 404") != std::string::npos);
    CHECK(log.find("user=alice") != std::string::npos);
    CHECK(log.find("alice-token") == std::string::npos);
}

TEST_CASE("the rate limit answers 429 with Retry-After, per user", "[e2e][requests]") {
    tether_test::e2e_server server{{"--rate-limit", "1"}};
    auto c = server.client();
    // A bucket of one request a second: of a quick burst of five, at least one is refused
    // (all five would need a second between each, far more than these take).
    int refused = 0;
    for (int i = 0; i < 5; ++i) {
        auto res = c->Get("/v1/info", tether_test::bearer("alice-token"));
        REQUIRE(res);
        if (res->status == 429) {
            ++refused;
            CHECK(res->has_header("Retry-After"));
            CHECK(std::stoi(res->get_header_value("Retry-After")) >= 1);
            auto e = tether::protocol::decode_error_body(res->body);
            REQUIRE(e);
            CHECK(e->code == tether::errc::rate_limited);
            CHECK(e->retry_after);
        } else {
            CHECK(res->status == 200);
        }
    }
    CHECK(refused >= 1);
    auto bob = c->Get("/v1/info", tether_test::bearer("bob-token"));  // another user's bucket is full
    REQUIRE(bob);
    CHECK(bob->status == 200);
    CHECK(server.stop() == 0);
}

TEST_CASE("a token never appears in an answer, the access log, the output or a database file", "[e2e][secrecy]") {
    std::random_device rd;
    char buf[40];
    std::snprintf(buf, sizeof buf, "tok%08x%08x%08x", rd(), rd(), rd());
    const std::string token = buf;
    tether_test::e2e_server server{{"--rate-limit", "3", "--max-body-bytes", "65536", "--max-ops", "5"},
                                   token + " carol\n"};
    std::string seen;  // every answer body, header and error message
    auto c = server.client();
    auto keep = [&](const httplib::Result& r) {
        if (!r) return;
        seen += r->body;
        for (const auto& [k, v] : r->headers) seen += k + ": " + v + "\n";
    };
    const auto carol = tether_test::bearer(token);
    keep(c->Get("/v1/info", tether_test::bearer(token + "x")));   // a bad token that holds the good one
    keep(c->Get("/v1/info", tether_test::bearer("x" + token)));
    keep(c->Get("/v1/info", {{"Authorization", "Basic " + token}}));
    keep(c->Get("/v1/info", {{"Authorization", token}}));
    keep(c->Post("/v1/jobs/push", carol, "{\"origin\":", "application/json"));
    keep(c->Post("/v1/jobs/push", carol, push_body(std::vector<std::string>(6, create_op(a_uuid))), "application/json"));
    keep(c->Post("/v1/jobs/push", carol, std::string(70000, ' '), "application/json"));
    keep(c->Get("/v1/jobs/nope", carol));
    keep(c->Get("/nope?token=" + token.substr(0, 4), carol));
    for (int i = 0; i < 6; ++i) keep(c->Get("/v1/jobs/changes", carol));  // over the rate limit

    // A device with its own SQLite file syncs with the token, through errors too.
    tether_test::temp_dir files{"tether-e2e-secrecy"};
    {
        auto db = tether::sqlite_database::open(files.file("device.db"));
        REQUIRE(db);
        tether::manual_clock clock;
        auto engine = tether::make_engine<tether_test::Job>(tether::sqlite_storage{*db},
                                                            tether::http_transport{server.options(token)}, clock);
        for (int i = 0; i < 4; ++i) REQUIRE(engine.create(tether_test::Job{"j" + std::to_string(i), i, ""}));
        for (int i = 0; i < 3; ++i) {
            auto rep = engine.sync();
            if (!rep) seen += rep.error().message + "\n";
            else
                for (const auto& r : engine.list().value()) seen += r.last_error ? r.last_error->message : "";
            clock.advance(std::chrono::minutes{10});
        }
        tether::http_transport wrong{server.options(token + "y")};
        auto denied = wrong.pull("jobs", "", 10);
        REQUIRE_FALSE(denied);
        seen += denied.error().message;
    }
    CHECK(server.stop() == 0);

    CHECK(seen.find(token) == std::string::npos);
    const std::string log = tether_test::slurp(server.access_log_path());
    CHECK_FALSE(log.empty());
    CHECK(log.find(token) == std::string::npos);
    CHECK(log.find("user=carol") != std::string::npos);
    CHECK(server.output().find(token) == std::string::npos);
    for (const auto& f : {server.db_path(), server.db_path() + "-wal", files.file("device.db"),
                          files.file("device.db") + "-wal"}) {
        INFO(f);
        CHECK(tether_test::slurp(f).find(token) == std::string::npos);
    }
    CHECK_FALSE(tether_test::slurp(server.db_path()).empty());
}
