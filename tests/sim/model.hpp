#pragma once

// The per-field model of the simulator (all modes) and the checks that need it
// at every watch event:
//  - canonical ids: a record is known by its create's local id on the server
//    (or a synthetic id for one an admin created); a device holding it under
//    another id (a pull without local ids) has that id as an alias;
//  - for every record and field, the latest acknowledged write, and the values
//    a conflict decision, a deletion on the server or a restore may
//    legitimately have discarded (invariant 8 is checked in check_final);
//  - invariants 10 (no nil local id, no empty server id, no local duplicate),
//    11 (a bad page item never erases a live record), 12 (only a record too
//    large alone fails as too_large) and 13 (a record the server forgot in a
//    restore is never dropped with unsynced changes; only with
//    --strict-restore: a push answers `not_found` alike for a record deleted
//    and for one forgotten, so no engine can tell them apart today).
#include "sim.hpp"

#include <string>

namespace tether_sim {

/// A step's inner event (hook action): part of the trace, printed with --verbose.
template <class M>
void note(world<M>& w, const std::string& s) {
    w.trace.add(s);
    if (w.cfg.verbose) w.step_log += "    " + s + "\n";
}

/// The record's canonical id for a device's local id.
template <class M>
local_id canon(const world<M>& w, const local_id& local) {
    auto it = w.alias.find(local);
    return it == w.alias.end() ? local : it->second;
}

template <class M>
std::string_view collection_name(const world<M>&) {
    return tether::collection_of<typename M::entity>();
}

/// The server's copy of canonical record `k` (live or deleted), if it has one.
template <class M>
std::optional<tether::loopback_server::entry> server_entry(const world<M>& w, const local_id& k) {
    if (auto s = w.sid_of.find(k); s != w.sid_of.end()) {
        if (auto e = w.server.find("alice", collection_name(w), s->second)) return e;
    }
    return w.server.find("alice", collection_name(w), k);
}

/// A device's record `local` holds server id `sid`: learn which record that is.
template <class M>
void learn_sid(world<M>& w, int c, const local_id& local, const std::string& sid) {
    if (sid.empty()) return;
    local_id k = canon(w, local);
    auto e = w.server.find("alice", collection_name(w), sid);
    if (e && e->record.id && !e->record.id->is_nil()) {
        // The id it was created with; a device's own id for a record it pulled without one
        // when the device sent it again after a restore lost it.
        k = canon(w, *e->record.id);
        w.by_sid[sid] = k;
    } else if (auto it = w.by_sid.find(sid); it != w.by_sid.end()) {
        k = it->second;
    } else {
        w.by_sid.emplace(sid, k);
    }
    // A record the server lost in a restore (its old server id names nothing, or
    // another record now) and got again under a new server id.
    if (auto [at, fresh] = w.sid_of.try_emplace(k, sid); !fresh && at->second != sid) {
        auto old = w.server.find("alice", collection_name(w), at->second);
        if (!old || (old->record.id && *old->record.id != k)) at->second = sid;
    }
    if (k == local) return;
    auto [it, fresh] = w.alias.emplace(local, k);
    if (!fresh && it->second != k) {
        w.fail(10, "c" + std::to_string(c) + " " + w.name(local) + " moved from record " + w.name(it->second) +
                       " to " + w.name(k) + " (server id " + sid + ")");
    }
    if (w.created.contains(local)) {
        w.fail(10, "c" + std::to_string(c) + " " + w.name(local) + ", created here, holds server id " + sid +
                       " of another record (" + w.name(k) + ")");
    }
}

/// Records an acknowledged write in the per-field model (after `w.seq` moved).
/// `before` is the value before an update (null for a create); `remove` a delete.
template <class M>
void model_write(world<M>& w, int c, const local_id& local, const nlohmann::json& before,
                 const nlohmann::json& after, bool remove) {
    auto& rm = w.model[canon(w, local)];
    if (remove) {
        rm.removed = field_write{w.seq, c, local, nullptr};
        return;
    }
    for (auto it = after.begin(); it != after.end(); ++it) {
        if (before.is_object()) {
            auto old = before.find(it.key());
            if (old != before.end() && *old == *it) continue;
        }
        rm.fields[it.key()] = field_write{w.seq, c, local, *it};
    }
}

/// The values of `value` that a decision or deletion just discarded may be lost.
template <class M>
void may_lose(world<M>& w, const local_id& local, const nlohmann::json& was, const nlohmann::json* now) {
    if (!was.is_object()) return;
    auto& rm = w.model[canon(w, local)];
    for (auto it = was.begin(); it != was.end(); ++it) {
        if (now != nullptr) {
            auto kept = now->find(it.key());
            if (kept != now->end() && *kept == *it) continue;
        }
        rm.may_lose[it.key()].insert(it->dump());
    }
}

/// The size of the op a push would send for `r` (as the engine builds it: the
/// whole value of a create, the dirty fields of an update, nothing for a remove).
template <class E>
std::size_t op_size(const tether::record<E>& r) {
    if (r.deleted) return 0;
    auto full = tether::entity_ops<E>::to_json(r.value);
    // Whole: a create, an update with nothing noted, or one at version 0 (a record a
    // restore lost, which the server creates again).
    if (!r.server_id || r.dirty.empty() || r.version == 0) return full.dump().size();
    nlohmann::json sent = nlohmann::json::object();
    for (const auto& f : r.dirty) {
        if (auto it = full.find(f); it != full.end()) sent[f] = *it;
    }
    return sent.dump().size();
}

/// The model's and the hostile invariants' part of a watch event, before the
/// mirror moves on (`prev` is what the watch stream showed before, if anything).
template <class M>
void model_on_change(world<M>& w, int c, const tether::change<typename M::entity>& ch,
                     const mirror_entry<typename M::entity>* prev) {
    using E = typename M::entity;
    const std::string who = "c" + std::to_string(c) + " " + w.name(ch.id);
    if (ch.id.is_nil()) w.fail(10, who + ": a local record with the nil local id (" + ch.cause + ")");
    if (ch.current) {
        const auto& r = *ch.current;
        if (r.server_id) {
            if (r.server_id->empty()) w.fail(10, who + ": a local record with an empty server id (" + ch.cause + ")");
            if (!prev || prev->server_id != r.server_id) learn_sid(w, c, ch.id, *r.server_id);
        }
        // Checked where a push settles the record: a local edit keeps the error of the last attempt.
        if (w.value_limit > 0 && ch.cause.starts_with("push") && r.last_error &&
            r.last_error->code == tether::errc::too_large && op_size(r) <= w.value_limit) {
            w.fail(12, who + " is " + std::string{tether::to_string(r.status)} + " with too_large, but its own op is " +
                           std::to_string(op_size(r)) + " bytes, within the limit of " +
                           std::to_string(w.value_limit) + " (" + ch.cause + ")");
        }
    }
    if (ch.cause.starts_with("conflict:")) check_decision_applied(w, c, ch);
    if (prev == nullptr) return;
    if (!ch.current && prev->deleted && prev->server_id && w.forgotten_sids.contains(*prev->server_id)) {
        // A delete pushed to a server id the restore forgot: nothing was there to
        // delete. Without local ids in pages (omit-ids) no device can tell that the
        // record its creator sent again, under a new server id, is the same one.
        w.model[canon(w, ch.id)].removed_forgotten_copy = true;
    }
    if (ch.cause.starts_with("conflict:")) {
        const auto now_value = ch.current ? tether::entity_ops<E>::to_json(ch.current->value) : nlohmann::json{};
        may_lose(w, ch.id, tether::entity_ops<E>::to_json(prev->value), ch.current ? &now_value : nullptr);
    }
    if (ch.cause.starts_with("deleted on server")) {
        may_lose(w, ch.id, tether::entity_ops<E>::to_json(prev->value), nullptr);
        // 11 and 13: the server must not hold the record live; and one it forgot in a restore
        // (no trace of it at all) was not deleted, so its unsynced changes must not go.
        std::optional<tether::loopback_server::entry> e;
        if (prev->server_id) e = w.server.find("alice", collection_name(w), *prev->server_id);
        else e = w.server.find("alice", collection_name(w), ch.id);
        if (e && !e->deleted) {
            w.fail(11, who + " erased as '" + ch.cause + "', but the server holds " + e->record.server_id +
                           " live (v" + std::to_string(e->record.version) + ")");
        }
        if (!e && w.restored && w.cfg.strict_restore && prev->status != tether::sync_status::synced) {
            w.fail(13, who + " dropped as '" + ch.cause + "' with unsynced changes (" +
                           std::string{tether::to_string(prev->status)} +
                           "), but the server never deleted it: it forgot it in the restore");
        }
    }
}

/// A conflict policy's decision on client `c` (policies mode): the values it
/// discards may be lost (the local side's and the server's alike), and the
/// value it decides is what the engine must hold after the conflict's event.
template <class M>
void on_decision(world<M>& w, int c, const tether::conflict<typename M::entity>& cf,
                 const tether::resolution<typename M::entity>& r) {
    using E = typename M::entity;
    const auto local = tether::entity_ops<E>::to_json(cf.local.value);
    const auto server = tether::entity_ops<E>::to_json(cf.server_value);
    nlohmann::json decided;  // null: the record is deleted
    switch (r.kind) {
        case tether::resolution_kind::take_server:
            decided = server;
            ++w.st.decisions[0];
            break;
        case tether::resolution_kind::keep_local:
            if (!cf.local.deleted) decided = local;
            ++w.st.decisions[1];
            break;
        case tether::resolution_kind::merged:
            decided = r.value ? tether::entity_ops<E>::to_json(*r.value) : server;
            ++w.st.decisions[2];
            break;
    }
    may_lose(w, cf.local.id, local, decided.is_null() ? nullptr : &decided);
    may_lose(w, cf.local.id, server, decided.is_null() ? nullptr : &decided);
    w.decided[{c, cf.local.id}] = std::move(decided);
}

/// At a conflict's watch event: the engine holds the value its policy decided.
template <class M>
void check_decision_applied(world<M>& w, int c, const tether::change<typename M::entity>& ch) {
    auto it = w.decided.find({c, ch.id});
    if (it == w.decided.end()) return;
    const auto decided = std::move(it->second);
    w.decided.erase(it);
    if (decided.is_null() || !ch.current || ch.current->deleted) return;
    const auto held = tether::entity_ops<typename M::entity>::to_json(ch.current->value);
    if (held != decided) {
        w.fail(0, "c" + std::to_string(c) + " " + w.name(ch.id) + ": the policy decided " + decided.dump() +
                      " but the engine holds " + held.dump() + " (" + ch.cause + ")");
    }
}

/// Invariant 5 with the one legitimate exception: after a restore, a record may
/// go back to the version the restored server holds (below the restore's mark).
template <class M>
bool version_may_drop(const world<M>& w, std::uint64_t from, std::uint64_t to) {
    return w.restored && from < w.restore_mark && to < w.restore_mark && to < from;
}

}  // namespace tether_sim
