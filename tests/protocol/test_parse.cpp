// Bounded parsing, UTF-8, collection names, paths and percent-encoding.
#include <tether/protocol/parse.hpp>
#include <tether/protocol/paths.hpp>
#include <tether/protocol/utf8.hpp>

#include <catch2/catch.hpp>

#include <string>

using tether::errc;
namespace protocol = tether::protocol;

namespace {

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

TEST_CASE("nesting_depth counts arrays and objects, not brackets in strings", "[protocol]") {
    CHECK(protocol::nesting_depth("1", 10) == 0);
    CHECK(protocol::nesting_depth(R"("[[[{")", 10) == 0);
    CHECK(protocol::nesting_depth("{}", 10) == 1);
    CHECK(protocol::nesting_depth(R"({"a":[{}]})", 10) == 3);
    CHECK(protocol::nesting_depth(R"({"a\"[[":[1],"b":{"c":"]]]\\"}})", 10) == 2);
    CHECK(protocol::nesting_depth(nested(1000), 64) == 65);  // stops early
}

TEST_CASE("parse_json refuses text over the size or depth limit before parsing", "[protocol]") {
    const protocol::parse_limits bounds{100, 4};
    CHECK(protocol::parse_json(nested(4), bounds).has_value());
    auto deep = protocol::parse_json(nested(5), bounds);
    REQUIRE_FALSE(deep);
    CHECK(deep.error().code == errc::protocol);
    CHECK(protocol::parse_json(nested(5), bounds, errc::too_large).error().code == errc::too_large);
    auto big = protocol::parse_json(std::string(101, ' '), bounds, errc::too_large);
    REQUIRE_FALSE(big);
    CHECK(big.error().code == errc::too_large);
    // A very deep document is refused without recursion or allocation per level.
    CHECK(protocol::parse_json(nested(100000), protocol::parse_limits{1u << 20, 64}).error().code == errc::protocol);
}

TEST_CASE("parse_json: malformed JSON is protocol, and the message never quotes the text", "[protocol]") {
    for (const char* bad : {"", "{", "{\"a\":}", "[1,2", "nul", "{\"secret-token-123\" 1}", "\"\xff\"", "1 2"}) {
        auto r = protocol::parse_json(bad, {});
        INFO(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::protocol);
        CHECK(r.error().message.find("secret") == std::string::npos);
    }
}

TEST_CASE("valid_utf8 and encodable", "[protocol]") {
    CHECK(protocol::valid_utf8("plain"));
    CHECK(protocol::valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    CHECK_FALSE(protocol::valid_utf8("\xff"));
    CHECK_FALSE(protocol::valid_utf8("\xc3"));              // truncated
    CHECK_FALSE(protocol::valid_utf8("\xc0\xaf"));          // overlong
    CHECK_FALSE(protocol::valid_utf8("\xed\xa0\x80"));      // surrogate
    CHECK_FALSE(protocol::valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
    nlohmann::json ok = {{"a", {1, "x", {{"b", "caf\xc3\xa9"}}}}};
    CHECK(protocol::encodable(ok));
    nlohmann::json bad_value = {{"a", {1, std::string{"\xff"}}}};
    CHECK_FALSE(protocol::encodable(bad_value));
    nlohmann::json bad_key = nlohmann::json::object();
    bad_key[std::string{"\xfe"}] = 1;
    CHECK_FALSE(protocol::encodable(bad_key));
    CHECK(protocol::dump_json(bad_value).error().code == errc::invalid_argument);
}

TEST_CASE("collection names: 1-64 of A-Za-z0-9_.- not starting with a dot", "[protocol]") {
    CHECK(protocol::valid_collection("jobs"));
    CHECK(protocol::valid_collection("Jobs_v2.archive-1"));
    CHECK(protocol::valid_collection(std::string(64, 'a')));
    CHECK_FALSE(protocol::valid_collection(""));
    CHECK_FALSE(protocol::valid_collection(std::string(65, 'a')));
    CHECK_FALSE(protocol::valid_collection("."));
    CHECK_FALSE(protocol::valid_collection(".."));
    CHECK_FALSE(protocol::valid_collection(".hidden"));
    CHECK_FALSE(protocol::valid_collection("a/b"));
    CHECK_FALSE(protocol::valid_collection("a b"));
    CHECK_FALSE(protocol::valid_collection("caf\xc3\xa9"));
}

TEST_CASE("paths and percent-encoding", "[protocol]") {
    CHECK(protocol::push_path("jobs") == "/v1/jobs/push");
    CHECK(protocol::changes_path("jobs", "", 0) == "/v1/jobs/changes");
    CHECK(protocol::changes_path("jobs", "", 50) == "/v1/jobs/changes?limit=50");
    CHECK(protocol::changes_path("jobs", "12@3 x/y&z=", 50) == "/v1/jobs/changes?cursor=12%403%20x%2Fy%26z%3D&limit=50");
    CHECK(protocol::record_path("jobs", "a/b c") == "/v1/jobs/records/a%2Fb%20c");
    CHECK(protocol::percent_encode("AZaz09-._~") == "AZaz09-._~");
    CHECK(protocol::percent_encode("\xc3\xa9+%") == "%C3%A9%2B%25");
    for (const std::string& s : {std::string{}, std::string{"plain"}, std::string{"a/b c"}, std::string{"\xc3\xa9+%"}, std::string{"%%"}, std::string("\0x", 2)})
        CHECK(protocol::percent_decode(protocol::percent_encode(s)) == s);
    CHECK(protocol::percent_decode("%2f%2F") == "//");
    CHECK_FALSE(protocol::percent_decode("%"));
    CHECK_FALSE(protocol::percent_decode("%2"));
    CHECK_FALSE(protocol::percent_decode("%zz"));
}
