// http_transport against a scripted server: what it sends, what it makes of the
// answers, tokens and 401s, gzip, limits, malformed answers, threads.
#include "http/scripted_server.hpp"

#include <tether/protocol/json.hpp>
#include <tether/transport/http.hpp>
#include <tether/transport/http/gzip.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using tether::errc;
using tether::push_outcome;
using tether_test::json_answer;
using tether_test::scripted_server;
using namespace std::chrono_literals;
namespace protocol = tether::protocol;

namespace {

const auto id1 = tether::local_id::parse("01890a5d-ac96-774b-bcce-b302099a8057").value();
const auto id2 = tether::local_id::parse("01890a5d-ac96-774b-bcce-b302099a8058").value();

std::vector<tether::push_op> two_ops() {
    return {tether::push_op{tether::op_kind::create, id1, std::nullopt, 0, {{"title", "memo"}}, "dev-1"},
            tether::push_op{tether::op_kind::update, id2, "s-2", 3, {{"progress", 50}}, "dev-1"}};
}

/// A push answer applying every op of the request as version 1 of server id "s-<i>".
void apply_all(const httplib::Request& req, httplib::Response& res) {
    auto decoded = protocol::decode_push_request(req.body);
    if (!decoded) {
        json_answer(res, 400, protocol::encode_error_body(decoded.error()).value());
        return;
    }
    std::vector<push_outcome> outs;
    for (std::size_t i = 0; i < decoded->ops.size(); ++i) {
        const auto& op = decoded->ops[i];
        outs.push_back({push_outcome::kind::applied,
                        {op.server_id.value_or("s-" + std::to_string(i)), op.id, op.base_version + 1, op.value,
                         std::nullopt, op.origin},
                        {},
                        false});
    }
    json_answer(res, 200, protocol::encode_push_answer(outs).value());
}

std::string header(const tether_test::seen_request& r, const std::string& name) {
    auto it = r.headers.find(name);
    return it == r.headers.end() ? std::string{} : it->second;
}

}  // namespace

TEST_CASE("push: the request on the wire and the outcomes read back", "[http][transport]") {
    scripted_server server{apply_all};
    tether::http_transport t{server.options("alice-token")};
    auto ops = two_ops();
    auto out = t.push("jobs", ops);
    REQUIRE(out);
    REQUIRE(out->size() == 2);
    CHECK((*out)[0].outcome == push_outcome::kind::applied);
    CHECK((*out)[0].record.server_id == "s-0");
    CHECK((*out)[0].record.id == id1);
    CHECK((*out)[1].record.version == 4);
    auto log = server.log();
    REQUIRE(log.size() == 1);
    CHECK(log[0].method == "POST");
    CHECK(log[0].path == "/v1/jobs/push");
    CHECK(header(log[0], "Authorization") == "Bearer alice-token");
    CHECK(header(log[0], "Content-Type") == "application/json");
    CHECK(header(log[0], "Accept") == "application/json");
    CHECK(nlohmann::json::parse(log[0].body) == nlohmann::json::parse(protocol::encode_push_request(ops).value()));
}

TEST_CASE("push: an empty batch sends nothing", "[http][transport]") {
    scripted_server server{apply_all};
    tether::http_transport t{server.options()};
    auto out = t.push("jobs", {});
    REQUIRE(out);
    CHECK(out->empty());
    CHECK(server.requests() == 0);
}

