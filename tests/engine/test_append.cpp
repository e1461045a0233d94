// sync_engine::append: text appended locally at once; pushed as an append op
// carrying the chunks written since the last acknowledged state (else as an
// ordinary update); `appended` live events extend the local text, and a gap
// is repaired by one fetch (engine/detail/append.hpp). Manual clock, no sleeps.
#include <tether/tether.hpp>
#include <tether/protocol/append.hpp>
#include <tether/transport/live.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

using tether::sync_status;

namespace {

struct Note {
    BOOST_HANA_DEFINE_STRUCT(Note, (std::string, title), (std::string, transcript), (int, words));
    static constexpr std::string_view collection = "notes";
};

// The loopback transport, keeping every op it sends; `Carries`: whether it
// says it carries append ops.
template <bool Carries>
struct recording {
    using policy_kind = tether::transport_tag;
    static constexpr bool carries_append_ops = Carries;

    tether::loopback_transport inner;
    std::shared_ptr<std::vector<tether::push_op>> sent = std::make_shared<std::vector<tether::push_op>>();

    tether::result<std::vector<tether::push_outcome>> push(std::string_view c, std::span<const tether::push_op> ops) {
        sent->insert(sent->end(), ops.begin(), ops.end());
        return inner.push(c, ops);
    }
    tether::result<tether::pull_page> pull(std::string_view c, std::string_view cursor, std::size_t limit) {
        return inner.pull(c, cursor, limit);
    }
    tether::result<tether::server_record> fetch(std::string_view c, std::string_view sid) { return inner.fetch(c, sid); }
    std::size_t max_batch() const { return inner.max_batch(); }
    bool has_change_feed() const { return inner.has_change_feed(); }
};

struct world {
    tether::manual_clock clock;
    tether::loopback_server server{[c = clock] { return c.now(); }};

    template <bool Carries = true>
    auto writer(std::shared_ptr<std::vector<tether::push_op>>& log) {
        recording<Carries> t{tether::loopback_transport{server, "alice"}};
        log = t.sent;
        return tether::make_engine<Note>(tether::memory_storage{}, std::move(t), clock);
    }
    auto device() {
        return tether::make_engine<Note>(tether::memory_storage{}, tether::loopback_transport{server, "alice"}, clock);
    }
    std::string server_text() const {
        auto all = server.records("alice", "notes");
        REQUIRE(all.size() == 1);
        return all[0].value.at("transcript").get<std::string>();
    }
};

template <class Engine>
tether::record<Note> only(const Engine& d) {
    auto all = d.list();
    REQUIRE(all);
    REQUIRE(all->size() == 1);
    return all->front();
}

template <class Engine>
tether::local_id synced_note(Engine& d, std::string text = "Hello") {
    auto r = d.create(Note{"memo", std::move(text), 1});
    REQUIRE(r);
    REQUIRE(d.sync());
    REQUIRE(d.get(r->id)->status == sync_status::synced);
    return r->id;
}

tether::protocol::append_value append_of(const tether::push_op& op) {
    REQUIRE(op.kind == tether::op_kind::append);
    auto a = tether::protocol::append_from_json(op.value);
    REQUIRE(a);
    return *a;
}

}  // namespace

TEST_CASE("append: writes locally at once, pending, like an update", "[engine][append]") {
    world w;
    auto d = w.device();
    auto id = synced_note(d);
    auto r = d.append(id, "transcript", ", world");
    REQUIRE(r);
    CHECK(r->value.transcript == "Hello, world");
    CHECK(r->status == sync_status::pending);
    CHECK(r->dirty.contains("transcript"));
    CHECK(d.get(id)->value.transcript == "Hello, world");
    CHECK(w.server_text() == "Hello");  // nothing sent yet

    CHECK(d.append(id, "words", "1").error().code == tether::errc::invalid_argument);    // not a string
    CHECK(d.append(id, "missing", "1").error().code == tether::errc::invalid_argument);  // no such member
    CHECK(d.append(id, "transcript", std::string{"\xff"}).error().code == tether::errc::invalid_argument);
    CHECK(d.get(id)->value.transcript == "Hello, world");
    CHECK_FALSE(d.append(tether::local_id::from_parts(tether::timestamp{}, 1, 1), "transcript", "x"));
}

