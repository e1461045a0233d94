#include <tether/core/status.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

using tether::is_legal_transition;
using tether::sync_status;
using tether::sync_status_from_string;

namespace {

constexpr std::array<sync_status, tether::sync_status_count> all_statuses{
    sync_status::pending, sync_status::synced, sync_status::pending_deletion, sync_status::error,
    sync_status::failed};

using S = sync_status;

// The table written out from the prose in status.hpp, independently of
// `legal_transitions`: every edge the comment names (plus staying put).
const std::set<std::pair<S, S>> documented_edges{
    {S::pending, S::synced},           {S::pending, S::error},
    {S::pending, S::failed},           {S::pending, S::pending_deletion},
    {S::synced, S::pending},           {S::synced, S::pending_deletion},
    {S::pending_deletion, S::synced},  {S::pending_deletion, S::pending},
    {S::pending_deletion, S::error},   {S::pending_deletion, S::failed},
    {S::error, S::pending},            {S::error, S::synced},
    {S::error, S::pending_deletion},   {S::error, S::failed},
    {S::failed, S::pending},           {S::failed, S::pending_deletion},
    {S::failed, S::synced},
};

}  // namespace

TEST_CASE("sync_status: to_string and from_string round-trip", "[status]") {
    CHECK(tether::to_string(S::pending) == "pending");
    CHECK(tether::to_string(S::synced) == "synced");
    CHECK(tether::to_string(S::pending_deletion) == "pending_deletion");
    CHECK(tether::to_string(S::error) == "error");
    CHECK(tether::to_string(S::failed) == "failed");

    std::set<std::string_view> names;
    for (auto s : all_statuses) {
        const auto name = tether::to_string(s);
        INFO("status " << name);
        names.insert(name);
        const auto back = sync_status_from_string(name);
        REQUIRE(back.has_value());
        CHECK(*back == s);

        std::ostringstream os;
        os << s;
        CHECK(os.str() == name);
    }
    CHECK(names.size() == tether::sync_status_count);

    STATIC_REQUIRE(sync_status_from_string("pending_deletion") == S::pending_deletion);
    STATIC_REQUIRE(tether::to_string(S::failed) == "failed");
}

TEST_CASE("sync_status: unknown names parse to nullopt", "[status]") {
    for (std::string_view bad : {"", "Pending", "SYNCED", "pending ", " synced", "pending-deletion",
                                 "pendingdeletion", "unknown", "deleted", "fail", "errors"}) {
        INFO("name '" << bad << "'");
        CHECK_FALSE(sync_status_from_string(bad).has_value());
    }
}

TEST_CASE("sync_status: the transition table matches the documented rows", "[status]") {
    for (auto from : all_statuses) {
        for (auto to : all_statuses) {
            const bool expected = from == to || documented_edges.count({from, to}) == 1;
            INFO(tether::to_string(from) << " -> " << tether::to_string(to));
            CHECK(is_legal_transition(from, to) == expected);
            CHECK(tether::legal_transitions[static_cast<std::size_t>(from)][static_cast<std::size_t>(to)] ==
                  expected);
        }
    }
}

TEST_CASE("sync_status: named legal and illegal edges", "[status]") {
    SECTION("legal") {
        CHECK(is_legal_transition(S::pending, S::synced));
        CHECK(is_legal_transition(S::pending, S::error));
        CHECK(is_legal_transition(S::pending, S::failed));
        CHECK(is_legal_transition(S::pending, S::pending_deletion));
        CHECK(is_legal_transition(S::synced, S::pending));
        CHECK(is_legal_transition(S::synced, S::pending_deletion));
        CHECK(is_legal_transition(S::pending_deletion, S::synced));
        CHECK(is_legal_transition(S::pending_deletion, S::pending));
        CHECK(is_legal_transition(S::pending_deletion, S::error));
        CHECK(is_legal_transition(S::pending_deletion, S::failed));
        CHECK(is_legal_transition(S::error, S::pending));
        CHECK(is_legal_transition(S::error, S::synced));
        CHECK(is_legal_transition(S::error, S::pending_deletion));
        CHECK(is_legal_transition(S::error, S::failed));
        CHECK(is_legal_transition(S::failed, S::pending));
        CHECK(is_legal_transition(S::failed, S::pending_deletion));
        CHECK(is_legal_transition(S::failed, S::synced));
    }
    SECTION("illegal") {
        CHECK_FALSE(is_legal_transition(S::synced, S::error));
        CHECK_FALSE(is_legal_transition(S::synced, S::failed));
        CHECK_FALSE(is_legal_transition(S::failed, S::error));
    }
    SECTION("staying in the same status is legal") {
        for (auto s : all_statuses) {
            INFO(tether::to_string(s));
            CHECK(is_legal_transition(s, s));
        }
    }
    STATIC_REQUIRE(is_legal_transition(S::synced, S::pending));
    STATIC_REQUIRE_FALSE(is_legal_transition(S::synced, S::error));
}

TEST_CASE("transition: defaults", "[status]") {
    const tether::transition t{};
    CHECK(t.id.is_nil());
    CHECK_FALSE(t.from.has_value());
    CHECK_FALSE(t.to.has_value());
    CHECK(t.legal);
    CHECK(t.cause.empty());
}
