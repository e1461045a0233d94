#pragma once

// The benchmarks' entity: the dictation app's job (as in tests/support/entities.hpp).
#include <tether/core/entity.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tether_bench {

/// The dictation app's job.
struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress), (std::string, audio_path));
    static constexpr std::string_view collection = "jobs";
    friend bool operator==(const Job&, const Job&) = default;
};

/// `n` distinct jobs of realistic size: a short title (in the small-string
/// buffer) and a path that needs a heap block, as a phone app's would.
inline std::vector<Job> make_jobs(std::size_t n) {
    std::vector<Job> jobs;
    jobs.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto k = std::to_string(i);
        jobs.push_back(Job{"memo-" + k + ".m4a", 0, "/data/user/0/com.example.dictation/files/audio/memo-" + k + ".m4a"});
    }
    return jobs;
}

}  // namespace tether_bench
