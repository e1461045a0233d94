// expect: every policy must declare
// A type that declares no policy_kind is not a policy.
#include <tether/tether.hpp>

#include <string>
#include <string_view>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

struct not_a_policy {
    int verbosity = 0;
};

void build() {
    auto e = tether::make_engine<Job>(tether::memory_storage{}, not_a_policy{});
    (void)e.list();
}
