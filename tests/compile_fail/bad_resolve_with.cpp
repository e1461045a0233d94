// expect: the callback must return tether::resolution
// A resolve_with callback returning int: the error shows when the engine's sync
// instantiates resolve().
#include <tether/tether.hpp>

#include <string>
#include <string_view>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

void build() {
    auto e = tether::make_engine<Job>(tether::resolve_with([](const tether::conflict<Job>&) { return 1; }));
    (void)e.sync();
}
