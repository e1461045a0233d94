#pragma once

// The live modes: the devices never call sync() themselves. A scheduler per
// device (engine/scheduler.hpp, under the manual clock, driven with
// run_due()) runs every sync, for its triggers: periodic (live only),
// after a write, a reconnect (and the catch-up after each follow), a retry
// falling due, and the live pass over the events the feed delivers. The feed
// has every fault: drops, duplicates, reorders, delays, cut subscriptions
// (followed again after the scheduler's jittered backoff).
//
// live-nopoll turns periodic pulls off: the devices live on events and on the
// catch-up pulls that follow reconnects and re-follows. Its quiet phase cuts
// every subscription once (a feed reset): what dropped events left out comes
// back through the catch-up alone.
//
// Each operation of a device, after 0-2 s: create 24%, update 40% (1 in 40 a
// no-op), remove 10%, reset_failed 4%, restart 2% (40% of them crash in the
// device's next push), clock jump 1.5%, online/offline 2%, log out 1%,
// (un)poison a record 1.5%, pause 2% (resume: 30% per operation while
// paused), a feed cut of every subscription 0.5%, an append to a record's
// title 4% (live_append.hpp), idle otherwise. After each
// operation every scheduler runs what is due, until none has anything due.
#include "live_append.hpp"
#include "live_invariants.hpp"
#include "workload.hpp"

#include <array>
#include <memory>
#include <vector>

namespace tether_sim {

template <class M>
struct live_device;

/// A device's scheduler target: its engine (rebuilt by restarts), with the
/// sim's bookkeeping around every run.
template <class M>
struct device_target {
    world<M>* w = nullptr;
    client<M>* cl = nullptr;
    live_device<M>* dev = nullptr;

