#pragma once

// The simulator's workload: per-seed setup, the random operations of the chaos
// phase (with faults), the push hook (edits while a push is in flight, crashes
// mid-push), the quiet phase, and one seed's whole run.
//
// Per seed (drawn from the seed): backoff base/cap/jitter, transport batch,
// engine push batch and pull page size, the 429's Retry-After (below, at or
// above the cap), whether failed records are reset before convergence, and
// the server's change feed (20% of seeds list everything instead).
//
// Each operation of a client, after 0-2 s of simulated time: create 17%,
// update 30% (1 in 30 of them changes nothing and must be a no-op), remove 8%,
// reset_failed 4% (of a failed record, else of another one, which must be
// refused), sync 28%, push 2%, pull 2%, restart 1.5% (40% of them crash in the
// middle of a push: the push hook throws), clock jump 1%, online/offline 1%,
// log out 0.5%, (un)poison a record on the server 1%, idle 4%. An offline or
// logged-out client (also after a 401) comes back with probability 25%/40%
// per operation. Inside every push that reached the server, the pushing client
// writes (35%: mostly an update of a record likely in flight, else a remove or
// a create) and sometimes calls sync() again (5%: must be refused as
// already_running).
#include "hostile.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace tether_sim {

/// Thrown from the push hook: the app dies between the transport call and its outcome.
struct sim_crash {};

/// An acknowledged local write: the classic model's latest write, the per-field
/// model (`before`: the value an update started from; null for a create).
template <class M>
void ack(world<M>& w, int c, const local_id& id, typename world<M>::write_type::kind k,
         const typename M::entity& value, const nlohmann::json& before = nullptr) {
    using write_type = typename world<M>::write_type;
    w.latest[id] = write_type{++w.seq, c, k, value};
    model_write(w, c, id, before, k == write_type::kind::remove ? nlohmann::json{} : tether::entity_ops<typename M::entity>::to_json(value),
                k == write_type::kind::remove);
    static constexpr std::array<std::string_view, 3> kinds{"create", "update", "remove"};
    w.history[canon(w, id)].push_back("seq " + std::to_string(w.seq) + ": c" + std::to_string(c) + " " +
                            std::string{kinds[static_cast<std::size_t>(k)]} +
                            (k == write_type::kind::remove ? std::string{} : " " + describe(value)));
}

template <class M>
void make_engine(world<M>& w, client<M>& cl) {
    const int i = cl.index;
    const auto salt =
        w.seed * 1000003ull + static_cast<std::uint64_t>(i) * 101ull + static_cast<std::uint64_t>(cl.restarts);
    tether::exponential_backoff backoff{.base = w.base,
                                        .factor = 2.0,
                                        .cap = w.cap,
                                        .max_attempts = 5,
                                        .jitter = w.jitter,
                                        .seed = mix64(salt ^ 0xB0FFull) | 1u};
    tether::engine_options options{
        .id_seed = mix64(salt ^ 0x1D5ull), .pull_limit = w.pull_limit, .push_batch = w.push_batch};
    auto transport = [&] {  // a mode's own transport (the live modes' probe), else the loopback one
        if constexpr (requires { M::transport(w); }) return M::transport(w);
        else return tether::loopback_transport{w.server, "alice", w.max_batch};
    }();
    if constexpr (requires { typename M::policy; }) {
        cl.engine = std::make_unique<typename M::engine>(cl.storage, transport, w.clock, backoff,
                                                         typename M::policy{w.policy, &w.decision_sink, i}, options);
    } else {
        cl.engine = std::make_unique<typename M::engine>(cl.storage, transport, w.clock, backoff, options);
    }
    cl.engine->on_transition([&w, i](const tether::transition& t) { check_transition(w, i, t); });
    cl.engine->on_log([&w, i](tether::log_level level, std::string_view m) {
        if (level >= tether::log_level::error) {
            w.fail(0, "c" + std::to_string(i) + " logged an error: " + std::string{m});
        }
    });
    cl.sub = cl.engine->watch([&w, i](const tether::change<typename M::entity>& ch) { check_change(w, i, ch); });
}

