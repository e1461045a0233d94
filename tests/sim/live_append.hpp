#pragma once

// The live modes' append op and invariant 16 (live_invariants.hpp).
//
// The op: a device appends a chunk (unique in the run, "+<n>") to the title
// of a record it holds, with `sync_engine::append`. It is acknowledged as an
// update of that field (the per-field model, invariants 1, 3 and 8, so the
// appended text is covered like any write), and noted in the device's chain
// of appends to that record: a chain goes on while the device appends again
// to the text its last append left.
//
// 16, during the run: before each live pass the sim notes what the device
// holds (by server id) and, after it, replays the events the feed delivered
// since the last pass on that note with the engine's rule (append.hpp's
// `append_fits`): an `appended` event that extends the text as it stands (its
// `replaces` is the held version, the record is synced, the held text is
// `length_before` long) must be applied in place, with no fetch of its
// record, leaving the held text and the chunk. A record any other event
// touched first (a gap, an update, a deletion, a record not held) is not
// predicted. A pass is checked only when the inbox held exactly the events
// the feed delivered since the last pass (nothing settled by a pull in
// between, nothing left from before, nothing ignored).
//
// 16, after quiet: every device that holds a record appended to (not failed)
// holds the server's text of it; a chain whose last append is the field's
// latest acknowledged write (not discarded by a conflict decision or a
// deletion, as invariant 8 judges it) ends as the server's text.
#include "live_invariants.hpp"
#include "workload.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tether_sim {

/// The string member the append op extends.
inline constexpr std::string_view append_member = "title";

/// One device's chain of appends to one record: the text it began from, the
/// chunks the engine acknowledged, in order, and the seq of the last one.
struct append_chain {
    local_id record;  ///< canonical id
    local_id local;   ///< the device's id of it
    int device = 0;
    std::string start;
    std::vector<std::string> chunks;
    std::uint64_t last_seq = 0;

    [[nodiscard]] std::string text() const {
        std::string t = start;
        for (const auto& c : chunks) t += c;
        return t;
    }
};

/// The live modes' appends: every chain, and each device's open one per record.
struct append_book {
    std::vector<append_chain> chains;
    std::map<std::pair<int, local_id>, std::size_t> open;  ///< (device, local id) -> its last chain
};

