#pragma once

// The rich mode's entities (tests/support/entities.hpp): Survey through Hana
// introspection, Reading with its own nlohmann conversions. Both carry a
// double, a vector, a nested struct (Place) and strings that are unicode
// (accents, CJK, emoji, combining marks, quotes and control characters) and
// sometimes large (20 KiB). Every written value is unique in the run, as the
// per-field model needs: each one is made of the run's value counter `v`.
#include "support/entities.hpp"

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace tether_sim {

template <class E>
struct sim_entity;

namespace rich_detail {

/// Unicode and awkward text around `v`: 2-byte, 3-byte and 4-byte UTF-8,
/// a combining mark, quotes, a backslash, control characters.
inline std::string text(std::string_view head, std::uint64_t v) {
    static constexpr std::array<std::string_view, 6> tails{
        " caf\xc3\xa9 Z\xc3\xbcrich", " \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", " \xf0\x9f\x98\x80\xf0\x9f\x8e\x89",
        " e\xcc\x81", " \"q\" \\ \t\n", ""};
    return std::string{head} + std::to_string(v) + std::string{tails[v % tails.size()]};
}

/// A large string (20 KiB of mixed text) for one write in 50.
inline std::string maybe_large(std::string s, std::uint64_t v) {
    if (v % 50 != 7) return s;
    std::string filler;
    while (filler.size() < 20 * 1024) filler += "\xe2\x82\xac lorem \xf0\x9f\x8c\x8d ipsum ";
    return s + filler;
}

inline double number(std::uint64_t v) {
    switch (v % 4) {
        case 0: return static_cast<double>(v) * 1.5 + 0.125;
        case 1: return -static_cast<double>(v) / 1024.0;
        case 2: return static_cast<double>(v) * 1e-300;  // tiny, exact through JSON
        default: return static_cast<double>(v) * 3.0e200;  // huge
    }
}

inline tether_test::Place place(std::uint64_t v) {
    return tether_test::Place{static_cast<double>(v % 180) - 89.5, static_cast<double>(v) * 0.001 - 180.0, text("p", v)};
}

inline std::string short_text(const std::string& s) {
    return s.size() > 12 ? s.substr(0, 8) + "..(" + std::to_string(s.size()) + ")" : s;
}

}  // namespace rich_detail

template <>
struct sim_entity<tether_test::Survey> {
    using E = tether_test::Survey;
    static E make(std::uint64_t v) {
        E e;
        edit(e, all_fields, v);
        return e;
    }
    /// Bits: 1 title, 2 score, 4 tags, 8 place, 16 notes, 32 count.
    static void edit(E& e, std::uint64_t mask, std::uint64_t v) {
        if (mask & 1) e.title = rich_detail::text("t", v);
        if (mask & 2) e.score = rich_detail::number(v);
        if (mask & 4) {
            e.tags.assign({"v" + std::to_string(v)});
            for (std::uint64_t k = 0; k < v % 4; ++k) e.tags.push_back(rich_detail::text("g", v * 10 + k));
        }
        if (mask & 8) e.place = rich_detail::place(v);
        if (mask & 16) e.notes = rich_detail::maybe_large(rich_detail::text("n", v), v);
        if (mask & 32) e.count = (std::int64_t{1} << 53) + static_cast<std::int64_t>(v);  // beyond a double's precision
    }
    static constexpr std::uint64_t all_fields = 63;
    static constexpr std::string_view server_field = "notes";
    static constexpr std::uint64_t server_field_bit = 16;
    static void make_big(E& e, std::size_t bytes) { e.notes += std::string(bytes, 'x'); }
    static constexpr std::uint64_t big_field_bit = 16;
    static void poison(E& e) { e.score = std::numeric_limits<double>::quiet_NaN(); }
    static std::string describe(const E& e) {
        return "{" + rich_detail::short_text(e.title) + "," + std::to_string(e.score) + ",#" +
               std::to_string(e.tags.size()) + "," + rich_detail::short_text(e.place.label) + "," +
               rich_detail::short_text(e.notes) + "," + std::to_string(e.count) + "}";
    }
};

template <>
struct sim_entity<tether_test::Reading> {
    using E = tether_test::Reading;
    static E make(std::uint64_t v) {
        E e;
        edit(e, all_fields, v);
        return e;
    }
    /// Bits: 1 label, 2 value, 4 samples, 8 where, 16 memo.
    static void edit(E& e, std::uint64_t mask, std::uint64_t v) {
        if (mask & 1) e.label = rich_detail::text("l", v);
        if (mask & 2) e.value = rich_detail::number(v);
        if (mask & 4) {
            e.samples.assign({static_cast<int>(v)});
            for (std::uint64_t k = 0; k < v % 5; ++k) e.samples.push_back(-static_cast<int>(k));
        }
        if (mask & 8) e.where = rich_detail::place(v);
        if (mask & 16) e.memo = rich_detail::maybe_large(rich_detail::text("m", v), v);
    }
    static constexpr std::uint64_t all_fields = 31;
    static constexpr std::string_view server_field = "memo";
    static constexpr std::uint64_t server_field_bit = 16;
    static void make_big(E& e, std::size_t bytes) { e.memo += std::string(bytes, 'x'); }
    static constexpr std::uint64_t big_field_bit = 16;
    static void poison(E& e) { e.where.lat = std::numeric_limits<double>::infinity(); }
    static std::string describe(const E& e) {
        return "{" + rich_detail::short_text(e.label) + "," + std::to_string(e.value) + ",#" +
               std::to_string(e.samples.size()) + "," + rich_detail::short_text(e.where.label) + "," +
               rich_detail::short_text(e.memo) + "}";
    }
};

}  // namespace tether_sim
