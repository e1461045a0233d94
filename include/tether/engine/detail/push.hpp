#pragma once

// The push half of tether::sync_engine: batches, outcomes, failures.
// Included from engine/detail/sync.hpp; not a public entry point.
#include <tether/engine/sync_engine.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tether {

// ---- push -------------------------------------------------------------------------

template <class Entity, class... Policies>
result<void> sync_engine<Entity, Policies...>::run_push(sync_report& rep) {
    const std::size_t max_batch = std::max<std::size_t>(1, transport_.max_batch());
    const std::size_t batch = options_.push_batch ? std::min(options_.push_batch, max_batch) : max_batch;
    const auto collection = std::string_view{collection_of<Entity>()};
    // Each record goes up at most once per run; those still due after their
    // outcome (edited during the push) are skipped, so ask for that many more.
    if (auto d = ensure_device_id(); !d) return d;
    std::unordered_set<local_id> handled;
    handled_still_due_ = 0;
    while (online_.load() && authenticated_.load()) {
        auto due = store_.due(clock_.now(), batch + handled_still_due_);
        if (!due) return unexpected{std::move(due).error()};
        std::vector<record_type> picked;
        for (auto& r : *due) {
            if (picked.size() == batch) break;
            if (!handled.contains(r.id)) picked.push_back(std::move(r));
        }
        if (picked.empty()) return {};

        std::vector<local_id> ids;
        ids.reserve(picked.size());
        for (const auto& r : picked) {
            handled.insert(r.id);
            ids.push_back(r.id);
        }
        {
            std::lock_guard lock{state_mutex_};
            in_flight_.insert(ids.begin(), ids.end());
        }
        detail::in_flight_guard<std::mutex, std::set<local_id>, std::vector<local_id>> guard{state_mutex_, in_flight_,
                                                                                              ids};
        // Re-read now that the records are marked in flight: a remove() that ran
        // before the mark may have erased a never-sent record, and an edit may
        // have landed since `due` was read. From here on, remove() of these
        // records only marks them pending_deletion.
        std::vector<push_op> ops;
        ops.reserve(picked.size());
        std::vector<record_type> batch_records;
        batch_records.reserve(picked.size());
        for (const auto& r : picked) {
            auto fresh = store_.get(r.id);
            if (!fresh) return unexpected{std::move(fresh).error()};
            if (!*fresh || !is_due(**fresh, clock_.now())) continue;
            ops.push_back(make_op(**fresh));
            batch_records.push_back(std::move(**fresh));
        }
        if (ops.empty()) continue;
        // A create may reach the server even if the app dies before its outcome is stored:
        // mark it attempted first, so that a remove() after a restart goes to the server.
        if (std::any_of(batch_records.begin(), batch_records.end(),
                        [](const record_type& r) { return !r.server_id && !r.last_attempt_at; })) {
            const auto sent_at = clock_.now();
            auto marked = store_.transact([&](auto& tx) -> result<void> {
                for (auto& r : batch_records) {
                    if (r.server_id || r.last_attempt_at) continue;
                    auto cur = tx.get(r.id);
                    if (!cur) return unexpected{std::move(cur).error()};
                    if (!*cur) continue;
                    record_type m = **cur;
                    m.last_attempt_at = sent_at;
                    r.last_attempt_at = sent_at;
                    if (auto p = tx.put(std::move(m)); !p) return p;
                }
                return {};
            });
            if (!marked) return marked;
        }
        auto outcomes = transport_.push(collection, std::span<const push_op>{ops});  // no lock held
        if (outcomes && outcomes->size() != ops.size()) {
            outcomes = unexpected{make_error(errc::transient, "server answered " + std::to_string(outcomes->size()) +
                                                                  " outcomes for " + std::to_string(ops.size()) + " ops")};
        }
        if (!outcomes) {
            if (auto f = fail_batch(batch_records, outcomes.error(), rep); !f) return f;
            return {};
        }
        const auto now = clock_.now();
        auto fx = make_effects();
        std::optional<error> unauthorized;
        auto done = store_.transact([&](auto& tx) -> result<void> {
            for (std::size_t i = 0; i < ops.size(); ++i) {
                const auto& out = (*outcomes)[i];
                if (out.outcome == push_outcome::kind::rejected && out.failure.code == errc::unauthorized) {
                    unauthorized = out.failure;  // not the record's fault: no attempt is counted
                    ++handled_still_due_;
                    continue;
                }
                if (auto a = apply_outcome(tx, fx, ops[i], batch_records[i].local_rev, out, now, rep); !a) return a;
            }
            return {};
        });
        deliver(fx, done.has_value());
        if (!done) return done;
        if (unauthorized) {
            pause_unauthorized(*unauthorized, rep);
            return {};
        }
    }
    return {};
}

