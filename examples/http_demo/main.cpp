// The dictation app's job queue on real parts: two devices of one user, each
// with its own SQLite file, syncing over HTTP with a running `tether-server`.
// scripts/demo.sh starts and stops the server around the two phases:
//
//   tether_example_http_demo offline URL DIR   the server is down: writes still work
//   tether_example_http_demo online  URL DIR   the server is back: everything goes up,
//       a lost response that does not duplicate, a conflict (server wins), a
//       poison record (a value over the server's 1 MiB limit) that fails and its
//       reset, a confirmed delete with its cleanup, health as it changes; exits 0
//       only if both devices agree with the server.
//
// DIR holds phone.db and laptop.db, so the second phase reopens what the first
// wrote: nothing lives only in memory.
#include <tether/storage/sqlite.hpp>
#include <tether/tether.hpp>
#include <tether/transport/http.hpp>

#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

/// A recorded job; the audio file lives beside the record and is deleted with it.
struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress), (std::string, audio_path));
    static constexpr std::string_view collection = "jobs";
};

namespace {

/// Forwards to the HTTP transport; when armed, lets one push reach the server
/// and throws its answer away, as a connection that dies on the way back does.
struct lossy_transport {
    using policy_kind = tether::transport_tag;

    tether::http_transport inner;
    std::shared_ptr<bool> lose_next = std::make_shared<bool>(false);

    tether::result<std::vector<tether::push_outcome>> push(std::string_view collection,
                                                           std::span<const tether::push_op> ops) {
        auto r = inner.push(collection, ops);
        if (!*lose_next || !r) return r;
        *lose_next = false;
        return tether::unexpected(tether::make_error(tether::errc::transient, "connection reset before the answer arrived"));
    }
    tether::result<tether::pull_page> pull(std::string_view collection, std::string_view cursor, std::size_t limit) {
        return inner.pull(collection, cursor, limit);
    }
    tether::result<tether::server_record> fetch(std::string_view collection, std::string_view server_id) {
        return inner.fetch(collection, server_id);
    }
    [[nodiscard]] std::size_t max_batch() const { return inner.max_batch(); }
    [[nodiscard]] bool has_change_feed() const { return inner.has_change_feed(); }
};

tether::http_options options(const std::string& url, std::string token) {
    tether::http_options o;
    o.base_url = url;
    o.token = std::move(token);
    o.timeouts.connect = std::chrono::seconds{2};
    return o;
}

using device_engine = tether::sync_engine<Job, tether::sqlite_storage, lossy_transport, tether::system_clock,
                                          tether::exponential_backoff>;

/// One device: its engine, opened on `dir/name.db`.
struct device {
    device(const std::string& url, const std::string& dir, std::string device_name, const std::string& token)
        : name(std::move(device_name)),
          engine(tether::sqlite_storage{tether::sqlite_database::open(dir + "/" + name + ".db").value()},
                 lossy_transport{tether::http_transport{options(url, token)}}, tether::system_clock{},
                 // Retries are due at once, so the demo never waits on a backoff.
                 tether::exponential_backoff{.base = std::chrono::milliseconds{0}, .max_attempts = 3}) {
        engine.on_transition([this](const tether::transition& t) {
            auto r = engine.get(t.id);  // hooks run outside the engine's locks
            std::cout << "        [" << name << "] " << std::left << std::setw(14)
                      << (r ? r->value.title : std::string{"(deleted)"}) << " "
                      << (t.from ? std::string{tether::to_string(*t.from)} : std::string{"(new)"}) << " -> "
                      << (t.to ? std::string{tether::to_string(*t.to)} : std::string{"(gone)"}) << "  (" << t.cause
                      << ")\n";
        });
        engine.on_cleanup([this](const tether::record<Job>& r) -> tether::result<void> {
            std::cout << "        [" << name << "] cleanup: delete audio file " << r.value.audio_path << "\n";
            return {};
        });
    }

    void sync() {
        auto rep = engine.sync();
        if (!rep) {
            std::cout << "        [" << name << "] sync failed: " << rep.error() << "\n";
            return;
        }
        std::cout << "        [" << name << "] sync: " << rep->pushed << " pushed, " << rep->pulled << " pulled, "
                  << rep->conflicts << " conflicts, " << rep->retrying << " retrying, " << rep->failed << " failed";
        if (rep->failure) std::cout << " (" << *rep->failure << ")";
        std::cout << "\n";
    }

    void show() {
        const auto h = engine.health().value();
        std::cout << "        [" << name << "] health: " << h.pending << " pending, " << h.synced << " synced, "
                  << h.pending_deletion << " pending deletion, " << h.failed << " failed; state " << h.state << "\n";
    }

    [[nodiscard]] tether::result<tether::record<Job>> find(const std::string& title) const {
        auto all = engine.list();
        if (!all) return tether::unexpected(all.error());
        for (auto& r : *all)
            if (r.value.title == title) return r;
        return tether::unexpected(tether::make_error(tether::errc::not_found, "no job titled " + title));
    }

