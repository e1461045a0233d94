// expect: clock policy must satisfy
// Declares itself a clock policy, but now() returns a raw std::chrono time point.
#include <tether/tether.hpp>

#include <chrono>
#include <string>
#include <string_view>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

struct bad_clock {
    using policy_kind = tether::clock_tag;
    std::chrono::system_clock::time_point now() const noexcept { return std::chrono::system_clock::now(); }
};

void build() {
    auto e = tether::make_engine<Job>(bad_clock{});
    (void)e.list();
}
