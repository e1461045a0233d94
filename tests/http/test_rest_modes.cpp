// rest_transport's version and time modes against versioned_api
// (rest_servers.hpp) and a scripted server: opaque ETags (in the header or a
// body field, kept by the transport, fetched again when forgotten, 412 as a
// conflict, a server that leaves them out), the version read from a body field
// and sent back in one, and `updatedAt` as unix milliseconds or seconds, with
// malformed and out-of-range values refused for their item.
#include "http/rest_mappings.hpp"
#include "http/rest_servers.hpp"
#include "http/scripted_server.hpp"

#include <tether/transport/rest.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

using tether::errc;
using tether::op_kind;
using tether::push_op;
using tether::push_outcome;
using tether::rest_time_format;
using tether_test::json_answer;

namespace {

tether::local_id lid(int n) {
    char text[40];
    std::snprintf(text, sizeof text, "01890a5d-ac96-774b-bcce-%012d", n);
    return tether::local_id::parse(text).value();
}

push_op create(int n, nlohmann::json v) { return push_op{op_kind::create, lid(n), std::nullopt, 0, std::move(v), "dev"}; }
push_op update(int n, const std::string& sid, std::uint64_t base, nlohmann::json v) {
    return push_op{op_kind::update, lid(n), sid, base, std::move(v), "dev"};
}
push_op remove(int n, const std::string& sid, std::uint64_t base) {
    return push_op{op_kind::remove, lid(n), sid, base, nullptr, "dev"};
}

nlohmann::json job(const std::string& title, int progress = 0) {
    return {{"title", title}, {"progress", progress}, {"audio_path", "a.wav"}};
}

/// The versioned mapping with opaque ETags for versions (`field`: in a body field, else the header).
tether::rest_mapping opaque_mapping(const std::string& field = {}) {
    auto m = tether_test::versioned_mapping();
    m.version_field.clear();  // the engine's number: updatedAt in ms
    m.opaque_etag = true;
    m.etag_field = field;
    return m;
}

push_outcome one(tether::rest_transport& t, push_op op) {
    std::vector<push_op> ops{std::move(op)};
    auto out = t.push("jobs", ops);
    REQUIRE(out);
    REQUIRE(out->size() == 1);
    return (*out)[0];
}

}  // namespace

TEST_CASE("rest: opaque ETags go back in If-Match, 412 and a stale base are conflicts", "[http][rest][etag]") {
    tether_test::versioned_api api{{.tick = true, .opaque_etags = true}};
    tether::rest_transport t{tether_test::rest_options_for(api.url(), opaque_mapping())};
    auto made = one(t, create(1, job("memo")));
    REQUIRE(made.outcome == push_outcome::kind::applied);
    const auto sid = made.record.server_id;
    const auto v1 = made.record.version;
    CHECK(v1 == 1'780'000'000'001u);  // updatedAt in ms: the tag itself is no number
    CHECK(api.etag(sid).rfind("W/\"" + sid + "-", 0) == 0);

    auto upd = one(t, update(1, sid, v1, {{"progress", 5}}));  // the server requires If-Match: it matched
    REQUIRE(upd.outcome == push_outcome::kind::applied);
    const auto v2 = upd.record.version;
    CHECK(v2 > v1);
    CHECK(api.records().at(sid)["progress"] == 5);

    const auto before = api.requests();
    auto stale = one(t, update(1, sid, v1, {{"progress", 6}}));  // the tag of v1 is not kept: fetched, changed
    CHECK(stale.outcome == push_outcome::kind::conflict);
    CHECK(stale.record.version == v2);
    CHECK(stale.record.value["progress"] == 5);
    CHECK(api.requests() == before + 1);  // a GET, no write
    CHECK(api.records().at(sid)["progress"] == 5);

    api.edit(sid, "progress", 9);  // behind the transport's back: the kept tag is stale
    auto raced = one(t, update(1, sid, v2, {{"progress", 7}}));
    REQUIRE(raced.outcome == push_outcome::kind::conflict);  // 412 with the current copy
    CHECK(raced.record.value["progress"] == 9);
    CHECK(api.records().at(sid)["progress"] == 9);

    CHECK(one(t, remove(1, sid, v2)).outcome == push_outcome::kind::conflict);  // a delete on a stale tag
    CHECK(api.live() == 1);
    auto gone = one(t, remove(1, sid, raced.record.version));
    CHECK(gone.outcome == push_outcome::kind::applied);
    CHECK(api.live() == 0);
}

