#include <tether/core/ids.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

using tether::errc;
using tether::local_id;
using tether::local_id_generator;
using tether::timestamp;

namespace {

constexpr auto canonical = "01890a5d-ac96-774b-bcce-b302099a8057";

timestamp at_ms(std::int64_t ms) { return timestamp{std::chrono::milliseconds{ms}}; }

// A fixed, realistic time: 2024-01-01T00:00:00Z.
constexpr std::int64_t t0 = 1704067200000;

void require_invalid(const std::string& text) {
    INFO("input: '" << text << "'");
    const auto r = local_id::parse(text);
    REQUIRE_FALSE(r.has_value());
    REQUIRE(r.error().code == errc::invalid_argument);
}

}  // namespace

TEST_CASE("local_id: parse and to_string round-trip in canonical lower case", "[ids]") {
    const auto id = local_id::parse(canonical);
    REQUIRE(id.has_value());
    CHECK(id->to_string() == canonical);
    CHECK(id->bytes()[0] == 0x01);
    CHECK(id->bytes()[1] == 0x89);
    CHECK(id->bytes()[6] == 0x77);
    CHECK(id->bytes()[15] == 0x57);
    CHECK(id->version() == 7);

    std::ostringstream os;
    os << *id;
    CHECK(os.str() == canonical);

    // Every byte value survives a round trip through text.
    local_id::bytes_type b{};
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(0x0F + 0x10 * i);
    const local_id from_bytes{b};
    const auto text = from_bytes.to_string();
    CHECK(text == "0f1f2f3f-4f5f-6f7f-8f9f-afbfcfdfefff");
    const auto back = local_id::parse(text);
    REQUIRE(back.has_value());
    CHECK(*back == from_bytes);
}

TEST_CASE("local_id: parse accepts upper and mixed case, prints lower case", "[ids]") {
    const auto upper = local_id::parse("01890A5D-AC96-774B-BCCE-B302099A8057");
    REQUIRE(upper.has_value());
    CHECK(upper->to_string() == canonical);

    const auto mixed = local_id::parse("01890a5D-Ac96-774b-BCce-b302099A8057");
    REQUIRE(mixed.has_value());
    CHECK(*mixed == *upper);
}

TEST_CASE("local_id: parse rejects malformed text with invalid_argument", "[ids]") {
    SECTION("empty") { require_invalid(""); }
    SECTION("too short by one") { require_invalid("01890a5d-ac96-774b-bcce-b302099a805"); }
    SECTION("too long by one") { require_invalid("01890a5d-ac96-774b-bcce-b302099a80570"); }
    SECTION("no dashes (32 hex digits)") { require_invalid("01890a5dac96774bbcceb302099a8057"); }
    SECTION("braces around a valid id") { require_invalid("{01890a5d-ac96-774b-bcce-b302099a8057}"); }
    SECTION("a dash missing, length kept by an extra digit") {
        require_invalid("01890a5d0ac96-774b-bcce-b302099a8057");
    }
    SECTION("dashes shifted by one") { require_invalid("01890a5-dac96-774b-bcce-b302099a8057"); }
    SECTION("dash moved later") { require_invalid("01890a5da-c96-774b-bcce-b302099a8057"); }
    SECTION("last dash misplaced") { require_invalid("01890a5d-ac96-774b-bcceb-302099a8057"); }
    SECTION("non-hex letter") { require_invalid("01890a5d-ac96-774b-bcce-b302099a805g"); }
    SECTION("non-hex letter first") { require_invalid("g1890a5d-ac96-774b-bcce-b302099a8057"); }
    SECTION("space") { require_invalid("01890a5d-ac96-774b-bcce-b302099a 057"); }
    SECTION("embedded NUL") {
        std::string s = canonical;
        s[3] = '\0';
        require_invalid(s);
    }
    SECTION("36 characters of garbage") { require_invalid(std::string(36, '?')); }
    SECTION("36 dashes") { require_invalid(std::string(36, '-')); }
    SECTION("a dash in a hex slot, high nibble") { require_invalid("01890a5d-ac96--74b-bcce-b302099a8057"); }
    SECTION("a dash in a hex slot, low nibble") { require_invalid("01890a5d-ac96-774b-bcce-b302099a805-"); }
    SECTION("plus sign (would pass a strtol-based check)") {
        require_invalid("+1890a5d-ac96-774b-bcce-b302099a8057");
    }
    SECTION("0x prefix") { require_invalid("0x890a5d-ac96-774b-bcce-b302099a8057"); }

    SECTION("the error message names the input") {
        const auto r = local_id::parse("nope");
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find("nope") != std::string::npos);
    }
}

