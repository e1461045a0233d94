// Compile-time probe, subject: one TU that instantiates a full engine over
// memory storage and the loopback transport with every other policy at its
// default, and uses the whole public surface an app does: create, update,
// remove, sync, health and watch. Compiled (never run) by ../compile_probe.sh.
#include <tether/tether.hpp>

#include <iostream>
#include <string>
#include <string_view>

namespace {

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress), (std::string, audio_path));
    static constexpr std::string_view collection = "jobs";
    friend bool operator==(const Job&, const Job&) = default;
};

}  // namespace

int main() {
    auto jobs = tether::make_engine<Job>(tether::memory_storage{}, tether::loopback_transport{});
    auto sub = jobs.watch([](const tether::change<Job>& c) { std::cout << c.cause << '\n'; });
    auto job = jobs.create(Job{"memo.m4a", 0, "/audio/memo.m4a"}).value();
    (void)jobs.update(job.id, [](Job& j) { j.progress = 50; });
    (void)jobs.update(job.id, Job{"memo.m4a", 100, "/audio/memo.m4a"});
    auto report = jobs.sync();
    std::cout << (report ? report->pushed : 0) << " pushed\n";
    (void)jobs.remove(job.id);
    (void)jobs.push();
    (void)jobs.pull();
    std::cout << jobs.health().value().pending << " pending\n";
    return 0;
}
