// rest_transport on its own against the two REST styles (rest_servers.hpp) and
// a scripted server: what goes on the wire, statuses, a batch cut short, a
// create whose answer was lost, the watermark's ties, malformed answers.
#include "http/rest_mappings.hpp"
#include "http/rest_servers.hpp"
#include "http/scripted_server.hpp"

#include <tether/transport/rest.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

using tether::errc;
using tether::op_kind;
using tether::push_op;
using tether::push_outcome;
using tether_test::json_answer;

namespace {

tether::local_id lid(int n) {
    char text[40];
    std::snprintf(text, sizeof text, "01890a5d-ac96-774b-bcce-%012d", n);
    return tether::local_id::parse(text).value();
}

push_op create(int n, nlohmann::json v) { return push_op{op_kind::create, lid(n), std::nullopt, 0, std::move(v), "dev"}; }

nlohmann::json job(const std::string& title, int progress = 0, const std::string& audio = "a.wav") {
    return {{"title", title}, {"progress", progress}, {"audio_path", audio}};
}

}  // namespace

TEST_CASE("rest: style (a) create, update, delete on the wire", "[http][rest]") {
    tether_test::minimal_api api{{.store_client_id = true}};
    tether::rest_transport t{tether_test::rest_options_for(api.url(), tether_test::minimal_mapping())};
    CHECK_FALSE(t.has_change_feed());
    std::vector<push_op> ops{create(1, job("memo")), create(2, job("notes"))};
    auto out = t.push("jobs", ops);
    REQUIRE(out);
    REQUIRE(out->size() == 2);
    CHECK((*out)[0].outcome == push_outcome::kind::applied);
    CHECK((*out)[0].record.server_id == "1");
    CHECK((*out)[1].record.server_id == "2");
    CHECK((*out)[0].record.id == lid(1));
    CHECK((*out)[0].record.value["audio_path"] == "a.wav");  // renamed back
    auto rows = api.records();
    CHECK(rows.at("1")["audioUrl"] == "a.wav");
    CHECK(rows.at("1")["clientId"] == lid(1).to_string());
    CHECK_FALSE(rows.at("1").contains("audio_path"));

    std::vector<push_op> upd{push_op{op_kind::update, lid(1), "1", 1, {{"progress", 40}}, "dev"}};
    out = t.push("jobs", upd);
    REQUIRE(out);
    CHECK((*out)[0].outcome == push_outcome::kind::applied);
    CHECK(api.records().at("1")["progress"] == 40);
    CHECK(api.records().at("1")["title"] == "memo");

    std::vector<push_op> del{push_op{op_kind::remove, lid(2), "2", 1, nullptr, "dev"}};
    out = t.push("jobs", del);
    REQUIRE(out);
    CHECK((*out)[0].outcome == push_outcome::kind::applied);
    CHECK_FALSE(api.records().contains("2"));
    out = t.push("jobs", del);  // already gone: done
    REQUIRE(out);
    CHECK((*out)[0].outcome == push_outcome::kind::applied);

    auto page = t.pull("jobs", "", 100);
    REQUIRE(page);
    REQUIRE(page->records.size() == 1);
    CHECK(page->records[0].id == lid(1));
    CHECK_FALSE(page->has_more);
    auto f = t.fetch("jobs", "1");
    REQUIRE(f);
    CHECK(f->value["progress"] == 40);
    CHECK(t.fetch("jobs", "2").error().code == errc::not_found);

    std::vector<push_op> gone{push_op{op_kind::update, lid(2), "2", 1, {{"progress", 1}}, "dev"}};
    out = t.push("jobs", gone);
    REQUIRE(out);
    CHECK((*out)[0].outcome == push_outcome::kind::rejected);
    CHECK((*out)[0].failure.code == errc::not_found);
    std::vector<push_op> invalid{create(3, {{"progress", 1}})};  // 422: no title
    out = t.push("jobs", invalid);
    REQUIRE(out);
    CHECK((*out)[0].outcome == push_outcome::kind::rejected);
    CHECK((*out)[0].failure.code == errc::rejected);
    CHECK((*out)[0].failure.http_status == 422);
}

