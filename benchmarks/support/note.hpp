#pragma once

// The note entity of the HTTP benchmarks (bench_http.cpp, pull_memory.cpp):
// what a dictation app syncs, ~250 bytes of JSON.
#include <tether/core/entity.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tether_bench {

/// A dictation note of ~250 bytes of JSON: a 150-character text, an audio
/// path, a duration and a status.
struct note {
    BOOST_HANA_DEFINE_STRUCT(note, (std::string, text), (std::string, audio_path), (int, duration_ms),
                             (std::string, status));
    static constexpr std::string_view collection = "notes";
};

/// `n` distinct notes, numbered from `first`.
inline std::vector<note> make_notes(std::size_t n, std::size_t first = 0) {
    std::vector<note> out;
    out.reserve(n);
    for (std::size_t i = first; i < first + n; ++i) {
        const auto k = std::to_string(i);
        std::string text = "Note " + k + ": ";
        while (text.size() < 150) text += "call the clinic back about the results, ";
        text.resize(150);
        out.push_back(note{text, "/data/user/0/com.example.dictation/files/audio/note-" + k + ".m4a",
                           static_cast<int>(1000 + i % 60000), "recorded"});
    }
    return out;
}

}  // namespace tether_bench
