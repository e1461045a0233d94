#pragma once

// The fuzzed entity: every kind of member the entity decoder reads
// (optionals, vectors, string-keyed maps, nested structs, enums, booleans,
// every integer width, floating point, time points, JSON, pairs, tuples,
// arrays, sets, integer-keyed maps). Shared by the fuzz target and the
// regression tests of what it found (tests/protocol/test_fuzz_regressions.cpp).
#include <tether/core/entity.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace fuzz_entity {

enum class color : std::uint8_t { red, green, blue = 200 };
enum class level : std::int64_t { low = -1, mid = 0, high = 1 };
enum class mood { happy, sad };
NLOHMANN_JSON_SERIALIZE_ENUM(mood, {{mood::happy, "happy"}, {mood::sad, "sad"}})

struct inner {
    BOOST_HANA_DEFINE_STRUCT(inner, (std::string, name), (std::optional<std::int16_t>, rank),
                             (std::vector<bool>, flags), (float, weight));
};

using label_pair = std::pair<int, std::string>;
using triple = std::array<std::int16_t, 3>;
using row = std::tuple<bool, std::uint8_t, std::string>;
using by_number = std::map<int, std::string>;
using sparse = std::optional<std::vector<std::optional<std::int32_t>>>;
using nested_map = std::map<std::string, std::vector<std::optional<color>>>;

struct rich {
    BOOST_HANA_DEFINE_STRUCT(
        rich, (std::string, title), (bool, done), (std::int8_t, i8), (std::uint8_t, u8), (std::int16_t, i16),
        (std::uint16_t, u16), (std::int32_t, i32), (std::uint32_t, u32), (std::int64_t, i64), (std::uint64_t, u64),
        (float, f), (double, d), (std::optional<std::string>, note), (std::optional<double>, maybe),
        (std::vector<double>, samples), (std::map<std::string, int>, counts), (std::map<std::string, inner>, named),
        (inner, nested), (std::optional<inner>, office), (std::vector<inner>, children), (color, tint),
        (level, lvl), (mood, feeling), (tether::timestamp, at), (std::chrono::system_clock::time_point, precise),
        (std::chrono::sys_seconds, coarse), (std::chrono::sys_days, day), (sparse, holes), (nested_map, palette),
        (nlohmann::json, extra), (label_pair, pair), (triple, three), (std::set<int>, ids), (by_number, numbered),
        (row, tup));
    static constexpr std::string_view collection = "rich";
};

}  // namespace fuzz_entity