TEST_CASE("pull and fetch: the requests on the wire and the answers read back", "[http][transport]") {
    scripted_server server{[](const httplib::Request& req, httplib::Response& res) {
        if (req.path == "/v1/jobs/changes") {
            tether::pull_page page;
            page.records.push_back({"s/1 x", id1, 2, {{"title", "memo"}}, std::nullopt, "dev-2"});
            page.tombstones.push_back({"s-9", std::nullopt, 5});
            page.next_cursor = "after " + req.get_param_value("cursor");
            page.has_more = req.get_param_value("limit") == "1";
            json_answer(res, 200, protocol::encode_page(page).value());
        } else if (req.target == "/v1/jobs/records/s%2F1%20x") {
            json_answer(res, 200, protocol::encode_record({"s/1 x", id1, 2, {{"title", "memo"}}, std::nullopt, ""}).value());
        } else {
            json_answer(res, 404, R"({"error":{"code":"not_found","message":"no such record"}})");
        }
    }};
    tether::http_transport t{server.options()};
    auto page = t.pull("jobs", "c 1/&", 1);
    REQUIRE(page);
    CHECK(page->records.size() == 1);
    CHECK(page->records[0].origin == "dev-2");
    CHECK(page->tombstones.size() == 1);
    CHECK(page->next_cursor == "after c 1/&");
    CHECK(page->has_more);
    auto first = t.pull("jobs", "", 0);
    REQUIRE(first);
    CHECK(first->next_cursor == "after ");
    auto rec = t.fetch("jobs", "s/1 x");
    REQUIRE(rec);
    CHECK(rec->value["title"] == "memo");
    auto gone = t.fetch("jobs", "nope");
    REQUIRE_FALSE(gone);
    CHECK(gone.error().code == errc::not_found);
    auto log = server.log();
    REQUIRE(log.size() == 4);
    CHECK(log[0].target == "/v1/jobs/changes?cursor=c%201%2F%26&limit=1");
    CHECK(log[1].target == "/v1/jobs/changes");
    CHECK(log[2].target == "/v1/jobs/records/s%2F1%20x");
}

TEST_CASE("fetch: an answer about another record is protocol", "[http][transport]") {
    scripted_server server{[](const httplib::Request&, httplib::Response& res) {
        json_answer(res, 200, R"({"server_id":"other","version":1,"value":{}})");
    }};
    tether::http_transport t{server.options()};
    CHECK(t.fetch("jobs", "s-1").error().code == errc::protocol);
}

TEST_CASE("info: the server's version and limits", "[http][transport]") {
    scripted_server server{[](const httplib::Request& req, httplib::Response& res) {
        if (req.path != "/v1/info") return json_answer(res, 404, "{}");
        protocol::server_info info;
        info.server_limits.max_ops = 250;
        json_answer(res, 200, protocol::encode_info(info).value());
    }};
    tether::http_transport t{server.options()};
    auto info = t.info();
    REQUIRE(info);
    CHECK(info->protocol_version == 1);
    CHECK(info->server_limits.max_ops == 250);
}

TEST_CASE("a base URL's path prefix goes before every endpoint", "[http][transport]") {
    scripted_server server{apply_all};
    auto o = server.options();
    o.base_url = server.url() + "/api/sync/";
    tether::http_transport t{o};
    REQUIRE(t.push("jobs", two_ops()));
    CHECK(server.log().at(0).path == "/api/sync/v1/jobs/push");
}

TEST_CASE("malformed answers are protocol, with the status seen", "[http][transport][malformed]") {
    scripted_server server;
    tether::http_transport t{server.options()};
    auto ops = two_ops();
    for (const std::string& body : {std::string{""}, std::string{"not json"}, std::string{"[]"}, std::string{R"({"outcomes":7})"},
                                   std::string{R"({"outcomes":[{"outcome":"applied"},{"outcome":"applied"}]})"},
                                   std::string{R"({"outcomes":[{"outcome":"won","record":{"server_id":"s","version":1}},)"
                                               R"({"outcome":"rejected","error":{"code":"transient"}}]})"},
                                   std::string(200, '[') + std::string(200, ']')}) {
        INFO(body);
        server.script([body](const httplib::Request&, httplib::Response& res) { json_answer(res, 200, body); });
        auto p = t.push("jobs", ops);
        REQUIRE_FALSE(p);
        CHECK(p.error().code == errc::protocol);
        CHECK(p.error().http_status == 200);
        CHECK(t.pull("jobs", "", 5).error().code == errc::protocol);
        CHECK(t.fetch("jobs", "s").error().code == errc::protocol);
        CHECK(t.info().error().code == errc::protocol);
    }
}

