// expect: more than one engine_options
// engine_options given twice: the engine does not merge them.
#include <tether/tether.hpp>

#include <string>
#include <string_view>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

void build() {
    auto e = tether::make_engine<Job>(tether::engine_options{.id_seed = 1}, tether::engine_options{.pull_limit = 10});
    (void)e.list();
}
