#pragma once

// The spoiling of an answered pull page by a `loopback_server`
// (testing/loopback_server.hpp): local ids left out, and bad items added (a
// nil local id, an empty server id, a duplicate server id, a tombstone with an
// empty server id), and items taken out into `refused` as a decoder refuses
// them, for the engine's pull to skip one item at a time. Not a public entry point.
#include <tether/core/ids.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/server/store.hpp>
#include <tether/testing/detail/loopback_state.hpp>
#include <tether/testing/loopback_faults.hpp>
#include <tether/transport/transport.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <utility>

namespace tether::detail {

/// Takes one record (or tombstone) of the page out into `refused`, with its
/// server id, as a decoder refuses an item it cannot read; false if the page
/// has none.
inline bool loopback_refuse_item(loopback_state& s, pull_page& page, bool tombstone) {
    const std::size_t n = tombstone ? page.tombstones.size() : page.records.size();
    if (n == 0) return false;
    const std::size_t at = loopback_splitmix64(s.rng) % n;
    const std::string why = std::string{tombstone ? "tombstones[" : "records["} + std::to_string(at) +
                            "].version: expected an unsigned integer (a fault)";
    if (tombstone) {
        page.refused.push_back(refused_item{page.tombstones[at].server_id, at, true, why});
        page.tombstones.erase(page.tombstones.begin() + static_cast<std::ptrdiff_t>(at));
    } else {
        page.refused.push_back(refused_item{page.records[at].server_id, at, false, why});
        page.records.erase(page.records.begin() + static_cast<std::ptrdiff_t>(at));
    }
    return true;
}

/// Omits local ids and adds a bad item to an answered page of `where` (under
/// the server's lock): `set_omit_local_ids`, `bad_next_pages`, and the seeded
/// `omit_local_id` and `bad_page_item` rates.
inline void loopback_spoil_page(loopback_state& s, server::scope where, pull_page& page) {
    const double omit_rate = s.random ? s.random->omit_local_id : 0.0;
    if (s.omit_local_ids || omit_rate > 0) {
        auto omit = [&](std::optional<local_id>& id) {
            if (!id) return;
            if (!s.omit_local_ids && loopback_unit(s.rng) >= omit_rate) return;
            id.reset();
            ++s.counts.omitted_local_ids;
        };
        for (auto& r : page.records) omit(r.id);
        for (auto& t : page.tombstones) omit(t.id);
    }
    if (s.random && s.random->refused_page_item > 0 && loopback_unit(s.rng) < s.random->refused_page_item) {
        const bool tombstone = !page.tombstones.empty() && (page.records.empty() || loopback_splitmix64(s.rng) % 2 == 0);
        if (loopback_refuse_item(s, page, tombstone)) ++s.counts.refused_page_items;
    }
    std::optional<bad_item> kind;
    if (s.bad_pages > 0) {
        kind = s.bad_kind;
    } else if (s.random && s.random->bad_page_item > 0 && loopback_unit(s.rng) < s.random->bad_page_item) {
        kind = static_cast<bad_item>(loopback_splitmix64(s.rng) % 4);
    }
    if (!kind) return;
    if (!loopback_read(s.service.store(), [&](const auto& tx) { return tx.collection(where); })) return;
    // The source: a record of the page (drawn when random faults are on, else the first).
    const std::size_t n = page.records.size();
    const std::size_t at = n == 0 ? 0 : s.random ? loopback_splitmix64(s.rng) % n : 0;
    if (*kind == bad_item::empty_server_id_tombstone) {
        auto usable = [](const std::optional<server::stored_record>& r) { return r && !r->deleted && r->record.id; };
        std::optional<server::stored_record> source;
        if (n > 0) {
            source = loopback_read(s.service.store(), [&](const auto& tx) { return tx.find_by_server_id(where, page.records[at].server_id); });
            if (!usable(source)) source.reset();
        }
        if (!source) {
            for (auto& r : loopback_read(s.service.store(), [&](const auto& tx) { return tx.list(where); })) {
                if (!r.record.id) continue;
                source = std::move(r);
                break;
            }
        }
        if (!source) return;
        page.tombstones.push_back(tombstone{std::string{}, source->record.id, source->record.version});
    } else {
        if (n == 0) return;
        server_record bad = page.records[at];
        switch (*kind) {
            case bad_item::nil_local_id:
                bad.id = local_id{};
                page.records.insert(page.records.begin() + static_cast<std::ptrdiff_t>(at), std::move(bad));
                break;
            case bad_item::empty_server_id:
                bad.server_id.clear();
                bad.id.reset();
                page.records.push_back(std::move(bad));
                break;
            default:  // duplicate_server_id
                bad.id = local_id::from_parts(timestamp{}, 0x0BAD, ++s.decoys);
                for (auto it = bad.value.begin(); bad.value.is_object() && it != bad.value.end(); ++it)
                    if (it->is_string()) *it = it->get<std::string>() + "~dup";
                page.records.push_back(std::move(bad));
                break;
        }
    }
    ++s.counts.bad_page_items;
    if (s.bad_pages > 0) --s.bad_pages;
}

}  // namespace tether::detail