TEST_CASE("an answer with the wrong number of outcomes is protocol", "[http][transport][malformed]") {
    scripted_server server{[](const httplib::Request&, httplib::Response& res) {
        json_answer(res, 200, R"({"outcomes":[{"outcome":"rejected","error":{"code":"transient","message":"x"}}]})");
    }};
    tether::http_transport t{server.options()};
    auto p = t.push("jobs", two_ops());
    REQUIRE_FALSE(p);
    CHECK(p.error().code == errc::protocol);
    CHECK_THAT(p.error().message, Catch::Contains("1 outcomes for 2 ops"));
}

TEST_CASE("an answer over max_answer_bytes is protocol", "[http][transport][malformed]") {
    scripted_server server{[](const httplib::Request&, httplib::Response& res) {
        json_answer(res, 200, R"({"records":[],"next_cursor":")" + std::string(5000, 'c') + R"(","has_more":false})");
    }};
    auto o = server.options();
    o.max_answer_bytes = 1000;
    tether::http_transport t{o};
    auto p = t.pull("jobs", "", 5);
    REQUIRE_FALSE(p);
    CHECK(p.error().code == errc::protocol);
}

TEST_CASE("401: a provider is asked for a fresh token once, and the request sent once more", "[http][transport][auth]") {
    std::atomic<int> asked{0};
    scripted_server server{[](const httplib::Request& req, httplib::Response& res) {
        if (req.get_header_value("Authorization") != "Bearer fresh-2") return json_answer(res, 401, "{}");
        apply_all(req, res);
    }};
    auto o = server.options("");
    o.token_provider = [&]() -> tether::result<std::string> { return "fresh-" + std::to_string(++asked); };
    tether::http_transport t{o};
    auto p = t.push("jobs", two_ops());
    REQUIRE(p);
    CHECK(asked == 2);
    CHECK(server.requests() == 2);
    REQUIRE(t.push("jobs", two_ops()));  // the fresh token is kept
    CHECK(asked == 2);
    CHECK(server.requests() == 3);

    // Still 401 with the fresh token: unauthorized after exactly one more try.
    server.script([](const httplib::Request&, httplib::Response& res) { json_answer(res, 401, "{}"); });
    auto denied = t.pull("jobs", "", 5);
    REQUIRE_FALSE(denied);
    CHECK(denied.error().code == errc::unauthorized);
    CHECK(denied.error().http_status == 401);
    CHECK(asked == 3);
    CHECK(server.requests() == 5);
}

TEST_CASE("401 with a fixed token is unauthorized at once", "[http][transport][auth]") {
    scripted_server server{[](const httplib::Request&, httplib::Response& res) { json_answer(res, 401, "{}"); }};
    tether::http_transport t{server.options()};
    CHECK(t.push("jobs", two_ops()).error().code == errc::unauthorized);
    CHECK(server.requests() == 1);
}

TEST_CASE("a provider that fails: its error, and nothing sent", "[http][transport][auth]") {
    scripted_server server{apply_all};
    auto o = server.options("");
    o.token_provider = []() -> tether::result<std::string> {
        return tether::unexpected{tether::make_error(errc::offline, "no network for the identity provider")};
    };
    tether::http_transport t{o};
    auto p = t.push("jobs", two_ops());
    REQUIRE_FALSE(p);
    CHECK(p.error().code == errc::offline);
    CHECK(server.requests() == 0);
}

TEST_CASE("no token: no Authorization header", "[http][transport][auth]") {
    scripted_server server{apply_all};
    tether::http_transport t{server.options("")};
    REQUIRE(t.push("jobs", two_ops()));
    CHECK(server.log().at(0).headers.count("Authorization") == 0);
}

