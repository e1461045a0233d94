// Inputs the fuzz targets (tests/fuzz/) found to break a decoder, kept as unit
// tests so that a normal build checks them. Each names the property it broke.
#include "fuzz/rich_entity.hpp"

#include <tether/core/entity.hpp>
#include <tether/protocol/json.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

using tether::errc;
namespace protocol = tether::protocol;

namespace {

using rich_ops = tether::entity_ops<fuzz_entity::rich>;

/// Decodes `text` as the rich entity; the error message (FAILs if it decodes).
std::string entity_error(std::string_view text) {
    auto doc = protocol::parse_json(text, protocol::answer_parse_limits);
    REQUIRE(doc.has_value());
    tether::result<fuzz_entity::rich> r = tether::unexpected{tether::make_error(errc::invalid_state)};
    REQUIRE_NOTHROW(r = rich_ops::from_json(*doc));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::protocol);
    return r.error().message;
}

}  // namespace

// nlohmann reads a pair, a tuple, an array, a set or an integer-keyed map with
// its own conversions, which cast a number to an integer element unchecked:
// 1e300 into an int is undefined behaviour (UBSan: "outside the range of
// representable values"). They are now read element by element, as vectors are.
TEST_CASE("fuzz regression: numbers out of range in pairs, tuples, arrays, sets and maps are refused",
          "[protocol][fuzz][entity]") {
    CHECK_THAT(entity_error(R"({"tint":7,"feeling":"sad","three":[1,2,3],"pair":[1e300,"x"]})"),
               Catch::Contains("member 'pair[0]'"));
    CHECK_THAT(entity_error(R"({"pair":[1,"x",3]})"), Catch::Contains("an array of 2 elements"));
    CHECK_THAT(entity_error(R"({"three":[1,2]})"), Catch::Contains("member 'three'"));
    CHECK_THAT(entity_error(R"({"three":[1,2,40000]})"), Catch::Contains("member 'three[2]'"));
    CHECK_THAT(entity_error(R"({"ids":[1.5]})"), Catch::Contains("member 'ids[0]'"));
    CHECK_THAT(entity_error(R"({"ids":[-1e300]})"), Catch::Contains("member 'ids[0]'"));
    CHECK_THAT(entity_error(R"({"numbered":[[1e300,"x"]]})"), Catch::Contains("member 'numbered[key of entry 0]'"));
    CHECK_THAT(entity_error(R"({"numbered":[[1,2]]})"), Catch::Contains("member 'numbered[0]'"));
    CHECK_THAT(entity_error(R"({"numbered":[[1]]})"), Catch::Contains("a [key, value] array"));
    CHECK_THAT(entity_error(R"({"tup":[true,256,"s"]})"), Catch::Contains("member 'tup[1]'"));
    CHECK_THAT(entity_error(R"({"tup":[1,2,"s"]})"), Catch::Contains("member 'tup[0]'"));
}

TEST_CASE("fuzz regression: pairs, tuples, arrays, sets and maps keep nlohmann's JSON form",
          "[protocol][fuzz][entity]") {
    const std::string_view text =
        R"({"pair":[7,"seven"],"three":[1,-2,3],"ids":[3,1,2,3],"numbered":[[2,"two"],[1,"one"]],"tup":[true,9,"s"]})";
    auto doc = protocol::parse_json(text, protocol::answer_parse_limits);
    REQUIRE(doc.has_value());
    auto e = rich_ops::from_json(*doc);
    REQUIRE(e.has_value());
    CHECK(e->pair == fuzz_entity::label_pair{7, "seven"});
    CHECK(e->three == fuzz_entity::triple{1, -2, 3});
    CHECK(e->ids == std::set<int>{1, 2, 3});
    CHECK(e->numbered == fuzz_entity::by_number{{1, "one"}, {2, "two"}});
    CHECK(e->tup == fuzz_entity::row{true, 9, "s"});
    const auto j = rich_ops::to_json(*e);
    CHECK(j["pair"] == nlohmann::json(e->pair));
    CHECK(j["three"] == nlohmann::json(e->three));
    CHECK(j["ids"] == nlohmann::json(e->ids));
    CHECK(j["numbered"] == nlohmann::json(e->numbered));
    CHECK(j["tup"] == nlohmann::json(e->tup));
}

