#pragma once

// The threaded mode: real threads racing on real engines. Not replayable (the
// interleaving is the scheduler's); the seed draws each thread's operations.
//
// Per seed: one loopback server with random network faults and three devices
// (classic engines over memory storage). Each device runs two writer threads
// (creates, updates, removes of the records this device created: its writers
// share them, no other device writes them), one sync thread (sync(), and now
// and then push() or pull(), going offline and back, logging in again after a
// 401, moving the shared clock) and one more thread calling sync() now and
// then, so runs overlap and are refused as already_running. Then the threads
// stop, the faults stop, and every device syncs until nothing changes.
//
// Checked: every local write succeeds (an update or remove may meet a record a
// sibling writer removed: then not_found or invalid_state); watchers hear a
// record's changes in commit order (per record, local revisions and versions
// never go down, every acknowledged write is heard once with its own revision
// and value, in the order of the revisions, and nothing after its removal);
// only legal transitions; the watch stream agrees with the store; at the end
// every device equals the server, no local id has two server records, and each
// record's last acknowledged write (the highest revision) is on the server, or
// kept as failed, or, for a remove, the record is gone.
#include "sim.hpp"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace tether_sim {

namespace threaded_detail {

using engine_type = classic_engine;

/// What a watcher heard, in the order it heard it.
struct heard {
    local_id id;
    bool removed = false;
    std::uint64_t rev = 0;
    std::uint64_t version = 0;
    Job value;
    std::string cause;
};

/// The last acknowledged write of a record (by revision).
struct last_write {
    std::uint64_t rev = 0;
    bool removed = false;
    Job value;
};

struct device {
    int index = 0;
    tether::memory_storage storage;
    std::unique_ptr<engine_type> engine;
    tether::subscription sub;

    std::mutex log_mutex;
    std::vector<heard> log;

    std::mutex own_mutex;                    // the records this device's writers share
    std::vector<local_id> own;               // live ones, for the writers to pick
    std::map<local_id, last_write> acked;    // every write acknowledged, the highest revision kept
    std::map<local_id, std::set<std::uint64_t>> acked_revs;  // every acknowledged revision
    std::atomic<bool> syncing{false};
};

struct shared {
    std::mutex fail_mutex;
    std::vector<violation> violations;
    std::atomic<std::uint64_t> operations{0};
    std::atomic<std::uint64_t> syncs{0};
    std::atomic<std::uint64_t> racing{0};
    std::atomic<std::uint64_t> clock_jumps{0};
    std::atomic<std::uint64_t> next_value{0};

