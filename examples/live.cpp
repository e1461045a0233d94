// The live feed: the phone follows the jobs the desktop works on, and sees
// each step as it is synced, without pulling. The first event names a record
// the phone does not hold: it fetches it once (a `created` event may come
// after the record's deletion, and only the server can tell). One event is
// lost on the way; the next one shows the gap, and the phone fetches the
// record instead of applying a broken state.
#include <tether/tether.hpp>

#include <iostream>
#include <string>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

int main() {
    tether::manual_clock clock;
    tether::loopback_server server{[clock] { return clock.now(); }};
    auto desktop = tether::make_engine<Job>(tether::loopback_transport{server, "alice"}, clock);
    auto phone = tether::make_engine<Job>(tether::loopback_transport{server, "alice"}, clock);

    bool ready = false;                                    // the phone's feed has something
    if (!phone.follow([&] { ready = true; })) return 1;    // an app would schedule apply_live() here
    auto shown = phone.watch([](const tether::change<Job>& c) {
        if (c.current) std::cout << "phone (" << c.cause << "): " << c.current->value.title << " "
                                 << c.current->value.progress << "%\n";
    });

    auto job = desktop.create(Job{"Standup memo", 0}).value();
    (void)desktop.sync();                                  // the phone's feed gets a `created` event: fetched
    for (int progress : {25, 50, 75, 100}) {
        if (progress == 50) server.events().drop_next(1);  // this step never reaches the phone
        (void)desktop.update(job.id, [&](Job& j) { j.progress = progress; });
        (void)desktop.sync();
        if (ready) {
            ready = false;
            (void)phone.apply_live();                       // 75% shows the gap: fetched, not applied blind
        }
    }

    const auto status = phone.live_status();
    std::cout << status.applied << " applied, " << status.fetches << " fetched\n";
    const auto held = phone.list().value();
    return held.size() == 1 && held[0].value.progress == 100 && status.fetches == 2 ? 0 : 1;
}
