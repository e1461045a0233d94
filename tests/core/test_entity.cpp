#include <tether/clock/manual.hpp>
#include <tether/core/entity.hpp>
#include <tether/engine/sync_engine.hpp>
#include <tether/storage/memory.hpp>
#include <tether/transport/loopback.hpp>
#include <tether/transport/loopback_server.hpp>

#include "support/entities.hpp"

#include <catch2/catch.hpp>

#include <boost/hana/adapt_struct.hpp>
#include <boost/hana/define_struct.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

using nlohmann::json;
using tether::errc;
using tether::field_set;
using tether_test::Job;
using tether_test::Note;

namespace entity_test {

// Hana struct without a collection member: named through entity_traits.
struct Invoice {
    BOOST_HANA_DEFINE_STRUCT(Invoice, (std::string, number), (double, amount));
};

// A third-party-style plain struct made visible with BOOST_HANA_ADAPT_STRUCT.
struct Contact {
    std::string name;
    int age = -1;  // a non-zero default, to tell "kept" from "zeroed"
};

// Has a collection, but neither Hana nor nlohmann-convertible.
struct Opaque {
    int x = 0;
    static constexpr std::string_view collection = "opaque";
};

// Hana struct, json-convertible members, but no collection anywhere.
struct Nameless {
    BOOST_HANA_DEFINE_STRUCT(Nameless, (int, a));
};

// Has a collection and Hana, but is not default-constructible.
struct NoDefault {
    BOOST_HANA_DEFINE_STRUCT(NoDefault, (int, a));
    static constexpr std::string_view collection = "no_default";
    explicit NoDefault(int v) : a(v) {}
};

}  // namespace entity_test

BOOST_HANA_ADAPT_STRUCT(entity_test::Contact, name, age);

template <>
struct tether::entity_traits<entity_test::Invoice> {
    static constexpr std::string_view collection = "invoices";
};

template <>
struct tether::entity_traits<entity_test::Contact> {
    static constexpr std::string_view collection = "contacts";
};

namespace {

using job_ops = tether::entity_ops<Job>;
using note_ops = tether::entity_ops<Note>;

Job make_job(std::string title, int progress, std::string audio) {
    Job j;
    j.title = std::move(title);
    j.progress = progress;
    j.audio_path = std::move(audio);
    return j;
}

bool same_job(const Job& a, const Job& b) {
    return a.title == b.title && a.progress == b.progress && a.audio_path == b.audio_path;
}

}  // namespace

TEST_CASE("entity concept and collection names", "[entity]") {
    STATIC_REQUIRE(tether::entity<Job>);
    STATIC_REQUIRE(tether::entity<Note>);
    STATIC_REQUIRE(tether::entity<entity_test::Invoice>);
    STATIC_REQUIRE(tether::entity<entity_test::Contact>);

    STATIC_REQUIRE_FALSE(tether::entity<entity_test::Nameless>);   // no collection
    STATIC_REQUIRE_FALSE(tether::entity<entity_test::Opaque>);     // neither Hana nor json
    STATIC_REQUIRE_FALSE(tether::entity<entity_test::NoDefault>);  // not default-constructible
    STATIC_REQUIRE_FALSE(tether::entity<int>);
    STATIC_REQUIRE_FALSE(tether::entity<Job&>);
    STATIC_REQUIRE_FALSE(tether::entity<const Job&>);

    STATIC_REQUIRE(tether::collection_of<Job>() == "jobs");
    STATIC_REQUIRE(tether::collection_of<Note>() == "notes");
    STATIC_REQUIRE(tether::collection_of<entity_test::Invoice>() == "invoices");
    STATIC_REQUIRE(tether::collection_of<entity_test::Contact>() == "contacts");
    CHECK(tether::collection_of<Job>() == "jobs");
    CHECK(tether::entity_traits<Job>::collection == "jobs");
}

TEST_CASE("entity_ops::to_json: Hana struct fields become keys", "[entity]") {
    const auto j = job_ops::to_json(make_job("Dictation 1", 40, "/a/1.m4a"));
    REQUIRE(j.is_object());
    CHECK(j.size() == 3);
    CHECK(j.at("title") == "Dictation 1");
    CHECK(j.at("progress") == 40);
    CHECK(j.at("audio_path") == "/a/1.m4a");
    CHECK(j == json{{"title", "Dictation 1"}, {"progress", 40}, {"audio_path", "/a/1.m4a"}});

    const auto c = tether::entity_ops<entity_test::Contact>::to_json(entity_test::Contact{"Ada", 36});
    CHECK(c == json{{"name", "Ada"}, {"age", 36}});
}

TEST_CASE("entity_ops::to_json: a type with its own nlohmann conversion", "[entity]") {
    const auto j = note_ops::to_json(Note{"hello", 4});
    CHECK(j == json{{"text", "hello"}, {"stars", 4}});
}