/// The sqlite mode's storage for a device on SQLite: its file, (re)opened.
template <class M>
void open_sqlite(world<M>& w, client<M>& cl) {
    if constexpr (std::is_same_v<typename M::storage_type, sim_storage>) {
        tether::sqlite_options opts;
        opts.synchronous = tether::sqlite_options::sync_mode::normal;  // an app crash is what the sim makes
        auto db = tether::sqlite_database::open(cl.db_path, opts);
        if (!db) {
            w.fail(0, "c" + std::to_string(cl.index) + " cannot open " + cl.db_path + ": " + describe(db.error()));
            return;
        }
        cl.storage = sim_storage{std::move(*db)};
    }
}

template <class M>
void restart(world<M>& w, client<M>& cl) {
    cl.sub.reset();
    cl.engine.reset();
    if (!cl.db_path.empty()) {  // the app's process ends: its database closes, the next one opens the file
        cl.storage = typename M::storage_type{};
        open_sqlite(w, cl);
        ++w.st.faults[static_cast<std::size_t>(fault::reopen)];
    }
    ++cl.restarts;
    cl.crash_armed = false;
    make_engine(w, cl);
    ++w.st.faults[static_cast<std::size_t>(fault::restart)];
}

/// A random record of the client satisfying `pred`, if any.
template <class M, class Pred>
std::optional<local_id> pick(world<M>& w, const client<M>& cl, Pred pred) {
    std::vector<local_id> ids;
    for (const auto& [id, m] : cl.mirror)
        if (pred(m)) ids.push_back(id);
    if (ids.empty()) return std::nullopt;
    return ids[w.random.below(ids.size())];
}

inline constexpr auto live = [](const auto& m) { return !m.deleted; };

// ---- local writes ------------------------------------------------------------

/// Runs a local write with `cl.written` kept up to date *before* the watch check
/// sees the write's own event (the id of a create is known only inside the call).
template <class M, class F>
auto write(client<M>& cl, F&& f) {
    cl.written_pending = true;
    auto r = std::forward<F>(f)();
    cl.written_pending = false;
    return r;
}

template <class M>
std::string op_create(world<M>& w, client<M>& cl) {
    const auto v = ++w.next_value;
    auto job = sim_entity<typename M::entity>::make(v);
    if (w.big_writes > 0 && w.random.chance(w.big_writes)) sim_entity<typename M::entity>::make_big(job, w.value_limit);
    const auto prio = static_cast<tether::priority>(w.random.below(8) < 6 ? 1 : w.random.below(4));
    auto r = write(cl, [&] { return cl.engine->create(job, prio); });
    if (!r) {
        w.fail(0, "c" + std::to_string(cl.index) + " create failed: " + describe(r.error()));
        return "create -> " + describe(r.error());
    }
    w.created.insert(r->id);
    ack(w, cl.index, r->id, world<M>::write_type::kind::create, r->value);
    return "create " + w.name(r->id) + " " + describe(job) + " prio " + std::string{tether::to_string(prio)};
}

template <class M>
std::string op_update(world<M>& w, client<M>& cl, const local_id& id) {
    using E = typename M::entity;
    auto mask = 1 + w.random.below(sim_entity<E>::all_fields);
    if (w.knobs & knob_filler) {
        // The server owns that field once a create of the record may have reached it. Before
        // the create first goes out, the device may still write it: the create carries it and
        // the server fills from it, so that write is in the record's dirty fields but is part
        // of what the create's answer acknowledges (no local change to lay over the answer).
        auto cur = cl.engine->get(id);
        if (!cur || cur->server_id || cur->last_attempt_at) mask &= ~sim_entity<E>::server_field_bit;
    }
    if (mask == 0) mask = 1;
    const bool big = w.big_writes > 0 && w.random.chance(w.big_writes);
    const auto v = ++w.next_value;
    nlohmann::json before;
    auto r = write(cl, [&] {
        return cl.engine->update(id, [&](E& j) {
            before = tether::entity_ops<E>::to_json(j);
            sim_entity<E>::edit(j, mask, v);
            if (big) sim_entity<E>::make_big(j, w.value_limit);
        });
    });
    if (!r) {
        w.fail(0, "c" + std::to_string(cl.index) + " update of " + w.name(id) + " failed: " + describe(r.error()));
        return "update " + w.name(id) + " -> " + describe(r.error());
    }
    ack(w, cl.index, id, world<M>::write_type::kind::update, r->value, before);
    return "update " + w.name(id) + " -> " + describe(r->value) + " " + std::string{tether::to_string(r->status)};
}

