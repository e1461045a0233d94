// expect: more than one conflict policy
// Two conflict policies (of different types) for one engine.
#include <tether/tether.hpp>

#include <string>
#include <string_view>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

void build() {
    auto e = tether::make_engine<Job>(tether::server_wins{}, tether::client_wins{});
    (void)e.list();
}