TEST_CASE("rest: a create whose answer was lost is looked up, not made twice", "[http][rest]") {
    SECTION("by the client-id field") {
        tether_test::minimal_api api{{.store_client_id = true}};
        tether::rest_transport t{tether_test::rest_options_for(api.url(), tether_test::minimal_mapping())};
        api.lose_next_answer();
        std::vector<push_op> ops{create(1, job("memo"))};
        auto out = t.push("jobs", ops);
        REQUIRE_FALSE(out);
        CHECK(out.error().code == errc::transient);
        ops[0].resent = true;
        out = t.push("jobs", ops);
        REQUIRE(out);
        CHECK((*out)[0].outcome == push_outcome::kind::applied);
        CHECK((*out)[0].replayed);
        CHECK((*out)[0].record.server_id == "1");
        CHECK(api.records().size() == 1);
    }
    SECTION("by the client-chosen id, on a server that answers a duplicate with 500 or 409") {
        const int status = GENERATE(500, 409);
        tether_test::minimal_api api{{.client_ids = true, .duplicate_status = status}};
        tether::rest_transport t{tether_test::rest_options_for(api.url(), tether_test::minimal_client_id_mapping())};
        api.lose_next_answer();
        std::vector<push_op> ops{create(1, job("memo"))};
        REQUIRE_FALSE(t.push("jobs", ops));
        auto again = t.push("jobs", ops);  // not marked resent (a restart lost the mark): the refusal is settled
        REQUIRE(again);
        CHECK((*again)[0].outcome == push_outcome::kind::applied);
        CHECK((*again)[0].replayed);
        CHECK((*again)[0].record.server_id == lid(1).to_string());
        CHECK(api.records().size() == 1);
        ops[0].value["title"] = "memo (edited since)";  // found, but not what is sent now: a conflict
        ops[0].resent = true;
        again = t.push("jobs", ops);
        REQUIRE(again);
        CHECK((*again)[0].outcome == push_outcome::kind::conflict);
        CHECK((*again)[0].record.value["title"] == "memo");
    }
    SECTION("by Idempotency-Key on a versioned API") {
        tether_test::versioned_api api;
        tether::rest_transport t{tether_test::rest_options_for(api.url(), tether_test::versioned_mapping())};
        api.lose_next_answer();
        std::vector<push_op> ops{create(1, job("memo"))};
        REQUIRE_FALSE(t.push("jobs", ops));
        ops[0].resent = true;
        auto out = t.push("jobs", ops);
        REQUIRE(out);
        CHECK((*out)[0].outcome == push_outcome::kind::applied);
        CHECK(api.records().size() == 1);
    }
}

TEST_CASE("rest: one request per op, a connection lost mid-batch fails only the rest", "[http][rest]") {
    tether_test::minimal_api api{{.store_client_id = true}};
    tether::rest_transport t{tether_test::rest_options_for(api.url(), tether_test::minimal_mapping())};
    api.lose_next_answer(1);  // the second create's answer
    std::vector<push_op> ops{create(1, job("a")), create(2, job("b")), create(3, job("c"))};
    auto out = t.push("jobs", ops);
    REQUIRE(out);
    REQUIRE(out->size() == 3);
    CHECK((*out)[0].outcome == push_outcome::kind::applied);
    CHECK((*out)[1].outcome == push_outcome::kind::rejected);
    CHECK((*out)[1].failure.code == errc::transient);
    CHECK((*out)[2].outcome == push_outcome::kind::rejected);
    CHECK((*out)[2].failure.code == errc::transient);
    CHECK(api.records().size() == 2);  // the third was never sent

    std::vector<push_op> bad{create(4, job(std::string{"\xff\xfe"})), create(5, job("fine"))};
    out = t.push("jobs", bad);  // a value that is not UTF-8 fails alone, unsent
    REQUIRE(out);
    CHECK((*out)[0].outcome == push_outcome::kind::rejected);
    CHECK((*out)[0].failure.code == errc::invalid_argument);
    CHECK((*out)[1].outcome == push_outcome::kind::applied);
}

