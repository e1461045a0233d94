#pragma once

// The push pass: pick the due records in batches, mark them in flight, send
// each batch, split one refused as too large, count a batch that failed as a
// whole. What the server said of each record is settled in outcome.hpp.
// Reading order of the sync half: push.hpp, outcome.hpp, conflict.hpp,
// pull.hpp, resync.hpp. Not a public entry point.
#include <tether/core/entity.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/engine/detail/append.hpp>
#include <tether/engine/detail/context.hpp>
#include <tether/engine/detail/outcome.hpp>
#include <tether/transport/transport.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tether::detail {

/// @brief The push pass: sends every due record of priority `floor` or higher
/// at most once, in batches of `options.push_batch` (0: the transport's
/// `max_batch()`, which also caps it), while sync may go on. Stops at the first
/// batch that fails as a whole.
template <class Ctx>
[[nodiscard]] pass_result run_push(Ctx& ctx, priority floor = priority::low) {
    pass_result out;
    push_run run;
    run.floor = floor;
    out.status = push_batches(ctx, run, out);
    return out;
}

/// The batches of one push run, each picked from what is due now.
template <class Ctx>
result<void> push_batches(Ctx& ctx, push_run& run, pass_result& out) {
    using record_type = typename Ctx::record_type;
    const std::size_t max_batch = std::max<std::size_t>(1, ctx.transport.max_batch());
    std::size_t batch = ctx.options.push_batch ? std::min(ctx.options.push_batch, max_batch) : max_batch;
    while (ctx.shell.may_sync()) {
        // Records handled in this run and still due (edited during the push)
        // are skipped: ask for that many more.
        auto due = ctx.store.due(ctx.clock.now(), batch + run.handled_still_due);
        if (!due) return unexpected{std::move(due).error()};
        ctx.shell.report_unreadable();
        std::vector<record_type> picked;
        for (auto& r : *due) {
            // Due records come highest priority first: the rest are below the floor too.
            if (picked.size() == batch || r.priority < run.floor) break;
            if (!run.handled.contains(r.id)) picked.push_back(std::move(r));
        }
        if (picked.empty()) return {};
        for (const auto& r : picked) run.handled.insert(r.id);
        auto step = push_batch(ctx, run, picked, out);
        if (!step) return unexpected{std::move(step).error()};
        if (*step == push_step::stop) return {};
        if (*step == push_step::split) {
            // Refused as too large: the same records go again in halves.
            for (const auto& r : picked) run.handled.erase(r.id);
            batch = std::max<std::size_t>(1, picked.size() / 2);
        }
    }
    return {};
}

/// One batch: marked in flight, re-read, sent with no lock held, settled.
template <class Ctx>
result<push_step> push_batch(Ctx& ctx, push_run& run, const std::vector<typename Ctx::record_type>& picked,
                             pass_result& out) {
    std::vector<local_id> ids;
    ids.reserve(picked.size());
    for (const auto& r : picked) ids.push_back(r.id);
    const in_flight_mark<Ctx, std::vector<local_id>> mark{ctx, ids};
    std::vector<push_op> ops;
    std::vector<typename Ctx::record_type> sent;  // the snapshots the ops were made from
    if (auto t = take_snapshots(ctx, picked, ops, sent); !t) return unexpected{std::move(t).error()};
    if (ops.empty()) return push_step::go_on;
    using entity_type = typename Ctx::entity_type;
    auto outcomes = ctx.transport.push(collection_of<entity_type>(), std::span<const push_op>{ops});  // no lock held
    if (outcomes && outcomes->size() != ops.size()) {
        outcomes = unexpected{make_error(errc::protocol, "server answered " + std::to_string(outcomes->size()) +
                                                             " outcomes for " + std::to_string(ops.size()) + " ops")};
    }
    if (!outcomes) {
        if (outcomes.error().code == errc::too_large && ops.size() > 1) return push_step::split;
        if (auto f = fail_batch(ctx, run, sent, outcomes.error(), out); !f) return unexpected{std::move(f).error()};
        return push_step::stop;
    }
    return settle_batch(ctx, run, ops, sent, *outcomes, out);
}