    std::string name;
    device_engine engine;
};

void say(const std::string& text) { std::cout << "\n" << text << "\n"; }

int offline(const std::string& url, const std::string& dir) {
    device phone{url, dir, "phone", "phone-token"};
    device laptop{url, dir, "laptop", "laptop-token"};
    say("The server is down. Recording still works: every write is local first.");
    (void)phone.engine.create(Job{"Standup memo", 0, "/audio/standup.m4a"}).value();
    (void)phone.engine.create(Job{"Letter", 0, "/audio/letter.m4a"}).value();
    (void)laptop.engine.create(Job{"Interview", 0, "/audio/interview.m4a"}).value();
    phone.sync();
    laptop.sync();
    phone.show();
    laptop.show();
    return phone.engine.health().value().pending == 2 && laptop.engine.health().value().pending == 1 ? 0 : 1;
}

/// Every live record on the server, read page by page as a third client would.
tether::result<std::map<std::string, nlohmann::json>> server_view(const std::string& url) {
    tether::http_transport reader{options(url, "phone-token")};
    std::map<std::string, nlohmann::json> live;
    std::string cursor;
    for (;;) {
        auto page = reader.pull("jobs", cursor, 100);
        if (!page) return tether::unexpected(page.error());
        for (auto& r : page->records) live[r.server_id] = r.value;
        for (auto& t : page->tombstones) live.erase(t.server_id);
        cursor = page->next_cursor;
        if (!page->has_more) return live;
    }
}

bool agrees(const device& d, const std::map<std::string, nlohmann::json>& live) {
    std::size_t n = 0;
    for (const auto& r : d.engine.list().value()) {
        if (r.deleted) continue;
        ++n;
        if (r.status != tether::sync_status::synced || !r.server_id || !live.contains(*r.server_id)) return false;
        if (live.at(*r.server_id).at("title") != r.value.title) return false;
    }
    std::cout << "        [" << d.name << "] " << n << " jobs, all synced\n";
    return n == live.size();
}

int online(const std::string& url, const std::string& dir) {
    device phone{url, dir, "phone", "phone-token"};
    device laptop{url, dir, "laptop", "laptop-token"};

    say("The server is back (same SQLite files, reopened): both queues go up.");
    phone.sync();
    laptop.sync();
    phone.sync();  // pulls the laptop's interview
    phone.show();

    say("A new job's create reaches the server, but the answer is lost on the way back.");
    auto dictation = phone.engine.create(Job{"Dictation", 0, "/audio/dictation.m4a"}).value();
    *phone.engine.transport().lose_next = true;
    phone.sync();
    say("The retry is answered with the same record (the server had it): no duplicate.");
    phone.sync();
    std::cout << "        dictation is " << tether::to_string(phone.engine.get(dictation.id)->status)
              << " as server id " << phone.engine.get(dictation.id)->server_id.value_or("?") << "\n";

    say("Both edit the standup memo; the laptop syncs first. The server wins the conflict.");
    laptop.sync();
    const auto memo = phone.find("Standup memo").value();
    (void)laptop.engine.update(memo.id, [](Job& j) { j.progress = 60; });
    laptop.sync();
    (void)phone.engine.update(memo.id, [](Job& j) { j.progress = 90; });
    phone.sync();
    std::cout << "        phone now has progress " << phone.engine.get(memo.id)->value.progress << "\n";

    say("A job whose value is over the server's 1 MiB limit fails for good; the others still go up.");
    auto huge = phone.engine.create(Job{"Huge", 0, std::string(1100 * 1024, 'x')}).value();
    auto notes = phone.engine.create(Job{"Notes", 0, "/audio/notes.m4a"}).value();
    phone.sync();
    phone.show();
    std::cout << "        huge: " << tether::to_string(phone.engine.get(huge.id)->status) << ", notes: "
              << tether::to_string(phone.engine.get(notes.id)->status) << "\n";

    say("The user trims the job and resets it; it syncs.");
    (void)phone.engine.update(huge.id, [](Job& j) { j.audio_path = "/audio/huge.m4a"; });
    (void)phone.engine.reset_failed(huge.id);
    phone.sync();

    say("The laptop deletes the letter: pending deletion until the server confirms, then cleanup.");
    laptop.sync();
    const auto letter = laptop.find("Letter").value();
    (void)laptop.engine.remove(letter.id);
    laptop.show();
    laptop.sync();
    phone.sync();

    say("Both devices agree with the server.");
    laptop.sync();
    phone.show();
    laptop.show();
    auto live = server_view(url);
    if (!live) {
        std::cout << "        reading the server failed: " << live.error() << "\n";
        return 1;
    }
    std::cout << "        server: " << live->size() << " jobs\n";
    return agrees(phone, *live) && agrees(laptop, *live) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const std::set<std::string> phases{"offline", "online"};
    if (argc != 4 || !phases.contains(argv[1])) {
        std::cerr << "usage: " << argv[0] << " offline|online URL DIR\n";
        return 2;
    }
    return std::string{argv[1]} == "offline" ? offline(argv[2], argv[3]) : online(argv[2], argv[3]);
}
