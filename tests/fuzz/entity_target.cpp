// A fuzz target for the entity JSON decoder (`entity_ops<E>::from_json`),
// with an entity holding every kind of member the decoder reads (rich_entity.hpp).
#include "fuzz.hpp"
#include "rich_entity.hpp"

#include <tether/core/entity.hpp>
#include <tether/protocol/parse.hpp>

#include <array>
#include <string_view>

namespace tether_fuzz {
namespace {

using ops = tether::entity_ops<fuzz_entity::rich>;

void entity_target(std::string_view input) {
    const char* name = "entity";
    auto doc = tether::protocol::parse_json(input, tether::protocol::answer_parse_limits);
    if (!doc) return;
    auto first = ops::from_json(*doc);
    if (!first) {
        TETHER_FUZZ_CHECK(name, first.error().code == tether::errc::protocol);
        return;
    }
    // What JSON decoded holds no NaN or infinity, and writes out as JSON text.
    TETHER_FUZZ_CHECK(name, ops::validate(*first).has_value());
    const nlohmann::json j = ops::to_json(*first);
    auto text = tether::protocol::dump_json(j);
    TETHER_FUZZ_CHECK(name, text.has_value());
    auto reparsed = tether::protocol::parse_json(*text, tether::protocol::answer_parse_limits);
    TETHER_FUZZ_CHECK(name, reparsed.has_value());
    // It reads back as the same entity, and writes the same JSON again.
    auto second = ops::from_json(*reparsed);
    TETHER_FUZZ_CHECK(name, second.has_value());
    TETHER_FUZZ_CHECK(name, ops::equal(*first, *second));
    TETHER_FUZZ_CHECK(name, ops::diff(*first, *second).empty());
    TETHER_FUZZ_CHECK(name, ops::to_json(*second) == j);
}

constexpr std::array<target, 1> all{{{"entity", entity_target}}};

}  // namespace

std::span<const target> entity_targets() { return all; }

}  // namespace tether_fuzz