TEST_CASE("rest: style (b) versions, If-Match, 412 with the server's copy, soft deletes", "[http][rest]") {
    tether_test::versioned_api api;
    tether::rest_transport t{tether_test::rest_options_for(api.url(), tether_test::versioned_mapping())};
    CHECK(t.has_change_feed());
    std::vector<push_op> ops{create(1, job("", 0, "x.wav"))};
    auto out = t.push("jobs", ops);
    REQUIRE(out);
    REQUIRE((*out)[0].outcome == push_outcome::kind::applied);
    const auto sid = (*out)[0].record.server_id;
    CHECK((*out)[0].record.version == 1);
    CHECK((*out)[0].record.value["title"] == "untitled");  // filled in by the server
    CHECK((*out)[0].record.value["audio_path"] == "x.wav");
    CHECK(api.records().at(sid)["media"]["audioUrl"] == "x.wav");  // a nested rename

    std::vector<push_op> upd{push_op{op_kind::update, lid(1), sid, 1, {{"progress", 5}}, "dev"}};
    out = t.push("jobs", upd);
    REQUIRE(out);
    CHECK((*out)[0].outcome == push_outcome::kind::applied);
    CHECK((*out)[0].record.version == 2);
    out = t.push("jobs", upd);  // stale: version 1 again
    REQUIRE(out);
    CHECK((*out)[0].outcome == push_outcome::kind::conflict);
    CHECK((*out)[0].record.version == 2);
    CHECK((*out)[0].record.value["progress"] == 5);

    api.advance(1000);
    api.erase(sid);
    auto page = t.pull("jobs", "", 10);
    REQUIRE(page);
    CHECK(page->records.empty());
    REQUIRE(page->tombstones.size() == 1);
    CHECK(page->tombstones[0].server_id == sid);
    CHECK(t.fetch("jobs", sid).error().code == errc::not_found);
}

TEST_CASE("rest: the watermark's ties are asked for again and dropped, one timestamp never loops", "[http][rest]") {
    const bool cursor = GENERATE(true, false);
    const bool after_id = GENERATE(true, false);
    if (cursor && !after_id) return;  // the server's cursor pages by itself
    tether_test::versioned_api api{{.cursor_paging = cursor}};
    auto m = tether_test::versioned_mapping();
    if (!cursor) m.paging = tether::rest_paging::none;
    if (after_id) m.after_id_param = "afterId";
    tether::rest_transport t{tether_test::rest_options_for(api.url(), m)};
    for (int i = 0; i < 23; ++i) api.insert(job("same time " + std::to_string(i)));  // one timestamp
    std::set<std::string> seen;
    std::string from;
    for (int pages = 0;; ++pages) {
        REQUIRE(pages < 20);
        auto page = t.pull("jobs", from, 5);
        REQUIRE(page);
        for (const auto& r : page->records) CHECK(seen.insert(r.server_id).second);  // no duplicates
        if (page->has_more) REQUIRE(page->next_cursor != from);
        from = page->next_cursor;
        if (!page->has_more) break;
    }
    CHECK(seen.size() == 23);
    auto again = t.pull("jobs", from, 5);  // nothing new: the ties at the watermark are dropped
    REQUIRE(again);
    CHECK(again->records.empty());
    api.insert(job("same time, later"));  // still the same timestamp
    api.advance(1);
    api.insert(job("a millisecond later"));
    std::size_t fresh = 0;
    for (int pages = 0;; ++pages) {
        REQUIRE(pages < 20);
        auto page = t.pull("jobs", from, 5);
        REQUIRE(page);
        for (const auto& r : page->records) {
            CHECK(seen.insert(r.server_id).second);
            ++fresh;
        }
        from = page->next_cursor;
        if (!page->has_more) break;
    }
    CHECK(fresh == 2);
}