TEST_CASE("rest: a transport that forgot the tags fetches the record once, then writes on its tag", "[http][rest][etag]") {
    tether_test::versioned_api api{{.tick = true, .opaque_etags = true}};
    const auto o = tether_test::rest_options_for(api.url(), opaque_mapping());
    tether::rest_transport first{o};
    auto made = one(first, create(1, job("memo")));
    REQUIRE(made.outcome == push_outcome::kind::applied);
    tether::rest_transport restarted{o};  // a new process: no tags kept
    const auto before = api.requests();
    auto upd = one(restarted, update(1, made.record.server_id, made.record.version, {{"progress", 3}}));
    CHECK(upd.outcome == push_outcome::kind::applied);
    CHECK(api.requests() == before + 2);  // GET for the tag, PATCH
    auto again = one(restarted, update(1, made.record.server_id, upd.record.version, {{"progress", 4}}));
    CHECK(again.outcome == push_outcome::kind::applied);
    CHECK(api.requests() == before + 3);  // the answer's tag was kept
    auto copy = restarted;  // copies share the tags
    CHECK(one(copy, update(1, made.record.server_id, again.record.version, {{"progress", 5}})).outcome ==
          push_outcome::kind::applied);
    CHECK(api.requests() == before + 4);
}

TEST_CASE("rest: opaque ETags in a body field: listed records carry theirs", "[http][rest][etag]") {
    tether_test::versioned_api api{{.tick = true, .opaque_etags = true, .etag_header = false, .etag_in_body = true}};
    const auto o = tether_test::rest_options_for(api.url(), opaque_mapping("etag"));
    tether::rest_transport writer{o};
    auto made = one(writer, create(1, job("memo")));
    REQUIRE(made.outcome == push_outcome::kind::applied);
    CHECK_FALSE(made.record.value.contains("etag"));  // the tag is the transport's, not the entity's

    tether::rest_transport reader{o};
    auto page = reader.pull("jobs", "", 10);
    REQUIRE(page);
    REQUIRE(page->records.size() == 1);
    CHECK_FALSE(page->records[0].value.contains("etag"));
    const auto before = api.requests();
    auto upd = one(reader, update(2, made.record.server_id, page->records[0].version, {{"progress", 8}}));
    CHECK(upd.outcome == push_outcome::kind::applied);
    CHECK(api.requests() == before + 1);  // the listed tag went back: no fetch
}

TEST_CASE("rest: an answer without the ETag the mapping requires is an error for that item", "[http][rest][etag]") {
    SECTION("no ETag header") {
        tether_test::versioned_api api{{.tick = true, .opaque_etags = true, .etag_header = false}};
        tether::rest_transport t{tether_test::rest_options_for(api.url(), opaque_mapping())};
        std::vector<push_op> ops{create(1, job("a")), create(2, job("b"))};
        auto out = t.push("jobs", ops);
        REQUIRE(out);  // not the batch: each op
        REQUIRE(out->size() == 2);
        for (const auto& o : *out) {
            CHECK(o.outcome == push_outcome::kind::rejected);
            CHECK(o.failure.code == errc::protocol);
            CHECK(o.failure.message.find("ETag") != std::string::npos);
        }
        const auto sid = api.records().begin()->first;
        CHECK(t.fetch("jobs", sid).error().code == errc::protocol);
        CHECK(t.pull("jobs", "", 10));  // a list has no headers: its records need none
    }
    SECTION("no ETag field, an empty one, or one that cannot go back in a header") {
        const auto bad = GENERATE(as<std::string>{}, R"("etag":null)", R"("etag":"")", R"("etag":7)",
                                  R"("etag":"\"a\"\r\nX-Injected: 1")");
        std::string rec = R"({"id":"t1","title":"x","updatedAt":"2026-12-03T10:00:00.000Z")";
        if (!bad.empty()) rec += "," + bad;
        rec += "}";
        tether_test::scripted_server server{[rec](const httplib::Request&, httplib::Response& res) {
            json_answer(res, 200, R"({"data":[)" + rec + "]}");
        }};
        tether::rest_transport t{tether_test::rest_options_for(server.url(), opaque_mapping("etag"))};
        auto page = t.pull("jobs", "", 10);  // refused for that record alone: the page is no error
        REQUIRE(page);
        CHECK(page->records.empty());
        REQUIRE(page->refused.size() == 1);
        CHECK(page->refused[0].server_id == "t1");
        CHECK(page->refused[0].why.find("ETag") != std::string::npos);
    }
}

