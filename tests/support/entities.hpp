#pragma once

// Entities shared by tether's tests.
#include <tether/core/entity.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tether_test {

/// The dictation app's job: the core case of DOMAIN.md §1.
struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress), (std::string, audio_path));
    static constexpr std::string_view collection = "jobs";
    friend bool operator==(const Job&, const Job&) = default;
};

/// A type with its own nlohmann conversions instead of Hana introspection.
struct Note {
    std::string text;
    int stars = 0;
    static constexpr std::string_view collection = "notes";
    friend bool operator==(const Note&, const Note&) = default;
};

inline void to_json(nlohmann::json& j, const Note& n) { j = nlohmann::json{{"text", n.text}, {"stars", n.stars}}; }
inline void from_json(const nlohmann::json& j, Note& n) {
    j.at("text").get_to(n.text);
    j.at("stars").get_to(n.stars);
}

/// A place, nested in `Survey` and `Reading` (its own nlohmann conversions, as
/// a member of a Hana struct needs).
struct Place {
    double lat = 0;
    double lon = 0;
    std::string label;
    friend bool operator==(const Place&, const Place&) = default;
};

inline void to_json(nlohmann::json& j, const Place& p) {
    j = nlohmann::json{{"lat", p.lat}, {"lon", p.lon}, {"label", p.label}};
}
inline void from_json(const nlohmann::json& j, Place& p) {
    j.at("lat").get_to(p.lat);
    j.at("lon").get_to(p.lon);
    j.at("label").get_to(p.label);
}

/// Richer data through Hana introspection: a double, a vector, a nested struct,
/// unicode and large strings, a 64-bit integer beyond a double's precision.
/// (No `std::optional` member: Debian's nlohmann_json 3.11.2 does not convert
/// one without an extra serializer.)
struct Survey {
    BOOST_HANA_DEFINE_STRUCT(Survey, (std::string, title), (double, score), (std::vector<std::string>, tags),
                             (Place, place), (std::string, notes), (std::int64_t, count));
    static constexpr std::string_view collection = "surveys";
    friend bool operator==(const Survey&, const Survey&) = default;
};

/// The same kinds of data with its own nlohmann conversions instead of Hana.
struct Reading {
    std::string label;
    double value = 0;
    std::vector<int> samples;
    Place where;
    std::string memo;
    static constexpr std::string_view collection = "readings";
    friend bool operator==(const Reading&, const Reading&) = default;
};

inline void to_json(nlohmann::json& j, const Reading& r) {
    j = nlohmann::json{
        {"label", r.label}, {"value", r.value}, {"samples", r.samples}, {"where", r.where}, {"memo", r.memo}};
}
inline void from_json(const nlohmann::json& j, Reading& r) {
    j.at("label").get_to(r.label);
    j.at("value").get_to(r.value);
    j.at("samples").get_to(r.samples);
    j.at("where").get_to(r.where);
    j.at("memo").get_to(r.memo);
}

}  // namespace tether_test
