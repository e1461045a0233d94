// http_transport's live feed against the HTTP face's Server-Sent Events on
// 127.0.0.1 (an in-process server over a memory store): order, resume,
// origin and user filtering, heartbeats, reset, the slow-subscriber cut, the
// stream limit, a refused token refreshed once (and a scheduler's re-follows
// of a refused feed), and malformed frames from a scripted server. Waits are
// bounded waits for what the feed delivers; nothing sleeps for timing.
#include "http/live_server.hpp"
#include "http/scripted_server.hpp"
#include "support/entities.hpp"

#include <tether/protocol/live.hpp>
#include <tether/protocol/sse.hpp>
#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using tether_test::live_log;
using tether_test::live_server;

namespace {

std::uint64_t next_id = 1;

tether::push_op create_op(nlohmann::json value, std::string origin) {
    tether::push_op op;
    op.kind = tether::op_kind::create;
    ++next_id;
    op.id = tether::local_id::from_parts(tether::timestamp{std::chrono::milliseconds{1'700'000'000'000}},
                                         static_cast<std::uint16_t>(next_id), next_id);
    op.value = std::move(value);
    op.origin = std::move(origin);
    return op;
}

// Creates `n` jobs for `user` from `device`; their server records.
std::vector<tether::server_record> create_jobs(live_server& s, const std::string& user, int n,
                                               const std::string& device = "desk") {
    std::vector<tether::push_op> ops;
    for (int i = 0; i < n; ++i) ops.push_back(create_op({{"title", "job " + std::to_string(i)}}, device));
    auto out = s.service().push({user, "jobs", ops, device});
    REQUIRE(out);
    std::vector<tether::server_record> recs;
    for (auto& o : *out) {
        REQUIRE(o.outcome == tether::push_outcome::kind::applied);
        recs.push_back(o.record);
    }
    return recs;
}

tether::live_request request(std::string_view cursor = {}, std::string_view device = "phone") {
    return tether::live_request{"jobs", cursor, device};
}

}  // namespace

TEST_CASE("live over HTTP: events in order with cursors, kinds and the record", "[http][live]") {
    live_server s;
    auto t = s.transport("alice-token");
    live_log log;
    auto sub = t.subscribe(request(), log.handler());
    REQUIRE(sub);
    auto recs = create_jobs(s, "alice", 3);
    REQUIRE(s.service().put({"alice", "jobs"}, recs[0].server_id, nlohmann::json{{"title", "edited"}}));
    REQUIRE(s.service().erase({"alice", "jobs"}, recs[1].server_id));
    REQUIRE(log.wait_events(5));
    auto ev = log.events();
    REQUIRE(ev.size() == 5);
    CHECK(ev[0].kind == tether::live_kind::created);
    CHECK(ev[0].previous_cursor.empty());
    CHECK(ev[0].record.value["title"] == "job 0");
    CHECK(ev[0].record.origin == "desk");
    CHECK(ev[3].kind == tether::live_kind::updated);
    CHECK(ev[3].replaces == recs[0].version);
    CHECK(ev[3].record.value["title"] == "edited");
    CHECK(ev[4].kind == tether::live_kind::deleted);
    for (std::size_t i = 1; i < ev.size(); ++i) {
        CHECK(ev[i].previous_cursor == ev[i - 1].cursor);  // contiguous, in commit order
        CHECK(ev[i].collection == "jobs");
    }
    CHECK(log.ends().empty());
    sub->reset();
    CHECK(s.face().open_streams() <= 1);
}