TEST_CASE("append: the chunks since the last acknowledged state go up as one append op", "[engine][append]") {
    world w;
    std::shared_ptr<std::vector<tether::push_op>> log;
    auto d = w.writer(log);
    auto id = synced_note(d);
    const auto version = d.get(id)->version;
    REQUIRE(d.append(id, "transcript", " one"));
    REQUIRE(d.append(id, "transcript", " two"));
    log->clear();
    auto rep = d.sync();
    REQUIRE(rep);
    CHECK(rep->pushed == 1);
    REQUIRE(log->size() == 1);
    const auto a = append_of(log->front());
    CHECK(a.member == "transcript");
    CHECK(a.chunk == " one two");
    CHECK(a.length_before == 5);
    CHECK(log->front().base_version == version);
    CHECK(w.server_text() == "Hello one two");
    const auto r = d.get(id);
    CHECK(r->status == sync_status::synced);
    CHECK(r->version > version);

    // the next round starts from the new acknowledged state
    REQUIRE(d.append(id, "transcript", " three"));
    log->clear();
    REQUIRE(d.sync());
    REQUIRE(log->size() == 1);
    CHECK(append_of(log->front()).length_before == 13);
    CHECK(w.server_text() == "Hello one two three");
}

TEST_CASE("append: anything but text appended alone goes up as an ordinary update", "[engine][append]") {
    world w;
    std::shared_ptr<std::vector<tether::push_op>> log;
    auto d = w.writer(log);

    SECTION("another field changed too") {
        auto id = synced_note(d);
        REQUIRE(d.append(id, "transcript", " more"));
        REQUIRE(d.update(id, [](Note& n) { n.words = 2; }));
        log->clear();
        REQUIRE(d.sync());
        REQUIRE(log->size() == 1);
        CHECK(log->front().kind == tether::op_kind::update);
        CHECK(w.server_text() == "Hello more");
    }
    SECTION("the text rewritten after the append") {
        auto id = synced_note(d);
        REQUIRE(d.append(id, "transcript", " more"));
        REQUIRE(d.update(id, [](Note& n) { n.transcript = "Jello more"; }));
        log->clear();
        REQUIRE(d.sync());
        REQUIRE(log->size() == 1);
        CHECK(log->front().kind == tether::op_kind::update);
        CHECK(w.server_text() == "Jello more");
    }
    SECTION("a record the server has not seen yet") {
        auto r = d.create(Note{"memo", "Hi", 0});
        REQUIRE(r);
        REQUIRE(d.append(r->id, "transcript", " there"));
        REQUIRE(d.sync());
        REQUIRE(log->size() == 1);
        CHECK(log->front().kind == tether::op_kind::create);
        CHECK(w.server_text() == "Hi there");
    }
}

TEST_CASE("append: a transport that does not carry appends gets an update", "[engine][append]") {
    world w;
    std::shared_ptr<std::vector<tether::push_op>> log;
    auto d = w.writer<false>(log);
    auto id = synced_note(d);
    REQUIRE(d.append(id, "transcript", "!"));
    log->clear();
    REQUIRE(d.sync());
    REQUIRE(log->size() == 1);
    CHECK(log->front().kind == tether::op_kind::update);
    CHECK(w.server_text() == "Hello!");
}

TEST_CASE("append: a lost answer is resent and acknowledged, not applied twice", "[engine][append]") {
    world w;
    std::shared_ptr<std::vector<tether::push_op>> log;
    auto d = w.writer(log);
    auto id = synced_note(d);
    REQUIRE(d.append(id, "transcript", " once"));
    w.server.drop_next_responses(1);
    auto first = d.sync();  // applied on the server, the answer lost
    CHECK(w.server_text() == "Hello once");
    CHECK(d.get(id)->status != sync_status::synced);
    w.clock.advance(std::chrono::minutes{10});  // past the backoff
    log->clear();
    auto again = d.sync();
    REQUIRE(again);
    REQUIRE(log->size() == 1);
    CHECK(log->front().kind == tether::op_kind::append);
    CHECK(w.server_text() == "Hello once");
    const auto r = d.get(id);
    CHECK(r->status == sync_status::synced);
    CHECK(r->value.transcript == "Hello once");
    CHECK(r->version == w.server.records("alice", "notes")[0].version);
}

