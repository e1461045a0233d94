// The engine and the items a transport's decoder refused (`pull_page::refused`):
// each is counted with the items that cannot be applied, reported, and (with a
// server id) fetched at a later pull, once a pull, until it reads; the rest of
// its page and the cursor commit, and the next sync works as ever.
#include "engine/hostile_world.hpp"
#include "support/entities.hpp"

#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using tether_test::Job;
using tether::errc;
using hostile_test::local_count;
using hostile_test::world;

namespace {

/// A loopback transport whose pages refuse some records, as a decoder would
/// refuse a record of the wrong shape, and whose fetches of some server ids
/// answer `errc::protocol` (a record that still does not read).
struct refusing_transport {
    using policy_kind = tether::transport_tag;

    struct script {
        std::map<std::string, bool> refuse_in_pages;  // server ids taken out of every page into `refused`
        std::map<std::string, bool> refuse_unnamed;   // ...refused without their server id (it did not read)
        std::optional<tether::error> fail_next_pull;  // the next pull fails with this
        std::vector<tether::refused_item> extra;      // refused items added to the next page (once)
        std::map<std::string, bool> refuse_fetch;     // server ids whose fetch cannot be read
        std::map<std::string, bool> refuse_tombstones; // server ids whose tombstone is refused (named)
        std::map<std::string, std::size_t> fetches;   // fetches made, by server id
    };

    tether::loopback_transport inner;
    std::shared_ptr<script> s = std::make_shared<script>();

    tether::result<std::vector<tether::push_outcome>> push(std::string_view c, std::span<const tether::push_op> ops) {
        return inner.push(c, ops);
    }
    tether::result<tether::pull_page> pull(std::string_view c, std::string_view cursor, std::size_t limit) {
        if (auto e = std::exchange(s->fail_next_pull, std::nullopt)) return tether::unexpected{*e};
        auto page = inner.pull(c, cursor, limit);
        if (!page) return page;
        std::vector<tether::server_record> kept;
        for (std::size_t i = 0; i < page->records.size(); ++i) {
            auto& r = page->records[i];
            if (s->refuse_unnamed.contains(r.server_id)) {
                page->refused.push_back(tether::refused_item{"", i, false, "records[" + std::to_string(i) +
                                                                                "].server_id: expected a string"});
            } else if (s->refuse_in_pages.contains(r.server_id)) {
                page->refused.push_back(tether::refused_item{r.server_id, i, false, "records[" + std::to_string(i) +
                                                                                         "].version: expected an unsigned integer"});
            } else {
                kept.push_back(std::move(r));
            }
        }
        page->records = std::move(kept);
        std::vector<tether::tombstone> tombs;
        for (std::size_t i = 0; i < page->tombstones.size(); ++i) {
            auto& t = page->tombstones[i];
            if (s->refuse_tombstones.contains(t.server_id))
                page->refused.push_back(tether::refused_item{t.server_id, i, true, "tombstones[" + std::to_string(i) +
                                                                                       "].version: expected an unsigned integer"});
            else
                tombs.push_back(std::move(t));
        }
        page->tombstones = std::move(tombs);
        for (auto& x : s->extra) page->refused.push_back(std::move(x));
        s->extra.clear();
        return page;
    }
    tether::result<tether::server_record> fetch(std::string_view c, std::string_view server_id) {
        ++s->fetches[std::string{server_id}];
        if (s->refuse_fetch.contains(std::string{server_id}))
            return tether::unexpected{tether::make_error(errc::protocol, "record.version: expected an unsigned integer")};
        return inner.fetch(c, server_id);
    }
    [[nodiscard]] std::size_t max_batch() const { return inner.max_batch(); }
    [[nodiscard]] bool has_change_feed() const { return inner.has_change_feed(); }
};

std::size_t fetches_of(const refusing_transport& t, const std::string& sid) {
    auto it = t.s->fetches.find(sid);
    return it == t.s->fetches.end() ? 0 : it->second;
}

/// The server ids of `n` records another device made.
std::vector<std::string> made_on_server(world& w, int n) {
    auto writer = w.plain_device();
    for (int i = 0; i < n; ++i) REQUIRE(writer.create(Job{"w" + std::to_string(i), i, ""}));
    REQUIRE(writer.sync());
    std::vector<std::string> out;
    for (const auto& r : w.on_server()) out.push_back(r.server_id);
    REQUIRE(out.size() == static_cast<std::size_t>(n));
    return out;
}

/// The server ids of three records another device made.
std::vector<std::string> three_on_server(world& w) { return made_on_server(w, 3); }

/// How a transport of one's own reads the records of a page (docs/policies.md):
/// one that does not read is refused alone, with its server id if it has one.
void read_records(const nlohmann::json& items, tether::pull_page& page) {
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto& j = items[i];
        try {
            page.records.push_back(tether::server_record{j.at("server_id").get<std::string>(), std::nullopt,
                                                         j.at("version").get<std::uint64_t>(), j.at("value"),
                                                         std::nullopt});
        } catch (const std::exception& e) {
            const bool named = j.is_object() && j.contains("server_id") && j["server_id"].is_string();
            page.refused.push_back({named ? j["server_id"].get<std::string>() : std::string{}, i, false, e.what()});
        }
    }
}

}  // namespace

