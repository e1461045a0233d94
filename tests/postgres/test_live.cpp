// Live events across processes over PostgreSQL: the notification payload's
// strict decoding; the feed (LISTEN, on its own thread) against the real
// server, in process: a hint resolved from the store, a malformed payload
// treated as a gap, a stalled listener that never blocks a push; and real
// tether-server --postgres processes over one database: a device subscribed
// to process B hears what another device pushes through process A, in
// order, never its own change; a killed listening connection recovers
// without a silent gap; a resume with Last-Event-ID on another process.
// Waits are bounded polls for the real server or the feed, never sleeps.
#include "pg_test.hpp"

#include <tether/server/http/events.hpp>
#include <tether/server/postgres/live_feed.hpp>
#include <tether/server/postgres/notify.hpp>
#include <tether/server/postgres_store.hpp>
#include <tether/server/sync_service.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

tether::push_op live_create(std::uint64_t n, nlohmann::json value, std::string origin) {
    tether::push_op op;
    op.kind = tether::op_kind::create;
    op.id = tether::local_id::from_parts(tether::timestamp{std::chrono::milliseconds{1'700'000'000'000}},
                                         static_cast<std::uint16_t>(n), n);
    op.value = std::move(value);
    op.origin = std::move(origin);
    return op;
}

tether::live_event note_event(std::uint64_t v, std::uint64_t epoch = 0) {
    tether::live_event e;
    e.kind = v == 1 ? tether::live_kind::created : tether::live_kind::updated;
    e.collection = "jobs";
    e.record.server_id = "s1";
    e.record.value = {{"title", "t"}};
    e.record.version = e.version = v;
    e.replaces = v == 1 ? 0 : v - 1;
    e.cursor = tether::server::format_cursor({v, epoch});
    if (v > 1 || epoch != 0) e.previous_cursor = tether::server::format_cursor({v - 1, epoch});
    return e;
}

// Reads a stream's frames until `text` shows up (at most 20 s of heartbeats); all it read.
std::string read_until(tether::server::event_stream& s, const std::string& text) {
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (got.find(text) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        auto step = s.next(100ms);
        got += step.text;
        if (step.last) break;
    }
    return got;
}

}  // namespace

TEST_CASE("postgres notification: a note round-trips, and the events are left out when they do not fit",
          "[postgres][live]") {
    tether::server::pg_change_note n{"user\x01\xff", "jobs", 0, 1, 2, {note_event(1), note_event(2)}};
    const auto text = tether::server::encode_pg_change_note(n);
    REQUIRE(text.size() <= tether::server::pg_max_payload_bytes);
    auto back = tether::server::decode_pg_change_note(text);
    REQUIRE(back);
    CHECK(back->user == n.user);
    CHECK(back->from == 1);
    CHECK(back->to == 2);
    REQUIRE(back->events.size() == 2);
    CHECK(back->events[1].previous_cursor == "1");

    n.events[1].record.value = {{"title", std::string(9000, 'x')}};
    auto hint = tether::server::decode_pg_change_note(tether::server::encode_pg_change_note(n));
    REQUIRE(hint);
    CHECK(hint->events.empty());  // a hint: the listener reads the store
    CHECK(hint->to == 2);

    n.user = std::string(5000, 'u');  // too long to name even in hex: a gap the listeners catch up on
    const auto unnamed = tether::server::encode_pg_change_note(n);
    CHECK(unnamed == tether::server::pg_unnamed_change_payload);
    CHECK_FALSE(tether::server::decode_pg_change_note(unnamed));
}

