// The dictation relay: the desktop transcribes a job and appends its
// transcript chunk by chunk; each chunk goes up as an append op (the chunk,
// not the whole text), and the phone, following the collection over the
// loopback feed, shows the text growing as `appended` events extend its own
// copy. One chunk's event is lost on the way: the next one shows the gap
// (its length before is not the phone's), and the phone fetches the record
// once instead of applying a broken text. Exits 0 only if the phone's text
// ends equal to the server's.
#include <tether/tether.hpp>

#include <iostream>
#include <string>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (std::string, transcript));
    static constexpr std::string_view collection = "jobs";
};

int main() {
    tether::manual_clock clock;
    tether::loopback_server server{[clock] { return clock.now(); }};
    auto desktop = tether::make_engine<Job>(tether::loopback_transport{server, "alice"}, clock);
    auto phone = tether::make_engine<Job>(tether::loopback_transport{server, "alice"}, clock);

    auto job = desktop.create(Job{"Standup memo", ""}).value();
    if (!desktop.sync() || !phone.sync()) return 1;          // both hold the job

    bool ready = false;                                       // the phone's feed has something
    if (!phone.follow([&] { ready = true; })) return 1;       // an app would schedule apply_live() here
    auto shown = phone.watch([](const tether::change<Job>& c) {
        if (c.current) std::cout << "phone (" << c.cause << "): \"" << c.current->value.transcript << "\"\n";
    });

    const char* chunks[] = {"Good morning.", " Today we ship", " the relay,", " then the docs."};
    int n = 0;
    for (const char* chunk : chunks) {
        if (++n == 3) server.events().drop_next(1);           // this chunk's event never reaches the phone
        if (!desktop.append(job.id, "transcript", chunk)) return 1;
        if (!desktop.sync()) return 1;                        // an append op: the chunk alone
        if (ready) {
            ready = false;
            if (!phone.apply_live()) return 1;                // the 4th shows the gap: one fetch
        }
    }

    const auto status = phone.live_status();
    const auto held = server.records("alice", "jobs");
    const auto mine = phone.list().value();
    std::cout << status.applied << " applied, " << status.fetches << " fetched\n";
    const bool same = held.size() == 1 && mine.size() == 1 &&
                      mine[0].value.transcript == held[0].value.at("transcript").get<std::string>() &&
                      mine[0].value.transcript == "Good morning. Today we ship the relay, then the docs.";
    return same && status.fetches == 1 ? 0 : 1;
}