TEST_CASE("entity_ops::from_json round-trips", "[entity]") {
    SECTION("Hana struct") {
        const auto job = make_job("t", 99, "/p");
        const auto back = job_ops::from_json(job_ops::to_json(job));
        REQUIRE(back.has_value());
        CHECK(same_job(*back, job));

        // Through text too, as it goes over the wire.
        const auto wire = job_ops::from_json(json::parse(job_ops::to_json(job).dump()));
        REQUIRE(wire.has_value());
        CHECK(same_job(*wire, job));
    }
    SECTION("nlohmann type") {
        const Note note{"n", 5};
        const auto back = note_ops::from_json(note_ops::to_json(note));
        REQUIRE(back.has_value());
        CHECK(*back == note);
    }
    SECTION("adapted struct") {
        using ops = tether::entity_ops<entity_test::Contact>;
        const auto back = ops::from_json(json{{"name", "Bo"}, {"age", 7}});
        REQUIRE(back.has_value());
        CHECK(back->name == "Bo");
        CHECK(back->age == 7);
    }
}

TEST_CASE("entity_ops::from_json: non-objects are protocol errors", "[entity]") {
    for (const json& bad : {json(nullptr), json(42), json("jobs"), json::array({1, 2}), json(true), json(1.5)}) {
        INFO("input " << bad.dump());
        const auto r = job_ops::from_json(bad);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == errc::protocol);
        CHECK_FALSE(r.error().message.empty());

        const auto n = note_ops::from_json(bad);
        REQUIRE_FALSE(n.has_value());
        CHECK(n.error().code == errc::protocol);
    }
}

TEST_CASE("entity_ops::from_json: wrong field types are protocol errors, never exceptions", "[entity]") {
    SECTION("Hana: string where an int is expected") {
        const json j{{"title", "t"}, {"progress", "forty"}, {"audio_path", "/p"}};
        tether::result<Job> r = tether::unexpected{tether::make_error(errc::invalid_state)};
        REQUIRE_NOTHROW(r = job_ops::from_json(j));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == errc::protocol);
        CHECK_FALSE(r.error().message.empty());
        CHECK(r.error().message.find("jobs") != std::string::npos);
    }
    SECTION("Hana: number where a string is expected") {
        const json j{{"title", 12}, {"progress", 1}, {"audio_path", "/p"}};
        tether::result<Job> r = tether::unexpected{tether::make_error(errc::invalid_state)};
        REQUIRE_NOTHROW(r = job_ops::from_json(j));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == errc::protocol);
        CHECK_FALSE(r.error().message.empty());
    }
    SECTION("Hana: object where a string is expected") {
        const json j{{"title", json::object({{"x", 1}})}};
        tether::result<Job> r = tether::unexpected{tether::make_error(errc::invalid_state)};
        REQUIRE_NOTHROW(r = job_ops::from_json(j));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == errc::protocol);
    }
    SECTION("nlohmann type: wrong type") {
        const json j{{"text", "t"}, {"stars", "many"}};
        tether::result<Note> r = tether::unexpected{tether::make_error(errc::invalid_state)};
        REQUIRE_NOTHROW(r = note_ops::from_json(j));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == errc::protocol);
        CHECK(r.error().message.find("notes") != std::string::npos);
    }
    SECTION("nlohmann type: its own from_json requires the field") {
        tether::result<Note> r = tether::unexpected{tether::make_error(errc::invalid_state)};
        REQUIRE_NOTHROW(r = note_ops::from_json(json{{"text", "t"}}));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == errc::protocol);
    }
    SECTION("entity_traits-named type: message names its collection") {
        using ops = tether::entity_ops<entity_test::Invoice>;
        const auto r = ops::from_json(json{{"number", "A-1"}, {"amount", "lots"}});
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == errc::protocol);
        CHECK(r.error().message.find("invoices") != std::string::npos);
    }
}

TEST_CASE("entity_ops::from_json: missing or null fields keep their defaults (Hana)", "[entity]") {
    SECTION("missing") {
        const auto r = job_ops::from_json(json{{"title", "only a title"}});
        REQUIRE(r.has_value());
        CHECK(r->title == "only a title");
        CHECK(r->progress == 0);
        CHECK(r->audio_path.empty());
    }
    SECTION("empty object") {
        const auto r = job_ops::from_json(json::object());
        REQUIRE(r.has_value());
        CHECK(same_job(*r, Job{}));
    }
    SECTION("null counts as missing") {
        const auto r = job_ops::from_json(json{{"title", nullptr}, {"progress", 3}});
        REQUIRE(r.has_value());
        CHECK(r->title.empty());
        CHECK(r->progress == 3);
    }
    SECTION("a default member initializer survives a missing field") {
        const auto r = tether::entity_ops<entity_test::Contact>::from_json(json{{"name", "Cy"}});
        REQUIRE(r.has_value());
        CHECK(r->name == "Cy");
        CHECK(r->age == -1);
    }
    SECTION("unknown keys are ignored") {
        const auto r = job_ops::from_json(json{{"title", "x"}, {"progress", 2}, {"from_the_future", true}});
        REQUIRE(r.has_value());
        CHECK(r->title == "x");
        CHECK(r->progress == 2);
    }
}

TEST_CASE("entity_ops::equal", "[entity]") {
    const auto a = make_job("a", 1, "/a");
    CHECK(job_ops::equal(a, make_job("a", 1, "/a")));
    CHECK_FALSE(job_ops::equal(a, make_job("b", 1, "/a")));
    CHECK_FALSE(job_ops::equal(a, make_job("a", 2, "/a")));
    CHECK_FALSE(job_ops::equal(a, make_job("a", 1, "/b")));

    CHECK(note_ops::equal(Note{"x", 1}, Note{"x", 1}));
    CHECK_FALSE(note_ops::equal(Note{"x", 1}, Note{"x", 2}));
    CHECK_FALSE(note_ops::equal(Note{"x", 1}, Note{"y", 1}));
}

