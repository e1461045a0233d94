#pragma once

// Outcome handling of the push pass: each record's outcome, applied in one
// transaction per batch, and failed attempts. Read after push.hpp; conflicts
// are settled in conflict.hpp. Not a public entry point.
#include <tether/core/cause.hpp>
#include <tether/core/entity.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/core/status.hpp>
#include <tether/core/transitions.hpp>
#include <tether/engine/detail/conflict.hpp>
#include <tether/engine/detail/context.hpp>
#include <tether/engine/detail/effects.hpp>
#include <tether/transport/transport.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tether::detail {

/// What one push run keeps between its batches.
struct push_run {
    std::unordered_set<local_id> handled;  // picked once in this run: never sent twice
    std::size_t handled_still_due = 0;     // ...of which still due after their outcome
    priority floor = priority::low;        // only records of this priority or higher go up
};

/// What one push batch leads to: the next batch, a split of this one (too
/// large), or the end of the push run.
enum class push_step : std::uint8_t { go_on, split, stop };

/// How a failed attempt counts: by its error (retryable backs off, else the
/// record fails), always backing off (a whole batch refused), or final.
enum class attempt_kind : std::uint8_t { per_error, backs_off, final };

/// Applies a batch's outcomes in one transaction. One that cannot be stored
/// (an illegal transition) is logged and skipped, never rolling back the
/// others; a 401 for any op counts no attempt and pauses sync after it.
template <class Ctx>
result<push_step> settle_batch(Ctx& ctx, push_run& run, const std::vector<push_op>& ops,
                               const std::vector<typename Ctx::record_type>& sent,
                               const std::vector<push_outcome>& outcomes, pass_result& out) {
    const auto now = ctx.clock.now();
    auto fx = ctx.shell.make_effects();
    std::optional<error> unauthorized;
    auto done = ctx.store.transact([&](auto& tx) -> result<void> {
        for (std::size_t i = 0; i < ops.size(); ++i) {
            const auto& o = outcomes[i];
            if (o.outcome == push_outcome::kind::rejected && o.failure.code == errc::unauthorized) {
                unauthorized = o.failure;  // not the record's fault: no attempt is counted
                ++run.handled_still_due;
                continue;
            }
            if (auto a = apply_outcome(ctx, tx, fx, run, ops[i], sent[i], o, now, out); !a) {
                if (a.error().code != errc::invalid_state) return a;  // the store itself failed
                fx.warnings.push_back("outcome of " + ops[i].id.to_string() + " not applied: " + a.error().message);
                ++run.handled_still_due;
            }
        }
        return {};
    });
    ctx.shell.deliver(fx, done.has_value());
    if (!done) return unexpected{std::move(done).error()};
    if (unauthorized) {
        out.unauthorized = std::move(unauthorized);
        return push_step::stop;
    }
    return push_step::go_on;
}

/// Whether the answer's server id may already be held here by a record pulled
/// without its local id. Only for a create sent before (its answer in doubt): a
/// first create's server id is new to every device; and for an op on a record
/// the server answers under another server id than the one it was sent with (a
/// restored server forgot the old one, and the record's creator sent it again,
/// so it lives under a new one that a pull may have brought here already).
template <class Record>
[[nodiscard]] bool may_have_twin(const push_op& op, const Record& sent, const push_outcome& o) {
    if (op.kind == op_kind::create) return o.replayed || sent.last_attempt_at.has_value();
    return sent.server_id && !o.record.server_id.empty() && *sent.server_id != o.record.server_id;
}

/// One record's outcome, against the record now and the snapshot `sent` the
/// op was made from.
template <class Ctx, class Tx>
result<void> apply_outcome(Ctx& ctx, Tx& tx, effects<typename Ctx::entity_type>& fx, push_run& run,
                           const push_op& op, const typename Ctx::record_type& sent, const push_outcome& o,
                           timestamp now, pass_result& out) {
    using entity_type = typename Ctx::entity_type;
    using record_type = typename Ctx::record_type;
    if (o.outcome != push_outcome::kind::rejected && may_have_twin(op, sent, o)) {
        if (auto m = merge_pulled_twin(ctx, tx, fx, op.id, o.record.server_id, now); !m) return m;
    }
    auto cur = tx.get(op.id);
    if (!cur) return unexpected{std::move(cur).error()};
    if (!*cur) return {};  // cannot happen while in flight; nothing to settle
    const record_type& before = **cur;
    record_type after = before;
    std::string why;
    switch (o.outcome) {
        case push_outcome::kind::applied:
            ++out.report.pushed;
            if (op.kind == op_kind::remove) {
                ++out.report.removed;
                return erase_record(tx, fx, before, now, to_string(cause::push_deleted_on_server));
            }
            why = take_applied(after, op, sent, o, fx, out);
            if (after.status == sync_status::synced) after.updated_at = now;
            break;
        case push_outcome::kind::conflict: {
            auto v = entity_ops<entity_type>::from_json(o.record.value);
            if (!v) {
                count_failure(ctx, after, v.error(), now, out, attempt_kind::backs_off);
                why = to_string(cause::push_conflict_unreadable);
                break;
            }
            if (op.kind != op_kind::create && is_own_write(ctx, o.record)) {
                why = rebase_own_write(after, o.record, *v, out);
                break;
            }
            why = settle_conflict(ctx, after, o.record, std::move(*v), out);
            after.updated_at = now;
            break;
        }
        case push_outcome::kind::rejected:
            if (o.failure.code == errc::not_found) {
                // The server has no such record: a delete is done; an edit met a server-side deletion.
                if (op.kind != op_kind::remove) ++out.report.conflicts;
                ++out.report.removed;
                return erase_record(tx, fx, before, now,
                                    to_string(op.kind == op_kind::remove ? cause::push_already_deleted
                                                                         : cause::deleted_on_server));
            }
            count_failure(ctx, after, o.failure, now, out, attempt_kind::per_error);
            why = std::string{to_string(cause::push_rejected)} + ": " + std::string{to_string(o.failure.code)};
            break;
    }
    if (is_due(after, now)) ++run.handled_still_due;
    return write_record(tx, fx, *cur, std::move(after), now, why);
}