TEST_CASE("postgres notification: a malformed payload is refused, never half decoded", "[postgres][live]") {
    tether::server::pg_change_note n{"u", "jobs", 3, 5, 5, {note_event(5, 3)}};
    const std::string good = tether::server::encode_pg_change_note(n);
    REQUIRE(tether::server::decode_pg_change_note(good));
    auto with = [&](const std::string& key, nlohmann::json v) {
        auto j = nlohmann::json::parse(good);
        j[key] = std::move(v);
        return j.dump();
    };
    const std::vector<std::string> bad = {
        "", "garbage", "[]", std::string(9000, ' '), R"({"v":2})",
        with("u", "zz"),                   // not hex
        with("u", "abc"),                  // odd length
        with("f", 0),                      // no change 0
        with("f", 6),                      // from above to
        with("t", 6),                      // events do not cover the range
        with("e", 0),                      // an event of another epoch
        with("c", "6f74686572"),           // events of another collection
        with("ev", nlohmann::json::array({nlohmann::json::object()})),
        with("t", "5"),
    };
    for (const auto& text : bad) {
        INFO(text.substr(0, 120));
        auto d = tether::server::decode_pg_change_note(text);
        REQUIRE_FALSE(d);
        CHECK(d.error().code == tether::errc::protocol);
    }
}

TEST_CASE("event hub: a change told twice is told once, and a placed stream meeting a gap is reset",
          "[postgres][live]") {
    tether::server::event_options o;
    tether::server::event_hub hub{o};
    auto s = hub.open("u", "jobs", "phone", "");
    REQUIRE(s);
    hub.publish("u", note_event(1));
    hub.publish("u", note_event(1));  // the same change from another source
    hub.publish("u", note_event(2));
    auto got = (*s)->next(0ms).text;
    CHECK(got.find("id: 1\n") != std::string::npos);
    CHECK(got.find("id: 2\n") != std::string::npos);
    CHECK(got.find("id: 1\n", got.find("id: 1\n") + 1) == std::string::npos);
    CHECK(hub.last("u", "jobs") == tether::server::cursor{2, 0});
    hub.publish("u", note_event(4));  // 3 never came: the stream cannot go on silently
    auto step = (*s)->next(0ms);
    CHECK(step.text.find("event: reset") != std::string::npos);
    CHECK(step.last);
}

TEST_CASE("event hub: a resume the history does not reach is filled by the backfill, then goes on live",
          "[postgres][live]") {
    tether::server::event_hub hub{tether::server::event_options{}};
    hub.set_backfill([](std::string_view, std::string_view,
                        tether::server::cursor after) -> tether::result<std::vector<tether::live_event>> {
        if (after.epoch != 0) return tether::unexpected{tether::make_error(tether::errc::cursor_expired, "epoch")};
        std::vector<tether::live_event> out;
        for (std::uint64_t v = after.change + 1; v <= 3; ++v) out.push_back(note_event(v));
        return out;
    });
    auto s = hub.open("u", "jobs", "phone", "1");
    REQUIRE(s);
    hub.publish("u", note_event(3));  // also in the fill: told once
    hub.publish("u", note_event(4));
    const auto got = (*s)->next(0ms).text;
    const auto at2 = got.find("id: 2\n"), at3 = got.find("id: 3\n"), at4 = got.find("id: 4\n");
    REQUIRE(at2 != std::string::npos);
    REQUIRE(at3 != std::string::npos);
    REQUIRE(at4 != std::string::npos);
    CHECK(at2 < at3);
    CHECK(at3 < at4);
    CHECK(got.find("id: 3\n", at3 + 1) == std::string::npos);
    CHECK(got.find("id: 1\n") == std::string::npos);

    auto fresh = hub.open("u", "jobs", "laptop", "");  // an empty cursor: from now on, nothing replayed
    REQUIRE(fresh);
    hub.publish("u", note_event(5));
    const auto now_on = (*fresh)->next(0ms).text;
    CHECK(now_on.find("id: 5\n") != std::string::npos);
    CHECK(now_on.find("id: 4\n") == std::string::npos);
    CHECK(now_on.find("event: reset") == std::string::npos);

    auto stale = hub.open("u", "jobs", "tablet", "1@5");  // the store cannot serve it: reset
    REQUIRE(stale);
    auto step = (*stale)->next(0ms);
    CHECK(step.text.find("event: reset") != std::string::npos);
    CHECK(step.last);
}