/// The text of `member` in `j`; empty if it has none.
inline std::string text_of(const nlohmann::json& j, std::string_view member) {
    const auto it = j.find(member);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

/// The append op of device `cl`: a unique chunk to the title of a record it holds.
template <class M>
std::string op_append(world<M>& w, client<M>& cl, append_book& book) {
    using E = typename M::entity;
    auto id = pick(w, cl, live);
    if (!id) return "append (no records)";
    auto cur = cl.engine->get(*id);
    if (!cur) {
        w.fail(0, "c" + std::to_string(cl.index) + " get of " + w.name(*id) + " failed: " + describe(cur.error()));
        return "append " + w.name(*id) + " -> get failed";
    }
    const auto before = tether::entity_ops<E>::to_json(cur->value);
    const std::string chunk = "+" + std::to_string(++w.next_value);
    auto r = write(cl, [&] { return cl.engine->append(*id, append_member, chunk); });
    if (!r) {
        w.fail(0, "c" + std::to_string(cl.index) + " append to " + w.name(*id) + " failed: " + describe(r.error()));
        return "append " + w.name(*id) + " -> " + describe(r.error());
    }
    ack(w, cl.index, *id, world<M>::write_type::kind::update, r->value, before);
    ++w.st.faults[static_cast<std::size_t>(fault::append)];
    const std::string was = text_of(before, append_member);
    const auto key = std::make_pair(cl.index, *id);
    auto open = book.open.find(key);
    if (open == book.open.end() || book.chains[open->second].text() != was) {
        book.chains.push_back(append_chain{canon(w, *id), *id, cl.index, was, {}, 0});
        open = book.open.insert_or_assign(key, book.chains.size() - 1).first;
    }
    auto& chain = book.chains[open->second];
    chain.chunks.push_back(chunk);
    chain.last_seq = w.seq;
    return "append '" + chunk + "' to " + w.name(*id) + " (chain of " + std::to_string(chain.chunks.size()) +
           ") -> " + std::string{tether::to_string(r->status)};
}

/// What a device held of a record before a live pass (by server id).
struct held_record {
    std::uint64_t version = 0;
    bool synced = false;
    bool failed = false;
    nlohmann::json value;
};

/// A live pass's note (see the file): what the device held, if the pass is checked.
struct append_pass {
    bool checked = false;
    std::uint64_t ignored = 0;
    std::map<std::string, held_record> held;
};

/// Device `cl`'s records, by server id (the deleted ones left out).
template <class M>
std::map<std::string, held_record> held_by_sid(world<M>& w, client<M>& cl) {
    using E = typename M::entity;
    std::map<std::string, held_record> out;
    auto all = cl.engine->list();
    if (!all) {
        w.fail(0, "c" + std::to_string(cl.index) + " list() failed");
        return out;
    }
    for (const auto& r : *all) {
        if (!r.server_id || r.deleted) continue;
        out[*r.server_id] = held_record{r.version, r.status == tether::sync_status::synced,
                                        r.status == tether::sync_status::failed, tether::entity_ops<E>::to_json(r.value)};
    }
    return out;
}

/// Before a live pass of device `cl` (`st`: its feed's status now).
template <class M>
append_pass append_pass_begin(world<M>& w, client<M>& cl, const tether::live_status& st) {
    auto& log = cl.engine->transport().log();
    append_pass p;
    p.checked = log.left_queued == 0 && !st.catching_up && st.queued == log.delivered.size();
    p.ignored = st.ignored;
    if (p.checked) p.held = held_by_sid(w, cl);
    return p;
}

/// After the live pass of device `cl` that `p` noted (`st`: its feed's
/// status after it; `ok`: the pass returned a report without failure): 16.
template <class M>
void check_append_pass(world<M>& w, client<M>& cl, append_pass& p, const tether::live_status& st, bool ok) {
    auto& log = cl.engine->transport().log();
    const auto events = std::move(log.delivered);
    log.delivered.clear();
    log.left_queued = st.queued;
    if (!p.checked || !ok || st.queued != 0 || st.ignored != p.ignored) return;
    std::map<std::string, std::uint64_t> in_place;  // server id -> appended events predicted in place
    std::set<std::string> unpredictable;
    for (const auto& e : events) {
        const std::string& sid = e.record.server_id;
        if (e.collection != collection_name(w) || sid.empty() || unpredictable.contains(sid)) continue;
        auto held = p.held.find(sid);
        if (held != p.held.end() && e.version <= held->second.version) continue;  // a duplicate
        const bool appended = e.kind == tether::live_kind::appended && e.append;
        if (appended && held != p.held.end() && held->second.synced && e.record.id &&
            e.replaces == held->second.version && e.append->length_after == e.append->length_before + e.append->chunk.size()) {
            auto& text = held->second.value[e.append->member];
            if (text.is_string() && text.template get_ref<const std::string&>().size() == e.append->length_before) {
                text.template get_ref<std::string&>() += e.append->chunk;
                held->second.version = e.version;
                ++in_place[sid];
                continue;
            }
        }
        if (appended) ++w.st.faults[static_cast<std::size_t>(fault::append_event_gap)];
        unpredictable.insert(sid);
    }
    if (in_place.empty()) return;
    const auto after = held_by_sid(w, cl);
    const std::string who = "c" + std::to_string(cl.index);
    for (const auto& [sid, n] : in_place) {
        if (unpredictable.contains(sid)) continue;
        w.st.faults[static_cast<std::size_t>(fault::append_event_in_place)] += n;
        for (const auto& f : log.fetched) {
            if (f == sid) w.fail(16, who + " fetched " + sid + " for an appended event that extends the text it holds");
        }
        const auto& want = p.held.at(sid);
        const auto got = after.find(sid);
        if (got == after.end() || got->second.version != want.version || got->second.value != want.value) {
            w.fail(16, who + " " + sid + " after its appended events: " +
                           (got == after.end() ? std::string{"gone"} : got->second.value.dump() + " v" +
                                                                            std::to_string(got->second.version)) +
                           ", expected " + want.value.dump() + " v" + std::to_string(want.version));
        }
    }
}

/// 16 after quiet (see the file).
template <class M>
void check_append_chains(world<M>& w, const append_book& book) {
    std::set<local_id> checked;  // records whose every holder was compared
    for (const auto& ch : book.chains) {
        ++w.st.append_chains;
        const auto e = server_entry(w, ch.record);
        if (!e || e->deleted) continue;  // removed: nothing to end equal to
        const std::string server = text_of(e->record.value, append_member);
        if (checked.insert(ch.record).second) {
            for (auto& cl : w.clients) {
                for (const auto& [sid, h] : held_by_sid(w, cl)) {
                    if (sid != e->record.server_id || h.failed) continue;
                    if (text_of(h.value, append_member) != server) {
                        w.fail(16, "c" + std::to_string(cl.index) + " " + w.name(ch.record) + "." +
                                       std::string{append_member} + " is '" + text_of(h.value, append_member) +
                                       "', the server's '" + server + "'");
                    }
                }
            }
        }
        const auto rm = w.model.find(ch.record);
        if (rm == w.model.end()) continue;
        const auto fw = rm->second.fields.find(std::string{append_member});
        if (fw == rm->second.fields.end() || fw->second.seq != ch.last_seq) continue;  // a later write of the field
        if (rm->second.removed && rm->second.removed->seq > fw->second.seq) continue;
        if (auto ml = rm->second.may_lose.find(std::string{append_member});
            ml != rm->second.may_lose.end() && ml->second.contains(fw->second.value.dump())) {
            continue;  // discarded by a conflict decision or a deletion on the server
        }
        auto& cl = w.clients[static_cast<std::size_t>(ch.device)];
        if (auto l = cl.engine->get(ch.local); l && l->status == tether::sync_status::failed) continue;
        if (server != ch.text()) {
            w.fail(16, w.name(ch.record) + "." + std::string{append_member} + ": c" + std::to_string(ch.device) +
                           "'s chain of " + std::to_string(ch.chunks.size()) + " ends as '" + ch.text() +
                           "', the server has '" + server + "'" + history_of(w, ch.record));
        }
    }
}

}  // namespace tether_sim