/// An update that changes nothing: a no-op (no event, status and rev unchanged).
template <class M>
std::string op_noop_update(world<M>& w, client<M>& cl, const local_id& id) {
    const auto events = w.change_events;
    const auto before = cl.mirror.at(id);
    auto r = cl.engine->update(id, [](typename M::entity&) {});
    if (!r || w.change_events != events || r->status != before.status || r->version != before.version) {
        w.fail(0, "c" + std::to_string(cl.index) + " update of " + w.name(id) + " with no change was not a no-op");
    }
    return "update " + w.name(id) + " with no change";
}

template <class M>
std::string op_remove(world<M>& w, client<M>& cl, const local_id& id) {
    auto r = write(cl, [&] { return cl.engine->remove(id); });
    if (!r) {
        w.fail(0, "c" + std::to_string(cl.index) + " remove of " + w.name(id) + " failed: " + describe(r.error()));
        return "remove " + w.name(id) + " -> " + describe(r.error());
    }
    ack(w, cl.index, id, world<M>::write_type::kind::remove, typename M::entity{});
    return "remove " + w.name(id);
}

template <class M>
std::string op_reset_failed(world<M>& w, client<M>& cl) {
    if (auto id = pick(w, cl, [](const auto& m) { return m.status == tether::sync_status::failed; })) {
        auto r = write(cl, [&] { return cl.engine->reset_failed(*id); });
        if (!r) {
            w.fail(0, "c" + std::to_string(cl.index) + " reset_failed of failed " + w.name(*id) + ": " +
                          describe(r.error()));
        }
        return "reset_failed " + w.name(*id) + (r ? " -> " + std::string{tether::to_string(r->status)} : " -> error");
    }
    if (auto id = pick(w, cl, [](const auto&) { return true; })) {
        auto r = cl.engine->reset_failed(*id);
        if (r || r.error().code != tether::errc::invalid_state) {
            w.fail(0, "c" + std::to_string(cl.index) + " reset_failed of non-failed " + w.name(*id) +
                          " did not answer invalid_state");
        }
        return "reset_failed " + w.name(*id) + " (not failed) -> refused";
    }
    return "reset_failed (no records)";
}

// ---- sync and the push hook ----------------------------------------------------------

inline std::string format(const tether::result<tether::sync_report>& r) {
    if (!r) return "error " + describe(r.error());
    if (r->skipped) return "skipped " + std::string{tether::to_string(*r->skipped)};
    std::string s;
    auto field = [&](std::string_view n, std::size_t v) {
        if (v) s += " " + std::string{n} + "=" + std::to_string(v);
    };
    field("pushed", r->pushed);
    field("pulled", r->pulled);
    field("conflicts", r->conflicts);
    field("retrying", r->retrying);
    field("failed", r->failed);
    field("removed", r->removed);
    if (r->failure) s += " failure=" + describe(*r->failure);
    return s.empty() ? "nothing" : s.substr(1);
}