/// An applied push (not a remove): the server's answer is taken by
/// `transitions::applied`. A create sent before (its answer lost) may be
/// answered with the earlier copy by a server that does not say `replayed`:
/// it is treated as a replay too, so no edit made since is lost; a first
/// create is taken as it is. A create's answer without a value (null) says the
/// server stored the value as sent (docs/protocol.md): there is nothing to take.
template <class Record, class Effects>
std::string take_applied(Record& after, const push_op& op, const Record& sent, const push_outcome& o, Effects& fx,
                         pass_result& out) {
    using entity_type = std::remove_cvref_t<decltype(after.value)>;
    std::optional<entity_type> answer;
    if (!(op.kind == op_kind::create && o.record.value.is_null())) {
        auto v = entity_ops<entity_type>::from_json(o.record.value);
        if (v) answer = std::move(*v);
        else fx.warnings.push_back("server value of " + op.id.to_string() + " does not fit: " + v.error().message +
                                   "; keeping the local value");
    }
    const bool replay = op.kind == op_kind::create && (o.replayed || sent.last_attempt_at.has_value());
    const auto why = transitions::applied(after, sent.value, std::move(answer), replay, o.record.server_id,
                                          o.record.version);
    if (transitions::wants_push(after)) out.rerun = true;  // goes up in the next round of this sync
    return std::string{to_string(why)};
}

/// A failed attempt: the backoff's delay (under the state lock) decides
/// between `error` and `failed` (`transitions::fail_attempt`).
template <class Ctx>
void count_failure(Ctx& ctx, typename Ctx::record_type& r, const error& e, timestamp now, pass_result& out,
                   attempt_kind how) {
    std::optional<std::chrono::milliseconds> delay;
    if (how == attempt_kind::backs_off || (how == attempt_kind::per_error && is_retryable(e))) {
        delay = backoff_delay(ctx, r.attempts + 1, e);
    }
    if (transitions::fail_attempt(r, e, now, delay)) ++out.report.retrying;
    else ++out.report.failed;
}

/// A create's answer names a server id that a record pulled earlier holds (a
/// pull brought the record back without its local id before the create's
/// answer came): the two are one record. The pulled twin goes, without a
/// cleanup (its attached resources are the original's), and its local edits
/// move to the original, which keeps its local id.
template <class Ctx, class Tx>
result<void> merge_pulled_twin(Ctx& ctx, Tx& tx, effects<typename Ctx::entity_type>& fx, const local_id& id,
                               const std::string& server_id, timestamp now) {
    using entity_type = typename Ctx::entity_type;
    using record_type = typename Ctx::record_type;
    (void)ctx;
    if (server_id.empty()) return {};
    auto twin = tx.find_by_server_id(server_id);
    if (!twin) return unexpected{std::move(twin).error()};
    if (!*twin || (*twin)->id == id) return {};
    const record_type gone = std::move(**twin);
    if (!gone.dirty.empty() && !gone.deleted) {
        auto cur = tx.get(id);
        if (!cur) return unexpected{std::move(cur).error()};
        if (*cur) {
            record_type orig = std::move(**cur);
            orig.value = entity_ops<entity_type>::merge(std::move(orig.value), gone.value, gone.dirty);
            for (const auto& f : gone.dirty) orig.dirty.emplace(f);
            orig.local_rev += 1;
            if (auto p = tx.put(std::move(orig)); !p) return p;
        }
    }
    fx.warnings.push_back("record " + gone.id.to_string() + " (server id " + server_id + ") is " + id.to_string() +
                          ", pulled before its create was answered: merged");
    return erase_record(tx, fx, gone, now, to_string(cause::merged_twin), false);
}

}  // namespace tether::detail
