// The README's example, compiled: a job queue that syncs through a loopback server.
#include <tether/tether.hpp>

#include <iostream>
#include <string>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

int main() {
    tether::loopback_server server;                          // an in-process server for tests and demos
    auto jobs = tether::make_engine<Job>(tether::loopback_transport{server, "alice"});

    auto job = jobs.create(Job{"Standup memo", 0}).value();  // local first: pending, no network needed
    (void)jobs.update(job.id, [](Job& j) { j.progress = 50; });
    auto watch = jobs.watch([](const tether::change<Job>& c) { std::cout << c.cause << '\n'; });

    auto report = jobs.sync();                               // push, then pull
    if (report) std::cout << report->pushed << " pushed\n";
    std::cout << jobs.get(job.id)->status << '\n';           // synced
    std::cout << jobs.health()->pending << " pending\n";     // 0
    return jobs.get(job.id)->status == tether::sync_status::synced ? 0 : 1;
}