/// Inside a push of client `w.pushing`, after the server applied it and before
/// its response returns: crash, write locally, or try a nested sync.
template <class M>
void on_push(world<M>& w) {
    if (!w.chaos || w.pushing < 0) return;
    auto& cl = w.clients[static_cast<std::size_t>(w.pushing)];
    if (cl.crash_armed) {
        cl.crash_armed = false;
        note(w, "in-flight: CRASH");
        throw sim_crash{};
    }
    if (w.random.chance(0.35)) {
        auto id = pick(w, cl, [](const auto& m) {
            return !m.deleted && (m.status == tether::sync_status::pending || m.status == tether::sync_status::error);
        });
        if (!id) id = pick(w, cl, live);
        const auto u = w.random.below(20);
        std::string what;
        if (!id || u == 0) what = op_create(w, cl);
        else if (u <= 3) what = op_remove(w, cl, *id);
        else what = op_update(w, cl, *id);
        ++w.st.faults[static_cast<std::size_t>(fault::edit_in_flight)];
        ++w.rerun_causes;
        note(w, "in-flight: " + what);
    }
    if (w.random.chance(0.05)) {
        auto r = cl.engine->sync();
        ++w.rerun_causes;
        if (!r || r->skipped != tether::skip_reason::already_running) {
            w.fail(0, "c" + std::to_string(cl.index) + " nested sync was not refused as already_running: " + format(r));
        }
        note(w, "in-flight: nested sync -> " + format(r));
    }
}

/// After a push or sync that ended without a failure: a write made while it
/// ran went up in a further round of the same call ("a trigger during a sync
/// is not lost"), unless the engine's bound on rounds (8) may have been hit.
template <class M>
void check_nothing_left(world<M>& w, client<M>& cl, const tether::result<tether::sync_report>& r) {
    if (!r || r->skipped || r->failure || w.rerun_causes >= 7) return;
    auto due = cl.engine->store().due(w.clock.now(), 1000);
    if (!due) return;
    for (const auto& rec : *due) {
        if (rec.status == tether::sync_status::pending || rec.status == tether::sync_status::pending_deletion) {
            w.fail(0, "c" + std::to_string(cl.index) + " " + w.name(rec.id) + " still " +
                          std::string{tether::to_string(rec.status)} + " after a push that met no failure");
            return;
        }
    }
}

/// 0: sync, 1: push only, 2: pull only.
template <class M>
std::string op_sync(world<M>& w, client<M>& cl, int which) {
    static constexpr std::array<std::string_view, 3> names{"sync", "push", "pull"};
    std::optional<tether::result<tether::sync_report>> r;
    w.pushing = cl.index;
    w.rerun_causes = 0;
    bool crashed = false;
    try {
        r = which == 0 ? cl.engine->sync() : which == 1 ? cl.engine->push() : cl.engine->pull();
    } catch (const sim_crash&) {
        crashed = true;
    }
    w.pushing = -1;
    ++w.st.syncs;
    const std::string head{names[static_cast<std::size_t>(which)]};
    if (crashed) {
        restart(w, cl);
        ++w.st.crashes;
        return head + " -> crashed mid-push; restarted";
    }
    if (!*r) w.fail(0, "c" + std::to_string(cl.index) + " " + head + " returned an error: " + describe(r->error()));
    else w.st.pushed += (*r)->pushed;
    if (which != 2) check_nothing_left(w, cl, *r);
    return head + " -> " + format(*r);
}

template <class M>
std::string op_restart(world<M>& w, client<M>& cl) {
    if (w.random.chance(0.4)) {
        cl.crash_armed = true;  // the next push that reaches the server kills the app before its outcome
        auto s = op_sync(w, cl, 0);
        if (!cl.crash_armed) return "crash-restart: " + s;
        cl.crash_armed = false;  // nothing was pushed: restart anyway
        restart(w, cl);
        return "crash-restart (no push happened): " + s + "; restarted";
    }
    restart(w, cl);
    return "restart";
}

template <class M>
std::string op_clock_jump(world<M>& w) {
    ++w.st.faults[static_cast<std::size_t>(fault::clock_jump)];
    if (w.cfg.clock_back && w.random.chance(0.3)) {
        const auto d = ms{w.random.range(1000, 3600000)};
        w.clock.advance(-d);
        return "clock jumps back " + std::to_string(d.count()) + " ms";
    }
    const auto d = ms{w.random.range(60000, 3 * 86400000)};
    w.clock.advance(d);
    return "clock jumps " + std::to_string(d.count()) + " ms";
}

