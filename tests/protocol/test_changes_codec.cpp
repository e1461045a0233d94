// Pages, records, tombstones, info and error bodies: every shape, every refusal.
#include <tether/protocol/changes.hpp>
#include <tether/protocol/error_body.hpp>
#include <tether/protocol/info.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using tether::errc;
namespace protocol = tether::protocol;

namespace {

const auto id1 = tether::local_id::parse("01890a5d-ac96-774b-bcce-b302099a8057").value();

}  // namespace

TEST_CASE("page: the documented shape, both ways", "[protocol]") {
    tether::pull_page page;
    page.records.push_back({"s-1", id1, 7, {{"title", "memo"}}, tether::timestamp{std::chrono::milliseconds{1700000000123}}, "dev-1"});
    page.records.push_back({"s-2", std::nullopt, 2, {{"title", "other"}}, std::nullopt, ""});
    page.tombstones.push_back({"s-3", id1, 9});
    page.next_cursor = "42@1";
    page.has_more = true;
    auto body = protocol::encode_page(page);
    REQUIRE(body);
    CHECK(nlohmann::json::parse(*body) == nlohmann::json::parse(R"({
        "records":[{"server_id":"s-1","id":"01890a5d-ac96-774b-bcce-b302099a8057","version":7,
                    "value":{"title":"memo"},"updated_at":1700000000123,"origin":"dev-1"},
                   {"server_id":"s-2","version":2,"value":{"title":"other"}}],
        "tombstones":[{"server_id":"s-3","id":"01890a5d-ac96-774b-bcce-b302099a8057","version":9}],
        "next_cursor":"42@1","has_more":true})"));
    auto back = protocol::decode_page(*body);
    REQUIRE(back);
    REQUIRE(back->records.size() == 2);
    CHECK(back->records[0].server_id == "s-1");
    CHECK(back->records[0].id == id1);
    CHECK(back->records[0].updated_at == page.records[0].updated_at);
    CHECK(back->records[1].id == std::nullopt);
    CHECK(back->records[1].origin.empty());
    REQUIRE(back->tombstones.size() == 1);
    CHECK(back->tombstones[0].version == 9);
    CHECK(back->next_cursor == "42@1");
    CHECK(back->has_more);
}

TEST_CASE("page: items the engine skips and counts pass, a page of the wrong shape fails", "[protocol]") {
    // An empty server id and a nil local id are the engine's to skip (one bad item never stops a pull).
    auto lenient = protocol::decode_page(R"({"records":[{"server_id":"","version":1,"value":{}},
        {"server_id":"s","id":"00000000-0000-0000-0000-000000000000","version":1,"value":{}}],
        "next_cursor":"","has_more":false})");
    REQUIRE(lenient);
    CHECK(lenient->records.size() == 2);
    CHECK(lenient->tombstones.empty());  // absent tombstones: none (a full-list server)
    for (const std::string& bad : {
             std::string{R"({"tombstones":[],"next_cursor":"","has_more":false})"},
             std::string{R"({"records":{},"next_cursor":"","has_more":false})"},
             std::string{R"({"records":[],"tombstones":{},"next_cursor":"","has_more":false})"},
             std::string{R"({"records":[],"has_more":false})"},
             std::string{R"({"records":[],"next_cursor":7,"has_more":false})"},
             std::string{R"({"records":[],"next_cursor":")"} + std::string(1025, 'c') + R"(","has_more":false})",
             std::string{R"({"records":[],"next_cursor":""})"},
             std::string{R"({"records":[],"next_cursor":"","has_more":"no"})"},
             std::string{R"({"records":[1],"has_more":false})"},
             std::string{R"({"records":[],"tombstones":[1],"next_cursor":"","has_more":"no"})"},
             std::string{"[]"},
             std::string{"{"},
         }) {
        INFO(bad);
        auto r = protocol::decode_page(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::protocol);
    }
}

TEST_CASE("page: a record or tombstone of the wrong shape is refused alone, the others decode", "[protocol]") {
    struct item_case {
        std::string records;     // the records array's items
        std::string tombstones;  // the tombstones array's items
        std::string server_id;   // what the refused item reports
        bool tombstone;
    };
    const std::string good = R"({"server_id":"g1","version":1,"value":{"title":"a"}})";
    const std::string good_t = R"({"server_id":"g2","version":3})";
    const std::string long_id(protocol::max_server_id_bytes + 1, 'x');
    for (const auto& c : std::vector<item_case>{
             {"1", "", "", false},
             {"null", "", "", false},
             {R"(["s-1"])", "", "", false},
             {R"({"version":1})", "", "", false},
             {R"({"server_id":7,"version":1})", "", "", false},
             {R"({"server_id":")" + long_id + R"(","version":1})", "", "", false},
             {R"({"server_id":"s-1","version":"1"})", "", "s-1", false},
             {R"({"server_id":"s-1","version":-1})", "", "s-1", false},
             {R"({"server_id":"s-1","version":1,"origin":3})", "", "s-1", false},
             {R"({"server_id":"s-1","version":1,"id":"not-a-uuid"})", "", "s-1", false},
             {R"({"server_id":"s-1","version":1,"updated_at":"yesterday"})", "", "s-1", false},
             {"", R"({"server_id":"s-1"})", "s-1", true},
             {"", R"({"server_id":"s-1","version":1,"id":"zz"})", "s-1", true},
             {"", R"("s-1")", "", true},
         }) {
        const std::string body = R"({"records":[)" + good + (c.records.empty() ? "" : "," + c.records) + "," + good +
                                 R"(],"tombstones":[)" + good_t + (c.tombstones.empty() ? "" : "," + c.tombstones) +
                                 R"(],"next_cursor":"7","has_more":true})";
        INFO(body);
        auto page = protocol::decode_page(body);
        REQUIRE(page);
        CHECK(page->records.size() == 2);
        CHECK(page->tombstones.size() == 1);
        CHECK(page->next_cursor == "7");
        CHECK(page->has_more);
        REQUIRE(page->refused.size() == 1);
        const auto& r = page->refused.front();
        CHECK(r.server_id == c.server_id);
        CHECK(r.index == 1);
        CHECK(r.tombstone == c.tombstone);
        CHECK_THAT(r.why, Catch::Contains(c.tombstone ? "tombstones[1]" : "records[1]"));
    }
    // Every item bad: the page still decodes, with nothing but refusals.
    auto all_bad = protocol::decode_page(R"({"records":[1,2,3],"tombstones":[{}],"next_cursor":"","has_more":false})");
    REQUIRE(all_bad);
    CHECK(all_bad->records.empty());
    CHECK(all_bad->tombstones.empty());
    CHECK(all_bad->refused.size() == 4);
    // What is refused is not sent on: a page encodes its records and tombstones only.
    auto again = protocol::decode_page(protocol::encode_page(*all_bad).value());
    REQUIRE(again);
    CHECK(again->refused.empty());
    // The bounds stay: a page over them fails whole, however good its items.
    const std::string big = R"({"records":[)" + good + R"(],"next_cursor":"","has_more":false})";
    auto over = protocol::decode_page(big, protocol::parse_limits{big.size() - 1, 128});
    REQUIRE_FALSE(over);
    CHECK(over.error().code == errc::protocol);
}

