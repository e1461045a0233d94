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
    std::size_t batch = options_.push_batch ? std::min(options_.push_batch, max_batch) : max_batch;
    // Each record goes up at most once per run; those still due after their
    // outcome (edited during the push) are skipped, so ask for that many more.
    if (auto d = ensure_device_id(); !d) return d;
    std::unordered_set<local_id> handled;
    handled_still_due_ = 0;
    while (online_.load() && authenticated_.load()) {
        auto due = store_.due(clock_.now(), batch + handled_still_due_);
        if (!due) return unexpected{std::move(due).error()};
        report_unreadable();
        std::vector<record_type> picked;
        for (auto& r : *due) {
            if (picked.size() == batch) break;
            if (!handled.contains(r.id)) picked.push_back(std::move(r));
        }
        if (picked.empty()) return {};
        for (const auto& r : picked) handled.insert(r.id);
        auto step = push_batch(picked, rep);
        if (!step) return unexpected{std::move(step).error()};
        if (*step == push_step::stop) return {};
        if (*step == push_step::split) {
            // Refused as too large: the same records go again in halves.
            for (const auto& r : picked) handled.erase(r.id);
            batch = std::max<std::size_t>(1, picked.size() / 2);
        }
    }
    return {};
}

template <class Entity, class... Policies>
result<typename sync_engine<Entity, Policies...>::push_step> sync_engine<Entity, Policies...>::push_batch(
    const std::vector<record_type>& picked, sync_report& rep) {
    std::vector<local_id> ids;
    ids.reserve(picked.size());
    for (const auto& r : picked) ids.push_back(r.id);
    {
        std::lock_guard lock{state_mutex_};
        in_flight_.insert(ids.begin(), ids.end());
    }
    detail::in_flight_guard<std::mutex, std::set<local_id>, std::vector<local_id>> guard{state_mutex_, in_flight_, ids};
    // Re-read now that the records are marked in flight: a remove() that ran
    // before the mark may have erased a never-sent record, and an edit may have
    // landed since `due` was read. From here on, remove() of these records only
    // marks them pending_deletion.
    std::vector<push_op> ops;
    std::vector<record_type> sent;  // the snapshots the ops were made from
    ops.reserve(picked.size());
    sent.reserve(picked.size());
    for (const auto& r : picked) {
        auto fresh = store_.get(r.id);
        if (!fresh) return unexpected{std::move(fresh).error()};
        if (!*fresh || !is_due(**fresh, clock_.now())) continue;
        ops.push_back(make_op(**fresh));
        sent.push_back(std::move(**fresh));
    }
    if (ops.empty()) return push_step::go_on;
    if (auto m = mark_attempted(sent); !m) return unexpected{std::move(m).error()};
    auto outcomes = transport_.push(collection_of<Entity>(), std::span<const push_op>{ops});  // no lock held
    if (outcomes && outcomes->size() != ops.size()) {
        outcomes = unexpected{make_error(errc::protocol, "server answered " + std::to_string(outcomes->size()) +
                                                             " outcomes for " + std::to_string(ops.size()) + " ops")};
    }
    if (!outcomes) {
        if (outcomes.error().code == errc::too_large && ops.size() > 1) return push_step::split;
        if (auto f = fail_batch(sent, outcomes.error(), rep); !f) return unexpected{std::move(f).error()};
        return push_step::stop;
    }
    return settle_batch(ops, sent, *outcomes, rep);
}

template <class Entity, class... Policies>
result<void> sync_engine<Entity, Policies...>::mark_attempted(const std::vector<record_type>& sent) {
    // A create may reach the server even if the app dies before its outcome is stored:
    // mark it attempted first, so that a remove() after a restart goes to the server.
    if (std::none_of(sent.begin(), sent.end(), [](const record_type& r) { return !r.server_id && !r.last_attempt_at; })) {
        return {};
    }
    const auto sent_at = clock_.now();
    return store_.transact([&](auto& tx) -> result<void> {
        for (const auto& r : sent) {
            if (r.server_id || r.last_attempt_at) continue;
            auto cur = tx.get(r.id);
            if (!cur) return unexpected{std::move(cur).error()};
            if (!*cur) continue;
            record_type m = **cur;
            m.last_attempt_at = sent_at;  // `r` keeps what it was: no earlier attempt (see take_applied)
            if (auto p = tx.put(std::move(m)); !p) return p;
        }
        return {};
    });
}