template <class M>
std::string op_poison(world<M>& w) {
    if (!w.poisoned.empty() && (w.poisoned.size() >= 3 || w.random.chance(0.5))) {
        auto it = w.poisoned.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(w.random.below(w.poisoned.size())));
        const auto id = *it;
        w.server.unpoison(id);
        w.poisoned.erase(it);
        return "server unpoisons " + w.name(id);
    }
    if (w.created.empty()) return "poison (no records)";
    auto it = w.created.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(w.random.below(w.created.size())));
    w.server.poison(*it);
    w.poisoned.insert(*it);
    return "server poisons " + w.name(*it);
}

/// sqlite mode: two to four writes in one `sqlite_database::transact` (creates,
/// updates, removes); one batch in five is rolled back after its writes. The
/// writes are acknowledged only if the batch commits; watchers hear of them
/// only then (and never of a rolled-back one).
template <class M>
std::string op_batch(world<M>& w, client<M>& cl) {
    using E = typename M::entity;
    using kind = typename world<M>::write_type::kind;
    if constexpr (!std::is_same_v<typename M::storage_type, sim_storage>) {
        return "batch (no database)";
    } else {
        ++w.st.faults[static_cast<std::size_t>(fault::db_transact)];
        struct pending_ack {
            local_id id;
            kind what;
            E value;
            nlohmann::json before;
        };
        std::vector<pending_ack> acks;
        std::string what;
        const bool roll_back = w.random.chance(0.2);
        const auto n = 2 + w.random.below(3);
        const auto events = w.change_events;
        cl.written_pending = true;
        auto done = cl.storage.database().transact([&]() -> tether::result<void> {
            std::set<local_id> removed;  // the watch stream hears of the batch only after it commits
            for (std::uint64_t k = 0; k < n; ++k) {
                const auto u = w.random.below(10);
                auto id = pick(w, cl, live);
                if (id && removed.contains(*id)) id.reset();
                if (!id || u < 4) {
                    auto job = sim_entity<E>::make(++w.next_value);
                    auto r = cl.engine->create(job);
                    if (!r) return tether::unexpected{r.error()};
                    acks.push_back({r->id, kind::create, r->value, nullptr});
                    what += " create " + w.name(r->id);
                } else if (u < 9) {
                    const auto mask = 1 + w.random.below(sim_entity<E>::all_fields);
                    const auto v = ++w.next_value;
                    nlohmann::json before;
                    auto r = cl.engine->update(*id, [&](E& j) {
                        before = tether::entity_ops<E>::to_json(j);
                        sim_entity<E>::edit(j, mask, v);
                    });
                    if (!r) return tether::unexpected{r.error()};
                    acks.push_back({*id, kind::update, r->value, std::move(before)});
                    what += " update " + w.name(*id);
                } else {
                    auto r = cl.engine->remove(*id);
                    if (!r) return tether::unexpected{r.error()};
                    acks.push_back({*id, kind::remove, E{}, nullptr});
                    removed.insert(*id);
                    what += " remove " + w.name(*id);
                }
            }
            if (roll_back) return tether::unexpected{tether::make_error(tether::errc::invalid_state, "rolled back")};
            return {};
        });
        cl.written_pending = false;
        if (roll_back) {
            ++w.st.rollbacks;
            if (done || done.error().message != "rolled back") {
                w.fail(0, "c" + std::to_string(cl.index) + " db.transact did not roll back: " +
                              (done ? std::string{"committed"} : describe(done.error())));
            }
            if (w.change_events != events) {
                w.fail(0, "c" + std::to_string(cl.index) + " watchers heard of writes that rolled back");
            }
            // Nothing of it happened: the records are as before (the watch stream agrees, check_deep).
            return "batch rolled back:" + what;
        }
        if (!done) {
            w.fail(0, "c" + std::to_string(cl.index) + " db.transact failed: " + describe(done.error()));
            return "batch failed:" + what;
        }
        for (const auto& a : acks) {
            if (a.what == kind::create) w.created.insert(a.id);
            ack(w, cl.index, a.id, a.what, a.value, a.before);
        }
        return "batch committed:" + what;
    }
}