TEST_CASE("the token never appears in an error message", "[http][transport][auth]") {
    const std::string token = "s3cr3t-T0KEN-never-logged";
    // A hostile server echoes the Authorization header everywhere it can.
    scripted_server server;
    auto o = server.options(token);
    tether::http_transport t{o};
    auto ops = two_ops();
    std::vector<std::string> messages;
    auto collect = [&](const auto& r) {
        if (!r) messages.push_back(r.error().message);
    };
    for (int status : {400, 401, 403, 404, 410, 413, 429, 500, 503}) {
        server.script([status](const httplib::Request& req, httplib::Response& res) {
            const auto echo = req.get_header_value("Authorization");
            json_answer(res, status, protocol::encode_error_body(tether::make_error(errc::rejected, "you sent " + echo)).value());
        });
        collect(t.push("jobs", ops));
        collect(t.pull("jobs", "", 5));
        collect(t.fetch("jobs", "s"));
    }
    server.script([](const httplib::Request& req, httplib::Response& res) {
        const auto echo = req.get_header_value("Authorization");
        std::vector<push_outcome> outs{
            {push_outcome::kind::rejected, {}, tether::make_error(errc::rejected, "op refused for " + echo), false},
            {push_outcome::kind::conflict, {"s-2", std::nullopt, 9, {}, std::nullopt, ""},
             tether::make_error(errc::conflict, "conflict for " + echo), false}};
        json_answer(res, 200, protocol::encode_push_answer(outs).value());
    });
    auto p = t.push("jobs", ops);
    REQUIRE(p);
    for (const auto& o2 : *p) messages.push_back(o2.failure.message);
    server.script([](const httplib::Request& req, httplib::Response& res) {  // a malformed answer quoting it
        json_answer(res, 200, R"({"outcomes":[{"outcome":"rejected","error":{"code":")" +
                                  req.get_header_value("Authorization").substr(7) + R"("}}]})");
    });
    collect(t.push("jobs", ops));
    server.script([](const httplib::Request& req, httplib::Response& res) {
        json_answer(res, 200, R"({"outcomes":[{"outcome":"rejected","error":{"code":")" +
                                  req.get_header_value("Authorization").substr(7) + R"(","retryable":true}},)"
                                  R"({"outcome":"rejected","error":{"code":"transient"}}]})");
    });
    auto q = t.push("jobs", ops);
    REQUIRE(q);
    messages.push_back(q->front().failure.message);
    // A bad token is refused without quoting it.
    auto bad = tether::http_transport::make([&] {
        auto b = o;
        b.token = token + " with a space";
        return b;
    }());
    REQUIRE_FALSE(bad);
    messages.push_back(bad.error().message);
    REQUIRE(messages.size() > 20);
    for (const auto& m : messages) {
        INFO(m);
        CHECK(m.find(token) == std::string::npos);
        CHECK(m.find("T0KEN") == std::string::npos);
    }
}

TEST_CASE("too_large without a request: more than max_batch ops, or a body over max_request_bytes", "[http][transport][limits]") {
    scripted_server server{apply_all};
    auto o = server.options();
    o.max_batch = 1;
    tether::http_transport t{o};
    auto p = t.push("jobs", two_ops());
    REQUIRE_FALSE(p);
    CHECK(p.error().code == errc::too_large);
    CHECK(p.error().http_status == 413);
    o.max_batch = 100;
    o.max_request_bytes = 100;
    tether::http_transport small{o};
    std::vector<tether::push_op> big{{tether::op_kind::create, id1, std::nullopt, 0, {{"blob", std::string(200, 'x')}}, "d"}};
    CHECK(small.push("jobs", big).error().code == errc::too_large);
    CHECK(server.requests() == 0);
    CHECK(t.max_batch() == 1);
    CHECK(small.max_batch() == 100);
}