TEST_CASE("rest: opaque ETags, the codec and the mapping's checks", "[http][rest][etag]") {
    const auto m = opaque_mapping();
    const nlohmann::json rec = {{"id", "t1"}, {"updatedAt", "2026-12-03T10:00:00.000Z"}, {"title", "x"}};
    auto strong = tether::rest::decode_item(rec, m, "\"xyzzy\"");
    REQUIRE(strong);
    CHECK(strong->etag == "\"xyzzy\"");
    CHECK(strong->record.version == 1'796'292'000'000u);
    CHECK(tether::rest::decode_item(rec, m, "W/\"a b\"")->etag == "W/\"a b\"");
    CHECK_FALSE(tether::rest::decode_item(rec, m, ""));
    CHECK_FALSE(tether::rest::decode_item(rec, m, "\"a\"\n"));
    CHECK_FALSE(tether::rest::decode_item(rec, m, std::string(tether::rest::max_etag_bytes + 1, 'a')));
    CHECK(tether::rest::decode_item(rec, m, std::string(tether::rest::max_etag_bytes, 'a')));
    CHECK(tether::rest::decode_item(rec, m, {}, true)->etag.empty());  // listed, no field: fetched when needed

    const std::string url = "http://127.0.0.1:9";
    auto bad = opaque_mapping();
    bad.version_from_etag = true;
    CHECK(tether::rest_transport::make(tether_test::rest_options_for(url, bad)).error().code == errc::invalid_argument);
    bad = opaque_mapping();
    bad.version_field = "version";
    bad.send_version = tether::rest_version_send::body_field;
    CHECK_FALSE(tether::rest_transport::make(tether_test::rest_options_for(url, bad)));
    bad = tether_test::versioned_mapping();
    bad.etag_field = "etag";
    CHECK_FALSE(tether::rest_transport::make(tether_test::rest_options_for(url, bad)));
    auto with_version = opaque_mapping();
    with_version.version_field = "version";  // a numeric version beside the tag
    CHECK(tether::rest_transport::make(tether_test::rest_options_for(url, with_version)));
}

TEST_CASE("rest: the version read from a body field and sent back in it", "[http][rest]") {
    tether_test::versioned_api api{{.etag_header = false, .version_in_body = true}};  // no ETag to read it from
    auto m = tether_test::versioned_mapping();
    m.send_version = tether::rest_version_send::body_field;
    tether::rest_transport t{tether_test::rest_options_for(api.url(), m)};
    auto made = one(t, create(1, job("memo")));
    REQUIRE(made.outcome == push_outcome::kind::applied);
    CHECK(made.record.version == 1);
    const auto sid = made.record.server_id;
    auto upd = one(t, update(1, sid, 1, {{"progress", 5}}));
    REQUIRE(upd.outcome == push_outcome::kind::applied);
    CHECK(upd.record.version == 2);
    auto stale = one(t, update(1, sid, 1, {{"progress", 6}}));
    CHECK(stale.outcome == push_outcome::kind::conflict);  // the body's version 1 is stale: 412
    CHECK(stale.record.version == 2);
    CHECK(api.records().at(sid)["progress"] == 5);
    CHECK(one(t, remove(1, sid, 2)).outcome == push_outcome::kind::applied);  // If-Match "2" on the DELETE
    CHECK(api.live() == 0);

    tether_test::scripted_server server{[](const httplib::Request&, httplib::Response& res) {
        res.set_header("ETag", "\"3\"");  // not read: the mapping names a field
        json_answer(res, 200, R"({"id":"t1","version":"3","updatedAt":"2026-12-03T10:00:00.000Z"})");
    }};
    tether::rest_transport bad{tether_test::rest_options_for(server.url(), m)};
    auto e = bad.fetch("jobs", "t1");
    REQUIRE_FALSE(e);
    CHECK(e.error().code == errc::protocol);
    CHECK(e.error().message.find("'version'") != std::string::npos);
}

TEST_CASE("rest: updatedAt in unix ms or s: pages, ties and the watermark in the server's format", "[http][rest][time]") {
    const auto format = GENERATE(rest_time_format::unix_ms, rest_time_format::unix_s);
    tether_test::versioned_api api{{.cursor_paging = false, .time_format = format}};
    auto m = tether_test::versioned_mapping();
    m.updated_at_format = format;
    m.paging = tether::rest_paging::none;
    m.after_id_param = "afterId";
    tether::rest_transport t{tether_test::rest_options_for(api.url(), m)};
    api.set_time(1'780'000'000'250);
    for (int i = 0; i < 5; ++i) api.insert({{"title", "tie " + std::to_string(i)}});  // one time
    api.advance(1001);
    for (int i = 0; i < 3; ++i) api.insert({{"title", "later " + std::to_string(i)}});
    const auto first = api.records().begin()->first;
    CHECK(api.records().at(first)["updatedAt"].is_number_integer() == (format == rest_time_format::unix_ms));

    std::set<std::string> seen;
    std::string cursor;
    for (int pages = 0; pages < 20; ++pages) {
        auto page = t.pull("jobs", cursor, 2);
        REQUIRE(page);
        for (const auto& r : page->records) CHECK(seen.insert(r.server_id).second);  // each once
        cursor = page->next_cursor;
        if (!page->has_more) break;
    }
    CHECK(seen.size() == 8);
    auto quiet = t.pull("jobs", cursor, 10);
    REQUIRE(quiet);
    CHECK(quiet->records.empty());  // the ties at the watermark came again and were dropped

    api.advance(1);
    api.edit(first, "progress", 3);
    auto next = t.pull("jobs", quiet->next_cursor, 10);
    REQUIRE(next);
    REQUIRE(next->records.size() == 1);
    CHECK(next->records[0].server_id == first);
    CHECK(next->records[0].value["progress"] == 3);
}