/// rich mode: a create or an update that writes NaN or an infinity must be
/// refused (`invalid_argument`, JSON cannot carry it) and change nothing.
template <class M>
std::string op_non_finite(world<M>& w, client<M>& cl) {
    using E = typename M::entity;
    ++w.st.faults[static_cast<std::size_t>(fault::non_finite)];
    const auto events = w.change_events;
    const std::string who = "c" + std::to_string(cl.index);
    auto id = pick(w, cl, live);
    if (!id || w.random.chance(0.3)) {
        auto bad = sim_entity<E>::make(++w.next_value);
        sim_entity<E>::poison(bad);
        auto r = write(cl, [&] { return cl.engine->create(bad); });
        if (r || r.error().code != tether::errc::invalid_argument || w.change_events != events) {
            w.fail(0, who + " a create of a non-finite value was not refused: " +
                          (r ? "created " + w.name(r->id) : describe(r.error())));
        }
        return "create with a non-finite value -> " + (r ? std::string{"created"} : describe(r.error()));
    }
    const auto before = cl.mirror.at(*id);
    auto r = write(cl, [&] { return cl.engine->update(*id, [](E& e) { sim_entity<E>::poison(e); }); });
    auto now = cl.engine->get(*id);
    if (r || r.error().code != tether::errc::invalid_argument || w.change_events != events || !now ||
        !(now->value == before.value) || now->status != before.status) {
        w.fail(0, who + " an update of " + w.name(*id) + " to a non-finite value was not refused, or changed it: " +
                      (r ? std::string{"updated"} : describe(r.error())));
    }
    return "update " + w.name(*id) + " to a non-finite value -> " + (r ? std::string{"updated"} : describe(r.error()));
}

/// One operation of client `cl`.
template <class M>
std::string op(world<M>& w, client<M>& cl) {
    auto& e = *cl.engine;
    if (!e.authenticated() && w.random.chance(0.4)) {
        e.set_authenticated(true);
        return "re-authenticate";
    }
    if (!e.online() && w.random.chance(0.25)) {
        e.set_online(true);
        return "back online";
    }
    const auto u = w.random.below(1000);
    if (u < 170) return op_create(w, cl);
    if (u < 470) {
        if (auto id = pick(w, cl, live)) return u < 180 ? op_noop_update(w, cl, *id) : op_update(w, cl, *id);
        return op_create(w, cl);
    }
    if (u < 550) {
        if (auto id = pick(w, cl, live)) return op_remove(w, cl, *id);
        return "remove (no records)";
    }
    if (u < 590) return op_reset_failed(w, cl);
    if (u < 870) return op_sync(w, cl, 0);
    if (u < 890) return op_sync(w, cl, 1);
    if (u < 910) return op_sync(w, cl, 2);
    if (u < 925) return op_restart(w, cl);
    if (u < 935) return op_clock_jump(w);
    if (u < 945) {
        e.set_online(!e.online());
        return e.online() ? "online" : "offline";
    }
    if (u < 950) {
        e.set_authenticated(false);
        return "log out";
    }
    if (u < 960) return op_poison(w);
    if ((w.knobs & knob_admin) && u < 975) return op_admin(w);
    if (!cl.db_path.empty() && u >= 975 && u < 995) return op_batch(w, cl);
    if (w.mode == mode::rich && u >= 975 && u < 985) return op_non_finite(w, cl);
    return "idle";
}

// ---- one seed ------------------------------------------------------------------------