TEST_CASE("entity_ops::diff names exactly the changed fields", "[entity]") {
    SECTION("Hana struct") {
        const auto base = make_job("a", 1, "/a");
        CHECK(job_ops::diff(base, base).empty());
        CHECK(job_ops::diff(base, make_job("a", 2, "/a")) == field_set{"progress"});
        CHECK(job_ops::diff(base, make_job("b", 1, "/a")) == field_set{"title"});
        CHECK(job_ops::diff(base, make_job("b", 1, "/b")) == field_set{"title", "audio_path"});
        CHECK(job_ops::diff(base, make_job("b", 9, "/b")) == field_set{"title", "progress", "audio_path"});
        // Symmetric.
        CHECK(job_ops::diff(make_job("a", 2, "/a"), base) == field_set{"progress"});
    }
    SECTION("nlohmann type") {
        const Note base{"x", 1};
        CHECK(note_ops::diff(base, base).empty());
        CHECK(note_ops::diff(base, Note{"x", 2}) == field_set{"stars"});
        CHECK(note_ops::diff(base, Note{"y", 1}) == field_set{"text"});
        CHECK(note_ops::diff(base, Note{"y", 2}) == field_set{"text", "stars"});
    }
}

TEST_CASE("entity_ops::merge takes exactly the named fields", "[entity]") {
    SECTION("Hana struct") {
        const auto base = make_job("base", 1, "/base");
        const auto from = make_job("from", 2, "/from");

        CHECK(same_job(job_ops::merge(base, from, {}), base));
        CHECK(same_job(job_ops::merge(base, from, {"progress"}), make_job("base", 2, "/base")));
        CHECK(same_job(job_ops::merge(base, from, {"title", "audio_path"}), make_job("from", 1, "/from")));
        CHECK(same_job(job_ops::merge(base, from, {"title", "progress", "audio_path"}), from));
        // Unknown names are ignored.
        CHECK(same_job(job_ops::merge(base, from, {"nonexistent"}), base));
        // merge(base, from, diff(base, from)) == from
        CHECK(same_job(job_ops::merge(base, from, job_ops::diff(base, from)), from));
    }
    SECTION("nlohmann type") {
        const Note base{"base", 1};
        const Note from{"from", 2};
        CHECK(note_ops::merge(base, from, {}) == base);
        CHECK(note_ops::merge(base, from, {"stars"}) == Note{"base", 2});
        CHECK(note_ops::merge(base, from, {"text"}) == Note{"from", 1});
        CHECK(note_ops::merge(base, from, {"text", "stars"}) == from);
        CHECK(note_ops::merge(base, from, note_ops::diff(base, from)) == from);
    }
}


TEST_CASE("entity_ops::from_json: a boolean for an int member is a protocol error", "[entity]") {
    const auto r = job_ops::from_json(json{{"title", "t"}, {"progress", true}});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::protocol);
}

TEST_CASE("entity_ops::from_json: a fraction or an out-of-range number for an int member is a protocol error",
          "[entity]") {
    CHECK(job_ops::from_json(json{{"title", "t"}, {"progress", 2.7}}).error().code == errc::protocol);
    CHECK(job_ops::from_json(json{{"title", "t"}, {"progress", 1e20}}).error().code == errc::protocol);
    CHECK(job_ops::from_json(json{{"title", "t"}, {"progress", 4294967296LL}}).error().code == errc::protocol);
    CHECK(job_ops::from_json(json{{"title", "t"}, {"progress", -5}})->progress == -5);
}

// ---- entity_ops<E>::validate: NaN and infinity have no JSON form -------------

namespace entity_test {

struct Point {
    BOOST_HANA_DEFINE_STRUCT(Point, (double, x), (double, y));
};
inline void to_json(json& j, const Point& p) { j = json{{"x", p.x}, {"y", p.y}}; }
inline void from_json(const json& j, Point& p) {
    j.at("x").get_to(p.x);
    j.at("y").get_to(p.y);
}

// Floating-point values in every place validate looks.
struct Trace {
    BOOST_HANA_DEFINE_STRUCT(Trace, (std::string, name), (double, gain), (float, ratio),
                             (std::vector<double>, samples), (Point, origin), (std::vector<Point>, path),
                             (std::map<std::string, double>, weights), (std::map<int, std::vector<double>>, bins));
    static constexpr std::string_view collection = "traces";
};

// std::optional members (which tether converts itself: nlohmann_json 3.11.2 has
// no std::optional conversion); validate looks inside them.
struct Calibrated {
    BOOST_HANA_DEFINE_STRUCT(Calibrated, (std::optional<double>, offset), (std::vector<std::optional<double>>, taps));
    static constexpr std::string_view collection = "calibrated";
};

// Its own to_json: validate walks the JSON it produces.
struct Reading {
    double value = 0;
    std::vector<double> series;
    static constexpr std::string_view collection = "readings";
};
inline void to_json(json& j, const Reading& r) { j = json{{"value", r.value}, {"series", r.series}}; }
inline void from_json(const json& j, Reading& r) {
    j.at("value").get_to(r.value);
    j.at("series").get_to(r.series);
}

// A recursive type: the compile-time scan stops at a depth and walks the value.
struct Tree {
    BOOST_HANA_DEFINE_STRUCT(Tree, (double, weight), (std::vector<Tree>, kids));
};

// No floating-point member anywhere: validate must be free.
struct Tally {
    BOOST_HANA_DEFINE_STRUCT(Tally, (std::string, label), (std::vector<int>, counts),
                             (std::map<std::string, std::vector<std::string>>, tags), (std::optional<long>, cap));
    static constexpr std::string_view collection = "tallies";
};

}  // namespace entity_test

