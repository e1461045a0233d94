// expect: more than one storage policy
// Two storage policies for one engine: the engine cannot tell which to use.
#include <tether/tether.hpp>

#include <string>
#include <string_view>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

void build() {
    auto e = tether::make_engine<Job>(tether::memory_storage{}, tether::memory_storage{});
    (void)e.list();
}