template <class Entity, class... Policies>
result<void> sync_engine<Entity, Policies...>::fail_batch(const std::vector<record_type>& batch, const error& e,
                                                          sync_report& rep) {
    if (e.code == errc::unauthorized) {
        pause_unauthorized(e, rep);
        return {};
    }
    rep.failure = e;
    if (e.code == errc::offline) return {};  // the request never left: not an attempt
    const auto now = clock_.now();
    auto fx = make_effects();
    auto done = store_.transact([&](auto& tx) -> result<void> {
        for (const auto& picked : batch) {
            auto cur = tx.get(picked.id);
            if (!cur) return unexpected{std::move(cur).error()};
            if (!*cur) continue;
            record_type after = **cur;
            count_failure(after, e, now, rep);
            if (is_due(after, now)) ++handled_still_due_;
            const std::string cause = std::string{"push failed: "} + std::string{to_string(e.code)};
            if (auto w = detail::write_record(tx, fx, *cur, std::move(after), now, cause); !w) return w;
        }
        return {};
    });
    deliver(fx, done.has_value());
    return done;
}

template <class Entity, class... Policies>
template <class Tx>
result<void> sync_engine<Entity, Policies...>::apply_outcome(Tx& tx, detail::effects<Entity>& fx, const push_op& op,
                                                             std::uint64_t rev, const push_outcome& out,
                                                             timestamp now, sync_report& rep) {
    auto cur = tx.get(op.id);
    if (!cur) return unexpected{std::move(cur).error()};
    if (!*cur) return {};  // cannot happen while in flight; nothing to settle
    const record_type& before = **cur;
    record_type after = before;
    std::string cause;
    switch (out.outcome) {
        case push_outcome::kind::applied: {
            ++rep.pushed;
            if (op.kind == op_kind::remove) {
                ++rep.removed;
                return detail::erase_record(tx, fx, before, now, "push applied: deleted on server");
            }
            if (!out.record.server_id.empty()) after.server_id = out.record.server_id;
            after.version = std::max(after.version, out.record.version);
            after.attempts = 0;
            after.next_attempt_at.reset();
            after.last_error.reset();
            if (before.local_rev == rev) {
                auto v = entity_ops<Entity>::from_json(out.record.value);
                if (v && op.kind == op_kind::create && !entity_ops<Entity>::equal(*v, before.value)) {
                    // A replayed create (its first response was lost): the server answers
                    // with what it holds, which predates the local edits sent now.
                    after.dirty = entity_ops<Entity>::diff(*v, before.value);
                    after.status = sync_status::pending;
                    rerun_.store(true);
                    cause = "push applied: create replayed, local changes kept";
                    break;
                }
                if (v) {
                    after.value = std::move(*v);
                } else {
                    fx.warnings.push_back("server value of " + op.id.to_string() + " does not fit: " +
                                                v.error().message + "; keeping the local value");
                }
                after.status = sync_status::synced;
                after.dirty.clear();
                after.updated_at = now;
                cause = "push applied";
            } else {
                after.status = after.deleted ? sync_status::pending_deletion : sync_status::pending;
                cause = "push applied; changed during push";
            }
            break;
        }
        case push_outcome::kind::conflict: {
            auto v = entity_ops<Entity>::from_json(out.record.value);
            if (!v) {
                count_failure(after, v.error(), now, rep);
                cause = "push conflict with an unreadable server value";
                break;
            }
            if (op.kind != op_kind::create && is_own_write(out.record)) {
                cause = rebase_on_own_write(after, out.record, *v);
                break;
            }
            cause = settle_conflict(after, out.record, std::move(*v), rep);
            after.updated_at = now;
            break;
        }
        case push_outcome::kind::rejected: {
            if (out.failure.code == errc::not_found) {
                // The server has no such record: a delete is done; an edit met a server-side deletion.
                if (op.kind != op_kind::remove) ++rep.conflicts;
                ++rep.removed;
                return detail::erase_record(tx, fx, before, now,
                                            op.kind == op_kind::remove ? "push applied: already deleted on server"
                                                                       : "deleted on server");
            }
            count_failure(after, out.failure, now, rep);
            cause = std::string{"push rejected: "} + std::string{to_string(out.failure.code)};
            break;
        }
    }
    if (is_due(after, now)) ++handled_still_due_;
    return detail::write_record(tx, fx, *cur, std::move(after), now, cause);
}

}  // namespace tether
