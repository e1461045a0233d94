// The transport conformance suite: it passes against the loopback server and
// names each rule a deliberately broken transport breaks.
#include "custom_policy/dict_transport.hpp"

#include <tether/testing/transport_conformance.hpp>
#include <tether/transport/loopback.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <set>
#include <string>
#include <vector>

namespace {

std::set<std::string> checks(const std::vector<tether::testing::conformance_failure>& fs) {
    std::set<std::string> out;
    for (const auto& f : fs) out.insert(f.check);
    return out;
}

std::string describe(const std::vector<tether::testing::conformance_failure>& fs) {
    std::string s;
    for (const auto& f : fs) s += f.check + ": " + f.what + "\n";
    return s;
}

/// A loopback transport with one protocol rule broken, as a transport author might.
struct broken_transport {
    using policy_kind = tether::transport_tag;
    enum class flaw { forgets_replayed, drops_origin, ignores_versions, no_tombstones, repeats_pages };
    tether::loopback_transport inner;
    flaw how;

    tether::result<std::vector<tether::push_outcome>> push(std::string_view c, std::span<const tether::push_op> ops) {
        std::vector<tether::push_op> sent(ops.begin(), ops.end());
        if (how == flaw::ignores_versions) {
            for (auto& op : sent) {
                op.base_version = 0;
                op.server_id.reset();  // names by local id: no version check
            }
        }
        auto out = inner.push(c, sent);
        if (!out) return out;
        for (auto& o : *out) {
            if (how == flaw::forgets_replayed) o.replayed = false;
            if (how == flaw::drops_origin) o.record.origin.clear();
        }
        return out;
    }
    tether::result<tether::pull_page> pull(std::string_view c, std::string_view cursor, std::size_t limit) {
        auto page = inner.pull(c, how == flaw::repeats_pages ? std::string_view{} : cursor, limit);
        if (!page) return page;
        if (how == flaw::drops_origin)
            for (auto& r : page->records) r.origin.clear();
        if (how == flaw::no_tombstones) page->tombstones.clear();
        return page;
    }
    tether::result<tether::server_record> fetch(std::string_view c, std::string_view sid) { return inner.fetch(c, sid); }
    [[nodiscard]] std::size_t max_batch() const { return inner.max_batch(); }
    [[nodiscard]] bool has_change_feed() const { return inner.has_change_feed(); }
};

}  // namespace

TEST_CASE("the loopback transport keeps every protocol rule", "[testing][conformance]") {
    tether::loopback_server server;
    auto failures = tether::testing::check_transport([&] { return tether::loopback_transport{server, "alice"}; });
    INFO(describe(failures));
    CHECK(failures.empty());
    // Twice on one server (other records present), with another seed.
    auto again = tether::testing::check_transport([&] { return tether::loopback_transport{server, "alice"}; },
                                                  {.collection = "conformance", .seed = 2});
    INFO(describe(again));
    CHECK(again.empty());
}

TEST_CASE("the transport conformance suite names each broken rule", "[testing][conformance]") {
    using flaw = broken_transport::flaw;
    struct expectation {
        flaw how;
        std::string check;
    };
    for (const auto& [how_, check] : std::vector<expectation>{{flaw::forgets_replayed, "idempotent create"},
                                                             {flaw::drops_origin, "origin kept"},
                                                             {flaw::ignores_versions, "stale update conflicts"},
                                                             {flaw::no_tombstones, "tombstones"},
                                                             {flaw::repeats_pages, "cursor"}}) {
        const flaw how = how_;  // the lambda below captures it: not a structured binding (clang 14)
        INFO("expected failure of: " << check);
        tether::loopback_server server;
        auto failures = tether::testing::check_transport(
            [&] { return broken_transport{tether::loopback_transport{server, "alice"}, how}; });
        INFO(describe(failures));
        CHECK(checks(failures).contains(check));
    }
}

TEST_CASE("the example's own transport keeps every protocol rule", "[testing][conformance]") {
    custom::dict_transport server;
    auto failures = tether::testing::check_transport([&] { return server; });
    INFO(describe(failures));
    CHECK(failures.empty());
}