TEST_CASE("rest: malformed and unexpected answers are protocol errors with the status and an excerpt", "[http][rest]") {
    tether_test::scripted_server server;
    auto o = tether_test::rest_options_for(server.url(), tether_test::minimal_mapping());
    tether::rest_transport t{o};
    auto check_protocol = [](const tether::error& e, int status, const std::string& bit) {
        CHECK(e.code == errc::protocol);
        CHECK(e.http_status == status);
        CHECK(e.message.find(bit) != std::string::npos);
    };
    server.script([](const httplib::Request&, httplib::Response& res) { json_answer(res, 200, "<html>oops</html>"); });
    check_protocol(t.pull("jobs", "", 10).error(), 200, "<html>oops");
    check_protocol(t.fetch("jobs", "1").error(), 200, "<html>oops");
    server.script([](const httplib::Request&, httplib::Response& res) { json_answer(res, 200, R"({"items":[]})"); });
    check_protocol(t.pull("jobs", "", 10).error(), 200, "no array");
    // One record without an id is refused alone: the page is no error.
    server.script([](const httplib::Request&, httplib::Response& res) { json_answer(res, 200, R"([{"title":"x"}])"); });
    auto one_bad = t.pull("jobs", "", 10);
    REQUIRE(one_bad);
    CHECK(one_bad->records.empty());
    REQUIRE(one_bad->refused.size() == 1);
    CHECK(one_bad->refused[0].server_id.empty());
    CHECK(one_bad->refused[0].index == 0);
    CHECK(one_bad->refused[0].why.find("no usable id") != std::string::npos);
    server.script([](const httplib::Request&, httplib::Response& res) { json_answer(res, 200, R"({"title":"x"})"); });
    check_protocol(t.fetch("jobs", "1").error(), 200, "no usable id");
    server.script([](const httplib::Request&, httplib::Response& res) { json_answer(res, 200, R"({"id":7})"); });
    check_protocol(t.fetch("jobs", "1").error(), 200, "another record");
    server.script([](const httplib::Request&, httplib::Response& res) { json_answer(res, 201, R"({"id":[1]})"); });
    std::vector<push_op> ops{create(1, job("memo"))};
    auto out = t.push("jobs", ops);
    REQUIRE(out);
    CHECK((*out)[0].outcome == push_outcome::kind::rejected);
    check_protocol((*out)[0].failure, 201, "no usable id");
    server.script([](const httplib::Request&, httplib::Response& res) { json_answer(res, 404, R"({})"); });
    CHECK(t.fetch("jobs", "1").error().code == errc::not_found);
    CHECK(t.pull("jobs", "not a cursor", 10).error().code == errc::cursor_expired);
}

TEST_CASE("rest: status overrides and bad mappings", "[http][rest]") {
    tether_test::scripted_server server{[](const httplib::Request&, httplib::Response& res) {
        json_answer(res, 409, R"({"error":"title taken"})");
    }};
    auto m = tether_test::minimal_mapping();
    m.statuses = {{409, tether::rest_meaning::rejected}};  // this API's 409 is a validation error
    tether::rest_transport t{tether_test::rest_options_for(server.url(), m)};
    std::vector<push_op> ops{create(1, job("memo"))};
    auto out = t.push("jobs", ops);
    REQUIRE(out);
    CHECK((*out)[0].outcome == push_outcome::kind::rejected);
    CHECK((*out)[0].failure.code == errc::rejected);
    CHECK((*out)[0].failure.message.find("title taken") != std::string::npos);

    auto bad = tether_test::versioned_mapping();
    bad.paging = tether::rest_paging::offset;
    CHECK(tether::rest_transport::make(tether_test::rest_options_for(server.url(), bad)).error().code ==
          errc::invalid_argument);
    bad = tether_test::minimal_mapping();
    bad.item_url = "/api/jobs";
    CHECK_FALSE(tether::rest_transport::make(tether_test::rest_options_for(server.url(), bad)));
    tether::rest_transport unmapped{tether_test::rest_options_for(server.url(), tether_test::minimal_mapping())};
    CHECK(unmapped.fetch("notes", "1").error().code == errc::invalid_argument);
}