TEST_CASE("a transport of one's own refuses the records it cannot read, one by one", "[sync][refused]") {
    const auto items = nlohmann::json::parse(R"([{"server_id":"a","version":1,"value":{}},
        {"server_id":"b","version":"two","value":{}}, 7, {"server_id":"d","version":4,"value":{"title":"x"}}])");
    tether::pull_page page;
    read_records(items, page);
    REQUIRE(page.records.size() == 2);
    CHECK(page.records[1].server_id == "d");
    REQUIRE(page.refused.size() == 2);
    CHECK(page.refused[0].server_id == "b");
    CHECK(page.refused[0].index == 1);
    CHECK(page.refused[1].server_id.empty());
    CHECK(page.refused[1].index == 2);
    CHECK_FALSE(page.refused[1].why.empty());
}

TEST_CASE("refused page items are counted and logged, the rest of the page and its cursor commit",
          "[sync][refused]") {
    world w;
    const auto sids = three_on_server(w);
    refusing_transport t{tether::loopback_transport{w.server, "alice"}};
    t.s->refuse_in_pages[sids[1]] = true;
    t.s->extra.push_back(tether::refused_item{"", 4, true, "tombstones[4]: expected a JSON object"});
    auto dev = tether::make_engine<Job>(tether::memory_storage{}, t, w.clock);
    std::vector<std::string> warnings;
    dev.on_log([&](tether::log_level l, std::string_view m) {
        if (l >= tether::log_level::warning) warnings.emplace_back(m);
    });

    auto first = dev.pull();
    REQUIRE(first);
    CHECK_FALSE(first->failure);
    CHECK(first->pulled == 2);
    CHECK(first->unapplied == 2);  // the record and the tombstone without a server id
    CHECK(dev.health()->unapplied == 2);
    CHECK(local_count(dev) == 2);
    CHECK(fetches_of(t, sids[1]) == 0);  // not in the pass whose page refused it
    auto mentions = [&](const std::string& bit) {
        for (const auto& m : warnings)
            if (m.find(bit) != std::string::npos) return true;
        return false;
    };
    CHECK(mentions(sids[1]));
    CHECK(mentions("refused by the transport (record "));
    CHECK(mentions("(tombstone 4 of the page)"));

    // The next pull fetches it (it reads now) and the cursor had moved on: nothing comes twice.
    t.s->refuse_in_pages.clear();
    auto second = dev.pull();
    REQUIRE(second);
    CHECK_FALSE(second->failure);
    CHECK(second->unapplied == 0);
    CHECK(second->pulled == 1);
    CHECK(fetches_of(t, sids[1]) == 1);
    CHECK(local_count(dev) == 3);
    auto third = dev.pull();
    REQUIRE(third);
    CHECK(third->pulled == 0);
    CHECK(fetches_of(t, sids[1]) == 1);  // off the list once applied
}

TEST_CASE("a refused item whose fetch does not read either is counted once a pull and never loops",
          "[sync][refused]") {
    world w;
    const auto sids = three_on_server(w);
    refusing_transport t{tether::loopback_transport{w.server, "alice"}};
    t.s->refuse_in_pages[sids[0]] = true;
    t.s->refuse_in_pages[sids[2]] = true;
    t.s->refuse_fetch[sids[0]] = true;  // sids[2] reads when fetched on its own
    auto dev = tether::make_engine<Job>(tether::memory_storage{}, t, w.clock);

    auto first = dev.pull();
    REQUIRE(first);
    CHECK(first->unapplied == 2);
    CHECK(local_count(dev) == 1);

    for (std::size_t pass = 1; pass <= 3; ++pass) {
        INFO("pass " << pass);
        auto again = dev.pull();
        REQUIRE(again);
        CHECK_FALSE(again->failure);
        CHECK(again->unapplied == 1);          // the fetch that cannot be read, counted
        CHECK(fetches_of(t, sids[0]) == pass);  // one fetch a pull
        CHECK(fetches_of(t, sids[2]) == 1);     // the other one applied, though fetched after a refusal
        CHECK(local_count(dev) == 2);
    }

    // Sync goes on meanwhile: a change by another device arrives as ever.
    auto writer = w.plain_device();
    REQUIRE(writer.pull());
    const auto held = writer.list().value();
    REQUIRE(writer.update(held.at(0).id, [](Job& j) { j.progress = 77; }));
    REQUIRE(writer.sync());
    auto busy = dev.sync();
    REQUIRE(busy);
    CHECK_FALSE(busy->failure);

    // Once it reads, it applies; then it is fetched no more.
    t.s->refuse_fetch.clear();
    auto fixed = dev.pull();
    REQUIRE(fixed);
    CHECK(fixed->unapplied == 0);
    CHECK(local_count(dev) == 3);
    const auto before = fetches_of(t, sids[0]);
    REQUIRE(dev.pull());
    CHECK(fetches_of(t, sids[0]) == before);
    bool seen_edit = false;
    for (const auto& r : dev.list().value()) seen_edit |= r.value.progress == 77;
    CHECK(seen_edit);
}

