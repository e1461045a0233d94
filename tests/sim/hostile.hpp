#pragma once

// The hostile mode: the classic world against a server that is hostile but
// legal. Per seed it turns on every knob of `config::knobs` (all by default):
//  - filler: the server fills `sim_entity<E>::server_field` on create
//    ("/srv" + the sent value), and the workload's updates never write that
//    field, so a device that sends it again has reverted the server's value;
//  - omit-ids: pull pages without local ids, every item (half of the seeds)
//    or 30% of them at random;
//  - bad-pages: 15% of the answered pull pages carry one bad item (nil local
//    id, empty server id as a record or a tombstone, duplicate server id with a
//    decoy value), also in the quiet phase, so a client that refuses whole
//    pages never converges; and 10% of them (not in the quiet phase) have one
//    record or tombstone taken out into `pull_page::refused`, as a decoder
//    refuses an item it cannot read, which the engine must fetch later (a
//    tombstone's fetch answers not_found: its deletion must still arrive);
//  - value-limit: a value limit of 1 KiB, and 3% of creates and updates write a
//    value over it (one field of more than 1 KiB);
//  - admin: 1.5% of operations are admin edits (55%: new values of some
//    fields), deletes (20%) and creates (25%, records without a local id) on
//    the server, in the chaos phase only;
//  - restore: a backup (of the whole state or of the collection, 50/50) at a
//    step drawn in the first half of the chaos phase, and one restore of it at
//    a step drawn in the second half.
#include "invariants.hpp"

#include <string>
#include <vector>

