#pragma once

// The end of a pull run of tether::sync_engine: finishing a full resync, and
// fetching again the items earlier pages could not apply.
// Included from engine/detail/sync.hpp; not a public entry point.
#include <tether/engine/sync_engine.hpp>

#include <string>
#include <unordered_set>
#include <vector>

namespace tether {

template <class Entity, class... Policies>
result<void> sync_engine<Entity, Policies...>::finish_resync(detail::pull_run& run, sync_report& rep) {
    // Every live record and tombstone came again. A record this device holds
    // under a server id the server no longer knows was lost by the server (it
    // was restored from a backup older than the record): it goes up again as a
    // create, so no acknowledged write is lost. (A full-list server cannot tell
    // a lost record from a deleted one: it deletes, as `missing` does.)
    std::vector<record_type> lost;
    if (run.feed) {
        auto all = store_.list();
        if (!all) return unexpected{std::move(all).error()};
        for (auto& r : *all)
            if (r.server_id && !run.seen.contains(*r.server_id) && !in_flight(r.id)) lost.push_back(std::move(r));
    }
    const auto now = clock_.now();
    auto fx = make_effects();
    auto done = store_.transact([&](auto& tx) -> result<void> {
        for (const auto& r : lost) {
            auto cur = tx.get(r.id);
            if (!cur) return unexpected{std::move(cur).error()};
            if (!*cur || (*cur)->server_id != r.server_id) continue;
            if ((*cur)->deleted) {
                ++rep.removed;
                if (auto e = detail::erase_record(tx, fx, **cur, now, to_string(cause::resync_deleted_unknown)); !e) {
                    return e;
                }
                continue;
            }
            record_type after = **cur;
            after.server_id.reset();
            after.version = 0;
            after.dirty.clear();
            after.local_rev += 1;
            after.last_attempt_at.reset();
            if (after.status != sync_status::failed) {
                after.status = sync_status::pending;
                after.attempts = 0;
                after.next_attempt_at.reset();
                after.last_error.reset();
            }
            after.updated_at = now;
            rerun_.store(true);
            if (auto w = detail::write_record(tx, fx, *cur, std::move(after), now, to_string(cause::resync_unknown));
                !w) {
                return w;
            }
        }
        return tx.set_meta(detail::resync_key, "");
    });
    deliver(fx, done.has_value());
    if (!lost.empty()) {
        log(log_level::warning, std::to_string(lost.size()) + " records were unknown to the server after a resync");
    }
    return done;
}

template <class Entity, class... Policies>
result<void> sync_engine<Entity, Policies...>::refetch(detail::pull_run& run, sync_report& rep) {
    // One deferred by this run waits for the next one while a create in doubt
    // may still settle by itself; else (only failed creates in doubt) it is
    // fetched now: a server listing its full list would defer it again at
    // every pull.
    const bool settling = run.doubt && run.doubt->settling;
    std::vector<std::string> todo;
    for (const auto& sid : run.refetch) {
        if (todo.size() == detail::refetch_per_pull) break;
        if (!settling || !run.deferred.contains(sid)) todo.push_back(sid);
    }
    for (const auto& sid : todo) {
        if (!online_.load() || !authenticated_.load()) break;
        auto got = transport_.fetch(collection_of<Entity>(), sid);  // no lock held
        if (!got && got.error().code == errc::not_found) {
            run.refetch_changed |= run.refetch.erase(sid) > 0;
            continue;
        }
        if (!got) break;  // try again at a later pull
        if (got->server_id != sid) {
            log(log_level::warning, "fetch of " + sid + " answered another record (" + got->server_id + ")");
            break;
        }
        if (auto d = learn_creates_in_doubt(run, *got); !d) return d;
        const auto now = clock_.now();
        auto fx = make_effects();
        auto done = store_.transact([&](auto& tx) -> result<void> {
            std::unordered_set<std::string> alone;
            run.fetching = true;
            auto a = apply_server_record(tx, fx, run, alone, *got, now, rep);
            run.fetching = false;
            if (!a) return a;
            if (!run.refetch_changed) return {};
            return tx.set_meta(detail::refetch_key, detail::format_refetch(run.refetch));
        });
        deliver(fx, done.has_value());
        if (!done) return done;
        run.refetch_changed = false;
    }
    if (!run.refetch_changed) return {};
    return store_.transact([&](auto& tx) { return tx.set_meta(detail::refetch_key, detail::format_refetch(run.refetch)); });
}

}  // namespace tether