TEST_CASE("record: a fetch answer needs a server id", "[protocol]") {
    tether::server_record r{"s-1", id1, 3, {{"n", 1}}, std::nullopt, "dev"};
    auto body = protocol::encode_record(r);
    REQUIRE(body);
    auto back = protocol::decode_record(*body);
    REQUIRE(back);
    CHECK(back->server_id == "s-1");
    CHECK(back->value == r.value);
    CHECK(protocol::decode_record(R"({"server_id":"","version":1})").error().code == errc::protocol);
    CHECK(protocol::decode_record(R"({"server_id":"s","version":1,"updated_at":-5})")->updated_at ==
          tether::timestamp{std::chrono::milliseconds{-5}});
    CHECK(protocol::decode_record(R"({"server_id":"s","version":1,"updated_at":1.5})").error().code == errc::protocol);
    CHECK(protocol::decode_record(R"({"server_id":"s","version":18446744073709551615})")->version ==
          18446744073709551615ull);
    CHECK(protocol::decode_record(R"({"server_id":"s","version":18446744073709551616})").error().code == errc::protocol);
}

TEST_CASE("info: the documented shape, both ways", "[protocol]") {
    protocol::server_info info;
    info.server_limits.max_ops = 200;
    info.change_feed = false;
    auto body = protocol::encode_info(info);
    REQUIRE(body);
    CHECK(nlohmann::json::parse(*body) == nlohmann::json::parse(R"({"protocol":1,"change_feed":false,
        "limits":{"max_body_bytes":8388608,"max_ops":200,"max_depth":64,"max_value_bytes":1048576}})"));
    CHECK(protocol::decode_info(*body) == info);
    CHECK(protocol::decode_info(R"({"protocol":1,"limits":{"max_body_bytes":1,"max_ops":1,"max_depth":1,
        "max_value_bytes":1}})")->change_feed);
    CHECK(protocol::decode_info(R"({"protocol":1})").error().code == errc::protocol);
    CHECK(protocol::decode_info(R"({"protocol":0,"limits":{}})").error().code == errc::protocol);
    CHECK(protocol::decode_info(R"({"protocol":1,"limits":{"max_body_bytes":0,"max_ops":1,"max_depth":1,
        "max_value_bytes":1}})").error().code == errc::protocol);
}

TEST_CASE("error body: the documented shape, both ways, the status of each code", "[protocol]") {
    tether::error e{errc::rate_limited, "slow down", 429, std::chrono::milliseconds{2000}};
    auto body = protocol::encode_error_body(e);
    REQUIRE(body);
    CHECK(nlohmann::json::parse(*body) == nlohmann::json::parse(
        R"({"error":{"code":"rate_limited","message":"slow down","retryable":true,"retry_after_ms":2000}})"));
    auto back = protocol::decode_error_body(*body);
    REQUIRE(back);
    CHECK(back->code == errc::rate_limited);
    CHECK(back->message == "slow down");
    CHECK(back->retry_after == std::chrono::milliseconds{2000});
    CHECK_FALSE(back->http_status);
    CHECK(protocol::decode_error_body("").error().code == errc::protocol);
    CHECK(protocol::decode_error_body("<html>").error().code == errc::protocol);
    CHECK(protocol::decode_error_body(R"({"code":"x"})").error().code == errc::protocol);

    CHECK(protocol::http_status_for(errc::protocol) == 400);
    CHECK(protocol::http_status_for(errc::unauthorized) == 401);
    CHECK(protocol::http_status_for(errc::rejected) == 403);
    CHECK(protocol::http_status_for(errc::not_found) == 404);
    CHECK(protocol::http_status_for(errc::cursor_expired) == 410);
    CHECK(protocol::http_status_for(errc::too_large) == 413);
    CHECK(protocol::http_status_for(errc::rate_limited) == 429);
    CHECK(protocol::http_status_for(errc::transient) == 503);
    CHECK(protocol::http_status_for(errc::storage) == 500);
}