namespace {

entity_test::Trace finite_trace() {
    entity_test::Trace t;
    t.name = "t";
    t.gain = 1.5;
    t.ratio = 0.25F;
    t.samples = {0.0, -1.0, 1e300, 4.0};
    t.origin = {1.0, 2.0};
    t.path = {{0.0, 0.0}, {3.0, 4.0}};
    t.weights = {{"a", 1.0}, {"b", 2.0}};
    t.bins = {{-2, {1.0}}, {5, {2.0, 3.0}}};
    return t;
}

std::string validate_message(const entity_test::Trace& t) {
    const auto r = tether::entity_ops<entity_test::Trace>::validate(t);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::invalid_argument);
    return r.error().message;
}

constexpr double nan_v = std::numeric_limits<double>::quiet_NaN();
constexpr double inf_v = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("entity_ops::validate accepts finite values", "[entity][validate]") {
    CHECK(tether::entity_ops<entity_test::Trace>::validate(finite_trace()));
    CHECK(tether::entity_ops<entity_test::Trace>::validate(entity_test::Trace{}));
    CHECK(tether::entity_ops<entity_test::Reading>::validate(entity_test::Reading{2.0, {1.0, 2.0}}));
    CHECK(tether::entity_ops<entity_test::Calibrated>::validate(entity_test::Calibrated{}));
    CHECK(tether::entity_ops<entity_test::Calibrated>::validate(entity_test::Calibrated{1.0, {std::nullopt, 2.0}}));
    CHECK(job_ops::validate(make_job("a", 1, "b")));
    CHECK(note_ops::validate(Note{"n", 3}));
}

TEST_CASE("entity_ops::validate names the member holding NaN or infinity", "[entity][validate]") {
    auto t = finite_trace();
    SECTION("an element of a vector") {
        t.samples[3] = nan_v;
        CHECK(validate_message(t) == "member 'samples[3]' is NaN; JSON cannot carry it");
    }
    SECTION("a plain member, +infinity") {
        t.gain = inf_v;
        CHECK(validate_message(t) == "member 'gain' is +infinity; JSON cannot carry it");
    }
    SECTION("a float member") {
        t.ratio = -std::numeric_limits<float>::infinity();
        CHECK(validate_message(t) == "member 'ratio' is -infinity; JSON cannot carry it");
    }
    SECTION("a nested struct, -infinity") {
        t.origin.y = -inf_v;
        CHECK(validate_message(t) == "member 'origin.y' is -infinity; JSON cannot carry it");
    }
    SECTION("a struct inside a vector") {
        t.path[1].x = nan_v;
        CHECK(validate_message(t) == "member 'path[1].x' is NaN; JSON cannot carry it");
    }
    SECTION("a map with string keys") {
        t.weights["b"] = nan_v;
        CHECK(validate_message(t) == "member 'weights[\"b\"]' is NaN; JSON cannot carry it");
    }
    SECTION("a map with integer keys, holding vectors") {
        t.bins[-2].push_back(inf_v);
        CHECK(validate_message(t) == "member 'bins[-2][1]' is +infinity; JSON cannot carry it");
    }
    SECTION("the first bad value is the one named") {
        t.gain = nan_v;
        t.samples[0] = nan_v;
        CHECK(validate_message(t) == "member 'gain' is NaN; JSON cannot carry it");
    }
}

TEST_CASE("entity_ops::validate looks inside std::optional", "[entity][validate]") {
    using ops = tether::entity_ops<entity_test::Calibrated>;
    const auto plain = ops::validate(entity_test::Calibrated{nan_v, {}});
    REQUIRE_FALSE(plain);
    CHECK(plain.error().code == errc::invalid_argument);
    CHECK(plain.error().message == "member 'offset' is NaN; JSON cannot carry it");
    const auto nested = ops::validate(entity_test::Calibrated{std::nullopt, {1.0, std::nullopt, -inf_v}});
    REQUIRE_FALSE(nested);
    CHECK(nested.error().message == "member 'taps[2]' is -infinity; JSON cannot carry it");
}

TEST_CASE("entity_ops::validate walks the JSON of an entity with its own to_json", "[entity][validate]") {
    using ops = tether::entity_ops<entity_test::Reading>;
    const auto series = ops::validate(entity_test::Reading{1.0, {1.0, nan_v}});
    REQUIRE_FALSE(series);
    CHECK(series.error().code == errc::invalid_argument);
    CHECK(series.error().message == "member 'series[1]' is NaN; JSON cannot carry it");
    const auto value = ops::validate(entity_test::Reading{inf_v, {}});
    REQUIRE_FALSE(value);
    CHECK(value.error().message == "member 'value' is +infinity; JSON cannot carry it");
}

