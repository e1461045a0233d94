// The dictation app's job queue (DOMAIN.md §1): two devices of one user keep
// jobs in sync through a loopback server, whatever the network does.
//
// Shows: writes while offline, a lost response that does not duplicate, a
// conflict settled by server wins, a poison record that fails, its reset, a
// confirmed delete with its cleanup hook, and health figures. Time is a manual
// clock, so every run prints the same log.
#include <tether/tether.hpp>

#include <chrono>
#include <iomanip>
#include <iostream>
#include <map>
#include <string>

using namespace std::chrono_literals;

/// A recorded job; the audio file lives beside the record and is deleted with it.
struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress), (std::string, audio_path));
    static constexpr std::string_view collection = "jobs";
};

namespace {

tether::manual_clock demo_clock;
std::map<tether::local_id, std::string> names;  // local id -> job title at creation, for the log

std::string clock_text() {
    const auto since = demo_clock.now() - tether::manual_clock::default_start;
    const auto mins = std::chrono::duration_cast<std::chrono::minutes>(since).count();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since).count() % 60;
    std::ostringstream out;
    out << "t+" << std::setw(2) << std::setfill('0') << mins << ':' << std::setw(2) << secs;
    return out.str();
}

void say(const std::string& text) { std::cout << "\n" << clock_text() << "  " << text << "\n"; }

template <class Engine>
void attach_log(Engine& engine, const std::string& device) {
    engine.on_transition([device, &engine](const tether::transition& t) {
        // Hooks run outside the engine's locks, so reading the record here is fine.
        if (!names.contains(t.id)) names[t.id] = engine.get(t.id).value().value.title;
        std::cout << "        [" << device << "] " << std::left << std::setw(14) << names[t.id] << " "
                  << (t.from ? std::string{tether::to_string(*t.from)} : std::string{"(new)"}) << " -> "
                  << (t.to ? std::string{tether::to_string(*t.to)} : std::string{"(gone)"}) << "  (" << t.cause
                  << ")\n";
    });
    engine.on_cleanup([device](const tether::record<Job>& r) -> tether::result<void> {
        std::cout << "        [" << device << "] cleanup: delete audio file " << r.value.audio_path << "\n";
        return {};
    });
}

template <class Engine>
void show(Engine& engine, const std::string& device) {
    const auto h = engine.health().value();
    std::cout << "        [" << device << "] health: " << h.pending << " pending, " << h.synced << " synced, "
              << h.pending_deletion << " pending deletion, " << h.error << " error, " << h.failed
              << " failed; state " << h.state << "\n";
    for (const auto& r : engine.list().value()) {
        std::cout << "          - " << std::left << std::setw(14) << r.value.title << " progress " << std::setw(3)
                  << r.value.progress << " " << std::setw(16) << tether::to_string(r.status)
                  << (r.server_id ? " server id " + *r.server_id : std::string{" not on server yet"})
                  << (r.last_error ? "  last error: " + r.last_error->message : std::string{}) << "\n";
    }
}

template <class Engine>
void sync(Engine& engine, const std::string& device) {
    auto rep = engine.sync();
    if (!rep) {
        std::cout << "        [" << device << "] sync failed: " << rep.error() << "\n";
        return;
    }
    std::cout << "        [" << device << "] sync: " << rep->pushed << " pushed, " << rep->pulled << " pulled, "
              << rep->conflicts << " conflicts, " << rep->retrying << " retrying, " << rep->failed << " failed";
    if (rep->skipped) std::cout << " (skipped: " << tether::to_string(*rep->skipped) << ")";
    if (rep->failure) std::cout << " (" << *rep->failure << ")";
    std::cout << "\n";
}

}  // namespace

int main() {
    tether::loopback_server server{[] { return demo_clock.now(); }};
    auto phone = tether::make_engine<Job>(tether::loopback_transport{server, "alice"}, demo_clock);
    auto desk = tether::make_engine<Job>(tether::loopback_transport{server, "alice"}, demo_clock);
    attach_log(phone, "phone");
    attach_log(desk, "desk ");

    say("The phone is offline. Recording still works: every write is local first.");
    phone.set_online(false);
    auto memo = phone.create(Job{"Standup memo", 0, "/audio/standup.m4a"}).value();
    auto letter = phone.create(Job{"Letter", 0, "/audio/letter.m4a"}).value();
    (void)phone.update(memo.id, [](Job& j) { j.progress = 20; });
    sync(phone, "phone");
    show(phone, "phone");

    demo_clock.advance(2min);
    say("Back online: the queue goes up.");
    phone.set_online(true);
    sync(phone, "phone");
    show(phone, "phone");

    demo_clock.advance(1min);
    say("A new job's create reaches the server, but the response is lost on the way back.");
    auto interview = phone.create(Job{"Interview", 0, "/audio/interview.m4a"}).value();
    server.drop_next_responses(1);
    sync(phone, "phone");
    demo_clock.advance(1min);
    say("A minute later (the backoff's first step) the retry is answered with the same record: no duplicate.");
    sync(phone, "phone");
    std::cout << "        server holds " << server.count_with_local_id("alice", "jobs", interview.id)
              << " record for the interview, " << server.records("alice", "jobs").size() << " jobs in all\n";

    demo_clock.advance(1min);
    say("The desk pulls everything the phone recorded.");
    sync(desk, "desk ");
    show(desk, "desk ");

    demo_clock.advance(1min);
    say("Both edit the standup memo; the desk syncs first. The server wins the conflict.");
    (void)desk.update(memo.id, [](Job& j) { j.title = "Standup (final)"; });
    sync(desk, "desk ");
    (void)phone.update(memo.id, [](Job& j) { j.progress = 90; });
    sync(phone, "phone");
    std::cout << "        phone now has: " << phone.get(memo.id)->value.title << ", progress "
              << phone.get(memo.id)->value.progress << "\n";

    demo_clock.advance(1min);
    say("The server refuses one job for good (a poison record); the others still go up.");
    auto broken = phone.create(Job{"Corrupt audio", 0, "/audio/corrupt.m4a"}).value();
    auto notes = phone.create(Job{"Notes", 0, "/audio/notes.m4a"}).value();
    server.poison(broken.id);
    sync(phone, "phone");
    show(phone, "phone");

    demo_clock.advance(5min);
    say("The server is fixed; the user resets the failed job and it syncs.");
    server.unpoison(broken.id);
    (void)phone.reset_failed(broken.id);
    sync(phone, "phone");

    demo_clock.advance(1min);
    say("The user deletes the letter: pending deletion until the server confirms, then its audio is cleaned up.");
    (void)phone.remove(letter.id);
    show(phone, "phone");
    sync(phone, "phone");
    sync(desk, "desk ");

    say("Both devices agree with the server.");
    show(phone, "phone");
    show(desk, "desk ");
    const auto on_server = server.records("alice", "jobs").size();
    const auto on_phone = phone.list().value().size();
    const auto on_desk = desk.list().value().size();
    std::cout << "        server " << on_server << " jobs, phone " << on_phone << ", desk " << on_desk << "\n";
    return on_server == on_phone && on_phone == on_desk ? 0 : 1;
}
