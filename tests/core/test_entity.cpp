#include <tether/core/entity.hpp>

#include "support/entities.hpp"

#include <catch2/catch.hpp>

#include <boost/hana/adapt_struct.hpp>
#include <boost/hana/define_struct.hpp>
#include <nlohmann/json.hpp>

#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
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

// std::optional members: nlohmann_json 3.11.2 has no std::optional conversion,
// so this type cannot be stored; validate walks its members all the same.
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