TEST_CASE("live over HTTP: a resumed stream replays from its cursor (Last-Event-ID)", "[http][live]") {
    live_server s;
    auto t = s.transport("alice-token");
    {
        live_log first;
        auto sub = t.subscribe(request(), first.handler());
        REQUIRE(sub);
        create_jobs(s, "alice", 2);
        REQUIRE(first.wait_events(2));
    }
    create_jobs(s, "alice", 3);  // while nobody listens: kept in the history
    live_log log;
    auto sub = t.subscribe(request("2"), log.handler());
    REQUIRE(sub);
    REQUIRE(log.wait_events(3));
    auto ev = log.events();
    CHECK(ev[0].previous_cursor == "2");
    CHECK(ev[2].cursor == "5");

    // The header form, as a browser's EventSource sends it on reconnecting.
    httplib::Client raw{"127.0.0.1", s.port()};
    std::string body;
    (void)raw.Get("/v1/jobs/events", {{"Authorization", "Bearer alice-token"}, {"Last-Event-ID", "4"}},
                  [&](const char* d, std::size_t n) {
                      body.append(d, n);
                      return body.find("\n\n") == std::string::npos;  // one event, then hang up
                  });
    CHECK(body.rfind("id: 5\nevent: created\ndata: {", 0) == 0);
}

TEST_CASE("live over HTTP: never the subscriber's own changes, never another user's", "[http][live]") {
    live_server s;
    auto alice = s.transport("alice-token");
    live_log phone, bob;
    auto a = alice.subscribe(request({}, "phone"), phone.handler());
    auto b = s.transport("bob-token").subscribe(request({}, "phone"), bob.handler());
    REQUIRE(a);
    REQUIRE(b);
    create_jobs(s, "alice", 1, "phone");  // its own: not told
    create_jobs(s, "alice", 1, "desk");
    create_jobs(s, "bob", 1, "desk");
    REQUIRE(phone.wait_events(1));
    REQUIRE(bob.wait_events(1));
    create_jobs(s, "alice", 1, "desk");
    REQUIRE(phone.wait_events(2));
    for (const auto& e : phone.events()) CHECK(e.record.origin == "desk");
    CHECK(phone.events().size() == 2);
    CHECK(bob.events().size() == 1);
    CHECK(bob.events()[0].cursor == "1");  // bob's own numbering
}

TEST_CASE("live over HTTP: an unknown token is refused with no subscription", "[http][live]") {
    live_server s;
    live_log log;
    auto sub = s.transport("nobody").subscribe(request(), log.handler());
    REQUIRE_FALSE(sub);
    CHECK(sub.error().code == tether::errc::unauthorized);
    CHECK(sub.error().message.find("nobody") == std::string::npos);
}

TEST_CASE("live over HTTP: a refused token is refreshed once and the stream reopens with it", "[http][live][auth]") {
    live_server s;
    auto o = s.options("");
    std::atomic<int> asked{0};
    o.token_provider = [&]() -> tether::result<std::string> {
        return ++asked == 1 ? std::string{"expired-token"} : std::string{"alice-token"};
    };
    tether::http_transport t{o};
    live_log log;
    auto sub = t.subscribe(request(), log.handler());
    REQUIRE(sub);
    CHECK(asked.load() == 2);  // the first token, then one fresh one after the 401
    create_jobs(s, "alice", 2);
    REQUIRE(log.wait_events(2));
    CHECK(log.events()[1].previous_cursor == log.events()[0].cursor);
    CHECK(log.ends().empty());
    sub->reset();
    // The transport's cache holds the fresh token: the next stream opens with it, unasked.
    live_log again;
    auto sub2 = t.subscribe(request(), again.handler());
    REQUIRE(sub2);
    CHECK(asked.load() == 2);
}