namespace tether_sim {

/// Draws the seed's hostile parameters and turns the server's knobs on.
template <class M>
void hostile_setup(world<M>& w) {
    using E = typename M::entity;
    auto& r = w.random;
    w.knobs = w.cfg.knobs == 0 ? 0u : w.cfg.knobs;
    if (w.knobs & knob_filler) {
        const std::string field{sim_entity<E>::server_field};
        w.server.set_create_filler([field](nlohmann::json& v) {
            // Once: a record a device sends again (after a restore) keeps what the server gave it.
            auto it = v.find(field);
            if (it == v.end() || !it->is_string()) return;
            const auto sent = it->template get<std::string>();
            if (!sent.starts_with("/srv")) *it = "/srv" + sent;
        });
    }
    bool omit_all = false;
    if (w.knobs & knob_omit_ids) {
        omit_all = r.chance(0.5);
        w.server.set_omit_local_ids(omit_all);
        if (!omit_all) w.rates.omit_local_id = 0.3;
    }
    if (w.knobs & knob_bad_pages) {
        w.rates.bad_page_item = 0.15;
        w.rates.refused_page_item = 0.10;
    }
    if (w.knobs & knob_value_limit) {
        w.value_limit = 1024;
        w.big_writes = 0.03;
        w.server.set_value_limit(w.value_limit);
    }
    if (w.knobs & knob_restore) {
        const auto steps = static_cast<std::int64_t>(client_count) * w.cfg.ops;
        w.snapshot_step = static_cast<std::size_t>(r.range(1, std::max<std::int64_t>(1, steps / 2)));
        w.restore_step = static_cast<std::size_t>(r.range(steps / 2 + 1, std::max<std::int64_t>(steps / 2 + 1, steps - steps / 8)));
    }
    w.server.set_random_faults(w.rates, mix64(w.seed ^ 0xFA17ull));
    w.trace.add("hostile knobs " + std::to_string(w.knobs) + (omit_all ? " omit-all" : "") + " snapshot@" +
                std::to_string(w.snapshot_step) + " restore@" + std::to_string(w.restore_step));
}

/// The canonical id of server record `sid` (an admin edit's target).
template <class M>
local_id canon_of_sid(world<M>& w, const tether::server_record& s) {
    if (auto it = w.by_sid.find(s.server_id); it != w.by_sid.end()) return it->second;
    const local_id k = s.id && !s.id->is_nil() ? *s.id : local_id::from_parts(tether::timestamp{}, 0x0AD, ++w.synthetic);
    w.by_sid.emplace(s.server_id, k);
    w.sid_of.emplace(k, s.server_id);
    return k;
}

/// An admin edit, delete or create on the server (as another system would).
template <class M>
std::string op_admin(world<M>& w) {
    using E = typename M::entity;
    ++w.st.faults[static_cast<std::size_t>(fault::admin_edit)];
    auto live = w.server.records("alice", collection_name(w));
    const auto u = w.random.below(20);
    if (live.empty() || u >= 15) {
        const auto v = ++w.next_value;
        auto value = tether::entity_ops<E>::to_json(sim_entity<E>::make(v));
        auto put = w.server.put("alice", collection_name(w), "", value);
        if (!put) return "admin create -> " + describe(put.error());
        const local_id k = local_id::from_parts(tether::timestamp{}, 0x0AD, ++w.synthetic);
        w.by_sid.emplace(put->server_id, k);
        w.sid_of.emplace(k, put->server_id);
        w.admin_created.insert(k);
        ++w.seq;
        model_write(w, -1, k, nullptr, value, false);
        w.history[k].push_back("seq " + std::to_string(w.seq) + ": admin create " + put->server_id + " " + value.dump());
        return "admin create " + w.name(k) + " " + put->server_id;
    }
    const auto& s = live[w.random.below(live.size())];
    const local_id k = canon_of_sid(w, s);
    if (u >= 11) {
        auto gone = w.server.erase("alice", collection_name(w), s.server_id);
        ++w.seq;
        model_write(w, -1, k, nullptr, nullptr, true);
        w.history[k].push_back("seq " + std::to_string(w.seq) + ": admin delete " + s.server_id);
        return "admin delete " + w.name(k) + " " + s.server_id + (gone ? "" : " -> " + describe(gone.error()));
    }
    auto current = tether::entity_ops<E>::from_json(s.value);
    if (!current) return "admin edit of unreadable " + s.server_id;
    E edited = *current;
    auto mask = 1 + w.random.below(sim_entity<E>::all_fields);
    mask &= ~sim_entity<E>::server_field_bit;
    if (mask == 0) mask = 1;
    sim_entity<E>::edit(edited, mask, ++w.next_value);
    auto value = tether::entity_ops<E>::to_json(edited);
    auto put = w.server.put("alice", collection_name(w), s.server_id, value);
    ++w.seq;
    model_write(w, -1, k, s.value, value, false);
    w.history[k].push_back("seq " + std::to_string(w.seq) + ": admin edit " + s.server_id + " " + value.dump());
    return "admin edit " + w.name(k) + " " + s.server_id + " -> " + describe(edited) +
           (put ? "" : " -> " + describe(put.error()));
}

/// Before step `w.step`: take the backup, or restore it.
template <class M>
void hostile_step(world<M>& w) {
    if (w.snapshot_step != 0 && w.step == w.snapshot_step) {
        const bool whole = w.random.chance(0.5);
        w.backup = whole ? w.server.snapshot() : w.server.snapshot("alice", collection_name(w));
        note(w, std::string{"server takes a backup of "} + (whole ? "everything" : "the collection"));
    }
    if (w.restore_step != 0 && w.step == w.restore_step && w.backup) {
        // Whatever the server holds now may be rolled back: those values may be lost.
        for (auto& [k, rm] : w.model) {
            auto e = server_entry(w, k);
            if (!e) continue;
            if (e->deleted) rm.deleted_before_restore = true;
            for (auto it = e->record.value.begin(); e->record.value.is_object() && it != e->record.value.end(); ++it)
                rm.may_lose[it.key()].insert(it->dump());
        }
        std::set<std::string> held;
        for (const auto& [sid, k] : w.by_sid)
            if (w.server.find("alice", collection_name(w), sid)) held.insert(sid);
        w.server.restore(*w.backup);
        for (const auto& sid : held)
            if (!w.server.find("alice", collection_name(w), sid)) w.forgotten_sids.insert(sid);
        w.restored = true;
        w.restore_mark = w.server.last_change("alice", collection_name(w));
        w.restore_seq = ++w.seq;
        note(w, "server restored from its backup (mark " + std::to_string(w.restore_mark) + ")");
    }
}

/// The quiet phase keeps the server's hostile ways (but not its faults).
template <class M>
void hostile_quiet(world<M>& w) {
    tether::fault_rates quiet;
    quiet.omit_local_id = w.rates.omit_local_id;
    quiet.bad_page_item = w.rates.bad_page_item;
    // Refused items are not: each takes a real change out of its page, which only
    // a later pull's fetch brings, and the quiet phase ends with a pull.
    if (quiet.omit_local_id > 0 || quiet.bad_page_item > 0)
        w.server.set_random_faults(quiet, mix64(w.seed ^ 0x0B1E7ull));
}

/// The server's counts of the hostile kinds, into the seed's stats.
inline void hostile_faults(const tether::fault_counts& f, std::array<std::uint64_t, fault_kinds>& fs) {
    fs[static_cast<std::size_t>(fault::replayed_create)] += f.replayed_creates;
    fs[static_cast<std::size_t>(fault::filled_create)] += f.filled_creates;
    fs[static_cast<std::size_t>(fault::omitted_local_id)] += f.omitted_local_ids;
    fs[static_cast<std::size_t>(fault::bad_page_item)] += f.bad_page_items;
    fs[static_cast<std::size_t>(fault::refused_page_item)] += f.refused_page_items;
    fs[static_cast<std::size_t>(fault::too_large)] += f.too_large;
    fs[static_cast<std::size_t>(fault::restore)] += f.restores;
    fs[static_cast<std::size_t>(fault::expired_cursor)] += f.expired_cursors;
}

}  // namespace tether_sim