// An error code this version does not know keeps its name at the front of the
// message; with a message already at the 64 KiB limit the result was over it,
// so the error, passed on (a push answer relayed, a log shipped as JSON),
// no longer decoded.
TEST_CASE("fuzz regression: an unknown error code's message stays within the size limit",
          "[protocol][fuzz][error]") {
    const std::string message(protocol::max_error_message_bytes, 'x');
    const std::string body = R"({"error":{"code":")" + std::string(64, 'c') + R"(","message":")" + message +
                             R"(","retryable":true}})";
    auto e = protocol::decode_error_body(body);
    REQUIRE(e.has_value());
    CHECK(e->code == errc::transient);
    CHECK(e->message.size() == protocol::max_error_message_bytes);
    CHECK(e->message.rfind("server code 'cccc", 0) == 0);
    auto again = protocol::decode_error_body(protocol::encode_error_body(*e).value());
    REQUIRE(again.has_value());
    CHECK(again->message == e->message);
}

TEST_CASE("error messages over the limit are cut on a UTF-8 boundary, both ways", "[protocol][fuzz][error]") {
    // 3-byte characters, so that the limit falls inside one.
    std::string message;
    while (message.size() <= protocol::max_error_message_bytes) message += "\xe2\x82\xac";
    const std::string body = R"({"error":{"code":"newer_code","message":")" +
                             message.substr(0, protocol::max_error_message_bytes - 1) + R"("}})";
    auto e = protocol::decode_error_body(body);
    REQUIRE(e.has_value());
    CHECK(e->code == errc::rejected);
    CHECK(e->message.size() <= protocol::max_error_message_bytes);
    CHECK(protocol::valid_utf8(e->message));
    // An encoder given a longer message cuts it too, so that its answer decodes.
    const tether::error big{errc::transient, message, std::nullopt, std::nullopt};
    auto text = protocol::encode_error_body(big);
    REQUIRE(text.has_value());
    auto back = protocol::decode_error_body(*text);
    REQUIRE(back.has_value());
    CHECK(back->message.size() <= protocol::max_error_message_bytes);
    CHECK(back->message.size() > protocol::max_error_message_bytes - 3);
    CHECK(message.rfind(back->message, 0) == 0);
}

// A server's error message may quote what it was sent (sync_service: "bad
// cursor '<the first 64 bytes>'"), and those bytes need not be UTF-8, or may
// be cut inside a character. Such a message made encode_error_body fail, so
// the server had no body to answer the refused request with. Bytes that are
// not UTF-8 now become U+FFFD.
TEST_CASE("fuzz regression: an error message that is not UTF-8 still encodes", "[protocol][fuzz][error]") {
    const std::string found = std::string{"caf \xe2\x82", 6} + " \xe2\x82\xac";  // a cut euro sign, then a whole one
    const tether::error e{errc::protocol, "bad cursor '" + found + "'", 400, std::nullopt};
    auto body = protocol::encode_error_body(e);
    REQUIRE(body.has_value());
    auto back = protocol::decode_error_body(*body);
    REQUIRE(back.has_value());
    CHECK(back->code == errc::protocol);
    CHECK(back->message == "bad cursor 'caf \xef\xbf\xbd\xef\xbf\xbd \xe2\x82\xac'");

    CHECK(protocol::to_valid_utf8("") == "");
    CHECK(protocol::to_valid_utf8("plain \xf0\x9f\x98\x80") == "plain \xf0\x9f\x98\x80");
    CHECK(protocol::to_valid_utf8("\xff") == "\xef\xbf\xbd");
    CHECK(protocol::to_valid_utf8("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");          // overlong '/'
    CHECK(protocol::to_valid_utf8("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate
    CHECK(protocol::valid_utf8(protocol::to_valid_utf8(std::string(300, '\x80'))));
    // A long message of invalid bytes grows threefold, and is then cut to the limit.
    const tether::error big{errc::transient, std::string(protocol::max_error_message_bytes, '\xfe'), std::nullopt,
                            std::nullopt};
    auto big_back = protocol::decode_error_body(protocol::encode_error_body(big).value());
    REQUIRE(big_back.has_value());
    CHECK(big_back->message.size() <= protocol::max_error_message_bytes);
    CHECK(protocol::valid_utf8(big_back->message));
}