    void fail(int invariant, std::string what) {
        std::lock_guard lock{fail_mutex};
        if (violations.size() < 200) violations.push_back({invariant, std::move(what)});
    }
};

inline void writer(shared& sh, device& d, std::uint64_t seed, int ops) {
    rng r{seed};
    auto& e = *d.engine;
    for (int k = 0; k < ops; ++k) {
        const auto u = r.below(100);
        std::optional<local_id> id;
        {
            std::lock_guard lock{d.own_mutex};
            if (!d.own.empty()) id = d.own[r.below(d.own.size())];
        }
        const bool racing = d.syncing.load();
        if (!id || u < 20) {
            const auto v = ++sh.next_value;
            auto c = e.create(sim_entity<Job>::make(v));
            if (!c) {
                sh.fail(0, "c" + std::to_string(d.index) + " create failed: " + describe(c.error()));
                continue;
            }
            std::lock_guard lock{d.own_mutex};
            d.own.push_back(c->id);
            auto& a = d.acked[c->id];
            if (c->local_rev >= a.rev) a = last_write{c->local_rev, false, c->value};
            d.acked_revs[c->id].insert(c->local_rev);
        } else if (u < 90) {
            const auto mask = 1 + r.below(7);
            const auto v = ++sh.next_value;
            auto c = e.update(*id, [&](Job& j) { sim_entity<Job>::edit(j, mask, v); });
            if (!c) {
                // A sibling writer removed it in the meantime.
                if (c.error().code != tether::errc::not_found && c.error().code != tether::errc::invalid_state)
                    sh.fail(0, "c" + std::to_string(d.index) + " update failed: " + describe(c.error()));
                continue;
            }
            std::lock_guard lock{d.own_mutex};
            auto& a = d.acked[*id];
            if (c->local_rev >= a.rev && !a.removed) a = last_write{c->local_rev, false, c->value};
            d.acked_revs[*id].insert(c->local_rev);
        } else {
            {
                std::lock_guard lock{d.own_mutex};
                std::erase(d.own, *id);  // no writer picks it from now on
            }
            auto c = e.remove(*id);
            if (!c) {
                if (c.error().code != tether::errc::not_found)
                    sh.fail(0, "c" + std::to_string(d.index) + " remove failed: " + describe(c.error()));
                continue;
            }
            std::lock_guard lock{d.own_mutex};
            d.acked[*id].removed = true;
        }
        if (racing) ++sh.racing;
        ++sh.operations;
        if (k % 8 == 7) std::this_thread::sleep_for(std::chrono::microseconds{r.below(100)});  // let syncs run
    }
}

inline void syncer(shared& sh, device& d, tether::manual_clock clock, std::uint64_t seed,
                   const std::atomic<bool>& stop) {
    rng r{seed};
    auto& e = *d.engine;
    // Every syncer jumps the clock at least once, however few syncs a loaded
    // machine lets it run; then at 1% of its syncs.
    const std::uint64_t first_jump = 1 + r.below(3);
    std::uint64_t n = 0;
    while (!stop.load()) {
        const auto u = r.below(100);
        if (!e.authenticated()) e.set_authenticated(true);
        if (u < 5) {
            e.set_online(!e.online());
        } else if (!e.online() && u < 40) {
            e.set_online(true);
        }
        d.syncing.store(true);
        auto rep = u < 80 ? e.sync() : u < 90 ? e.push() : e.pull();
        d.syncing.store(false);
        ++sh.syncs;
        ++sh.operations;
        if (!rep) sh.fail(0, "c" + std::to_string(d.index) + " sync returned an error: " + describe(rep.error()));
        if (u == 99 || ++n == first_jump) {
            clock.advance(ms{r.range(60000, 600000)});
            ++sh.clock_jumps;
        } else {
            clock.advance(ms{r.range(0, 3000)});
        }
        std::this_thread::yield();
    }
}

/// Watcher order, for one device, from its log.
inline void check_order(shared& sh, device& d) {
    std::map<local_id, const heard*> last;
    std::map<local_id, std::set<std::uint64_t>> local_writes;  // revisions heard from local writes
    for (const auto& h : d.log) {
        const std::string who = "c" + std::to_string(d.index) + " " + h.id.to_string().substr(24);
        auto it = last.find(h.id);
        if (it != last.end()) {
            const heard& p = *it->second;
            if (p.removed) sh.fail(0, who + ": heard '" + h.cause + "' after its removal ('" + p.cause + "')");
            if (!h.removed && h.rev < p.rev)
                sh.fail(0, who + ": revision went " + std::to_string(p.rev) + " -> " + std::to_string(h.rev) +
                               " ('" + p.cause + "' then '" + h.cause + "'): not in commit order");
            if (!h.removed && h.version < p.version)
                sh.fail(5, who + ": version went " + std::to_string(p.version) + " -> " + std::to_string(h.version) +
                               " ('" + p.cause + "' then '" + h.cause + "')");
        }
        last[h.id] = &h;
        if (!h.removed && (h.cause == "create" || h.cause == "update")) {
            auto& revs = local_writes[h.id];
            if (!revs.empty() && h.rev <= *revs.rbegin())
                sh.fail(0, who + ": local write rev " + std::to_string(h.rev) + " heard after rev " +
                               std::to_string(*revs.rbegin()));
            if (!revs.insert(h.rev).second) sh.fail(0, who + ": local write rev " + std::to_string(h.rev) + " heard twice");
        }
    }
    // Every acknowledged create and update was heard, with its revision.
    for (const auto& [id, revs] : d.acked_revs) {
        const auto heard_revs = local_writes.find(id);
        for (auto rev : revs) {
            if (heard_revs == local_writes.end() || !heard_revs->second.contains(rev))
                sh.fail(0, "c" + std::to_string(d.index) + " " + id.to_string().substr(24) + ": write rev " +
                               std::to_string(rev) + " was acknowledged but never heard");
        }
    }
}

}  // namespace threaded_detail

