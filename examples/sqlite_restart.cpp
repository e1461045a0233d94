// The guide's walk-through on disk: two devices, each with its own SQLite file,
// sync through one server; one device quits mid-way (its engine and database
// closed) and starts again from its file, with nothing lost and nothing sent
// twice. Run as a test: exits 0 only if every step did what the comments say.
#include <tether/storage/sqlite.hpp>
#include <tether/tether.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

namespace {

bool ok = true;
void expect(bool what, std::string_view step) {
    std::cout << (what ? "ok   " : "FAIL ") << step << '\n';
    ok = ok && what;
}

/// One device: its own database file, engine and transport, opened from the file.
auto open_device(const std::filesystem::path& file, tether::loopback_server& server, tether::manual_clock clock) {
    auto db = tether::sqlite_database::open(file.string());
    if (!db) {
        std::cerr << "cannot open " << file << ": " << db.error().message << '\n';
        std::exit(1);
    }
    return tether::make_engine<Job>(tether::sqlite_storage{std::move(*db)},
                                    tether::loopback_transport{server, "alice"}, clock);
}

}  // namespace

int main() {
    const auto dir = std::filesystem::temp_directory_path() / ("tether-walkthrough-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    tether::manual_clock clock;
    tether::loopback_server server{[clock] { return clock.now(); }};
    auto desk = open_device(dir / "desk.db", server, clock);

    tether::local_id memo;
    {
        // The phone writes offline, pushes, and quits before it hears the answer.
        auto phone = open_device(dir / "phone.db", server, clock);
        phone.set_online(false);
        memo = phone.create(Job{"Standup memo", 0}).value().id;
        (void)phone.update(memo, [](Job& j) { j.progress = 40; });
        expect(phone.health()->pending == 1, "phone: one pending record while offline");
        phone.set_online(true);
        server.drop_next_responses(1);  // the push applies; its answer is lost
        auto lost = phone.sync();
        expect(lost && lost->failure, "phone: the push's answer was lost");
    }  // the phone's engine and database close here: the app quit

    // The phone starts again from its file: the record is still there, still pending.
    auto phone = open_device(dir / "phone.db", server, clock);
    auto back = phone.get(memo);
    expect(back && back->value.progress == 40 && back->status != tether::sync_status::synced,
           "phone after restart: the write is on disk, not yet confirmed");
    clock.advance(std::chrono::minutes{1});  // past the backoff of the failed attempt
    auto again = phone.sync();
    expect(again && !again->failure, "phone after restart: the retried push goes through");
    expect(server.count_with_local_id("alice", "jobs", memo) == 1, "server: one record, not two");

    // The desk pulls it, edits it; the phone pulls the edit.
    (void)desk.sync();
    auto on_desk = desk.get(memo);
    expect(on_desk && on_desk->value.title == "Standup memo", "desk: pulled the phone's record");
    (void)desk.update(memo, [](Job& j) { j.title = "Standup memo (edited)"; });
    (void)desk.sync();
    (void)phone.sync();
    expect(phone.get(memo)->value.title == "Standup memo (edited)", "phone: pulled the desk's edit");
    expect(phone.get(memo)->status == tether::sync_status::synced, "phone: synced");

    std::filesystem::remove_all(dir);
    return ok ? 0 : 1;
}