TEST_CASE("live over HTTP: a provider whose tokens are all refused ends unauthorized after one retry",
          "[http][live][auth]") {
    tether_test::scripted_server server{[](const httplib::Request&, httplib::Response& res) {
        tether_test::json_answer(res, 401, R"({"error":{"code":"unauthorized","message":"token expired"}})");
    }};
    auto o = server.options("");
    std::atomic<int> asked{0};
    o.token_provider = [&]() -> tether::result<std::string> { return "refused-" + std::to_string(++asked); };
    tether::http_transport t{o};
    live_log log;
    auto sub = t.subscribe(request(), log.handler());
    REQUIRE_FALSE(sub);
    CHECK(sub.error().code == tether::errc::unauthorized);
    CHECK(sub.error().http_status == 401);
    CHECK(asked.load() == 2);
    const auto seen = server.log();
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].headers.find("Authorization")->second == "Bearer refused-1");
    CHECK(seen[1].headers.find("Authorization")->second == "Bearer refused-2");
    CHECK(seen[1].path == "/v1/jobs/events");
    CHECK(sub.error().message.find("refused-") == std::string::npos);
    CHECK(log.events().empty());
    CHECK(log.ends().empty());  // no subscription: the handler hears nothing

    // A provider that fails on the refresh: its error, and no second request.
    std::atomic<int> calls{0};
    auto o2 = server.options("");
    o2.token_provider = [&]() -> tether::result<std::string> {
        if (++calls == 1) return std::string{"first"};
        return tether::unexpected{tether::make_error(tether::errc::offline, "identity provider unreachable")};
    };
    auto failed = tether::http_transport{o2}.subscribe(request(), log.handler());
    REQUIRE_FALSE(failed);
    CHECK(failed.error().code == tether::errc::offline);
    CHECK(calls.load() == 2);
    CHECK(server.requests() == 3);

    // A fixed token is not refreshed: unauthorized after its one request.
    auto fixed = tether::http_transport{server.options("fixed-token")}.subscribe(request(), log.handler());
    REQUIRE_FALSE(fixed);
    CHECK(fixed.error().code == tether::errc::unauthorized);
    CHECK(server.requests() == 4);
}

TEST_CASE("live over HTTP: a refused feed pauses the engine, its scheduler follows again only after sign-in",
          "[http][live][auth]") {
    tether_test::scripted_server server{[](const httplib::Request&, httplib::Response& res) {
        tether_test::json_answer(res, 401, R"({"error":{"code":"unauthorized","message":"signed out"}})");
    }};
    auto o = server.options("");
    std::atomic<int> asked{0};
    o.token_provider = [&]() -> tether::result<std::string> { return "refused-" + std::to_string(++asked); };
    tether::manual_clock clock;
    auto phone = tether::make_engine<tether_test::Job>(tether::memory_storage{}, tether::http_transport{o}, clock);
    tether::scheduler_options so;
    so.run_at_start = false;
    so.periodic = false;
    so.reconnect_spread = 0ms;
    so.live_backoff.seed = 7;
    tether::scheduler sched{phone, clock, so};
    sched.follow();
    CHECK(sched.run_due() == 1);  // the follow, refused: no catch-up sync after it
    CHECK(asked.load() == 2);     // the token, then one fresh one
    CHECK(server.requests() == 2);
    CHECK_FALSE(phone.live_status().following);
    CHECK_FALSE(phone.authenticated());  // paused, as a sync's 401 pauses it
    CHECK(sched.run_due() == 0);         // nothing due until the backoff has passed
    REQUIRE(sched.next_follow());
    CHECK(*sched.next_follow() >= clock.now() + 500ms);  // 1 s, jittered down to half at most
    // Re-follows while signed out are refused by the engine itself: nothing is sent.
    for (int i = 0; i < 3; ++i) {
        clock.advance(3min);
        CHECK(sched.run_due() == 1);
    }
    CHECK(server.requests() == 2);
    CHECK(asked.load() == 2);
    CHECK(sched.following());  // still wanted: signing in again brings the follow forward
    phone.set_authenticated(true);
    REQUIRE(sched.next_follow());
    CHECK(*sched.next_follow() <= clock.now());
    CHECK(sched.run_due() >= 1);  // signed in: the server is asked again (and still says 401)
    CHECK(server.requests() > 2);
    CHECK_FALSE(phone.authenticated());
}

