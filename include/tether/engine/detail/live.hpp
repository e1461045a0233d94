#pragma once

// The live pass: events the feed delivered, queued by the handler (on the
// transport's delivery thread, which only queues), applied by `apply_live()`
// with the pull's rules (apply_server_record, apply_tombstone), one
// transaction per event, each with its step of the pull cursor. Read after
// pull.hpp. Not a public entry point.
#include <tether/core/entity.hpp>
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/engine/detail/append.hpp>
#include <tether/engine/detail/context.hpp>
#include <tether/engine/detail/effects.hpp>
#include <tether/engine/detail/pull.hpp>
#include <tether/engine/detail/pull_run.hpp>
#include <tether/engine/live.hpp>
#include <tether/engine/report.hpp>
#include <tether/transport/live.hpp>

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tether::detail {

/// The cause watchers hear for a record a live event changed ("live"; a rule
/// of the pull other than a plain take is kept after it: "live: conflict: ...").
inline constexpr std::string_view live_cause = "live";
/// Cursor steps kept for events applied ahead of the cursor, at most.
inline constexpr std::size_t max_live_ahead = 1024;

/// What the handler and the pass share: the queue of events (at most
/// `limit` of them), the end of the subscription, the counts, and the cursor
/// steps of events applied ahead of the cursor (their previous cursor -> their
/// cursor). Thread-safe.
///
/// Bounded: an event that finds `limit` events queued drops them and itself
/// (an overflow, counted) and marks the inbox `catching_up`: the next live
/// pass pulls from the stored cursor instead of applying events. Nothing is
/// lost: a dropped event never moved the cursor, so the pull brings its change.
class live_inbox {
public:
    void push(live_event e) {
        std::lock_guard lock{mutex_};
        ++status_.received;
        if (limit_ > 0 && queue_.size() >= limit_) {
            ++status_.overflows;
            status_.overflow_dropped += queue_.size() + 1;
            status_.catching_up = true;
            overflow_at_ = status_.received;
            queue_.clear();
            return;
        }
        queue_.push_back(std::move(e));
    }
    /// Events queued at most (0: no bound); `engine_options::live_inbox_limit`.
    void limit(std::size_t n) {
        std::lock_guard lock{mutex_};
        limit_ = n;
    }
    /// True after an overflow until a pull repairs it (`repaired`).
    [[nodiscard]] bool catching_up() const {
        std::lock_guard lock{mutex_};
        return status_.catching_up;
    }
    /// A pull that began after the `mark`-th event and reached the end of the
    /// feed: an overflow before that mark is repaired.
    void repaired(std::uint64_t mark) {
        std::lock_guard lock{mutex_};
        if (mark >= overflow_at_) status_.catching_up = false;
    }
    /// How many events have come so far: a pull that starts now and reaches
    /// the end of the feed settles every one of them (`cover`).
    std::uint64_t mark() const {
        std::lock_guard lock{mutex_};
        return status_.received;
    }
    /// Drops the queued events among the first `mark` that came (counted as covered).
    void cover(std::uint64_t mark) {
        std::lock_guard lock{mutex_};
        for (; !queue_.empty() && status_.received - queue_.size() < mark; queue_.pop_front()) ++status_.covered;
    }
    void end(error why) {
        std::lock_guard lock{mutex_};
        status_.following = false;
        status_.ended = std::move(why);
    }
    void started(bool ok) {
        std::lock_guard lock{mutex_};
        status_.following = ok;
        status_.ended.reset();
        if (!ok) queue_.clear();
        ahead_.clear();
    }
    std::deque<live_event> take() {
        std::lock_guard lock{mutex_};
        return std::exchange(queue_, {});
    }
    void put_back(std::deque<live_event> rest) {  // events not applied yet go first again
        std::lock_guard lock{mutex_};
        for (auto& e : queue_) rest.push_back(std::move(e));
        queue_ = std::move(rest);
    }
    template <class F>
    void count(F f) {
        std::lock_guard lock{mutex_};
        f(status_);
    }
    [[nodiscard]] live_status status() const {
        std::lock_guard lock{mutex_};
        live_status s = status_;
        s.queued = queue_.size();
        return s;
    }
    /// The cursor after event `e`: its cursor when it is `contiguous` with
    /// `cursor`, then on through the steps of events applied ahead of it;
    /// else `cursor`, and `e`'s step is noted for later.
    std::string step(std::string cursor, const live_event& e, bool contiguous) {
        std::lock_guard lock{mutex_};
        if (!contiguous) {
            if (ahead_.size() >= max_live_ahead) ahead_.clear();
            ahead_[e.previous_cursor] = e.cursor;
            return cursor;
        }
        cursor = e.cursor;
        for (auto it = ahead_.find(cursor); it != ahead_.end(); it = ahead_.find(cursor)) {
            cursor = it->second;
            ahead_.erase(it);
        }
        return cursor;
    }

private:
    mutable std::mutex mutex_;
    std::size_t limit_ = 0;
    std::uint64_t overflow_at_ = 0;  // the events received at the last overflow (the dropped ones among them)
    std::deque<live_event> queue_;
    std::map<std::string, std::string> ahead_;
    live_status status_;
};

/// The engine's hold on the feed: the inbox and the subscription's handle.
class live_follower {
public:
    /// Subscribes from the stored pull cursor; events go to the inbox and then
    /// `notify()` (on the delivery thread) so the app can call `apply_live()`.
    template <class Ctx>
    result<void> follow(Ctx& ctx, const std::function<void()>& notify) {
        using entity_type = typename Ctx::entity_type;
        auto cursor = ctx.store.get_meta(pull_cursor_key);
        if (!cursor) return unexpected{std::move(cursor).error()};
        if constexpr (requires { ctx.options.live_inbox_limit; }) inbox_->limit(ctx.options.live_inbox_limit);
        std::weak_ptr<live_inbox> w = inbox_;
        live_handler h{[w, notify](live_event e) {
                           if (auto in = w.lock()) in->push(std::move(e));
                           if (notify) notify();
                       },
                       [w, notify](error why) {
                           if (auto in = w.lock()) in->end(std::move(why));
                           if (notify) notify();
                       }};
        inbox_->started(true);
        auto sub = ctx.transport.subscribe(
            live_request{collection_of<entity_type>(), cursor->value_or(""), ctx.device_id}, std::move(h));
        if (!sub) {
            inbox_->started(false);
            return unexpected{std::move(sub).error()};
        }
        live_subscription old;
        {
            std::lock_guard lock{mutex_};
            old = std::exchange(sub_, std::move(*sub));
        }
        old.reset();  // the former subscription, if any, stops here
        return {};
    }
    /// Stops delivery (waits for a handler call running elsewhere); drops the queue.
    void stop() {
        live_subscription old;
        {
            std::lock_guard lock{mutex_};
            old = std::move(sub_);
        }
        old.reset();
        inbox_->started(false);
    }
    [[nodiscard]] live_inbox& inbox() noexcept { return *inbox_; }
    [[nodiscard]] live_status status() const { return inbox_->status(); }

private:
    std::shared_ptr<live_inbox> inbox_ = std::make_shared<live_inbox>();
    std::mutex mutex_;  // guards sub_ (never held while a handle is reset)
    live_subscription sub_;
};

/// The error of a gated `follow` (the engine is offline, unauthorized, or busy).
inline error live_skipped(skip_reason why) {
    switch (why) {
        case skip_reason::offline: return make_error(errc::offline, "follow: the engine is offline");
        case skip_reason::unauthorized: return make_error(errc::unauthorized, "follow: not authenticated");
        default: return make_error(errc::busy, "follow: a sync is running; follow again after it");
    }
}

/// What one event asks for: nothing more (applied, or a duplicate), or a fetch.
enum class live_step : std::uint8_t { applied, duplicate, fetch };

/// Watchers hear a live change as "live" (see `live_cause`).
template <class E>
void relabel_live(effects<E>& fx) {
    for (auto& c : fx.changes)
        c.cause = c.cause == to_string(cause::pull) ? std::string{live_cause} : std::string{live_cause} + ": " + c.cause;
}

/// The local record an event names: by server id, else by local id if held
/// without a server id (own create in doubt); null when not held.
template <class Tx>
auto live_local(Tx& tx, const live_event& e) -> decltype(tx.find_by_server_id(e.record.server_id)) {
    auto cur = tx.find_by_server_id(e.record.server_id);
    if (!cur || *cur || !e.record.id || e.record.id->is_nil()) return cur;
    auto by_id = tx.get(*e.record.id);
    if (by_id && *by_id && (*by_id)->server_id) by_id->reset();  // held under another server id: not this one
    return by_id;
}

/// Inside the event's transaction: drops a duplicate, applies an event
/// contiguous with the local version (and any deletion: it is final), and
/// asks for a fetch on a gap or a record not held, a create included: a
/// create delayed or reordered past the record's deletion (or queued before
/// a pull that saw it deleted) would bring back a record the server no longer
/// has, and nothing held here tells it apart from a new one. An `appended`
/// event extends the local text when its length before is the local text's
/// and the record has no local change; else a fetch.
template <class Ctx, class Tx>
result<live_step> live_apply(Ctx& ctx, Tx& tx, effects<typename Ctx::entity_type>& fx, pull_run& run,
                             const live_event& e, timestamp now, pass_result& out) {
    auto cur = live_local(tx, e);
    if (!cur) return unexpected{std::move(cur).error()};
    std::unordered_set<std::string> alone;
    if (*cur && e.version <= (*cur)->version) return live_step::duplicate;
    if (e.kind == live_kind::deleted) {
        if (auto a = apply_tombstone(ctx, tx, fx, run, alone, e.as_tombstone(), now, out); !a) return unexpected{a.error()};
        return live_step::applied;
    }
    if (e.kind == live_kind::appended) {  // the local text extended, or a fetch (append.hpp)
        auto a = live_apply_append(ctx, tx, fx, run, *cur, e, now, out);
        if (!a) return unexpected{std::move(a).error()};
        return *a ? live_step::applied : live_step::fetch;
    }
    const bool whole = *cur && e.replaces == (*cur)->version;
    if (!whole) return live_step::fetch;
    if (auto a = apply_server_record(ctx, tx, fx, run, alone, e.record, now, out); !a) return unexpected{a.error()};
    return live_step::applied;
}

/// Moves the stored pull cursor for event `e`, reflected locally now: to its
/// cursor if it is contiguous with the stored one (and on through events
/// applied ahead), else notes its step for later.
template <class Tx>
result<void> live_cursor(Tx& tx, live_inbox& inbox, const live_event& e) {
    auto stored = tx.get_meta(pull_cursor_key);
    if (!stored) return unexpected{std::move(stored).error()};
    const std::string cursor = stored->value_or("");
    const bool contiguous = e.previous_cursor == cursor;
    std::string next = inbox.step(cursor, e, contiguous);
    if (next == cursor) return {};
    inbox.count([](live_status& s) { ++s.cursor_advances; });
    return tx.set_meta(pull_cursor_key, next);
}

/// One transaction: `body(tx, fx)` and the cursor step of `e` when the body
/// says the event is reflected (`applied` or `duplicate`).
template <class Ctx, class Body>
result<live_step> live_transact(Ctx& ctx, live_inbox& inbox, pull_run& run, const live_event& e, Body body) {
    auto fx = ctx.shell.make_effects();
    live_step step = live_step::applied;
    auto done = ctx.store.transact([&](auto& tx) -> result<void> {
        auto s = body(tx, fx);
        if (!s) return unexpected{std::move(s).error()};
        step = *s;
        if (step != live_step::fetch) {
            if (auto c = live_cursor(tx, inbox, e); !c) return c;
        }
        if (!run.refetch_changed) return {};
        return tx.set_meta(refetch_key, format_refetch(run.refetch));
    });
    relabel_live(fx);
    ctx.shell.deliver(fx, done.has_value());
    if (!done) return unexpected{std::move(done).error()};
    run.refetch_changed = false;
    run.back_in_time = false;  // a pull raced ahead of this event: nothing to restart here
    return step;
}

/// The authoritative record for an event that showed a gap or a missing
/// record, fetched once per drain (`fetched`) and applied; a record the
/// server no longer has is applied as the event's deletion. A failed fetch
/// leaves the event to the next pull (the cursor does not pass it).
template <class Ctx>
result<void> live_fetch(Ctx& ctx, live_inbox& inbox, pull_run& run, std::map<std::string, bool>& fetched,
                        const live_event& e, pass_result& out) {
    using entity_type = typename Ctx::entity_type;
    const std::string& sid = e.record.server_id;
    if (auto was = fetched.find(sid); was != fetched.end()) {
        if (!was->second) {  // its fetch failed: left to the next pull, as that one was
            inbox.count([](live_status& st) { ++st.unrepaired; });
            return {};
        }
        // Fetched in this drain, after this event was sent: the fetch answered for it.
        auto s = live_transact(ctx, inbox, run, e, [](auto&, auto&) -> result<live_step> { return live_step::duplicate; });
        if (!s) return unexpected{std::move(s).error()};
        inbox.count([](live_status& st) { ++st.covered; });
        return {};
    }
    inbox.count([](live_status& s) { ++s.fetches; });
    auto got = ctx.transport.fetch(collection_of<entity_type>(), sid);  // no lock held
    fetched[sid] = got || got.error().code == errc::not_found;
    if (!fetched[sid]) {
        inbox.count([](live_status& s) { ++s.unrepaired; });
        ctx.shell.log(log_level::warning, "live event for " + sid + " not applied: fetch failed: " + got.error().message);
        return {};
    }
    if (got && got->server_id != sid) {
        fetched[sid] = false;
        inbox.count([](live_status& s) { ++s.unrepaired; });
        ctx.shell.log(log_level::warning, "fetch of " + sid + " answered another record (" + got->server_id + ")");
        return {};
    }
    if (got) {
        if (auto d = learn_creates_in_doubt(ctx, run, *got); !d) return d;
    }
    const auto now = ctx.clock.now();
    auto done = live_transact(ctx, inbox, run, e, [&](auto& tx, auto& fx) -> result<live_step> {
        std::unordered_set<std::string> alone;
        run.fetching = true;
        auto a = got ? apply_server_record(ctx, tx, fx, run, alone, *got, now, out)
                     : apply_tombstone(ctx, tx, fx, run, alone, e.as_tombstone(), now, out);
        run.fetching = false;
        if (!a) return unexpected{a.error()};
        return live_step::applied;
    });
    if (!done) return unexpected{std::move(done).error()};
    inbox.count([](live_status& s) { ++s.applied; });
    return {};
}

/// One event: ignored (another collection, no server id), applied,
/// dropped as a duplicate, or repaired by a fetch (its record's first in this
/// drain; the events after it are applied again on what it brought).
template <class Ctx>
result<void> live_event_pass(Ctx& ctx, live_inbox& inbox, pull_run& run, std::map<std::string, bool>& fetched,
                             const live_event& e, pass_result& out) {
    using entity_type = typename Ctx::entity_type;
    if (e.collection != collection_of<entity_type>() || e.record.server_id.empty() ||
        (e.record.id && e.record.id->is_nil())) {
        inbox.count([](live_status& s) { ++s.ignored; });
        return {};
    }
    if (!e.record.id) {
        if (auto d = learn_creates_in_doubt(ctx, run, e.record); !d) return d;
    }
    const auto now = ctx.clock.now();
    auto step = live_transact(ctx, inbox, run, e,
                              [&](auto& tx, auto& fx) { return live_apply(ctx, tx, fx, run, e, now, out); });
    if (!step) return unexpected{std::move(step).error()};
    if (*step == live_step::fetch) return live_fetch(ctx, inbox, run, fetched, e, out);
    inbox.count([&](live_status& s) { ++(*step == live_step::applied ? s.applied : s.duplicates); });
    return {};
}

/// The pull pass, after which the events queued before it began are settled
/// by it if it asked the server at all: applied after it, a stale one (the
/// create of a record since deleted, never held here) would bring back what
/// the pull saw deleted. What the pull did not reach (it failed on the way)
/// the next pull brings; a pull held back by its backoff settles nothing.
/// A pull that went out and met no failure also repairs an overflow of the
/// inbox before it began (`live_inbox::repaired`).
template <class Ctx>
[[nodiscard]] pass_result run_pull_covering(Ctx& ctx, live_inbox& inbox) {
    const auto mark = inbox.mark();
    const auto now = ctx.clock.now();
    const auto not_before = ctx.pull_wait.not_before(now);
    auto out = run_pull(ctx);
    if (!not_before || *not_before <= now) {
        inbox.cover(mark);
        if (out.status && !out.report.failure) inbox.repaired(mark);
    }
    return out;
}

/// The live pass of an inbox that overflowed: the catch-up pull from the
/// stored cursor, in place of the events (those queued since the overflow
/// are settled by it, `run_pull_covering`). Logged; a pull that fails leaves
/// the inbox catching up, for the next live pass or sync.
template <class Ctx>
[[nodiscard]] pass_result run_live_catch_up(Ctx& ctx, live_inbox& inbox) {
    const auto st = inbox.status();
    ctx.shell.log(log_level::warning, "live inbox overflowed (" + std::to_string(st.overflow_dropped) +
                                          " events dropped in " + std::to_string(st.overflows) +
                                          " overflows): pulling from the cursor");
    return run_pull_covering(ctx, inbox);
}

/// The live pass: every queued event, in the order the feed sent them (after
/// an overflow of the inbox, the catch-up pull instead). While
/// a full resync is under way the events are dropped (the resync pulls
/// everything). Stops (and keeps the rest queued) when sync may not go on.
template <class Ctx>
[[nodiscard]] pass_result run_live(Ctx& ctx, live_inbox& inbox) {
    if (inbox.catching_up()) return run_live_catch_up(ctx, inbox);
    pass_result out;
    auto events = inbox.take();
    if (events.empty()) return out;
    pull_run run;
    if (auto meta = load_pull_meta(ctx, run); !meta) {
        inbox.put_back(std::move(events));
        out.status = unexpected{std::move(meta).error()};
        return out;
    }
    if (run.resync) {
        inbox.count([n = events.size()](live_status& s) { s.ignored += n; });
        return out;
    }
    std::map<std::string, bool> fetched;  // fetched in this drain (once per record): whether it answered
    while (!events.empty()) {
        if (!ctx.shell.may_sync()) break;
        live_event e = std::move(events.front());
        events.pop_front();
        if (auto a = live_event_pass(ctx, inbox, run, fetched, e, out); !a) {
            out.status = a;
            break;
        }
    }
    if (!events.empty()) inbox.put_back(std::move(events));
    return out;
}

}  // namespace tether::detail
