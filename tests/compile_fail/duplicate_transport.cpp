// expect: more than one transport policy
// Two transports for one engine: the engine cannot tell which server to talk to.
#include <tether/tether.hpp>

#include <string>
#include <string_view>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

void build() {
    tether::loopback_server server;
    auto e = tether::make_engine<Job>(tether::loopback_transport{server, "alice"},
                                      tether::loopback_transport{server, "bob"});
    (void)e.list();
}