TEST_CASE("live over HTTP: a silent stream sends heartbeat comments", "[http][live]") {
    tether::server::event_options o;
    o.heartbeat = 20ms;
    live_server s{o};
    httplib::Client raw{"127.0.0.1", s.port()};
    tether::protocol::sse_decoder sse;
    std::size_t frames = 0;
    bool fed = true;
    (void)raw.Get("/v1/jobs/events", {{"Authorization", "Bearer alice-token"}}, [&](const char* d, std::size_t n) {
        fed = fed && sse.feed({d, n}, [&](tether::protocol::sse_frame&&) { ++frames; }).has_value();
        return fed && sse.comments() < 3;
    });
    CHECK(fed);
    CHECK(sse.comments() >= 3);
    CHECK(frames == 0);
}

TEST_CASE("live over HTTP: a cursor older than the history is told reset (full refresh)", "[http][live]") {
    tether::server::event_options o;
    o.history = 4;
    live_server s{o};
    auto t = s.transport("alice-token");
    {
        live_log first;  // the face starts keeping history with its first stream
        auto sub = t.subscribe(request(), first.handler());
        REQUIRE(sub);
    }
    create_jobs(s, "alice", 10);
    live_log log;
    auto sub = t.subscribe(request("3"), log.handler());
    REQUIRE(sub);
    REQUIRE(log.wait_end());
    CHECK(log.events().empty());
    CHECK(log.ends()[0].code == tether::errc::cursor_expired);
    // Within the history: replayed.
    live_log near;
    auto ok = t.subscribe(request("7"), near.handler());
    REQUIRE(ok);
    REQUIRE(near.wait_events(3));
    CHECK(near.events()[0].previous_cursor == "7");
}

TEST_CASE("live over HTTP: a subscriber that does not read is cut with reset", "[http][live]") {
    tether::server::event_options o;
    o.queue_limit = 3;
    live_server s{o};
    auto t = s.transport("alice-token");
    std::mutex gate;
    std::unique_lock hold{gate};  // the handler blocks: the stream stops reading
    std::atomic<int> seen{0};
    live_log ends;
    auto inner = ends.handler();
    tether::live_handler h{[&](tether::live_event) {
                               ++seen;
                               std::lock_guard wait{gate};
                           },
                           inner.on_end};
    auto sub = t.subscribe(request(), std::move(h));
    REQUIRE(sub);
    // Far more than the socket buffers and the queue hold.
    const std::string big(8 * 1024, 'x');
    for (int i = 0; i < 40; ++i) {
        std::vector<tether::push_op> ops;
        for (int j = 0; j < 50; ++j) ops.push_back(create_op({{"title", big}}, "desk"));
        REQUIRE(s.service().push({"alice", "jobs", ops, "desk"}));
    }
    hold.unlock();
    REQUIRE(ends.wait_end());
    CHECK(ends.ends()[0].code == tether::errc::cursor_expired);
    CHECK(seen.load() < 2000);
}

TEST_CASE("event hub: a stream's queue over its limit is cut with reset, then ends", "[http][live]") {
    tether::server::event_options o;
    o.queue_limit = 2;
    o.max_streams = 1;
    tether::server::event_hub hub{o};
    auto s = hub.open("alice", "jobs", "phone", "");
    REQUIRE(s);
    CHECK_FALSE(hub.open("alice", "jobs", "tablet", ""));  // the only slot is taken
    tether::live_event e;
    e.collection = "jobs";
    e.kind = tether::live_kind::created;
    for (std::uint64_t v = 1; v <= 3; ++v) {
        e.record.server_id = "s" + std::to_string(v);
        e.record.version = e.version = v;
        e.cursor = std::to_string(v);
        hub.publish("alice", e);
    }
    auto step = (*s)->next(0ms);
    CHECK(step.last);
    CHECK(step.text.rfind("event: reset\n", 0) == 0);
    CHECK((*s)->next(0ms).last);
    hub.release(*s);
    CHECK(hub.open_streams() == 0);
    hub.close_all();
    CHECK_FALSE(hub.open("alice", "jobs", "phone", ""));
}