template <class M>
void setup(world<M>& w) {
    auto& r = w.random;
    w.base = ms{r.range(200, 2000)};
    w.cap = ms{r.range(5000, 60000)};
    w.jitter = static_cast<tether::jitter>(r.below(4));
    static constexpr std::array<std::size_t, 3> batches{1, 3, 100};
    static constexpr std::array<std::size_t, 3> limits{1, 4, 100};
    w.max_batch = batches[r.below(3)];
    w.pull_limit = limits[r.below(3)];
    w.push_batch = r.chance(0.25) ? 2 : 0;
    const std::array<ms, 3> retry_after{ms{300}, ms{5000}, 2 * w.cap};
    w.rates = tether::fault_rates{.drop_request = 0.04,
                                  .drop_response = 0.05,
                                  .transient = 0.04,
                                  .rate_limited = 0.04,
                                  .unauthorized = 0.03,
                                  .reject_op = 0.03,
                                  .retry_after = retry_after[r.below(3)]};
    w.reset_failed_at_end = r.chance(0.5);
    w.change_feed = !r.chance(0.2);
    w.server.set_change_feed(w.change_feed);
    w.server.set_random_faults(w.rates, mix64(w.seed ^ 0xFA17ull));
    w.server.set_push_hook([&w] { on_push(w); });
    if (w.mode == mode::hostile) hostile_setup(w);
    if (w.mode == mode::sqlite) {
        // Each device on SQLite with probability 1/2, at least one per seed.
        w.dir = std::make_unique<tether_test::temp_dir>("tether-sim");
        std::array<bool, client_count> on_sqlite{};
        for (auto& b : on_sqlite) b = r.chance(0.5);
        if (std::none_of(on_sqlite.begin(), on_sqlite.end(), [](bool b) { return b; }))
            on_sqlite[r.below(client_count)] = true;
        for (int i = 0; i < client_count; ++i) {
            if (!on_sqlite[static_cast<std::size_t>(i)]) continue;
            auto& cl = w.clients[static_cast<std::size_t>(i)];
            cl.index = i;
            cl.db_path = w.dir->file("c" + std::to_string(i) + ".db");
            open_sqlite(w, cl);
            ++w.st.sqlite_clients;
        }
        w.trace.add("sqlite clients " + std::to_string(w.st.sqlite_clients));
    }
    if (w.mode == mode::policies) {
        w.policy = static_cast<policy_choice>(r.below(policy_count));
        w.decision_sink = [&w](int c, const auto& cf, const auto& res) { on_decision(w, c, cf, res); };
        w.trace.add("policy " + std::string{policy_names[static_cast<std::size_t>(w.policy)]});
    }
    for (int i = 0; i < client_count; ++i) {
        auto& cl = w.clients[static_cast<std::size_t>(i)];
        cl.index = i;
        make_engine(w, cl);
        // No warm-up read: a SQLite store makes its table at its first call,
        // which may be a write inside a db.transact batch that rolls back.
    }
    w.trace.add("seed " + std::to_string(w.seed) + " base " + std::to_string(w.base.count()) + " cap " +
                std::to_string(w.cap.count()) + " jitter " + std::to_string(static_cast<int>(w.jitter)) + " batch " +
                std::to_string(w.max_batch) + "/" + std::to_string(w.push_batch) + " pull " +
                std::to_string(w.pull_limit) + " retry_after " + std::to_string(w.rates.retry_after.count()) +
                (w.reset_failed_at_end ? " reset-at-end" : " keep-failed") + (w.change_feed ? "" : " full-list"));
}

template <class M>
void run_step(world<M>& w, client<M>& cl, const std::string& line_in) {
    const std::string line = "#" + std::to_string(w.step) + " +" + std::to_string(w.elapsed_ms()) + "ms c" +
                             std::to_string(cl.index) + " " + line_in;
    w.trace.add(line);
    if (w.cfg.verbose && w.cfg.out) *w.cfg.out << line << '\n' << w.step_log;
    w.step_log.clear();
}