TEST_CASE("postgres live feed: pushes are heard through LISTEN, hints read back, malformed notes are gaps",
          "[postgres][live]") {
    auto store = tether::server::postgres_store::open(tether_test::pg_fresh_schema());
    REQUIRE(store);
    tether::server::sync_service<tether::server::postgres_store> service{*store};
    auto hub = std::make_shared<tether::server::event_hub>(tether::server::event_options{});
    std::mutex stall;  // held: the feed's log (and so its thread) waits
    tether::server::postgres_live_options lo;
    lo.log = [&stall](std::string_view) { std::lock_guard wait{stall}; };
    tether::server::postgres_live_feed feed{*store, hub, lo};
    tether_test::pg_wait_for([&] { return feed.listening(); }, "the feed listens");

    auto s = hub->open("u", "jobs", "phone", "");
    REQUIRE(s);
    std::vector<tether::push_op> ops{live_create(1, {{"title", "a"}}, "desk")};
    REQUIRE(service.push({"u", "jobs", ops, "desk"}));
    auto got = read_until(**s, "id: 1\n");
    CHECK(got.find("id: 1\nevent: created\n") != std::string::npos);

    // Over the payload limit: the note is a hint, the event is read from the store.
    ops = {live_create(2, {{"title", std::string(9000, 'b')}}, "desk")};
    REQUIRE(service.push({"u", "jobs", ops, "desk"}));
    got = read_until(**s, "id: 2\n");
    CHECK(got.find("id: 2\nevent: created\n") != std::string::npos);

    // A malformed payload: logged (the log stalls the listener here), never a crash.
    auto admin = tether_test::pg_admin();
    std::unique_lock held{stall};
    tether_test::pg_exec(admin, "SET search_path = public");
    auto c = store->change_channel();
    tether_test::pg_exec(admin, "SELECT pg_notify('" + c + "', 'not a note')");
    tether_test::pg_wait_for([&] { return feed.malformed() == 1; }, "the malformed note is heard");
    // The listener is stalled inside its log: pushes go on regardless.
    const auto t0 = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < 20; ++i) {
        ops = {live_create(10 + i, {{"title", "c"}}, "desk")};
        REQUIRE(service.push({"u", "jobs", ops, "desk"}));
    }
    CHECK(std::chrono::steady_clock::now() - t0 < 20s);
    held.unlock();
    got = read_until(**s, "id: 22\n");
    CHECK(got.find("event: reset") == std::string::npos);
    for (int v = 3; v <= 22; ++v) CHECK(got.find("id: " + std::to_string(v) + "\n") != std::string::npos);
    hub->close_all();
}

#ifdef TETHER_SERVER_BINARY
#include "fleet.hpp"
#include "support/temp_dir.hpp"

#include <tether/transport/http.hpp>

#include <condition_variable>
#include <cstdlib>
#include <fstream>