inline seed_result run_threaded_seed(std::uint64_t seed, const config& cfg) {
    using namespace threaded_detail;
    shared sh;
    tether::manual_clock clock;
    tether::loopback_server server{[c = clock] { return c.now(); }};
    rng r{mix64(seed ^ 0x7EADull)};
    const ms cap{r.range(2000, 20000)};
    tether::fault_rates rates{.drop_request = 0.04,
                              .drop_response = 0.05,
                              .transient = 0.04,
                              .rate_limited = 0.04,
                              .unauthorized = 0.02,
                              .reject_op = 0,
                              .retry_after = ms{r.range(100, 5000)}};
    server.set_random_faults(rates, mix64(seed ^ 0xFA17ull));
    std::array<device, client_count> devices;
    for (int i = 0; i < client_count; ++i) {
        auto& d = devices[static_cast<std::size_t>(i)];
        d.index = i;
        tether::exponential_backoff backoff{.base = ms{r.range(100, 1000)}, .factor = 2.0, .cap = cap,
                                            .max_attempts = 50, .jitter = tether::jitter::full,
                                            .seed = mix64(seed * 31 + static_cast<std::uint64_t>(i)) | 1u};
        tether::engine_options options{.id_seed = mix64(seed * 7919 + static_cast<std::uint64_t>(i)),
                                       .pull_limit = static_cast<std::size_t>(r.range(1, 50)),
                                       .push_batch = static_cast<std::size_t>(r.range(0, 3))};
        d.engine = std::make_unique<engine_type>(d.storage, tether::loopback_transport{server, "alice", 100}, clock,
                                                 backoff, options);
        d.engine->on_transition([&sh, i](const tether::transition& t) {
            if (!t.legal || (t.from && t.to && !tether::is_legal_transition(*t.from, *t.to)))
                sh.fail(4, "c" + std::to_string(i) + ": illegal transition (" + t.cause + ")");
        });
        d.engine->on_log([&sh, i](tether::log_level level, std::string_view m) {
            if (level >= tether::log_level::error) sh.fail(0, "c" + std::to_string(i) + " logged an error: " + std::string{m});
        });
        d.sub = d.engine->watch([&d](const tether::change<Job>& ch) {
            heard h{ch.id, !ch.current.has_value(), 0, 0, {}, ch.cause};
            if (ch.current) {
                h.rev = ch.current->local_rev;
                h.version = ch.current->version;
                h.value = ch.current->value;
            }
            std::lock_guard lock{d.log_mutex};
            d.log.push_back(std::move(h));
        });
    }

    {
        std::atomic<bool> stop{false};
        std::vector<std::thread> writers;
        std::vector<std::thread> syncers;
        for (int i = 0; i < client_count; ++i) {
            auto& d = devices[static_cast<std::size_t>(i)];
            for (int wi = 0; wi < 2; ++wi) {
                writers.emplace_back(writer, std::ref(sh), std::ref(d),
                                     mix64(seed * 131 + static_cast<std::uint64_t>(i * 2 + wi)), cfg.ops);
            }
            syncers.emplace_back(syncer, std::ref(sh), std::ref(d), clock, mix64(seed * 977 + static_cast<std::uint64_t>(i)),
                                 std::cref(stop));
            syncers.emplace_back([&sh, &d, &stop] {
                while (!stop.load()) {
                    auto rep = d.engine->sync();
                    if (!rep) sh.fail(0, "c" + std::to_string(d.index) + " sync returned an error: " + describe(rep.error()));
                    std::this_thread::sleep_for(std::chrono::microseconds{200});
                }
            });
        }
        for (auto& t : writers) t.join();
        stop.store(true);
        for (auto& t : syncers) t.join();
    }

    // Quiet: no faults, everyone online, sync until nothing changes.
    server.clear_random_faults();
    for (auto& d : devices) {
        d.engine->set_online(true);
        d.engine->set_authenticated(true);
    }
    bool quiet = false;
    int round = 0;
    for (; round < 50 && !quiet; ++round) {
        std::size_t heard_before = 0;
        for (auto& d : devices) {
            std::lock_guard lock{d.log_mutex};
            heard_before += d.log.size();
        }
        clock.advance(cap + ms{1});
        bool waiting = false;  // a pull held back by its backoff has not looked yet: not quiet
        for (auto& d : devices) {
            auto rep = d.engine->sync();
            ++sh.syncs;
            if (rep && rep->retry_at) waiting = true;
            if (!rep || rep->skipped || rep->failure) sh.fail(3, "c" + std::to_string(d.index) + " quiet-phase sync failed");
        }
        std::size_t heard_after = 0;
        bool pending = false;
        for (auto& d : devices) {
            std::lock_guard lock{d.log_mutex};
            heard_after += d.log.size();
            auto counts = d.engine->store().counts();
            pending = pending || !counts || counts->pending + counts->pending_deletion + counts->error > 0;
        }
        quiet = heard_after == heard_before && !pending && !waiting;
    }
    if (!quiet) sh.fail(3, "did not converge within 50 quiet rounds");

    // Watcher order, the watch stream against the store, convergence, lost writes.
    std::map<local_id, tether::server_record> on_server;
    for (auto& s : server.records("alice", "jobs")) {
        if (!s.id) {
            sh.fail(2, "server record " + s.server_id + " has no local id");
            continue;
        }
        if (server.count_with_local_id("alice", "jobs", *s.id) > 1) sh.fail(2, "two server records for " + s.id->to_string());
        on_server.emplace(*s.id, std::move(s));
    }
    std::uint64_t failed_left = 0;
    for (auto& d : devices) {
        check_order(sh, d);
        const std::string who = "c" + std::to_string(d.index);
        auto all = d.engine->list();
        if (!all) {
            sh.fail(0, who + ": list() failed");
            continue;
        }
        std::map<local_id, const heard*> last;
        for (const auto& h : d.log) last[h.id] = &h;
        std::set<local_id> failed;
        for (const auto& rec : *all) {
            auto it = last.find(rec.id);
            if (it == last.end() || it->second->removed || it->second->rev != rec.local_rev ||
                it->second->version != rec.version || !(it->second->value == rec.value)) {
                sh.fail(0, who + " " + rec.id.to_string().substr(24) + ": the watch stream last showed something else");
            }
            if (rec.status == tether::sync_status::failed) {
                failed.insert(rec.id);
                ++failed_left;
                continue;
            }
            auto s = on_server.find(rec.id);
            if (s == on_server.end()) {
                sh.fail(3, who + " holds " + rec.id.to_string().substr(24) + " which the server does not have");
                continue;
            }
            auto v = tether::entity_ops<Job>::from_json(s->second.value);
            if (!v || !(*v == rec.value) || rec.version != s->second.version || rec.status != tether::sync_status::synced)
                sh.fail(3, who + " " + rec.id.to_string().substr(24) + " is " + describe(rec.value) + ", server has " +
                               s->second.value.dump());
        }
        std::size_t live = 0;
        for (const auto& rec : *all) live += rec.status == tether::sync_status::failed ? 0 : 1;
        for (const auto& [sid, s] : on_server) {
            const local_id id = sid;  // captured below: not a structured binding (clang 14)
            if (failed.contains(id)) continue;
            if (std::none_of(all->begin(), all->end(), [&](const auto& rec) { return rec.id == id; }))
                sh.fail(3, who + " lacks " + id.to_string().substr(24));
        }
        (void)live;
        // 1: the last acknowledged write of each record this device wrote.
        std::lock_guard lock{d.own_mutex};
        for (const auto& [id, a] : d.acked) {
            if (failed.contains(id)) continue;
            auto s = on_server.find(id);
            if (a.removed) {
                if (s != on_server.end()) sh.fail(1, who + " " + id.to_string().substr(24) + ": removed, but the server has it");
                continue;
            }
            auto v = s == on_server.end() ? tether::result<Job>{tether::unexpected{tether::make_error(tether::errc::not_found)}}
                                          : tether::entity_ops<Job>::from_json(s->second.value);
            if (!v || !(*v == a.value))
                sh.fail(1, who + " " + id.to_string().substr(24) + ": last write rev " + std::to_string(a.rev) + " " +
                               describe(a.value) + " lost: the server has " +
                               (s == on_server.end() ? std::string{"nothing"} : s->second.value.dump()));
        }
    }

    seed_result out;
    fnv1a h;
    h.add(seed);
    h.add(static_cast<std::uint64_t>(sh.violations.size()));
    out.hash = h.h;
    out.violations = std::move(sh.violations);
    out.st.operations = sh.operations.load();
    out.st.syncs = sh.syncs.load();
    out.st.quiet_rounds = static_cast<std::uint64_t>(round);
    out.st.failed_left = failed_left;
    const auto f = server.faults();
    auto& fs = out.st.faults;
    fs[static_cast<std::size_t>(fault::drop_request)] = f.dropped_requests;
    fs[static_cast<std::size_t>(fault::drop_response)] = f.dropped_responses;
    fs[static_cast<std::size_t>(fault::transient)] = f.transient;
    fs[static_cast<std::size_t>(fault::rate_limited)] = f.rate_limited;
    fs[static_cast<std::size_t>(fault::unauthorized)] = f.unauthorized;
    fs[static_cast<std::size_t>(fault::clock_jump)] = sh.clock_jumps.load();
    fs[static_cast<std::size_t>(fault::racing_write)] = sh.racing.load();
    return out;
}

}  // namespace tether_sim