TEST_CASE("live over HTTP: beyond max_streams, 503 with Retry-After, and a freed slot opens again", "[http][live]") {
    tether::server::event_options o;
    o.max_streams = 2;
    o.retry_after = 7s;
    live_server s{o};
    auto t = s.transport("alice-token");
    live_log l1, l2, l3;
    auto a = t.subscribe(request(), l1.handler());
    auto b = t.subscribe(request(), l2.handler());
    REQUIRE(a);
    REQUIRE(b);
    auto c = t.subscribe(request(), l3.handler());
    REQUIRE_FALSE(c);
    CHECK(c.error().code == tether::errc::transient);
    CHECK(c.error().http_status == 503);
    CHECK(c.error().retry_after == std::chrono::milliseconds{7000});
    a->reset();
    // The server frees the slot when it notices the closed socket: a bounded poll.
    tether::result<tether::live_subscription> d = tether::unexpected{tether::make_error(tether::errc::transient, "")};
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!d && std::chrono::steady_clock::now() < deadline) {
        create_jobs(s, "alice", 1);  // a write makes the server notice the dead stream
        d = t.subscribe(request(), l3.handler());
    }
    CHECK(d);
}

TEST_CASE("live over HTTP: reset() stops at once, and the server's stop ends the stream", "[http][live]") {
    live_server s;
    auto t = s.transport("alice-token");
    live_log log;
    auto sub = t.subscribe(request(), log.handler());
    REQUIRE(sub);
    const auto t0 = std::chrono::steady_clock::now();
    sub->reset();
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);  // not a heartbeat's wait (15 s)
    CHECK(log.ends().empty());                          // reset: the handler hears nothing more

    live_log other;
    auto sub2 = t.subscribe(request(), other.handler());
    REQUIRE(sub2);
    s.stop();
    REQUIRE(other.wait_end());
    CHECK(other.ends()[0].code == tether::errc::transient);
}

TEST_CASE("live over HTTP: a malformed frame ends the subscription with errc::protocol", "[http][live]") {
    const std::string good =
        tether::protocol::sse_event_text("1", "created", R"({"kind":"created","collection":"jobs","record":)"
                                                         R"({"server_id":"s1","version":1,"value":{}},)"
                                                         R"("version":1,"replaces":0,"cursor":"1"})");
    const std::vector<std::pair<std::string, std::string>> cases{
        {"bad JSON", "event: created\ndata: {not json\n\n"},
        {"kind disagrees", tether::protocol::sse_event_text("1", "deleted", good.substr(good.find("{")))},
        {"unknown field", "bogus: 1\n\n"},
        {"oversized line", std::string(64 * 1024, 'x')},
        {"version mismatch", "event: created\ndata: {\"kind\":\"created\",\"collection\":\"jobs\",\"record\":"
                             "{\"server_id\":\"s\",\"version\":2},\"version\":1,\"replaces\":0,\"cursor\":\"1\"}\n\n"},
    };
    for (const auto& c : cases) {
        const auto& name = c.first;
        const std::string& frame = c.second;  // the handler below captures it: not a structured binding (clang 14)
        INFO(name);
        tether_test::scripted_server server{[&](const httplib::Request&, httplib::Response& res) {
            res.status = 200;
            res.set_content(good + frame, "text/event-stream");
        }};
        auto o = server.options("alice-token");
        o.max_live_event_bytes = 16 * 1024;
        tether::http_transport t{o};
        live_log log;
        auto sub = t.subscribe(request(), log.handler());
        REQUIRE(sub);
        REQUIRE(log.wait_end());
        CHECK(log.events().size() == 1);  // the good one came first
        CHECK(log.ends()[0].code == tether::errc::protocol);
        CHECK(log.ends().size() == 1);
    }
    tether_test::scripted_server json_server{[](const httplib::Request&, httplib::Response& res) {
        res.status = 200;
        res.set_content("{}", "application/json");
    }};
    live_log log;
    auto refused = tether::http_transport{json_server.options("t")}.subscribe(request(), log.handler());
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == tether::errc::protocol);
}