TEST_CASE("entity_ops::validate handles a recursive type", "[entity][validate]") {
    entity_test::Tree t{1.0, {entity_test::Tree{2.0, {entity_test::Tree{3.0, {}}}}}};
    CHECK(tether::entity_ops<entity_test::Tree>::validate(t));
    t.kids[0].kids[0].weight = nan_v;
    const auto r = tether::entity_ops<entity_test::Tree>::validate(t);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "member 'kids[0].kids[0].weight' is NaN; JSON cannot carry it");
}

TEST_CASE("entity_ops::validate is decided at compile time for entities without floating-point members",
          "[entity][validate]") {
    STATIC_REQUIRE_FALSE(tether::detail::may_hold_floating<Job>());
    STATIC_REQUIRE_FALSE(tether::detail::may_hold_floating<entity_test::Tally>());
    STATIC_REQUIRE_FALSE(tether::detail::may_hold_floating<entity_test::Contact>());
    STATIC_REQUIRE(tether::detail::may_hold_floating<entity_test::Trace>());
    STATIC_REQUIRE(tether::detail::may_hold_floating<entity_test::Calibrated>());
    STATIC_REQUIRE(tether::detail::may_hold_floating<entity_test::Point>());
    STATIC_REQUIRE(tether::detail::may_hold_floating<std::map<double, int>>());
    STATIC_REQUIRE(tether::detail::may_hold_floating<json>());
    CHECK(tether::entity_ops<entity_test::Tally>::validate(entity_test::Tally{"x", {1, 2}, {{"k", {"v"}}}, 3L}));
}

// ---- member types real apps have ----------------------------------------------

namespace entity_test {

enum class Color : std::uint8_t { red = 1, green = 2, blue = 200 };
enum Plain : int { plain_a = -3, plain_b = 7 };  // unscoped, with a fixed underlying type
enum Unfixed { unfixed_a, unfixed_b };           // no fixed underlying type: not a member type
enum class Mood { happy, sad };
NLOHMANN_JSON_SERIALIZE_ENUM(Mood, {{Mood::happy, "happy"}, {Mood::sad, "sad"}})

// Nested, with no operator==: equality and diff go member by member.
struct Address {
    BOOST_HANA_DEFINE_STRUCT(Address, (std::string, city), (std::optional<int>, zip),
                             (std::vector<std::string>, lines));
};

// Every supported member type, in one entity.
struct Profile {
    BOOST_HANA_DEFINE_STRUCT(
        Profile, (std::optional<std::string>, nickname), (std::optional<int>, age), (bool, active),
        (std::int8_t, i8), (std::uint8_t, u8), (std::int16_t, i16), (std::uint16_t, u16), (std::int32_t, i32),
        (std::uint32_t, u32), (std::int64_t, i64), (std::uint64_t, u64), (double, score), (float, ratio),
        (Color, color), (Plain, plain), (Mood, mood), (std::chrono::system_clock::time_point, born),
        (tether::timestamp, seen), (std::chrono::sys_days, day), (std::vector<int>, counts),
        (std::vector<bool>, flags), (std::vector<std::optional<double>>, readings), (std::vector<Address>, past),
        (std::map<std::string, int>, tally), (std::map<std::string, Address>, homes), (Address, address),
        (std::optional<Address>, office), (std::map<std::string, std::vector<std::optional<Color>>>, palette),
        (json, extra), (std::map<int, std::string>, by_number));
    static constexpr std::string_view collection = "profiles";
};

}  // namespace entity_test