TEST_CASE("a resync whose page refused an item without its server id takes no record for lost",
          "[sync][refused]") {
    world w;
    const auto sids = three_on_server(w);
    refusing_transport t{tether::loopback_transport{w.server, "alice"}};
    auto dev = tether::make_engine<Job>(tether::memory_storage{}, t, w.clock);
    REQUIRE(dev.pull());
    REQUIRE(local_count(dev) == 3);

    // The cursor expires (a restore): the resync's page holds one record it cannot name.
    t.s->fail_next_pull = tether::error{errc::cursor_expired, "gone", 410, std::nullopt};
    t.s->refuse_unnamed[sids[1]] = true;
    auto resync = dev.pull();
    REQUIRE(resync);
    CHECK_FALSE(resync->failure);
    CHECK(resync->unapplied == 1);
    CHECK(resync->removed == 0);
    CHECK(local_count(dev) == 3);  // its synced copy is not taken for lost

    // Once every item reads, a later pull finishes the resync; nothing was lost.
    t.s->refuse_unnamed.clear();
    auto done = dev.pull();
    REQUIRE(done);
    CHECK(done->removed == 0);
    CHECK(local_count(dev) == 3);
    CHECK(dev.health()->resyncs == 1);
    auto quiet = dev.pull();
    REQUIRE(quiet);
    CHECK(quiet->pulled == 0);  // the resync is over: pulls go on from the cursor
}

TEST_CASE("a refused tombstone's deletion arrives by the fetch that answers not_found", "[sync][refused]") {
    world w;
    const auto sids = three_on_server(w);
    refusing_transport t{tether::loopback_transport{w.server, "alice"}};
    auto dev = tether::make_engine<Job>(tether::memory_storage{}, t, w.clock);
    REQUIRE(dev.pull());
    REQUIRE(local_count(dev) == 3);

    auto writer = w.plain_device();
    REQUIRE(writer.pull());
    for (const auto& r : writer.list().value())
        if (r.server_id == sids[1]) REQUIRE(writer.remove(r.id));
    REQUIRE(writer.sync());

    t.s->refuse_tombstones[sids[1]] = true;
    auto refused = dev.pull();
    REQUIRE(refused);
    CHECK(refused->unapplied == 1);
    CHECK(local_count(dev) == 3);  // the deletion did not read: the cursor moved past it
    auto fetched = dev.pull();     // the fetch of the deferred id: the server no longer holds it
    REQUIRE(fetched);
    CHECK_FALSE(fetched->failure);
    CHECK(fetches_of(t, sids[1]) == 1);
    CHECK(fetched->removed == 1);
    CHECK(local_count(dev) == 2);
    for (const auto& r : dev.list().value()) CHECK(r.server_id != sids[1]);
    REQUIRE(dev.pull());
    CHECK(fetches_of(t, sids[1]) == 1);  // off the list
}

TEST_CASE("ids that never read do not keep the others from their refetch", "[sync][refused]") {
    world w;
    auto sids = made_on_server(w, 40);
    std::sort(sids.begin(), sids.end());
    refusing_transport t{tether::loopback_transport{w.server, "alice"}};
    for (const auto& sid : sids) t.s->refuse_in_pages[sid] = true;
    for (std::size_t i = 0; i + 1 < sids.size(); ++i) t.s->refuse_fetch[sids[i]] = true;  // all but the last, for good
    auto dev = tether::make_engine<Job>(tether::memory_storage{}, t, w.clock);
    REQUIRE(dev.pull());
    CHECK(local_count(dev) == 0);
    for (int pass = 0; pass < 20 && local_count(dev) == 0; ++pass) {
        w.clock.advance(std::chrono::seconds{1});
        REQUIRE(dev.pull());
    }
    CHECK(local_count(dev) == 1);  // the one that reads had its turn
    CHECK(fetches_of(t, sids.back()) == 1);
}