TEST_CASE("local_id: the nil id", "[ids]") {
    const local_id nil;
    CHECK(nil.is_nil());
    CHECK(nil.to_string() == "00000000-0000-0000-0000-000000000000");
    CHECK(nil.version() == 0);
    CHECK(nil == local_id{});

    const auto parsed = local_id::parse("00000000-0000-0000-0000-000000000000");
    REQUIRE(parsed.has_value());
    CHECK(parsed->is_nil());

    local_id::bytes_type one{};
    one[15] = 1;
    CHECK_FALSE(local_id{one}.is_nil());
    CHECK_FALSE(local_id::parse(canonical)->is_nil());
    CHECK(nil < local_id{one});
}

TEST_CASE("local_id: from_parts lays out a v7 id", "[ids]") {
    const auto id = local_id::from_parts(at_ms(0x0123456789AB), 0xFABC, 0xFFFF'FFFF'FFFF'FFFFull);
    CHECK(id.to_string() == "01234567-89ab-7abc-bfff-ffffffffffff");
    CHECK(id.version() == 7);
    CHECK((id.bytes()[8] & 0xC0) == 0x80);
    CHECK(id.time() == at_ms(0x0123456789AB));
}

TEST_CASE("local_id: ordering follows the bytes", "[ids]") {
    const auto a = *local_id::parse("01890a5d-ac96-774b-bcce-b302099a8057");
    const auto b = *local_id::parse("01890a5d-ac96-774b-bcce-b302099a8058");
    const auto c = *local_id::parse("01890a5e-0000-7000-8000-000000000000");
    CHECK(a < b);
    CHECK(b < c);
    CHECK(a < c);
    CHECK_FALSE(b < a);
    CHECK(a != b);
    CHECK(a == *local_id::parse("01890A5D-AC96-774B-BCCE-B302099A8057"));
    CHECK((a <=> b) == std::strong_ordering::less);
    CHECK((c <=> a) == std::strong_ordering::greater);
    CHECK((a <=> a) == std::strong_ordering::equal);

    // Earlier timestamps sort first, whatever the random bits.
    const auto early = local_id::from_parts(at_ms(t0), 0xFFF, ~std::uint64_t{0});
    const auto late = local_id::from_parts(at_ms(t0 + 1), 0, 0);
    CHECK(early < late);

    std::set<local_id> ordered{c, a, b};
    CHECK(std::vector<local_id>(ordered.begin(), ordered.end()) == std::vector<local_id>{a, b, c});
}

TEST_CASE("local_id: std::hash works in unordered containers", "[ids]") {
    const auto a = *local_id::parse("01890a5d-ac96-774b-bcce-b302099a8057");
    const auto a_upper = *local_id::parse("01890A5D-AC96-774B-BCCE-B302099A8057");
    const auto b = *local_id::parse("01890a5d-ac96-774b-bcce-b302099a8058");

    CHECK(std::hash<local_id>{}(a) == std::hash<local_id>{}(a_upper));
    CHECK(std::hash<local_id>{}(a) != std::hash<local_id>{}(b));

    std::unordered_set<local_id> set;
    CHECK(set.insert(a).second);
    CHECK(set.insert(b).second);
    CHECK_FALSE(set.insert(a_upper).second);
    CHECK(set.size() == 2);
    CHECK(set.count(a) == 1);
    CHECK(set.count(local_id{}) == 0);
}

TEST_CASE("local_id_generator: ids are v7 with the RFC variant and carry the time", "[ids]") {
    local_id_generator gen{42};
    for (std::int64_t i = 0; i < 100; ++i) {
        const auto now = at_ms(t0 + i * 1000);
        const auto id = gen(now);
        INFO("id " << id);
        CHECK(id.version() == 7);
        CHECK((id.bytes()[6] & 0xF0) == 0x70);
        CHECK((id.bytes()[8] & 0xC0) == 0x80);
        CHECK(id.time() == now);
        CHECK_FALSE(id.is_nil());
    }

    local_id_generator unseeded;
    const auto id = unseeded(at_ms(t0));
    CHECK(id.version() == 7);
    CHECK((id.bytes()[8] & 0xC0) == 0x80);
    CHECK(id.time() == at_ms(t0));
}

TEST_CASE("local_id_generator: a seed makes the sequence reproducible", "[ids]") {
    const std::vector<std::int64_t> times{t0, t0, t0 + 5, t0 + 5, t0 + 3, t0 + 100, t0 + 100, t0 + 101};
    auto run = [&](std::uint64_t seed) {
        local_id_generator gen{seed};
        std::vector<local_id> ids;
        for (auto ms : times) ids.push_back(gen(at_ms(ms)));
        return ids;
    };
    const auto first = run(7);
    const auto second = run(7);
    CHECK(first == second);

    // A different seed gives different random bits.
    const auto other = run(8);
    CHECK(first != other);
    CHECK(first.front() != other.front());
}

TEST_CASE("local_id_generator: ids strictly increase", "[ids]") {
    local_id_generator gen{1234};

    SECTION("clock advancing") {
        auto prev = gen(at_ms(t0));
        for (std::int64_t i = 1; i < 1000; ++i) {
            const auto next = gen(at_ms(t0 + i));
            REQUIRE(prev < next);
            prev = next;
        }
    }

    SECTION("clock standing still (past the 12-bit counter)") {
        auto prev = gen(at_ms(t0));
        for (int i = 0; i < 10'000; ++i) {
            const auto next = gen(at_ms(t0));
            INFO("i = " << i << ", prev " << prev << ", next " << next);
            REQUIRE(prev < next);
            CHECK(next.version() == 7);
            CHECK((next.bytes()[8] & 0xC0) == 0x80);
            prev = next;
        }
    }

    SECTION("clock going backwards") {
        auto prev = gen(at_ms(t0 + 10'000));
        for (std::int64_t i = 1; i <= 500; ++i) {
            const auto next = gen(at_ms(t0 + 10'000 - i * 7));
            INFO("i = " << i);
            REQUIRE(prev < next);
            prev = next;
        }
        // ... and forward again, still above everything made so far.
        const auto after = gen(at_ms(t0 + 20'000));
        CHECK(prev < after);
        CHECK(after.time() == at_ms(t0 + 20'000));
    }

    SECTION("mixed: still, back, forward, still") {
        const std::vector<std::int64_t> times{t0, t0, t0 - 1, t0 - 1000, t0 + 1, t0 + 1, t0, t0 + 2};
        auto prev = gen(at_ms(times.front()));
        for (std::size_t i = 1; i < times.size(); ++i) {
            const auto next = gen(at_ms(times[i]));
            INFO("step " << i);
            REQUIRE(prev < next);
            prev = next;
        }
    }
}

TEST_CASE("local_id_generator: 10,000 ids have no duplicates", "[ids]") {
    local_id_generator gen{99};
    std::unordered_set<local_id> seen;
    std::set<std::string> texts;
    for (int i = 0; i < 10'000; ++i) {
        // Few distinct milliseconds: most ids share their timestamp with others.
        const auto id = gen(at_ms(t0 + i / 2500));
        REQUIRE(seen.insert(id).second);
        texts.insert(id.to_string());
    }
    CHECK(seen.size() == 10'000);
    CHECK(texts.size() == 10'000);

    // Two generators with different seeds, same times, do not collide either.
    local_id_generator a{1};
    local_id_generator b{2};
    std::unordered_set<local_id> both;
    for (int i = 0; i < 5'000; ++i) {
        REQUIRE(both.insert(a(at_ms(t0))).second);
        REQUIRE(both.insert(b(at_ms(t0))).second);
    }
}