namespace {

using profile_ops = tether::entity_ops<entity_test::Profile>;
using entity_test::Address;
using entity_test::Color;
using entity_test::Mood;
using entity_test::Profile;

Profile full_profile() {
    using namespace std::chrono;
    Profile p{};  // value-initialized: its scalars start at zero
    p.nickname = "Bo \"the\" \xC3\xBC";
    p.age = 41;
    p.active = true;
    p.i8 = std::numeric_limits<std::int8_t>::min();
    p.u8 = std::numeric_limits<std::uint8_t>::max();
    p.i16 = std::numeric_limits<std::int16_t>::min();
    p.u16 = std::numeric_limits<std::uint16_t>::max();
    p.i32 = std::numeric_limits<std::int32_t>::min();
    p.u32 = std::numeric_limits<std::uint32_t>::max();
    p.i64 = std::numeric_limits<std::int64_t>::min();
    p.u64 = std::numeric_limits<std::uint64_t>::max();
    p.score = -1.25e-300;
    p.ratio = 0.5F;
    p.color = Color::blue;
    p.plain = entity_test::plain_a;
    p.mood = Mood::sad;
    p.born = system_clock::time_point{milliseconds{1'700'000'000'123}};
    p.seen = tether::timestamp{milliseconds{-1'500}};  // before the epoch
    p.day = sys_days{year{2024} / 2 / 29};
    p.counts = {3, -1, 0};
    p.flags = {true, false, true};
    p.readings = {1.5, std::nullopt, -2.0};
    p.past = {Address{"Oslo", 150, {"a", "b"}}, Address{"Rome", std::nullopt, {}}};
    p.tally = {{"x", 1}, {"", -2}};
    p.homes = {{"main", Address{"Paris", 75'001, {"rue"}}}};
    p.address = Address{"Lyon", std::nullopt, {"1", "2"}};
    p.office = Address{"Nice", 6000, {}};
    p.palette = {{"warm", {Color::red, std::nullopt}}, {"none", {}}};
    p.extra = json{{"free", json::array({1, "two", nullptr})}};
    p.by_number = {{-1, "minus one"}, {2, "two"}};
    return p;
}

tether::result<Profile> reread(const json& j) { return profile_ops::from_json(json::parse(j.dump())); }

/// The message of the error decoding `j` (FAILs if it decodes).
std::string decode_error(const json& j) {
    tether::result<Profile> r = tether::unexpected{tether::make_error(errc::invalid_state)};
    REQUIRE_NOTHROW(r = profile_ops::from_json(j));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::protocol);
    return r.error().message;
}

}  // namespace

TEST_CASE("entity members: every supported type round-trips through JSON text", "[entity][members]") {
    STATIC_REQUIRE(tether::entity<Profile>);
    const auto p = full_profile();
    const auto back = reread(profile_ops::to_json(p));
    REQUIRE(back.has_value());
    CHECK(profile_ops::equal(*back, p));
    CHECK(profile_ops::diff(*back, p).empty());
    CHECK(back->i64 == std::numeric_limits<std::int64_t>::min());
    CHECK(back->u64 == std::numeric_limits<std::uint64_t>::max());
    CHECK(back->day == std::chrono::sys_days{std::chrono::year{2024} / 2 / 29});
    CHECK(back->past[1].city == "Rome");
    CHECK_FALSE(back->past[1].zip.has_value());
    CHECK(back->readings[1] == std::nullopt);

    // And a default-constructed one (empty optionals, empty containers).
    const auto empty = reread(profile_ops::to_json(Profile{}));
    REQUIRE(empty.has_value());
    CHECK(profile_ops::equal(*empty, Profile{}));
}

TEST_CASE("entity members: their JSON form", "[entity][members]") {
    const auto j = profile_ops::to_json(full_profile());
    CHECK(j.at("nickname") == "Bo \"the\" \xC3\xBC");
    CHECK(j.at("age") == 41);
    CHECK(j.at("active") == true);
    CHECK(j.at("i8") == -128);
    CHECK(j.at("u8") == 255);  // a number, not a character
    CHECK(j.at("color") == 200);  // an enum without names: its underlying integer
    CHECK(j.at("plain") == -3);
    CHECK(j.at("mood") == "sad");  // an enum with NLOHMANN_JSON_SERIALIZE_ENUM: its name
    CHECK(j.at("born") == 1'700'000'000'123);  // milliseconds since the epoch
    CHECK(j.at("seen") == -1'500);
    CHECK(j.at("day") == 1'709'164'800'000);  // 2024-02-29T00:00Z
    CHECK(j.at("flags") == json::array({true, false, true}));
    CHECK(j.at("readings") == json::array({1.5, nullptr, -2.0}));
    CHECK(j.at("address") == json{{"city", "Lyon"}, {"zip", nullptr}, {"lines", {"1", "2"}}});
    CHECK(j.at("homes") == json{{"main", {{"city", "Paris"}, {"zip", 75'001}, {"lines", {"rue"}}}}});
    CHECK(j.at("palette") == json{{"warm", {1, nullptr}}, {"none", json::array()}});
    CHECK(j.at("extra") == json{{"free", json::array({1, "two", nullptr})}});
    CHECK(j.at("by_number") == json::array({json::array({-1, "minus one"}), json::array({2, "two"})}));

    const auto empty = profile_ops::to_json(Profile{});
    CHECK(empty.at("nickname").is_null());  // an empty optional is null
    CHECK(empty.at("office").is_null());
}

TEST_CASE("entity members: time points keep milliseconds", "[entity][members]") {
    using namespace std::chrono;
    Profile p{};  // value-initialized: its scalars start at zero
    p.born = system_clock::time_point{nanoseconds{1'700'000'000'123'456'789}};
    p.seen = tether::timestamp{milliseconds{-1}};
    const auto j = profile_ops::to_json(p);
    CHECK(j.at("born") == 1'700'000'000'123);  // finer digits are dropped
    auto back = reread(j);
    REQUIRE(back.has_value());
    CHECK(back->born == system_clock::time_point{milliseconds{1'700'000'000'123}});
    CHECK(back->seen == p.seen);

    // Before the epoch, dropping the finer digits rounds down, not toward zero.
    p.born = system_clock::time_point{nanoseconds{-1}};
    CHECK(profile_ops::to_json(p).at("born") == -1);
    // A coarser time point reads milliseconds rounded down to its own tick.
    auto coarse = profile_ops::from_json(json{{"day", 86'400'000 + 1}});
    REQUIRE(coarse.has_value());
    CHECK(coarse->day == sys_days{days{1}});
}

TEST_CASE("entity members: null and missing keys", "[entity][members]") {
    auto j = profile_ops::to_json(full_profile());
    SECTION("null empties an optional") {
        j["nickname"] = nullptr;
        j["office"] = nullptr;
        auto r = reread(j);
        REQUIRE(r.has_value());
        CHECK_FALSE(r->nickname.has_value());
        CHECK_FALSE(r->office.has_value());
    }
    SECTION("a missing key keeps the default, in nested structs too") {
        const auto r = profile_ops::from_json(json{{"address", {{"city", "Metz"}}}, {"past", {{{"zip", 1}}}}});
        REQUIRE(r.has_value());
        CHECK(r->address.city == "Metz");
        CHECK_FALSE(r->address.zip.has_value());
        REQUIRE(r->past.size() == 1);
        CHECK(r->past[0].city.empty());
        CHECK(r->past[0].zip == 1);
        CHECK_FALSE(r->nickname.has_value());
    }
    SECTION("null elements are only for optionals") {
        j["readings"] = json::array({nullptr});
        auto r = reread(j);
        REQUIRE(r.has_value());
        CHECK(r->readings == std::vector<std::optional<double>>{std::nullopt});
        j["counts"] = json::array({1, nullptr});
        CHECK(decode_error(j).find("member 'counts[1]' has the wrong type: expected an integer") != std::string::npos);
    }
}

TEST_CASE("entity members: decoding names the member that does not fit, and never throws", "[entity][members]") {
    const auto good = profile_ops::to_json(full_profile());
    struct bad_case {
        json::json_pointer where;
        json value;
        std::string message;  // what the error names
    };
    const std::vector<bad_case> cases{
        {json::json_pointer{"/active"}, 1, "member 'active' has the wrong type: expected a boolean, got the integer 1"},
        {json::json_pointer{"/i8"}, 128, "member 'i8' has the wrong type: expected an integer in [-128, 127], got the integer 128"},
        {json::json_pointer{"/u8"}, -1, "member 'u8' has the wrong type: expected an integer in [0, 255]"},
        {json::json_pointer{"/u64"}, -1, "member 'u64'"},
        {json::json_pointer{"/i32"}, 1.5, "member 'i32' has the wrong type: expected an integer in [-2147483648, 2147483647], got the number 1.5"},
        {json::json_pointer{"/i16"}, true, "member 'i16'"},
        {json::json_pointer{"/score"}, "1.5", "member 'score' has the wrong type: expected a number, got string"},
        {json::json_pointer{"/ratio"}, 1e300, "member 'ratio' has the wrong type: expected a finite number"},
        {json::json_pointer{"/nickname"}, 5, "member 'nickname' has the wrong type: expected a string, got the integer 5"},
        {json::json_pointer{"/age"}, "old", "member 'age'"},
        {json::json_pointer{"/color"}, 256, "member 'color' has the wrong type: expected an enumerator's value, an integer in [0, 255]"},
        {json::json_pointer{"/color"}, "blue", "member 'color'"},
        {json::json_pointer{"/mood"}, "angry", "member 'mood' has the wrong type: expected one of the enumeration's names"},
        {json::json_pointer{"/mood"}, 1, "member 'mood'"},
        {json::json_pointer{"/born"}, "2024-01-01", "member 'born' has the wrong type: expected an integer (milliseconds since the epoch), got string"},
        {json::json_pointer{"/born"}, 9'300'000'000'000'000LL, "member 'born' has the wrong type: expected milliseconds since the epoch within"},
        {json::json_pointer{"/seen"}, 1.5, "member 'seen'"},
        {json::json_pointer{"/counts"}, json::object(), "member 'counts' has the wrong type: expected an array, got object"},
        {json::json_pointer{"/counts/1"}, "x", "member 'counts[1]'"},
        {json::json_pointer{"/flags/0"}, 0, "member 'flags[0]' has the wrong type: expected a boolean"},
        {json::json_pointer{"/readings/2"}, "x", "member 'readings[2]' has the wrong type: expected a number"},
        {json::json_pointer{"/past/1/zip"}, "x", "member 'past[1].zip'"},
        {json::json_pointer{"/tally"}, json::array(), "member 'tally' has the wrong type: expected an object, got array"},
        {json::json_pointer{"/tally/x"}, "one", "member 'tally[\"x\"]'"},
        {json::json_pointer{"/homes/main/lines"}, "rue", "member 'homes[\"main\"].lines' has the wrong type: expected an array"},
        {json::json_pointer{"/address"}, "Lyon", "member 'address' has the wrong type: expected an object, got string"},
        {json::json_pointer{"/address/city"}, json::array(), "member 'address.city' has the wrong type: expected a string, got array"},
        {json::json_pointer{"/office/zip"}, 1.5, "member 'office.zip'"},
        {json::json_pointer{"/palette/warm/0"}, "red", "member 'palette[\"warm\"][0]'"},
        {json::json_pointer{"/by_number"}, "x", "member 'by_number' has the wrong type: expected an array of [key, value] arrays"},
        {json::json_pointer{"/by_number/1/0"}, 1e300, "member 'by_number[key of entry 1]' has the wrong type"},
        {json::json_pointer{"/by_number/0/1"}, 7, "member 'by_number[0]' has the wrong type: expected a string"},
    };
    for (const auto& c : cases) {
        auto j = good;
        j[c.where] = c.value;
        INFO(c.where.to_string() << " = " << c.value.dump());
        const auto message = decode_error(j);
        CHECK(message.find("entity JSON does not fit profiles: ") == 0);
        CHECK_THAT(message, Catch::Matchers::Contains(c.message));
    }
}

TEST_CASE("entity members: an integer reads into a floating-point member", "[entity][members]") {
    const auto r = profile_ops::from_json(json{{"score", 3}, {"ratio", -2}});
    REQUIRE(r.has_value());
    CHECK(r->score == 3.0);
    CHECK(r->ratio == -2.0F);
}

TEST_CASE("entity members: equality, diff and merge of optional and nested members", "[entity][members]") {
    const auto base = full_profile();
    SECTION("equality looks inside nested structs without operator==") {
        auto other = base;
        CHECK(profile_ops::equal(base, other));
        other.past[1].lines.push_back("c");
        CHECK_FALSE(profile_ops::equal(base, other));
        other = base;
        other.homes["main"].zip = std::nullopt;
        CHECK_FALSE(profile_ops::equal(base, other));
    }
    SECTION("a change anywhere inside a member names the member, whole") {
        auto other = base;
        other.address.zip = 69'001;
        other.office->lines = {"x"};
        other.readings[1] = 0.0;
        other.homes["second"] = Address{};
        CHECK(profile_ops::diff(base, other) == field_set{"address", "office", "readings", "homes"});
        other = base;
        other.nickname.reset();
        other.office.reset();
        CHECK(profile_ops::diff(base, other) == field_set{"nickname", "office"});
        CHECK(profile_ops::diff(other, base) == field_set{"nickname", "office"});
    }
    SECTION("merge takes the named members whole") {
        auto from = base;
        from.address = Address{"Brest", 29'200, {}};
        from.nickname.reset();
        from.office.reset();
        from.color = Color::green;
        const auto merged = profile_ops::merge(base, from, {"address", "nickname"});
        CHECK(merged.address.city == "Brest");
        CHECK(merged.address.zip == 29'200);
        CHECK(merged.address.lines.empty());
        CHECK_FALSE(merged.nickname.has_value());
        CHECK(merged.office.has_value());     // not named: kept
        CHECK(merged.color == Color::blue);  // not named: kept
        CHECK(profile_ops::equal(profile_ops::merge(base, from, profile_ops::diff(base, from)), from));
    }
}

TEST_CASE("entity members: which types convert is decided at compile time", "[entity][members]") {
    using tether::detail::codable;
    STATIC_REQUIRE(codable<std::optional<std::vector<std::map<std::string, std::optional<Address>>>>>());
    STATIC_REQUIRE(codable<std::chrono::sys_seconds>());
    STATIC_REQUIRE(codable<entity_test::Tree>());  // recursive
    STATIC_REQUIRE(codable<std::array<int, 3>>());  // read element by element
    STATIC_REQUIRE(codable<std::pair<int, Address>>());  // a Hana struct inside: nlohmann alone could not
    STATIC_REQUIRE(codable<std::tuple<bool, std::optional<Color>, std::string>>());
    STATIC_REQUIRE(codable<std::set<std::int16_t>>());
    STATIC_REQUIRE(codable<std::map<std::int64_t, std::vector<Address>>>());
    STATIC_REQUIRE(codable<entity_test::Plain>());  // unscoped, with a fixed underlying type
    STATIC_REQUIRE_FALSE(codable<entity_test::Unfixed>());  // holds only its enumerators' bits: an integer could be UB
    STATIC_REQUIRE_FALSE(codable<std::vector<entity_test::Unfixed>>());
    STATIC_REQUIRE_FALSE(codable<std::pair<int, std::string_view>>());
    STATIC_REQUIRE_FALSE(codable<std::chrono::seconds>());  // a duration: which unit?
    STATIC_REQUIRE_FALSE(codable<std::chrono::steady_clock::time_point>());  // no epoch to share
    STATIC_REQUIRE_FALSE(codable<const char*>());
    STATIC_REQUIRE_FALSE(codable<std::string_view>());
    STATIC_REQUIRE_FALSE(codable<std::optional<std::chrono::seconds>>());
    STATIC_REQUIRE_FALSE(codable<std::vector<entity_test::Opaque>>());
    STATIC_REQUIRE_FALSE(codable<std::map<std::string, std::string_view>>());
    STATIC_REQUIRE_FALSE(codable<std::chrono::time_point<std::chrono::system_clock, std::chrono::duration<double>>>());
}

TEST_CASE("entity members: optional, nested and time members sync between devices", "[entity][members]") {
    // Through the engine: a partial update carries only the changed members,
    // and an emptied optional goes up as null and comes down empty.
    tether::manual_clock clock;
    tether::loopback_server server{[clock] { return clock.now(); }};
    auto phone = tether::make_engine<Profile>(tether::loopback_transport{server, "alice"}, clock);
    auto laptop = tether::make_engine<Profile>(tether::loopback_transport{server, "alice"}, clock);

    const auto created = phone.create(full_profile());
    REQUIRE(created);
    REQUIRE(phone.sync());
    REQUIRE(laptop.sync());
    const auto seen = laptop.get(created->id);
    REQUIRE(seen);
    CHECK(profile_ops::equal(seen->value, full_profile()));

    REQUIRE(laptop.update(created->id, [](Profile& p) {
        p.nickname.reset();
        p.address.zip = 69'001;
        p.seen = tether::timestamp{std::chrono::milliseconds{42}};
    }));
    REQUIRE(laptop.sync());
    REQUIRE(phone.sync());
    const auto mine = phone.get(created->id);
    REQUIRE(mine);
    CHECK(mine->status == tether::sync_status::synced);
    CHECK_FALSE(mine->value.nickname.has_value());
    CHECK(mine->value.address.zip == 69'001);
    CHECK(mine->value.address.city == "Lyon");
    CHECK(mine->value.seen == tether::timestamp{std::chrono::milliseconds{42}});
    CHECK(mine->value.day == full_profile().day);
}