    tether::result<tether::sync_report> sync(tether::sync_trigger why);
    tether::result<tether::sync_report> apply_live();
    tether::result<void> follow(std::function<void()> notify);
    void unfollow() { cl->engine->unfollow(); }
    [[nodiscard]] tether::live_status live_status() const { return cl->engine->live_status(); }
    [[nodiscard]] tether::result<std::optional<tether::timestamp>> earliest_next_attempt() const {
        return cl->engine->earliest_next_attempt();
    }
    void on_sync_wanted(std::function<void(tether::sync_trigger)> fn) { cl->engine->on_sync_wanted(std::move(fn)); }
};

/// What the live modes keep per device beside its `client`.
template <class M>
struct live_device {
    device_target<M> target;
    std::unique_ptr<tether::scheduler<device_target<M>, tether::manual_clock>> sched;
    tether::subscription live_sub;                 ///< invariant 14's watcher
    std::map<local_id, std::uint64_t> versions;    ///< each record's version before the change (14)
    std::uint64_t follows = 0;
    bool paused = false;
    bool owes_pull = false;  ///< its last sync found its pull held back (not quiet until one goes out)
    bool synced = false;     ///< a sync ran in this quiet round
};

/// The live modes' part of a seed's world.
template <class M>
struct live_world {
    world<M>& w;
    bool polling = true;
    std::array<live_device<M>, client_count> dev{};
    append_book appends;  ///< the append op's chains (invariant 16)
};

template <class M>
void count(world<M>& w, fault f) {
    ++w.st.faults[static_cast<std::size_t>(f)];
}

template <class M>
tether::result<tether::sync_report> device_target<M>::sync(tether::sync_trigger why) {
    using T = tether::sync_trigger;
    count(*w, why == T::scheduled     ? fault::run_scheduled
              : why == T::after_write ? fault::run_after_write
              : why == T::retry_due   ? fault::run_retry_due
                                      : fault::run_reconnect);
    w->pushing = cl->index;
    w->rerun_causes = 0;
    struct done_pushing {
        world<M>* w;
        ~done_pushing() { w->pushing = -1; }
    } guard{w};
    auto r = cl->engine->sync(why);  // a crash armed for this device throws from its push hook
    ++w->st.syncs;
    if (!r) w->fail(0, "c" + std::to_string(cl->index) + " sync returned an error: " + describe(r.error()));
    else {
        w->st.pushed += r->pushed;
        dev->owes_pull = r->retry_at.has_value();
        dev->synced = true;
    }
    check_nothing_left(*w, *cl, r);
    note(*w, "c" + std::to_string(cl->index) + " run " + std::string{tether::to_string(why)} + " -> " + format(r));
    return r;
}

template <class M>
tether::result<tether::sync_report> device_target<M>::apply_live() {
    count(*w, fault::run_event);
    if (cl->engine->live_status().catching_up) count(*w, fault::live_overflow);
    auto& log = cl->engine->transport().log();
    log.fetched.clear();
    log.in_pass = true;
    const auto before = cl->engine->live_status();
    auto note_16 = append_pass_begin(*w, *cl, before);
    auto r = cl->engine->apply_live();
    log.in_pass = false;
    const auto after = cl->engine->live_status();
    check_live_fetches(*w, cl->index, log);
    check_append_pass(*w, *cl, note_16, after, r && !r->failure && !r->skipped);
    w->st.live_applied += after.applied - before.applied;
    w->st.live_duplicates += after.duplicates - before.duplicates;
    if (!r) w->fail(0, "c" + std::to_string(cl->index) + " apply_live returned an error: " + describe(r.error()));
    note(*w, "c" + std::to_string(cl->index) + " run event -> " + format(r));
    return r;
}

template <class M>
tether::result<void> device_target<M>::follow(std::function<void()> notify) {
    if (++dev->follows > 1) count(*w, fault::refollow);
    auto f = cl->engine->follow(std::move(notify));
    note(*w, "c" + std::to_string(cl->index) + " follow -> " + (f ? std::string{"ok"} : describe(f.error())));
    return f;
}

/// Device `i`'s scheduler over its (new) engine, following the feed.
template <class M>
void make_scheduler(live_world<M>& lw, int i) {
    auto& w = lw.w;
    auto& cl = w.clients[static_cast<std::size_t>(i)];
    auto& d = lw.dev[static_cast<std::size_t>(i)];
    const auto salt = w.seed * 1000003ull + static_cast<std::uint64_t>(i) * 101ull +
                      static_cast<std::uint64_t>(cl.restarts);
    tether::scheduler_options o;
    o.period = ms{w.random.range(3000, 20000)};
    o.periodic = lw.polling;
    o.reconnect_spread = ms{w.random.range(0, 3000)};
    o.spread_seed = mix64(salt ^ 0x5B8Eull) | 1u;
    o.down_backoff = tether::exponential_backoff{.base = ms{2000}, .factor = 2.0, .cap = ms{30000}, .max_attempts = 0,
                                                 .jitter = tether::jitter::equal, .seed = mix64(salt ^ 0xD0A7ull) | 1u};
    o.live_backoff = tether::exponential_backoff{.base = ms{w.random.range(200, 2000)}, .factor = 2.0,
                                                 .cap = ms{20000}, .max_attempts = 0, .jitter = tether::jitter::equal,
                                                 .seed = mix64(salt ^ 0x11FEull) | 1u};
    d.target = device_target<M>{&w, &cl, &d};
    d.live_sub = cl.engine->watch(
        [&w, &d, i](const tether::change<typename M::entity>& ch) { check_live_change(w, i, d.versions, ch); });
    d.sched = std::make_unique<tether::scheduler<device_target<M>, tether::manual_clock>>(d.target, w.clock, o);
    if (d.paused) d.sched->pause();
    d.sched->follow();
}

/// A restart of device `i`: its scheduler goes with its engine (which
/// unfollows the feed), both come back over the same storage.
template <class M>
void live_restart(live_world<M>& lw, int i) {
    auto& d = lw.dev[static_cast<std::size_t>(i)];
    d.sched.reset();
    d.live_sub.reset();
    restart(lw.w, lw.w.clients[static_cast<std::size_t>(i)]);
    make_scheduler(lw, i);
}

/// Every scheduler runs what is due now (delayed events due first), round
/// after round while any ran something (a run's changes are others' events).
template <class M>
void drive(live_world<M>& lw) {
    auto& w = lw.w;
    w.server.events().deliver_due();
    for (int pass = 0; pass < 16; ++pass) {
        bool any = false;
        for (int i = 0; i < client_count; ++i) {
            try {
                any = lw.dev[static_cast<std::size_t>(i)].sched->run_due() > 0 || any;
            } catch (const sim_crash&) {
                ++w.st.crashes;
                note(w, "c" + std::to_string(i) + " crashed mid-push; restarted");
                live_restart(lw, i);
                any = true;
            }
        }
        if (!any) return;
    }
}

/// One operation of device `i` (never a sync: the scheduler runs them).
template <class M>
std::string live_op(live_world<M>& lw, int i) {
    auto& w = lw.w;
    auto& cl = w.clients[static_cast<std::size_t>(i)];
    auto& d = lw.dev[static_cast<std::size_t>(i)];
    auto& e = *cl.engine;
    if (!e.authenticated() && w.random.chance(0.4)) {
        e.set_authenticated(true);
        return "re-authenticate";
    }
    if (!e.online() && w.random.chance(0.25)) {
        e.set_online(true);
        return "back online";
    }
    if (d.paused && w.random.chance(0.3)) {
        d.paused = false;
        d.sched->resume();
        return "resume";
    }
    const auto u = w.random.below(1000);
    if (u < 240) return op_create(w, cl);
    if (u < 640) {
        if (auto id = pick(w, cl, live)) return u < 250 ? op_noop_update(w, cl, *id) : op_update(w, cl, *id);
        return op_create(w, cl);
    }
    if (u < 740) {
        if (auto id = pick(w, cl, live)) return op_remove(w, cl, *id);
        return "remove (no records)";
    }
    if (u < 780) return op_reset_failed(w, cl);
    if (u < 800) {
        if (w.random.chance(0.4)) {
            cl.crash_armed = true;
            return "crash armed: the device dies in its next push";
        }
        live_restart(lw, i);
        return "restart";
    }
    if (u < 815) return op_clock_jump(w);
    if (u < 835) {
        e.set_online(!e.online());
        return e.online() ? "online" : "offline";
    }
    if (u < 845) {
        e.set_authenticated(false);
        return "log out";
    }
    if (u < 860) return op_poison(w);
    if (u < 880) {
        d.paused = true;
        d.sched->pause();
        return "pause (the app goes to the background)";
    }
    if (u < 885) {
        w.server.events().end_subscriptions("alice", collection_name(w));
        return "the feed cuts every subscription";
    }
    if (u < 925) return op_append(w, cl, lw.appends);
    return "idle";
}

/// The live modes' quiet phase: faults stop, every device comes back (online,
/// logged in, resumed), and the clock moves on in rounds of the longest wait
/// (a backoff cap) while the schedulers run, until a round changes nothing,
/// nothing waits to go up, and every device follows its feed again.
template <class M>
void live_quiesce(live_world<M>& lw) {
    auto& w = lw.w;
    w.chaos = false;
    w.server.clear_random_faults();
    w.server.events().clear_random_faults();
    for (const auto& id : w.poisoned) w.server.unpoison(id);
    w.poisoned.clear();
    for (int i = 0; i < client_count; ++i) {
        auto& cl = w.clients[static_cast<std::size_t>(i)];
        auto& d = lw.dev[static_cast<std::size_t>(i)];
        cl.crash_armed = false;
        cl.engine->set_online(true);
        cl.engine->set_authenticated(true);
        if (d.paused) {
            d.paused = false;
            d.sched->resume();
        }
        if (!w.reset_failed_at_end) continue;
        std::vector<local_id> failed;
        for (const auto& [id, m] : cl.mirror)
            if (m.status == tether::sync_status::failed) failed.push_back(id);
        for (const auto& id : failed) {
            if (!write(cl, [&] { return cl.engine->reset_failed(id); })) {
                w.fail(0, "c" + std::to_string(i) + " quiet-phase reset_failed of " + w.name(id) + " failed");
            }
        }
    }
    if (!lw.polling) w.server.events().end_subscriptions("alice", collection_name(w));  // the feed resets
    run_step(w, w.clients[0], "quiet phase begins");
    const auto t0 = w.clock.now();
    const ms round_step = std::max(w.cap, ms{30000}) + ms{1};
    constexpr int max_rounds = 50;
    int round = 1;
    bool quiet = false;
    for (; round <= max_rounds && w.violations.empty(); ++round) {
        const auto before = w.change_events;
        for (auto& d : lw.dev) d.synced = false;
        w.clock.advance(round_step);
        drive(lw);
        run_step(w, w.clients[0], "quiet round " + std::to_string(round));
        check_step(w);
        bool settled = w.change_events == before && nothing_pending(w);
        for (int i = 0; i < client_count; ++i) {
            const auto& d = lw.dev[static_cast<std::size_t>(i)];
            // Polling: every device pulled in the round (a 429's Retry-After may hold a
            // periodic run past one round); either way no pull is still held back.
            settled = settled && !d.owes_pull && (d.synced || !lw.polling) &&
                      w.clients[static_cast<std::size_t>(i)].engine->live_status().following;
        }
        if (settled) {
            quiet = true;
            break;
        }
    }
    w.st.quiet_rounds = static_cast<std::uint64_t>(round);
    w.st.quiet_time_ms = (w.clock.now() - t0).count();
    if (!quiet) w.fail(3, "did not converge within " + std::to_string(max_rounds) + " quiet rounds");
}

/// The feed's faults of the chaos phase, into the seed's counts.
inline void live_faults(const tether::live_fault_counts& f, std::array<std::uint64_t, fault_kinds>& fs) {
    fs[static_cast<std::size_t>(fault::live_drop)] += f.dropped;
    fs[static_cast<std::size_t>(fault::live_duplicate)] += f.duplicated;
    fs[static_cast<std::size_t>(fault::live_reorder)] += f.reordered;
    fs[static_cast<std::size_t>(fault::live_delay)] += f.delayed;
    fs[static_cast<std::size_t>(fault::live_cut)] += f.ended;
}

/// One seed of a live mode.
template <class M>
seed_result run_live_seed(std::uint64_t seed, const config& cfg, mode md) {
    world<M> w{seed, cfg};
    w.mode = md;
    setup(w);
    live_world<M> lw{w, md == mode::live, {}, {}};
    const tether::live_fault_rates rates{.drop = 0.04,
                                         .duplicate = 0.04,
                                         .reorder = 0.04,
                                         .delay = 0.04,
                                         .end_subscription = 0.015,
                                         .delay_for = ms{w.random.range(500, 8000)}};
    w.server.events().set_random_faults(rates, mix64(seed ^ 0x11FEull));
    w.trace.add(std::string{lw.polling ? "polling" : "no polling"} + " delay " + std::to_string(rates.delay_for.count()));
    for (int i = 0; i < client_count; ++i) make_scheduler(lw, i);
    drive(lw);

    std::vector<int> order;
    for (int i = 0; i < client_count; ++i) order.insert(order.end(), static_cast<std::size_t>(cfg.ops), i);
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[w.random.below(i)]);
    for (int c : order) {
        ++w.step;
        w.clock.advance(ms{w.random.range(0, 2000)});
        run_step(w, w.clients[static_cast<std::size_t>(c)], live_op(lw, c));
        drive(lw);
        ++w.st.operations;
        check_step(w);
        if (w.step % 16 == 0) check_deep(w);
        if (!w.violations.empty()) break;
    }
    const auto f = w.server.faults();
    auto& fs = w.st.faults;
    fs[static_cast<std::size_t>(fault::drop_request)] += f.dropped_requests;
    fs[static_cast<std::size_t>(fault::drop_response)] += f.dropped_responses;
    fs[static_cast<std::size_t>(fault::transient)] += f.transient;
    fs[static_cast<std::size_t>(fault::rate_limited)] += f.rate_limited;
    fs[static_cast<std::size_t>(fault::unauthorized)] += f.unauthorized;
    fs[static_cast<std::size_t>(fault::reject_op)] += f.rejected_ops;
    live_faults(w.server.events().faults(), fs);
    if (w.violations.empty()) {
        check_deep(w);
        live_quiesce(lw);
        check_deep(w);
        check_final_classic(w);
        check_fields(w);
        check_append_chains(w, lw.appends);
    }
    for (auto& d : lw.dev) d.sched.reset();  // before the engines they drive
    w.trace.add(static_cast<std::uint64_t>(w.violations.size()));
    for (const auto& v : w.violations) w.trace.add(v.what);
    return seed_result{w.trace.h, std::move(w.violations), w.st, w.policy};
}

}  // namespace tether_sim