TEST_CASE("rest: unix times decode to the millisecond, malformed and out-of-range ones are refused", "[http][rest][time]") {
    auto at = [](const nlohmann::json& t, rest_time_format f) { return tether::rest::parse_time(t, f); };
    CHECK(at(1'780'000'000'123, rest_time_format::unix_ms)->ns == 1'780'000'000'123'000'000);
    CHECK(at(1'780'000'000'123.5, rest_time_format::unix_ms)->ns == 1'780'000'000'123'500'000);
    CHECK(at(1'780'000'000, rest_time_format::unix_s)->ns == 1'780'000'000'000'000'000);
    CHECK(at(1'780'000'000.123, rest_time_format::unix_s)->ns == 1'780'000'000'123'000'000);
    CHECK(at(1'780'000'000.123, rest_time_format::unix_s)->text == "1780000000.123");
    CHECK(at(-1.5, rest_time_format::unix_s)->ns == -1'500'000'000);
    CHECK(at(0, rest_time_format::unix_ms)->ns == 0);
    CHECK(at(9'200'000'000'000, rest_time_format::unix_ms));
    CHECK(at(9'200'000'000, rest_time_format::unix_s));
    for (const auto f : {rest_time_format::unix_ms, rest_time_format::unix_s}) {
        for (const auto& bad : {nlohmann::json("1780000000"), nlohmann::json(true), nlohmann::json(nullptr),
                                nlohmann::json::array({1}), nlohmann::json::object(), nlohmann::json(1e300),
                                nlohmann::json(-1e300), nlohmann::json(18'446'744'073'709'551'615u)}) {
            CHECK_FALSE(at(bad, f));
        }
    }
    CHECK_FALSE(at(9'300'000'000'000, rest_time_format::unix_ms));
    CHECK_FALSE(at(-9'300'000'000'000, rest_time_format::unix_ms));
    CHECK_FALSE(at(9'300'000'000, rest_time_format::unix_s));
    CHECK_FALSE(at(9.3e9, rest_time_format::unix_s));
    CHECK_FALSE(at("2026-12-03T10:00:00Z", rest_time_format::unix_ms));
    // Found by the rest_page fuzz target: a year beyond 2261 overflowed the nanoseconds.
    CHECK_FALSE(at("4052-12-03T14:05:09.123Z", rest_time_format::iso8601));
    CHECK_FALSE(at("0000-01-01T00:00:00Z", rest_time_format::iso8601));
    CHECK(at("2200-01-01T00:00:00Z", rest_time_format::iso8601));
    CHECK(at("1700-01-01T00:00:00Z", rest_time_format::iso8601));
    CHECK_FALSE(at(1'780'000'000'000, rest_time_format::iso8601));

    // Over the wire: each record's own error.
    auto m = tether_test::versioned_mapping();
    m.updated_at_format = rest_time_format::unix_s;
    tether_test::scripted_server server{[](const httplib::Request& req, httplib::Response& res) {
        if (req.method == "POST") {
            const bool first = nlohmann::json::parse(req.body).value("title", "") == "a";
            json_answer(res, 201, first ? R"({"id":"t1","version":1,"updatedAt":"soon"})"
                                        : R"({"id":"t2","version":1,"updatedAt":1780000000.5})");
            return;
        }
        json_answer(res, 200, R"({"data":[{"id":"t2","version":1,"updatedAt":1780000000.5},)"
                              R"({"id":"t3","version":1,"updatedAt":9.3e9}]})");
    }};
    tether::rest_transport t{tether_test::rest_options_for(server.url(), m)};
    std::vector<push_op> ops{create(1, job("a")), create(2, job("b"))};
    auto out = t.push("jobs", ops);
    REQUIRE(out);
    REQUIRE(out->size() == 2);
    CHECK((*out)[0].outcome == push_outcome::kind::rejected);
    CHECK((*out)[0].failure.code == errc::protocol);
    CHECK((*out)[0].failure.message.find("'updatedAt'") != std::string::npos);
    CHECK((*out)[1].outcome == push_outcome::kind::applied);
    auto page = t.pull("jobs", "", 10);  // the record whose time is out of range is refused alone
    REQUIRE(page);
    REQUIRE(page->records.size() == 1);
    CHECK(page->records[0].server_id == "t2");
    REQUIRE(page->refused.size() == 1);
    CHECK(page->refused[0].server_id == "t3");
    CHECK(page->refused[0].index == 1);
    CHECK(page->refused[0].why.find("'updatedAt'") != std::string::npos);
}