TEST_CASE("live event codec: round trip and strict refusals", "[http][live][protocol]") {
    tether::live_event e;
    e.kind = tether::live_kind::updated;
    e.collection = "jobs";
    e.record.server_id = "s1";
    e.record.version = 5;
    e.record.value = {{"title", "a\nb"}};
    e.record.origin = "desk";
    e.version = 5;
    e.replaces = 3;
    e.cursor = "5@1";
    e.previous_cursor = "4@1";
    auto text = tether::protocol::encode_live_event(e);
    REQUIRE(text);
    CHECK(text->find('\n') == std::string::npos);
    auto back = tether::protocol::decode_live_event(*text);
    REQUIRE(back);
    CHECK(back->record.value == e.record.value);
    CHECK(back->cursor == "5@1");
    CHECK(back->previous_cursor == "4@1");
    CHECK(back->replaces == 3);
    e.kind = tether::live_kind::appended;
    e.append = tether::live_append{"title", "xyz", 3, 6};
    auto app = tether::protocol::decode_live_event(tether::protocol::encode_live_event(e).value());
    REQUIRE(app);
    CHECK(app->append->chunk == "xyz");
    for (std::string bad : {R"([])", R"({"kind":"updated"})", R"({"kind":"moved","collection":"jobs"})",
                            R"({"kind":"created","collection":"jobs","record":{"server_id":"s","version":1},"version":1,"replaces":0,"cursor":""})",
                            R"({"kind":"created","collection":".x","record":{"server_id":"s","version":1},"version":1,"replaces":0,"cursor":"1"})",
                            R"({"kind":"updated","collection":"jobs","record":{"server_id":"s","version":2},"version":2,"replaces":0,"cursor":"2"})",
                            R"({"kind":"updated","collection":"jobs","record":{"server_id":"s","version":2},"version":2,"replaces":3,"cursor":"2"})",
                            R"({"kind":"appended","collection":"jobs","record":{"server_id":"s","version":2},"version":2,"replaces":1,"cursor":"2","append":{"member":"t","chunk":"ab","length_before":1,"length_after":2}})"}) {
        INFO(bad);
        auto r = tether::protocol::decode_live_event(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == tether::errc::protocol);
    }
}

TEST_CASE("SSE decoder: fields, comments, CRLF, chunks of any size, bounds", "[http][live][protocol]") {
    const std::string stream = ": hi\r\nid: 7\r\nevent: updated\r\ndata: a\r\ndata:b\r\nretry: 10\r\n\r\n\n\ndata: x\n\n";
    for (std::size_t step : {std::size_t{1}, std::size_t{3}, stream.size()}) {
        tether::protocol::sse_decoder d;
        std::vector<tether::protocol::sse_frame> out;
        for (std::size_t i = 0; i < stream.size(); i += step)
            REQUIRE(d.feed(std::string_view{stream}.substr(i, step), [&](auto&& f) { out.push_back(f); }));
        REQUIRE(out.size() == 2);
        CHECK(out[0].id == "7");
        CHECK(out[0].event == "updated");
        CHECK(out[0].data == "a\nb");
        CHECK(out[1].data == "x");
        CHECK_FALSE(out[1].has_id);
        CHECK(d.comments() == 1);
    }
    tether::protocol::sse_decoder small{{8, 12}};
    auto none = [](auto&&) {};
    CHECK_FALSE(small.feed("data: 0123456789\n", none));
    CHECK_FALSE(small.feed("\n", none));  // stays failed
    tether::protocol::sse_decoder event_cap{{64, 12}};
    CHECK(event_cap.feed("data: 123456\n", none));
    CHECK_FALSE(event_cap.feed("data: 123456\n", none));  // 14 bytes of fields: one event over its bound
    tether::protocol::sse_decoder cr;
    CHECK_FALSE(cr.feed("data: a\rb\n", none));
    tether::protocol::sse_decoder nul;
    CHECK_FALSE(nul.feed(std::string_view{"data: \0\n", 8}, none));
}