template <class Entity, class... Policies>
result<typename sync_engine<Entity, Policies...>::push_step> sync_engine<Entity, Policies...>::settle_batch(
    const std::vector<push_op>& ops, const std::vector<record_type>& sent, const std::vector<push_outcome>& outcomes,
    sync_report& rep) {
    const auto now = clock_.now();
    auto fx = make_effects();
    std::optional<error> unauthorized;
    auto done = store_.transact([&](auto& tx) -> result<void> {
        for (std::size_t i = 0; i < ops.size(); ++i) {
            const auto& out = outcomes[i];
            if (out.outcome == push_outcome::kind::rejected && out.failure.code == errc::unauthorized) {
                unauthorized = out.failure;  // not the record's fault: no attempt is counted
                ++handled_still_due_;
                continue;
            }
            // One record's outcome that cannot be stored never rolls back the others.
            if (auto a = apply_outcome(tx, fx, ops[i], sent[i], out, now, rep); !a) {
                if (a.error().code != errc::invalid_state) return a;  // the store itself failed
                fx.warnings.push_back("outcome of " + ops[i].id.to_string() + " not applied: " + a.error().message);
                ++handled_still_due_;
            }
        }
        return {};
    });
    deliver(fx, done.has_value());
    if (!done) return unexpected{std::move(done).error()};
    if (unauthorized) {
        pause_unauthorized(*unauthorized, rep);
        return push_step::stop;
    }
    return push_step::go_on;
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
    // A whole batch refused for good (400, 403) says nothing of any one record:
    // each counts an attempt and backs off; only a record too large alone fails.
    const bool give_up_now = e.code == errc::too_large;
    const auto now = clock_.now();
    auto fx = make_effects();
    auto done = store_.transact([&](auto& tx) -> result<void> {
        for (const auto& picked : batch) {
            auto cur = tx.get(picked.id);
            if (!cur) return unexpected{std::move(cur).error()};
            if (!*cur) continue;
            record_type after = **cur;
            count_failure(after, e, now, rep, give_up_now ? attempt_kind::final : attempt_kind::backs_off);
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
                                                             const record_type& sent, const push_outcome& out,
                                                             timestamp now, sync_report& rep) {
    if (out.outcome != push_outcome::kind::rejected && op.kind == op_kind::create) {
        if (auto m = merge_pulled_twin(tx, fx, op.id, out.record.server_id, now); !m) return m;
    }
    auto cur = tx.get(op.id);
    if (!cur) return unexpected{std::move(cur).error()};
    if (!*cur) return {};  // cannot happen while in flight; nothing to settle
    const record_type& before = **cur;
    record_type after = before;
    std::string cause;
    switch (out.outcome) {
        case push_outcome::kind::applied:
            ++rep.pushed;
            if (op.kind == op_kind::remove) {
                ++rep.removed;
                return detail::erase_record(tx, fx, before, now, "push applied: deleted on server");
            }
            cause = take_applied(after, op, sent, out, fx);
            if (after.status == sync_status::synced) after.updated_at = now;
            break;
        case push_outcome::kind::conflict: {
            auto v = entity_ops<Entity>::from_json(out.record.value);
            if (!v) {
                count_failure(after, v.error(), now, rep, attempt_kind::backs_off);
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
        case push_outcome::kind::rejected:
            if (out.failure.code == errc::not_found) {
                // The server has no such record: a delete is done; an edit met a server-side deletion.
                if (op.kind != op_kind::remove) ++rep.conflicts;
                ++rep.removed;
                return detail::erase_record(tx, fx, before, now,
                                            op.kind == op_kind::remove ? "push applied: already deleted on server"
                                                                       : "deleted on server");
            }
            count_failure(after, out.failure, now, rep, attempt_kind::per_error);
            cause = std::string{"push rejected: "} + std::string{to_string(out.failure.code)};
            break;
    }
    if (is_due(after, now)) ++handled_still_due_;
    return detail::write_record(tx, fx, *cur, std::move(after), now, cause);
}

template <class Entity, class... Policies>
std::string sync_engine<Entity, Policies...>::take_applied(record_type& after, const push_op& op,
                                                           const record_type& sent, const push_outcome& out,
                                                           detail::effects<Entity>& fx) {
    auto answer = entity_ops<Entity>::from_json(out.record.value);
    if (!answer) {
        fx.warnings.push_back("server value of " + op.id.to_string() + " does not fit: " + answer.error().message +
                              "; keeping the local value");
    }
    // A create sent before (its answer lost) may be answered with the earlier
    // copy by a server that does not say `replayed`: treated as a replay too, so
    // no edit made since is lost; a first create is taken as it is.
    const bool replay = op.kind == op_kind::create && (out.replayed || sent.last_attempt_at.has_value());
    const auto why = transitions::applied(after, sent.value, answer ? std::optional<Entity>{std::move(*answer)} : std::nullopt,
                                          replay, out.record.server_id, out.record.version);
    if (transitions::wants_push(after)) rerun_.store(true);
    return std::string{to_string(why)};
}

}  // namespace tether