TEST_CASE("an op whose value is not UTF-8 is rejected alone, the rest are sent", "[http][transport][limits]") {
    scripted_server server{apply_all};
    tether::http_transport t{server.options()};
    auto ops = two_ops();
    ops.insert(ops.begin() + 1, tether::push_op{tether::op_kind::create, id2, std::nullopt, 0,
                                                {{"title", std::string{"\xff\xfe"}}}, "dev-1"});
    auto out = t.push("jobs", ops);
    REQUIRE(out);
    REQUIRE(out->size() == 3);
    CHECK((*out)[0].outcome == push_outcome::kind::applied);
    CHECK((*out)[1].outcome == push_outcome::kind::rejected);
    CHECK((*out)[1].failure.code == errc::invalid_argument);
    CHECK((*out)[2].outcome == push_outcome::kind::applied);
    CHECK((*out)[2].record.id == id2);
    auto sent = protocol::decode_push_request(server.log().at(0).body);
    REQUIRE(sent);
    CHECK(sent->ops.size() == 2);
}

TEST_CASE("bad options: every call is invalid_argument, and make says why", "[http][transport][options]") {
    auto bad_with = [](auto change) {
        tether::http_options o;
        o.base_url = "http://127.0.0.1:1";
        change(o);
        return tether::http_transport::make(o);
    };
    CHECK(bad_with([](auto& o) { o.base_url = "127.0.0.1:80"; }).error().code == errc::invalid_argument);
    CHECK(bad_with([](auto& o) { o.max_batch = 0; }).error().code == errc::invalid_argument);
    CHECK(bad_with([](auto& o) {
              o.token = "t";
              o.token_provider = []() -> tether::result<std::string> { return std::string{"u"}; };
          }).error().code == errc::invalid_argument);
    CHECK(bad_with([](auto&) {}).has_value());
    tether::http_options o;
    o.base_url = "nonsense";
    tether::http_transport t{o};
    CHECK(t.push("jobs", two_ops()).error().code == errc::invalid_argument);
    CHECK(t.pull("jobs", "", 1).error().code == errc::invalid_argument);
    CHECK(t.fetch("jobs", "s").error().code == errc::invalid_argument);
    CHECK(t.info().error().code == errc::invalid_argument);
    CHECK(t.connections() == 0);
}

TEST_CASE("collection names and ids are checked before anything is sent", "[http][transport][options]") {
    scripted_server server{apply_all};
    tether::http_transport t{server.options()};
    for (const char* c : {"", "..", "a/b", "a b", "caf\xc3\xa9"}) {
        INFO(c);
        CHECK(t.push(c, two_ops()).error().code == errc::invalid_argument);
        CHECK(t.pull(c, "", 1).error().code == errc::invalid_argument);
    }
    CHECK(t.fetch("jobs", "").error().code == errc::invalid_argument);
    CHECK(t.pull("jobs", std::string(2000, 'c'), 1).error().code == errc::invalid_argument);
    CHECK(server.requests() == 0);
}