/// Re-reads the picked records now that they are marked in flight (a remove()
/// that ran before the mark may have erased a never-sent record, and an edit may
/// have landed since `due` was read; from here on, remove() of these records
/// only marks them pending_deletion), makes the op of each one still due, and
/// marks a create never sent before as attempted, all in one transaction. A
/// create may reach the server even if the app dies before its outcome is
/// stored: marked attempted first, a remove() after a restart goes to the
/// server; and its `dirty` starts afresh, so that a replayed answer (the copy
/// this attempt made) gets only later edits laid over it, not fields the server
/// may have filled in from this one. `sent` keeps each record as it was before
/// the mark (see take_applied). An update of text appended alone goes as an
/// append (append.hpp).
template <class Ctx>
result<void> take_snapshots(Ctx& ctx, const std::vector<typename Ctx::record_type>& picked, std::vector<push_op>& ops,
                            std::vector<typename Ctx::record_type>& sent) {
    const auto now = ctx.clock.now();
    ops.reserve(picked.size());
    sent.reserve(picked.size());
    return ctx.store.transact([&](auto& tx) -> result<void> {
        ops.clear();
        sent.clear();
        for (const auto& r : picked) {
            auto fresh = tx.get(r.id);
            if (!fresh) return unexpected{std::move(fresh).error()};
            if (!*fresh || !is_due(**fresh, now)) continue;
            ops.push_back(make_op(ctx, **fresh));
            if (auto a = as_append_op(ctx, tx, **fresh, ops.back()); !a) return a;  // appended text alone
            if (!(*fresh)->server_id && !(*fresh)->last_attempt_at) {
                // From its first attempt on, a create's `dirty` holds what changed since that
                // attempt: the server's copy, if this one reached it, holds everything before.
                auto marked = **fresh;
                marked.last_attempt_at = now;
                marked.dirty.clear();
                if (auto p = tx.put(std::move(marked)); !p) return p;
            }
            sent.push_back(std::move(**fresh));
        }
        return {};
    });
}

/// The op that pushes `r`: a `remove` for a delete, a `create` with the whole
/// value before the server knows it, else an `update` of the dirty fields (the
/// whole value if none are noted, or at version 0: a record the server lost in
/// a restore, which it creates again), based on the version last seen.
template <class Ctx>
[[nodiscard]] push_op make_op(const Ctx& ctx, const typename Ctx::record_type& r) {
    using entity_type = typename Ctx::entity_type;
    push_op op;
    op.origin = std::string{ctx.device_id};
    op.id = r.id;
    op.server_id = r.server_id;
    op.base_version = r.version;
    if (r.deleted) {
        op.kind = op_kind::remove;
    } else if (!r.server_id) {
        op.kind = op_kind::create;
        op.resent = r.last_attempt_at.has_value();
        op.value = entity_ops<entity_type>::to_json(r.value);
    } else {
        op.kind = op_kind::update;
        auto full = entity_ops<entity_type>::to_json(r.value);
        if (r.dirty.empty() || r.version == 0) {  // version 0: the server lost it (a restore); it goes up whole
            op.value = std::move(full);
        } else {
            op.value = nlohmann::json::object();
            for (const auto& f : r.dirty) {
                if (auto it = full.find(f); it != full.end()) op.value[f] = *it;
            }
        }
    }
    return op;
}

/// The transport's call failed as a whole. A 401 pauses sync, counting
/// nothing; `offline` (the request never left) counts no attempt; anything
/// else counts a failed attempt on every record of the batch, re-read in the
/// transaction, and backs off: a whole batch refused for good (400, 403) says
/// nothing of any one record. Only a record too large alone fails at once.
template <class Ctx>
result<void> fail_batch(Ctx& ctx, push_run& run, const std::vector<typename Ctx::record_type>& batch, const error& e,
                        pass_result& out) {
    using record_type = typename Ctx::record_type;
    if (e.code == errc::unauthorized) {
        out.unauthorized = e;
        return {};
    }
    out.report.failure = e;
    if (e.code == errc::offline) return {};
    const bool give_up_now = e.code == errc::too_large;
    const auto now = ctx.clock.now();
    auto fx = ctx.shell.make_effects();
    auto done = ctx.store.transact([&](auto& tx) -> result<void> {
        for (const auto& picked : batch) {
            auto cur = tx.get(picked.id);
            if (!cur) return unexpected{std::move(cur).error()};
            if (!*cur) continue;
            record_type after = **cur;
            count_failure(ctx, after, e, now, out, give_up_now ? attempt_kind::final : attempt_kind::backs_off);
            if (is_due(after, now)) ++run.handled_still_due;
            const std::string why = std::string{to_string(cause::push_failed)} + ": " + std::string{to_string(e.code)};
            if (auto w = write_record(tx, fx, *cur, std::move(after), now, why); !w) return w;
        }
        return {};
    });
    ctx.shell.deliver(fx, done.has_value());
    return done;
}

}  // namespace tether::detail