namespace {

// What a subscription heard: its events and its end.
class heard {
public:
    tether::live_handler handler() {
        return tether::live_handler{[this](tether::live_event e) {
                                        std::lock_guard lock{mutex_};
                                        events_.push_back(std::move(e));
                                        changed_.notify_all();
                                    },
                                    [this](tether::error why) {
                                        std::lock_guard lock{mutex_};
                                        ended_.push_back(std::move(why));
                                        changed_.notify_all();
                                    }};
    }
    // Waits (at most 20 s) until `n` events came or the feed ended; whether they came.
    bool wait_events(std::size_t n) {
        std::unique_lock lock{mutex_};
        changed_.wait_for(lock, 20s, [&] { return events_.size() >= n || !ended_.empty(); });
        return events_.size() >= n;
    }
    bool ended() {
        std::lock_guard lock{mutex_};
        return !ended_.empty();
    }
    std::vector<tether::live_event> events() {
        std::lock_guard lock{mutex_};
        return events_;
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<tether::live_event> events_;
    std::vector<tether::error> ended_;
};

// Under TSan the streaming servers ignore calls from inside cpp-httplib (see
// tests/e2e/test_live.cpp): set while the fleet starts.
struct tsan_env {
    explicit tsan_env([[maybe_unused]] const tether_test::temp_dir& dir) {
#if defined(__SANITIZE_THREAD__)
        std::ofstream{dir.file("tsan.supp")} << "called_from_lib:libcpp-httplib.so\n";
        const char* given = std::getenv("TSAN_OPTIONS");
        const std::string tsan = std::string{given ? given : ""} + " suppressions=" + dir.file("tsan.supp");
        ::setenv("TSAN_OPTIONS", tsan.c_str(), 1);
#endif
    }
};

tether::http_transport to_process(const tether_test::fleet& f, std::size_t i) {
    tether::http_options o;
    o.base_url = "http://127.0.0.1:" + std::to_string(f.port(i));
    o.token = tether_test::fleet_token(0);
    return tether::http_transport{o};
}

// Pushes `op` (from device `origin`) through `t`; the record it answers.
tether::server_record push_one(tether::http_transport& t, tether::push_op op) {
    const tether::local_id id = op.id;
    std::vector<tether::push_op> ops{std::move(op)};
    auto out = t.push("jobs", ops);
    INFO((out ? std::string{} : out.error().message));
    REQUIRE(out);
    REQUIRE(out->size() == 1);
    REQUIRE((*out)[0].outcome == tether::push_outcome::kind::applied);
    auto rec = (*out)[0].record;
    if (!rec.id) rec.id = id;  // the answer may leave the local id out
    return rec;
}

tether::push_op update_of(const tether::server_record& r, nlohmann::json fields, std::string origin) {
    tether::push_op op;
    op.kind = tether::op_kind::update;
    op.id = r.id.value_or(tether::local_id{});
    op.server_id = r.server_id;
    op.base_version = r.version;
    op.value = std::move(fields);
    op.origin = std::move(origin);
    return op;
}

// Every event follows on from the one before (its previous cursor is that one's cursor).
void check_contiguous(const std::vector<tether::live_event>& evs, const std::string& from) {
    std::string at = from;
    for (const auto& e : evs) {
        INFO("event " << e.cursor << " after " << at);
        CHECK(e.previous_cursor == at);
        at = e.cursor;
    }
}

}  // namespace

TEST_CASE("tether-server --postgres: a change pushed through one process reaches a subscriber of another, in order",
          "[postgres][live][e2e]") {
    tether_test::temp_dir dir{"tether-pg-live"};
    const tsan_env tsan{dir};
    tether_test::fleet f{dir, tether_test::pg_fresh_schema(), 2, 1};
    auto a = to_process(f, 0);
    auto b = to_process(f, 1);
    heard phone, watcher;
    auto sub = b.subscribe(tether::live_request{"jobs", {}, "phone"}, phone.handler());
    REQUIRE(sub);
    auto watching = a.subscribe(tether::live_request{"jobs", {}, "watcher"}, watcher.handler());
    REQUIRE(watching);

    auto rec = push_one(a, live_create(1, {{"title", "memo"}}, "desk"));
    REQUIRE(phone.wait_events(1));
    rec = push_one(a, update_of(rec, {{"progress", 50}}, "desk"));
    REQUIRE(phone.wait_events(2));
    tether::push_op append;
    append.kind = tether::op_kind::append;
    append.id = *rec.id;
    append.server_id = rec.server_id;
    append.base_version = rec.version;
    append.value = tether::protocol::to_json(tether::protocol::append_value{"title", ", part one", 4});
    append.origin = "desk";
    rec = push_one(a, append);
    REQUIRE(phone.wait_events(3));
    // The phone's own change, through A: never told to the phone.
    rec = push_one(a, update_of(rec, {{"progress", 60}}, "phone"));
    tether::push_op remove;
    remove.kind = tether::op_kind::remove;
    remove.id = *rec.id;
    remove.server_id = rec.server_id;
    remove.base_version = rec.version;
    remove.origin = "desk";
    push_one(a, remove);
    REQUIRE(phone.wait_events(4));

    const auto evs = phone.events();
    REQUIRE(evs.size() == 4);
    CHECK(evs[0].kind == tether::live_kind::created);
    CHECK(evs[1].kind == tether::live_kind::updated);
    CHECK(evs[2].kind == tether::live_kind::appended);
    REQUIRE(evs[2].append);
    CHECK(evs[2].append->chunk == ", part one");
    CHECK(evs[3].kind == tether::live_kind::deleted);
    for (const auto& e : evs) CHECK(e.record.origin != "phone");
    CHECK(evs[3].replaces == 4);  // the phone's change 4 came between: it was left out, not lost
    check_contiguous({evs.begin(), evs.begin() + 3}, "");
    // The pushing process's own subscriber hears each change once, its own process's included.
    REQUIRE(watcher.wait_events(5));
    const auto all = watcher.events();
    CHECK(all.size() == 5);
    check_contiguous(all, "");
    sub->reset();
    watching->reset();
    CHECK(f.stop_all());
}

TEST_CASE("tether-server --postgres: a killed listening connection recovers, with the missed change or a reset",
          "[postgres][live][e2e]") {
    tether_test::temp_dir dir{"tether-pg-live-kill"};
    const tsan_env tsan{dir};
    std::string schema;
    tether_test::fleet f{dir, tether_test::pg_fresh_schema(&schema), 2, 1};
    auto a = to_process(f, 0);
    auto b = to_process(f, 1);
    heard phone;
    auto sub = b.subscribe(tether::live_request{"jobs", {}, "phone"}, phone.handler());
    REQUIRE(sub);
    push_one(a, live_create(1, {{"title", "memo"}}, "desk"));
    REQUIRE(phone.wait_events(1));

    auto admin = tether_test::pg_admin();
    const std::string listeners = "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" + schema +
                                  "' AND query LIKE 'LISTEN%'";
    auto count = [&] { return std::stoi(PQgetvalue(tether_test::pg_exec(admin, listeners).get(), 0, 0)); };
    tether_test::pg_wait_for([&] { return count() == 2; }, "both processes listen");
    tether_test::pg_exec(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '" +
                                    schema + "' AND query LIKE 'LISTEN%'");
    // Pushed while the listeners are down (or coming back): heard late from the store, or a reset.
    push_one(a, live_create(2, {{"title", "second"}}, "desk"));
    tether_test::pg_wait_for([&] { return count() == 2; }, "both processes listen again");
    push_one(a, live_create(3, {{"title", "third"}}, "desk"));
    const bool heard_all = phone.wait_events(3);
    if (!heard_all) {
        CHECK(phone.ended());  // told: reset
    } else {
        const auto evs = phone.events();
        check_contiguous(evs, "");
        CHECK(evs.back().cursor == "3");
    }
    sub->reset();
    CHECK(f.stop_all());
}

TEST_CASE("tether-server --postgres: a stream resumes with Last-Event-ID on another process", "[postgres][live][e2e]") {
    tether_test::temp_dir dir{"tether-pg-live-resume"};
    const tsan_env tsan{dir};
    tether_test::fleet f{dir, tether_test::pg_fresh_schema(), 2, 1};
    auto a = to_process(f, 0);
    std::string last;
    {
        heard phone;
        auto sub = a.subscribe(tether::live_request{"jobs", {}, "phone"}, phone.handler());
        REQUIRE(sub);
        for (std::uint64_t i = 1; i <= 3; ++i) push_one(a, live_create(i, {{"title", "job"}}, "desk"));
        REQUIRE(phone.wait_events(3));
        last = phone.events().back().cursor;
        CHECK(last == "3");
    }
    // While the phone is away: two more changes. Process B starts afresh (no history).
    for (std::uint64_t i = 4; i <= 5; ++i) push_one(a, live_create(i, {{"title", "job"}}, "desk"));
    f.kill(1);
    f.restart(1);
    auto b = to_process(f, 1);
    heard phone;
    auto sub = b.subscribe(tether::live_request{"jobs", last, "phone"}, phone.handler());
    REQUIRE(sub);
    REQUIRE(phone.wait_events(2));
    push_one(a, live_create(6, {{"title", "job"}}, "desk"));
    REQUIRE(phone.wait_events(3));
    const auto evs = phone.events();
    REQUIRE(evs.size() == 3);
    CHECK(evs[0].cursor == "4");
    CHECK(evs[1].cursor == "5");
    CHECK(evs[2].cursor == "6");
    check_contiguous(evs, last);

    // A cursor the store cannot serve (another epoch): reset at once, never a silent gap.
    heard stale;
    auto old = b.subscribe(tether::live_request{"jobs", "3@9", "phone"}, stale.handler());
    if (old) {
        tether_test::pg_wait_for([&] { return stale.ended(); }, "the stale stream is reset");
    }
    sub->reset();
    CHECK(f.stop_all());
}
#endif