/// A failure a quiet-phase sync may report in the hostile mode: a record too
/// large alone (invariant 12 checks it is one), or the server's answer to a
/// cursor from before its restore (convergence then shows whether the engine
/// pulled everything again).
template <class M>
bool quiet_failure_ok(const world<M>& w, const tether::error& e) {
    return (w.value_limit > 0 && e.code == tether::errc::too_large) ||
           (w.restored && e.code == tether::errc::cursor_expired);
}

/// The quiet phase: random faults stop, poisoned records are unpoisoned, every
/// client comes back online and logged in, and all sync until a full round
/// changes nothing and nothing waits to go up (pending, pending_deletion,
/// error), at most 50 rounds of `cap` + 1 ms each. Failed records: in half of
/// the seeds (drawn per seed) they are reset_failed first and must converge
/// like the rest; in the other half they stay failed, and invariant 3 excludes
/// them and their server counterparts.
template <class M>
void quiesce(world<M>& w) {
    w.chaos = false;
    w.server.clear_random_faults();
    if (w.knobs) hostile_quiet(w);
    for (const auto& id : w.poisoned) w.server.unpoison(id);
    w.poisoned.clear();
    for (auto& cl : w.clients) {
        cl.crash_armed = false;
        cl.engine->set_online(true);
        cl.engine->set_authenticated(true);
        if (!w.reset_failed_at_end) continue;
        std::vector<local_id> failed;
        for (const auto& [id, m] : cl.mirror)
            if (m.status == tether::sync_status::failed) failed.push_back(id);
        for (const auto& id : failed) {
            auto r = write(cl, [&] { return cl.engine->reset_failed(id); });
            if (!r) {
                w.fail(0, "c" + std::to_string(cl.index) + " quiet-phase reset_failed of " + w.name(id) + " failed");
            }
        }
    }
    run_step(w, w.clients[0], "quiet phase begins");
    const auto t0 = w.clock.now();
    constexpr int max_rounds = 50;
    int round = 1;
    bool quiet = false;
    for (; round <= max_rounds; ++round) {
        const auto before = w.change_events;
        w.clock.advance(w.cap + ms{1});
        bool waiting = false;  // a pull held back by its backoff has not looked yet: not quiet
        for (auto& cl : w.clients) {
            auto r = cl.engine->sync();
            ++w.st.syncs;
            if (r && r->retry_at) waiting = true;
            if (!r || r->skipped || (r->failure && !quiet_failure_ok(w, *r->failure))) {
                w.fail(3, "c" + std::to_string(cl.index) + " quiet-phase sync: " + format(r));
            }
            run_step(w, cl, "quiet round " + std::to_string(round) + " sync -> " + format(r));
        }
        check_step(w);
        if (w.change_events == before && !waiting && nothing_pending(w)) {
            quiet = true;
            break;
        }
    }
    w.st.quiet_rounds = static_cast<std::uint64_t>(round);
    w.st.quiet_time_ms = (w.clock.now() - t0).count();
    if (!quiet) w.fail(3, "did not converge within " + std::to_string(max_rounds) + " quiet rounds");
}

template <class M>
seed_result run_seed(std::uint64_t seed, const config& cfg, mode md = mode::classic) {
    world<M> w{seed, cfg};
    w.mode = md;
    setup(w);
    std::vector<int> order;
    for (int i = 0; i < client_count; ++i) order.insert(order.end(), static_cast<std::size_t>(cfg.ops), i);
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[w.random.below(i)]);

    for (int c : order) {
        auto& cl = w.clients[static_cast<std::size_t>(c)];
        ++w.step;
        if (w.knobs) hostile_step(w);
        w.clock.advance(ms{w.random.range(0, 2000)});
        run_step(w, cl, op(w, cl));
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
    if (w.violations.empty()) {
        check_deep(w);
        quiesce(w);
        check_deep(w);
        check_final(w);
    }
    if (w.knobs) hostile_faults(w.server.faults(), fs);
    w.trace.add(static_cast<std::uint64_t>(w.violations.size()));
    for (const auto& v : w.violations) w.trace.add(v.what);
    return seed_result{w.trace.h, std::move(w.violations), w.st, w.policy};
}

}  // namespace tether_sim