TEST_CASE("rest: PUT to a client-chosen id, and updates as PUT of the whole record", "[http][rest]") {
    tether_test::minimal_api api{{.client_ids = true}};
    auto m = tether_test::minimal_client_id_mapping();
    m.create = tether::rest_create::put_client_id;
    m.update = tether::rest_update::put_whole;
    tether::rest_transport t{tether_test::rest_options_for(api.url(), m)};
    std::vector<push_op> ops{create(1, job("memo", 10))};
    auto out = t.push("jobs", ops);
    REQUIRE(out);
    REQUIRE((*out)[0].outcome == push_outcome::kind::applied);
    const auto sid = lid(1).to_string();
    CHECK((*out)[0].record.server_id == sid);
    api.edit(sid, "note", "kept by the server");
    out = t.push("jobs", ops);  // sent again: If-None-Match refuses it, and the id settles it
    REQUIRE(out);
    CHECK((*out)[0].outcome == push_outcome::kind::applied);
    CHECK((*out)[0].replayed);
    std::vector<push_op> upd{push_op{op_kind::update, lid(1), sid, 1, {{"progress", 70}}, "dev"}};
    out = t.push("jobs", upd);
    REQUIRE(out);
    CHECK((*out)[0].outcome == push_outcome::kind::applied);
    const auto row = api.records().at(sid);
    CHECK(row["progress"] == 70);
    CHECK(row["title"] == "memo");
    CHECK(row["note"] == "kept by the server");  // the whole record went back, with the change over it
    CHECK(row["audioUrl"] == "a.wav");
}

TEST_CASE("rest: a delta query paged by next links", "[http][rest]") {
    tether_test::versioned_api api{{.next_links = true}};
    auto m = tether_test::versioned_mapping();
    m.paging = tether::rest_paging::next_link;
    m.next_field = "links.next";
    tether::rest_transport t{tether_test::rest_options_for(api.url(), m)};
    for (int i = 0; i < 12; ++i) {
        api.insert(job("task " + std::to_string(i)));
        if (i % 5 == 4) api.advance(1);
    }
    std::set<std::string> seen;
    std::string from;
    for (int pages = 0;; ++pages) {
        REQUIRE(pages < 10);
        auto page = t.pull("jobs", from, 4);
        REQUIRE(page);
        for (const auto& r : page->records) CHECK(seen.insert(r.server_id).second);
        from = page->next_cursor;
        if (!page->has_more) break;
    }
    CHECK(seen.size() == 12);
    auto again = t.pull("jobs", from, 4);
    REQUIRE(again);
    CHECK(again->records.empty());
}

TEST_CASE("rest: the new id from Location, the version from a numeric ETag", "[http][rest]") {
    tether_test::scripted_server server{[](const httplib::Request& req, httplib::Response& res) {
        if (req.method == "POST") {
            res.status = 201;
            res.set_header("Location", "/api/jobs/42");
            return;
        }
        res.set_header("ETag", "W/\"7\"");
        json_answer(res, 200, R"({"id":42,"title":"memo","progress":0,"audioUrl":"a.wav"})");
    }};
    auto m = tether_test::minimal_mapping();
    m.id_from_location = true;
    m.version_from_etag = true;
    m.send_version = tether::rest_version_send::if_match;
    tether::rest_transport t{tether_test::rest_options_for(server.url(), m)};
    std::vector<push_op> ops{create(1, job("memo"))};
    auto out = t.push("jobs", ops);
    REQUIRE(out);
    REQUIRE((*out)[0].outcome == push_outcome::kind::applied);
    CHECK((*out)[0].record.server_id == "42");
    CHECK((*out)[0].record.version == 7);
    CHECK((*out)[0].record.id == lid(1));
    const auto log = server.log();
    REQUIRE(log.size() == 2);
    CHECK(log[1].method == "GET");
    CHECK(log[1].path == "/api/jobs/42");
}
