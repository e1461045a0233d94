// expect: backoff policy must satisfy
// Declares itself a backoff policy, but next_delay returns an int.
#include <tether/tether.hpp>

#include <cstdint>
#include <string>
#include <string_view>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

struct bad_backoff {
    using policy_kind = tether::backoff_tag;
    int next_delay(std::uint32_t, const tether::error&) const { return 1000; }
};

void build() {
    auto e = tether::make_engine<Job>(bad_backoff{});
    (void)e.list();
}
