#pragma once

// The simulator's invariants (numbered as in the sync issue):
//  1. no acknowledged local write is lost (checked after quiescence, see check_final);
//  2. at most one server record per local_id (every 16 steps and at the end);
//  3. convergence after quiescence (check_final);
//  4. only legal status transitions (transition hook, every event);
//  5. a record's version never decreases (watch, every event);
//  6. backoff delays stay within [0, max(cap, min(Retry-After, 24 h))], and a
//     429's Retry-After is a lower bound (watch, every event);
//  7. the records with unsynced changes are records the device itself wrote,
//     so they never outnumber the distinct records written (watch, every event;
//     store counts every step).
// 0 is the engine's contract in general (a local write that failed, a watch
// stream that disagrees with the store, a sync call that was not single-flight).
#include "model.hpp"

#include <algorithm>
#include <string>

namespace tether_sim {

inline bool unsynced(tether::sync_status s) { return s != tether::sync_status::synced; }

/// True for the causes that legitimately override local writes: a conflict
/// settled by the policy, or a deletion on the server.
inline bool is_override(std::string_view cause) {
    return cause.starts_with("conflict:") || cause.starts_with("deleted on server");
}

/// Invariant 4, from the transition hook.
template <class M>
void check_transition(world<M>& w, int c, const tether::transition& t) {
    if (!t.legal) {
        w.fail(4, "c" + std::to_string(c) + " " + w.name(t.id) + ": engine refused illegal transition " +
                      std::string{tether::to_string(*t.from)} + " -> " + std::string{tether::to_string(*t.to)} + " (" +
                      t.cause + ")");
    } else if (t.from && t.to && !tether::is_legal_transition(*t.from, *t.to)) {
        w.fail(4, "c" + std::to_string(c) + " " + w.name(t.id) + ": illegal transition reported as legal " +
                      std::string{tether::to_string(*t.from)} + " -> " + std::string{tether::to_string(*t.to)} + " (" +
                      t.cause + ")");
    }
}

/// Invariants 5, 6, 7 and the override bookkeeping of invariant 1, from watch().
template <class M>
void check_change(world<M>& w, int c, const tether::change<typename M::entity>& ch) {
    // A live event's change follows the pull's rules and is told as "live", or
    // "live: <the pull's cause>" for a rule other than a plain take (a conflict,
    // a deletion on the server): judged as that cause.
    if (ch.cause.starts_with("live: ")) {
        auto as_pull = ch;
        as_pull.cause = ch.cause.substr(6);
        return check_change(w, c, as_pull);
    }
    auto& cl = w.clients[static_cast<std::size_t>(c)];
    ++w.change_events;
    if (cl.written_pending) cl.written.insert(ch.id);  // the sim's own local write, whose id a create only now knows
    // After a restore, a full resync sends again the records the server lost: the
    // device now writes them (to 7, a record it re-creates is one it wrote).
    if (w.restored && ch.cause.starts_with("resync")) cl.written.insert(ch.id);
    w.trace.add(static_cast<std::uint64_t>(c));
    w.trace.add(ch.id);
    w.trace.add(ch.cause);
    w.trace.add(static_cast<std::uint64_t>(ch.kind));
    const std::string who = "c" + std::to_string(c) + " " + w.name(ch.id);

    if (ch.cause.starts_with("push applied: create replayed") || ch.cause == "conflict: local kept" ||
        ch.cause == "conflict: merged") {
        ++w.rerun_causes;  // the engine asks itself for one more round
    }
    if (is_override(ch.cause)) {
        cl.overridden[ch.id] = ++w.seq;
        ++w.st.conflicts;
        w.history[ch.id].push_back("seq " + std::to_string(w.seq) + ": c" + std::to_string(c) + " reported '" +
                                   ch.cause + "'" +
                                   (ch.current ? " value " + describe(ch.current->value) : std::string{" (removed)"}));
    }
    {
        auto prev = cl.mirror.find(ch.id);
        model_on_change(w, c, ch, prev == cl.mirror.end() ? nullptr : &prev->second);
    }
    if (!ch.current) {
        if (w.cfg.verbose) w.step_log += "    event " + who + " removed: " + ch.cause + "\n";
        if (cl.mirror.erase(ch.id) == 0) w.fail(0, who + ": removal of a record the watch stream never showed");
        return;
    }
    const auto& r = *ch.current;
    w.trace.add(static_cast<std::uint64_t>(r.status));
    w.trace.add(r.version);
    w.trace.add(r.local_rev);
    if (w.cfg.verbose) {
        w.step_log += "    event " + who + " " + ch.cause + " -> " + std::string{tether::to_string(r.status)} +
                      (r.deleted ? " deleted" : "") + " v" + std::to_string(r.version) + " rev" +
                      std::to_string(r.local_rev) + " " + describe(r.value) +
                      (r.server_id ? " sid=" + *r.server_id : std::string{" no-sid"}) +
                      (r.last_error ? " err=" + describe(*r.last_error) : std::string{}) + "\n";
    }

    // 5: version never decreases.
    if (auto it = cl.mirror.find(ch.id);
        it != cl.mirror.end() && r.version < it->second.version && !version_may_drop(w, it->second.version, r.version)) {
        w.fail(5, who + ": version went " + std::to_string(it->second.version) + " -> " + std::to_string(r.version) +
                      " (" + ch.cause + ")");
    }

    // 6: backoff delay within [0, max(cap, min(retry_after, max_retry_after))], and a Retry-After is a lower bound.
    if (r.status == tether::sync_status::error) {
        if (!r.next_attempt_at || !r.last_attempt_at) {
            w.fail(6, who + ": error without last/next attempt times (" + ch.cause + ")");
        } else {
            const auto d = std::chrono::duration_cast<ms>(*r.next_attempt_at - *r.last_attempt_at);
            // The cap bounds our own backoff; a server's Retry-After is honoured
            // above it, up to max_retry_after (24 h).
            const ms retry_after = r.last_error && r.last_error->retry_after && *r.last_error->retry_after >= ms{0}
                                       ? std::min<ms>(*r.last_error->retry_after, std::chrono::hours{24})
                                       : ms{0};
            const ms bound = std::max(w.cap, retry_after);
            if (d < ms{0} || d > bound) {
                w.fail(6, who + ": backoff delay " + std::to_string(d.count()) + " ms outside [0, " +
                              std::to_string(bound.count()) + "] (" + ch.cause + ")");
            }
            if (r.last_error && r.last_error->retry_after && *r.last_error->retry_after >= ms{0} &&
                d < retry_after) {
                w.fail(6, who + ": backoff delay " + std::to_string(d.count()) + " ms below Retry-After " +
                              std::to_string(r.last_error->retry_after->count()) + " ms");
            }
        }
    } else if (r.status == tether::sync_status::failed && r.next_attempt_at) {
        w.fail(6, who + ": failed record still has a next attempt time (" + ch.cause + ")");
    }

    // 7: a record with unsynced changes is one this device wrote.
    if (unsynced(r.status) && !cl.written.contains(ch.id)) {
        w.fail(7, who + ": " + std::string{tether::to_string(r.status)} + " but this device never wrote it (" +
                      ch.cause + ")");
    }
    cl.mirror[ch.id] = mirror_entry<typename M::entity>{r.status, r.deleted, r.version, r.server_id, r.value};
}

/// Cheap checks after every step: 7 against the store's own counts.
template <class M>
void check_step(world<M>& w) {
    for (auto& cl : w.clients) {
        auto counts = cl.engine->store().counts();
        if (!counts) {
            w.fail(0, "c" + std::to_string(cl.index) + ": counts() failed: " + describe(counts.error()));
            continue;
        }
        const auto pending = counts->pending + counts->pending_deletion + counts->error + counts->failed;
        if (pending > cl.written.size()) {
            w.fail(7, "c" + std::to_string(cl.index) + ": " + std::to_string(pending) + " unsynced records but only " +
                          std::to_string(cl.written.size()) + " distinct records written");
        }
    }
}

/// 10: a device never holds a record twice, e.g. its own create still waiting
/// for its answer beside a pulled copy (of a page without local ids).
template <class M>
void check_no_local_duplicate(world<M>& w, client<M>& cl) {
    std::map<std::string, local_id> by_sid;
    for (const auto& [id, m] : cl.mirror)
        if (m.server_id) by_sid.emplace(*m.server_id, id);
    for (const auto& [id, m] : cl.mirror) {
        if (m.server_id || !w.created.contains(id)) continue;
        auto e = w.server.find("alice", collection_name(w), id);
        if (!e) continue;
        if (auto twin = by_sid.find(e->record.server_id); twin != by_sid.end() && twin->second != id) {
            w.fail(10, "c" + std::to_string(cl.index) + " holds " + w.name(id) + " (its create, unanswered) and " +
                           w.name(twin->second) + " (server " + e->record.server_id + "): one record twice");
        }
    }
}

/// Costlier checks (every few steps and at the end): the watch stream agrees
/// with the store; 2 on the server's live records.
template <class M>
void check_deep(world<M>& w) {
    for (auto& cl : w.clients) {
        const std::string who = "c" + std::to_string(cl.index);
        auto all = cl.engine->list();
        if (!all) {
            w.fail(0, who + ": list() failed: " + describe(all.error()));
            continue;
        }
        std::set<std::string> sids;
        std::size_t matched = 0;
        for (const auto& r : *all) {
            auto it = cl.mirror.find(r.id);
            if (it == cl.mirror.end()) {
                w.fail(0, who + " " + w.name(r.id) + ": in the store but never shown by watch()");
                continue;
            }
            ++matched;
            if (it->second.status != r.status || it->second.version != r.version || it->second.deleted != r.deleted) {
                w.fail(0, who + " " + w.name(r.id) + ": watch() last showed " +
                              std::string{tether::to_string(it->second.status)} + " v" +
                              std::to_string(it->second.version) + ", store has " +
                              std::string{tether::to_string(r.status)} + " v" + std::to_string(r.version));
            }
            if (r.server_id && !sids.insert(*r.server_id).second) {
                w.fail(2, who + ": two local records share server id " + *r.server_id);
            }
        }
        if (matched != cl.mirror.size()) {
            w.fail(0, who + ": watch() shows " + std::to_string(cl.mirror.size()) + " records, store has " +
                          std::to_string(matched));
        }
    }
    for (auto& cl : w.clients) check_no_local_duplicate(w, cl);
    std::set<local_id> ids;
    for (const auto& s : w.server.records("alice", collection_name(w))) {
        if (!s.id) {
            if (auto k = w.by_sid.find(s.server_id); k != w.by_sid.end() && w.admin_created.contains(k->second)) continue;
            w.fail(2, "server record " + s.server_id + " has no local id");
        } else if (!ids.insert(*s.id).second) {
            w.fail(2, "two live server records for " + w.name(*s.id));
        }
    }
}

/// True when no client has records waiting to go up (pending, pending_deletion, error).
template <class M>
bool nothing_pending(world<M>& w) {
    for (auto& cl : w.clients) {
        auto counts = cl.engine->store().counts();
        if (!counts || counts->pending + counts->pending_deletion + counts->error > 0) return false;
    }
    return true;
}

template <class M>
std::string history_of(world<M>& w, const local_id& id) {
    std::string out;
    if (auto it = w.history.find(id); it != w.history.end()) {
        for (const auto& h : it->second) out += "\n      " + h;
    }
    return out;
}

/// After quiescence: 2 (every local id ever created), 3 and 1.
///
/// Invariant 1, exactly: for each record, only the latest acknowledged write W
/// (by global order, any client) must survive, since every earlier write is
/// superseded by W (a later write, or a later delete, by any device). W, made
/// on client c, is accounted for if
///   (a) c reported a conflict resolution or a server-side deletion of the
///       record ("conflict: ..." / "deleted on server..." in its watch stream)
///       after W: the conflict policy (server wins) or another device's delete
///       legitimately overrode it; or
///   (b) c still holds the record as `failed`, with its error and W's value
///       (for a delete: marked deleted); or
///   (c) W is on the server: for a create/update, the server's live record
///       equals c's whole local value after W, field by field; for a delete,
///       the server has no live record with that local id.
/// Anything else is a lost write.
template <class M>
void check_final_classic(world<M>& w) {
    for (const auto& id : w.created) {
        if (auto n = w.server.count_with_local_id("alice", "jobs", id); n > 1) {
            w.fail(2, std::to_string(n) + " server records carry local id of " + w.name(id));
        }
    }

    std::map<local_id, tether::server_record> on_server;
    for (auto& s : w.server.records("alice", "jobs")) {
        if (s.id) on_server.emplace(*s.id, std::move(s));
    }

    // 3: every client's non-failed records equal the server's (failed ones and
    // their server counterparts excluded).
    for (auto& cl : w.clients) {
        const std::string who = "c" + std::to_string(cl.index);
        auto all = cl.engine->list();
        if (!all) {
            w.fail(0, who + ": list() failed");
            continue;
        }
        std::map<local_id, const tether::record<typename M::entity>*> local;
        for (const auto& r : *all) local.emplace(r.id, &r);
        for (const auto& [id, s] : on_server) {
            auto it = local.find(id);
            if (it != local.end() && it->second->status == tether::sync_status::failed) continue;
            if (it == local.end()) {
                w.fail(3, who + " lacks " + w.name(id) + " (server " + s.server_id + " v" +
                              std::to_string(s.version) + ")");
                continue;
            }
            const auto& r = *it->second;
            auto v = tether::entity_ops<typename M::entity>::from_json(s.value);
            if (!v || !(*v == r.value) || r.server_id != s.server_id || r.version != s.version ||
                r.status != tether::sync_status::synced) {
                w.fail(3, who + " " + w.name(id) + " is " + std::string{tether::to_string(r.status)} + " " +
                              describe(r.value) + " v" + std::to_string(r.version) + " sid=" +
                              r.server_id.value_or("-") + ", server has " +
                              (v ? describe(*v) : std::string{"<unreadable>"}) + " v" + std::to_string(s.version) +
                              " sid=" + s.server_id);
            }
        }
        for (const auto& r : *all) {
            if (r.status == tether::sync_status::failed) {
                ++w.st.failed_left;
                continue;
            }
            if (!on_server.contains(r.id)) {
                w.fail(3, who + " holds " + w.name(r.id) + " (" + std::string{tether::to_string(r.status)} + " " +
                              describe(r.value) + ") which the server does not have");
            }
        }
    }

    // 1: the latest acknowledged write of every record is accounted for.
    for (const auto& [id, wr] : w.latest) {
        auto& cl = w.clients[static_cast<std::size_t>(wr.client)];
        if (auto ov = cl.overridden.find(id); ov != cl.overridden.end() && ov->second > wr.seq) continue;
        auto local = cl.engine->get(id);
        if (local && local->status == tether::sync_status::failed) {
            const bool kept = wr.what == world<M>::write_type::kind::remove ? local->deleted
                                                                : (!local->deleted && local->value == wr.value);
            if (!local->last_error || !kept) {
                w.fail(1, w.name(id) + " is failed on c" + std::to_string(wr.client) +
                              " but does not keep its latest write " +
                              (wr.what == world<M>::write_type::kind::remove ? std::string{"(a delete)"} : describe(wr.value)) +
                              " with its error: holds " + describe(local->value) + (local->deleted ? " deleted" : "") +
                              history_of(w, id));
            }
            continue;
        }
        auto srv = on_server.find(id);
        const std::string what = w.name(id) + ": latest write (seq " + std::to_string(wr.seq) + ", c" +
                                 std::to_string(wr.client) + ") ";
        if (wr.what == world<M>::write_type::kind::remove) {
            if (srv != on_server.end()) {
                w.fail(1, what + "was a delete, but the server still has it: " + srv->second.value.dump() +
                              history_of(w, id));
            }
            continue;
        }
        if (srv == on_server.end()) {
            w.fail(1, what + describe(wr.value) + " lost: the server has no such record" + history_of(w, id));
            continue;
        }
        auto v = tether::entity_ops<typename M::entity>::from_json(srv->second.value);
        if (!v || !(*v == wr.value)) {
            w.fail(1, what + describe(wr.value) + " lost: the server has " + srv->second.value.dump() + " v" +
                          std::to_string(srv->second.version) + history_of(w, id));
        }
    }
}

/// The push origin a device's engine keeps in its store (empty before its first sync).
template <class M>
std::string device_id_of(const client<M>& cl) {
    const typename M::storage_type::template rebind<typename M::entity> store{cl.storage};
    auto id = store.get_meta(tether::detail::device_id_key);
    return id && *id ? **id : std::string{};
}

/// 3 for the hostile mode: devices hold the records under their own ids (pulls
/// without local ids), so records are matched by server id. Every live server
/// record is on every device, synced, equal, at the same version, and every
/// non-failed local record is a live server record (failed ones and their
/// server counterparts are excluded). A device that keeps a failed create in
/// doubt (no server id, attempted) may lack a server record without a local
/// id whose last change it made: its pull cannot tell such a record from a
/// copy of that create (a server may omit local ids), so it waits for the
/// create to settle (after `reset_failed`) by design. Only a restore brings
/// one back: a record this device edited and then saw deleted.
template <class M>
void check_converged_by_sid(world<M>& w) {
    using E = typename M::entity;
    std::map<std::string, tether::server_record> on_server;
    for (auto& s : w.server.records("alice", collection_name(w))) on_server.emplace(s.server_id, std::move(s));
    for (auto& cl : w.clients) {
        const std::string who = "c" + std::to_string(cl.index);
        auto all = cl.engine->list();
        if (!all) {
            w.fail(0, who + ": list() failed");
            continue;
        }
        std::set<std::string> excluded;
        std::map<std::string, const tether::record<E>*> local;
        bool failed_create_in_doubt = false;
        for (const auto& r : *all) {
            if (r.status == tether::sync_status::failed) {
                ++w.st.failed_left;
                failed_create_in_doubt |= !r.server_id && r.last_attempt_at.has_value();
                if (r.server_id) excluded.insert(*r.server_id);
                if (auto e = w.server.find("alice", collection_name(w), r.id)) excluded.insert(e->record.server_id);
                continue;
            }
            if (!r.server_id) {
                w.fail(3, who + " holds " + w.name(r.id) + " (" + std::string{tether::to_string(r.status)} + " " +
                              describe(r.value) + ") with no server id");
                continue;
            }
            local.emplace(*r.server_id, &r);
            if (!on_server.contains(*r.server_id)) {
                w.fail(3, who + " holds " + w.name(r.id) + " (" + std::string{tether::to_string(r.status)} + " " +
                              describe(r.value) + " sid=" + *r.server_id + ") which the server does not have live");
            }
        }
        for (const auto& [sid, s] : on_server) {
            if (excluded.contains(sid)) continue;
            auto it = local.find(sid);
            if (it == local.end() && failed_create_in_doubt && !s.id && !s.origin.empty() &&
                s.origin == device_id_of(cl)) {
                continue;  // it may be that failed create: the engine waits for it (see above)
            }
            if (it == local.end()) {
                w.fail(3, who + " lacks server record " + sid + " (v" + std::to_string(s.version) + " " + s.value.dump() +
                              ")");
                continue;
            }
            const auto& r = *it->second;
            auto v = tether::entity_ops<E>::from_json(s.value);
            if (!v || !tether::entity_ops<E>::equal(*v, r.value) || r.version != s.version ||
                r.status != tether::sync_status::synced) {
                w.fail(3, who + " " + w.name(r.id) + " is " + std::string{tether::to_string(r.status)} + " " +
                              describe(r.value) + " v" + std::to_string(r.version) + ", server " + sid + " has " +
                              (v ? describe(*v) : std::string{"<unreadable>"}) + " v" + std::to_string(s.version));
            }
        }
    }
}

/// Invariant 8, per field: for each record and field, the latest acknowledged
/// write of that field by a device survives unless
///   (a) a conflict decision (on any device) or a deletion on the server
///       discarded exactly that value (the values a watch event shows replaced,
///       and those a policy's decision replaced on the server's side), or a
///       restore took the server back past it (the value was on the server
///       when it was restored); or
///   (b) the writing device still holds the record as `failed` with that value; or
///   (c) the server's live record has that value.
/// A later remove (any device, or an admin) supersedes earlier field writes;
/// a remove that is the record's latest write must leave no live record unless
/// its device reported an override after it, keeps it failed, or the restore
/// brought back a record the server had deleted, or the delete went to a copy
/// the restore forgot (the record's creator then sent it again under a new
/// server id, which the deleting device could not know for the same record). Writes by the server itself
/// (admin edits) are not checked, and neither is the field a create filler owns
/// (invariant 9 is about that one).
/// The server's live record under the server id the writing device holds for
/// `local` has `value` in field `f`. After a restore forgot a record, a device
/// that held it without its local id (omit-ids) sends it again under its own
/// server id while its creator's copy lives on under a new one: the write is
/// kept there.
template <class M>
bool held_under_own_server_id(const world<M>& w, const client<M>& cl, const local_id& local, const std::string& f,
                              const nlohmann::json& value) {
    auto l = cl.engine->get(local);
    if (!l || !l->server_id) return false;
    auto own = w.server.find("alice", collection_name(w), *l->server_id);
    if (!own || own->deleted) return false;
    auto it = own->record.value.find(f);
    return it != own->record.value.end() && *it == value;
}

template <class M>
void check_fields(world<M>& w) {
    using E = typename M::entity;
    const std::string server_field{(w.knobs & knob_filler) ? sim_entity<E>::server_field : std::string_view{}};
    for (const auto& [k, rm] : w.model) {
        const auto e = server_entry(w, k);
        const bool live = e && !e->deleted;
        std::uint64_t latest_field = 0;
        for (const auto& [f, fw] : rm.fields) latest_field = std::max(latest_field, fw.seq);
        if (rm.removed && rm.removed->seq > latest_field) {
            const auto& rw = *rm.removed;
            if (rw.device < 0 || !live || rm.removed_forgotten_copy) continue;
            auto& cl = w.clients[static_cast<std::size_t>(rw.device)];
            if (auto ov = cl.overridden.find(rw.local); ov != cl.overridden.end() && ov->second > rw.seq) continue;
            if (auto l = cl.engine->get(rw.local); l && l->status == tether::sync_status::failed && l->deleted) continue;
            if (w.restored && rw.seq < w.restore_seq && rm.deleted_before_restore) continue;
            w.fail(8, w.name(k) + ": latest write (seq " + std::to_string(rw.seq) + ", c" + std::to_string(rw.device) +
                          ") was a delete, but the server still has it: " + e->record.value.dump() + history_of(w, k));
            continue;
        }
        for (const auto& [f, fw] : rm.fields) {
            if (fw.device < 0 || f == server_field) continue;
            if (rm.removed && rm.removed->seq > fw.seq) continue;
            const std::string dumped = fw.value.dump();
            if (auto ml = rm.may_lose.find(f); ml != rm.may_lose.end() && ml->second.contains(dumped)) continue;
            auto& cl = w.clients[static_cast<std::size_t>(fw.device)];
            if (auto l = cl.engine->get(fw.local); l && l->status == tether::sync_status::failed && !l->deleted) {
                const auto j = tether::entity_ops<E>::to_json(l->value);
                if (auto it = j.find(f); it != j.end() && *it == fw.value) continue;
            }
            if (live) {
                if (auto it = e->record.value.find(f); it != e->record.value.end() && *it == fw.value) continue;
            }
            if (held_under_own_server_id(w, cl, fw.local, f, fw.value)) continue;
            const std::string shown = dumped.size() > 40 ? dumped.substr(0, 30) + "...(" + std::to_string(dumped.size()) + ")" : dumped;
            w.fail(8, w.name(k) + "." + f + ": latest write " + shown + " (seq " + std::to_string(fw.seq) + ", c" +
                          std::to_string(fw.device) + " as " + w.name(fw.local) + ") lost: the server has " +
                          (live ? e->record.value.dump().substr(0, 120) : std::string{e ? "it deleted" : "no such record"}) +
                          history_of(w, k));
        }
    }
}

/// Invariant 9: a field the server filled on create is never reverted by a
/// device (the hostile mode's updates never write it, so a device that sends
/// its own create-time value again has taken a fresh create's answer for a replay).
template <class M>
void check_server_field(world<M>& w) {
    using E = typename M::entity;
    const std::string f{sim_entity<E>::server_field};
    for (const auto& k : w.created) {
        auto e = w.server.find("alice", collection_name(w), k);
        if (!e || e->deleted) continue;
        auto m = w.model.find(k);
        if (m == w.model.end()) continue;
        auto sent = m->second.fields.find(f);
        if (sent == m->second.fields.end() || !sent->second.value.is_string()) continue;
        const auto expected = "/srv" + sent->second.value.template get<std::string>();
        auto it = e->record.value.find(f);
        if (it == e->record.value.end() || *it != expected) {
            w.fail(9, w.name(k) + "." + f + ": the server filled it as " + expected + " on create, but it now holds " +
                          (it == e->record.value.end() ? std::string{"nothing"} : it->dump()) + history_of(w, k));
        }
    }
}

/// After quiescence: the classic checks (2, 3 and 1 by local id) or, in the
/// other modes, 2 and 3 by server id (and 9 with the filler); then 8 in every
/// mode. (Invariant 1 holds its whole-value form only under server_wins
/// without a hostile server; 8 is its per-field form for every mode.)
template <class M>
void check_final(world<M>& w) {
    if (w.mode == mode::classic) {
        check_final_classic(w);
    } else {
        for (const auto& id : w.created) {
            if (auto n = w.server.count_with_local_id("alice", collection_name(w), id); n > 1) {
                w.fail(2, std::to_string(n) + " server records carry local id of " + w.name(id));
            }
        }
        check_converged_by_sid(w);
        if (w.knobs & knob_filler) check_server_field(w);
    }
    check_fields(w);
}

}  // namespace tether_sim