TEST_CASE("gzip: bodies over the threshold go gzipped, gzipped answers are read", "[http][transport][gzip]") {
    if (!tether::http::gzip_available) {
        WARN("cpp-httplib without zlib: gzip not tested");
        return;
    }
    scripted_server server{apply_all};
    auto o = server.options();
    o.gzip_above = 1000;
    tether::http_transport t{o};
    std::vector<tether::push_op> big{{tether::op_kind::create, id1, std::nullopt, 0, {{"blob", std::string(5000, 'x')}}, "d"}};
    REQUIRE(t.push("jobs", big));
    REQUIRE(t.push("jobs", two_ops()));
    auto log = server.log();
    REQUIRE(log.size() == 2);
    CHECK(header(log[0], "Content-Encoding") == "gzip");
    CHECK(protocol::decode_push_request(log[0].body)->ops.at(0).value["blob"] == std::string(5000, 'x'));
    CHECK(header(log[1], "Content-Encoding").empty());  // under the threshold
    CHECK(header(log[1], "Accept-Encoding") == "gzip");

    // A gzipped answer (octet-stream, so the server does not compress it again).
    tether::pull_page sent_page;
    sent_page.records.push_back({"s-1", std::nullopt, 1, {{"blob", std::string(3000, 'z')}}, std::nullopt, ""});
    sent_page.next_cursor = "c-1";
    const auto page = protocol::encode_page(sent_page).value();
    const auto zipped = tether::http::gzip(page).value();
    server.script([zipped](const httplib::Request&, httplib::Response& res) {
        res.status = 200;
        res.set_header("Content-Encoding", "gzip");
        res.set_content(zipped, "application/octet-stream");
    });
    auto p = t.pull("jobs", "", 5);
    INFO((p ? std::string{} : p.error().message));
    REQUIRE(p);
    CHECK(p->records.at(0).value["blob"] == std::string(3000, 'z'));
}

TEST_CASE("gzip: a server answering 415 gets the body again plain, and plain from then on", "[http][transport][gzip]") {
    if (!tether::http::gzip_available) {
        WARN("cpp-httplib without zlib: gzip not tested");
        return;
    }
    scripted_server server{[](const httplib::Request& req, httplib::Response& res) {
        if (req.has_header("Content-Encoding")) return json_answer(res, 415, "{}");
        apply_all(req, res);
    }};
    auto o = server.options();
    o.gzip_above = 10;
    tether::http_transport t{o};
    REQUIRE(t.push("jobs", two_ops()));
    REQUIRE(t.push("jobs", two_ops()));
    auto log = server.log();
    REQUIRE(log.size() == 3);
    CHECK(header(log[0], "Content-Encoding") == "gzip");
    CHECK(header(log[1], "Content-Encoding").empty());
    CHECK(header(log[2], "Content-Encoding").empty());
}

TEST_CASE("threads: pushes, pulls and fetches from several threads run at once on the pool", "[http][transport][threads]") {
    constexpr std::size_t pool = 4;
    std::mutex m;
    std::condition_variable cv;
    std::size_t in_flight = 0;
    std::size_t most = 0;
    scripted_server server{[&](const httplib::Request& req, httplib::Response& res) {
        {
            std::unique_lock lock{m};
            ++in_flight;
            most = std::max(most, in_flight);
            cv.notify_all();
            // The first requests wait (bounded) until the pool's worth run at once.
            cv.wait_for(lock, 10s, [&] { return most >= pool; });
            --in_flight;
        }
        if (req.method == "POST") return apply_all(req, res);
        if (req.path.find("/records/") != std::string::npos)
            return json_answer(res, 200, protocol::encode_record({req.path.substr(req.path.rfind('/') + 1), std::nullopt, 1, {}, std::nullopt, ""}).value());
        json_answer(res, 200, R"({"records":[],"tombstones":[],"next_cursor":"c","has_more":false})");
    }};
    auto o = server.options();
    o.pool_size = pool;
    const tether::http_transport shared{o};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
        threads.emplace_back([&, i, t = shared]() mutable {  // each thread its own copy: one pool
            for (int k = 0; k < 10; ++k) {
                bool ok = false;
                switch ((i + k) % 3) {
                    case 0: {
                        auto r = t.push("jobs", two_ops());
                        ok = r && r->size() == 2 && (*r)[1].record.server_id == "s-2";
                        break;
                    }
                    case 1: ok = t.pull("jobs", "", 10).has_value(); break;
                    default: {
                        auto r = t.fetch("jobs", "rec-" + std::to_string(i));
                        ok = r && r->server_id == "rec-" + std::to_string(i);
                    }
                }
                if (!ok) ++failures;
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(failures == 0);
    CHECK(most == pool);
    CHECK(server.requests() == 80);
    CHECK(shared.connections() == pool);
}
