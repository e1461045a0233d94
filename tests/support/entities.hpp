#pragma once

// Entities shared by tether's tests.
#include <tether/core/entity.hpp>

#include <string>
#include <string_view>

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

}  // namespace tether_test
