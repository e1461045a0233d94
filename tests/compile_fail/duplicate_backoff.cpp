// expect: more than one backoff policy
// Two backoff policies for one engine.
#include <tether/tether.hpp>

#include <string>
#include <string_view>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

#include <chrono>

void build() {
    using namespace std::chrono_literals;
    auto e = tether::make_engine<Job>(tether::exponential_backoff{}, tether::exponential_backoff{.base = 30s});
    (void)e.list();
}