TEST_CASE("append: another device's append first makes a conflict, settled by the policy", "[engine][append]") {
    world w;
    std::shared_ptr<std::vector<tether::push_op>> log;
    auto desk = w.writer(log);
    auto phone = w.device();
    auto id = synced_note(desk);
    REQUIRE(phone.sync());
    const auto pid = only(phone).id;
    REQUIRE(phone.append(pid, "transcript", " from the phone"));
    REQUIRE(phone.sync());
    REQUIRE(desk.append(id, "transcript", " from the desk"));
    log->clear();
    REQUIRE(desk.sync());
    REQUIRE_FALSE(log->empty());
    CHECK(log->front().kind == tether::op_kind::append);  // answered conflict: length and version moved
    REQUIRE(desk.sync());
    REQUIRE(phone.sync());
    // server_wins (the default policy): every copy ends as the server's
    CHECK(desk.get(id)->value.transcript == w.server_text());
    CHECK(only(phone).value.transcript == w.server_text());
    CHECK(w.server_text() == "Hello from the phone");
}

TEST_CASE("append: live appended events extend the follower's text without a request", "[engine][append][live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    auto id = synced_note(desk);
    REQUIRE(phone.sync());
    REQUIRE(phone.follow());
    const auto before = w.server.requests();
    for (const char* chunk : {" a", " b", " c"}) {
        REQUIRE(desk.append(id, "transcript", chunk));
        REQUIRE(desk.sync());
    }
    const auto pushes = w.server.requests() - before;
    REQUIRE(phone.apply_live());
    CHECK(w.server.requests() - before == pushes);  // no fetch, no pull
    const auto s = phone.live_status();
    CHECK(s.applied == 3);
    CHECK(s.fetches == 0);
    const auto got = only(phone);
    CHECK(got.value.transcript == "Hello a b c");
    CHECK(got.status == sync_status::synced);
    CHECK(got.version == w.server.records("alice", "notes")[0].version);
}

TEST_CASE("append: a lost appended event is a gap repaired by one fetch, a duplicate is dropped",
          "[engine][append][live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    auto id = synced_note(desk);
    REQUIRE(phone.sync());
    REQUIRE(phone.follow());
    REQUIRE(desk.append(id, "transcript", " a"));
    REQUIRE(desk.sync());
    w.server.events().drop_next(1);
    REQUIRE(desk.append(id, "transcript", " b"));  // never reaches the phone
    REQUIRE(desk.sync());
    w.server.events().duplicate_next(1);
    REQUIRE(desk.append(id, "transcript", " c"));
    REQUIRE(desk.sync());
    REQUIRE(phone.apply_live());
    const auto s = phone.live_status();
    CHECK(s.fetches == 1);
    CHECK(s.duplicates + s.covered >= 1);
    CHECK(only(phone).value.transcript == "Hello a b c");
    CHECK(only(phone).value.transcript == w.server_text());
}

TEST_CASE("append: an appended event on a record edited locally goes by a fetch and the conflict rules",
          "[engine][append][live]") {
    world w;
    auto desk = w.device();
    auto phone = w.device();
    auto id = synced_note(desk);
    REQUIRE(phone.sync());
    REQUIRE(phone.follow());
    const auto pid = only(phone).id;
    REQUIRE(phone.update(pid, [](Note& n) { n.title = "renamed on the phone"; }));
    REQUIRE(desk.append(id, "transcript", " more"));
    REQUIRE(desk.sync());
    REQUIRE(phone.apply_live());
    CHECK(phone.live_status().fetches == 1);
    const auto got = only(phone);
    CHECK(got.value.transcript == "Hello more");  // the server's text
    // server_wins: the server's copy is taken (a field_merge policy would keep the local title)
    REQUIRE(phone.sync());
    REQUIRE(desk.sync());
    CHECK(only(phone).value.transcript == w.server_text());
}
