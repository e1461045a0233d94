#pragma once

// The pull half of tether::sync_engine: pages, cursor, tombstones, full-list
// deletion, items that cannot be applied, full resyncs.
// Included from engine/detail/sync.hpp; not a public entry point.
#include <tether/engine/sync_engine.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tether {


// ---- pull -------------------------------------------------------------------------

template <class Entity, class... Policies>
result<void> sync_engine<Entity, Policies...>::run_pull(sync_report& rep) {
    if (auto d = ensure_device_id(); !d) return d;
    if (const auto not_before = next_pull_at(); not_before && clock_.now() < *not_before) {
        rep.retry_at = not_before;  // backing off after a failed pull: no request now
        return {};
    }
    detail::pull_run run;
    run.feed = transport_.has_change_feed();
    auto meta = load_pull_meta(run);
    if (!meta) return unexpected{std::move(meta).error()};
    std::string cursor = run.feed && !run.resync ? std::move(*meta) : std::string{};
    bool restarted = false;
    while (online_.load() && authenticated_.load()) {
        auto page = transport_.pull(collection_of<Entity>(), cursor, std::max<std::size_t>(1, options_.pull_limit));
        if (!page) {
            if (!restarted && (page.error().code == errc::cursor_expired)) {
                begin_resync(run, "the server no longer knows the pull cursor: " + page.error().message);
                restarted = true;
                cursor.clear();
                continue;
            }
            pull_failed(page.error(), rep);
            return {};
        }
        pull_succeeded();
        if (!run.feed && page->has_more) {
            // Deletion detection needs the whole list: a partial one would delete
            // every synced record past its end.
            rep.failure = make_error(errc::protocol, "a server without a change feed must return its full list in one page");
            return {};
        }
        auto applied = apply_page(run, *page, rep);
        if (!applied) return applied;
        if (run.back_in_time && !restarted) {
            begin_resync(run, "the server went back in time (a pulled version is below the local one)");
            restarted = true;
            cursor.clear();
            continue;
        }
        if (!run.feed || !page->has_more) break;
        if (page->next_cursor == cursor) {
            rep.failure = make_error(errc::protocol, "server reported more changes without moving the cursor");
            return {};
        }
        cursor = page->next_cursor;
    }
    if (run.resync && !rep.failure) {
        if (auto f = finish_resync(run, rep); !f) return f;
    }
    return refetch(run, rep);
}

template <class Entity, class... Policies>
result<std::string> sync_engine<Entity, Policies...>::load_pull_meta(detail::pull_run& run) {
    auto stored = store_.get_meta(detail::pull_cursor_key);
    if (!stored) return unexpected{std::move(stored).error()};
    auto resync = store_.get_meta(detail::resync_key);
    if (!resync) return unexpected{std::move(resync).error()};
    auto refetch = store_.get_meta(detail::refetch_key);
    if (!refetch) return unexpected{std::move(refetch).error()};
    run.resync = *resync && **resync == "1";
    run.refetch = detail::parse_refetch(*refetch);
    return stored->value_or("");
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::begin_resync(detail::pull_run& run, const std::string& why) {
    log(log_level::warning, why + "; pulling everything again (local unsynced changes are kept)");
    resyncs_.fetch_add(1, std::memory_order_relaxed);
    run.resync = true;
    run.back_in_time = false;
    run.seen.clear();
    auto saved = store_.transact([&](auto& tx) -> result<void> {
        if (auto m = tx.set_meta(detail::resync_key, "1"); !m) return m;
        return tx.set_meta(detail::pull_cursor_key, "");
    });
    if (!saved) log(log_level::error, "could not record the resync: " + saved.error().message);
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::pull_failed(const error& e, sync_report& rep) {
    if (e.code == errc::unauthorized) {
        pause_unauthorized(e, rep);
        return;
    }
    rep.failure = e;
    if (e.code == errc::offline) return;
    // One engine-wide "not before" for pulls: no trigger causes a pull storm
    // against a server that is down or asked us to slow down.
    const auto n = pull_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
    std::optional<std::chrono::milliseconds> delay;
    {
        std::lock_guard lock{state_mutex_};
        for (auto k = std::min<std::uint32_t>(n, 32); !delay && k >= 1; --k) delay = backoff_.next_delay(k, e);
    }
    auto d = delay.value_or(std::chrono::milliseconds{0});
    if (e.retry_after && *e.retry_after > d) d = *e.retry_after;
    const auto now = clock_.now();
    const auto at = now + d;
    pull_failed_at_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    pull_not_before_.store(at.time_since_epoch().count(), std::memory_order_relaxed);
    rep.retry_at = at;
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::pull_succeeded() {
    pull_failures_.store(0, std::memory_order_relaxed);
    pull_not_before_.store(no_pull_backoff, std::memory_order_relaxed);
}

template <class Entity, class... Policies>
result<void> sync_engine<Entity, Policies...>::apply_page(detail::pull_run& run, const pull_page& page,
                                                          sync_report& rep) {
    std::vector<record_type> missing;  // full-list mode: synced records the server no longer lists
    if (!run.feed) {
        auto all = store_.list();
        if (!all) return unexpected{std::move(all).error()};
        std::unordered_set<std::string> listed;
        for (const auto& s : page.records) listed.insert(s.server_id);
        for (auto& r : *all) {
            if (r.status == sync_status::synced && r.server_id && !listed.contains(*r.server_id)) {
                missing.push_back(std::move(r));
            }
        }
    }
    for (const auto& s : page.records) {
        if (auto d = learn_creates_in_doubt(run, s); !d) return d;
    }
    const auto now = clock_.now();
    auto fx = make_effects();
    auto done = store_.transact([&](auto& tx) -> result<void> {
        std::unordered_set<std::string> in_page;
        for (const auto& s : page.records) {
            if (auto a = apply_server_record(tx, fx, run, in_page, s, now, rep); !a) return a;
        }
        for (const auto& t : page.tombstones) {
            if (auto a = apply_tombstone(tx, fx, run, in_page, t, now, rep); !a) return a;
        }
        for (const auto& gone : missing) {
            auto cur = tx.get(gone.id);
            if (!cur) return unexpected{std::move(cur).error()};
            // Only a record still synced is deleted this way; one with local changes never is.
            if (!*cur || (*cur)->status != sync_status::synced || in_flight(gone.id)) continue;
            ++rep.removed;
            if (auto e = detail::erase_record(tx, fx, **cur, now, to_string(cause::deleted_on_server_unlisted)); !e) {
                return e;
            }
        }
        if (run.refetch_changed) {
            if (auto m = tx.set_meta(detail::refetch_key, detail::format_refetch(run.refetch)); !m) return m;
        }
        if (run.feed && !run.back_in_time) return tx.set_meta(detail::pull_cursor_key, page.next_cursor);
        return {};
    });
    deliver(fx, done.has_value());
    if (done) run.refetch_changed = false;
    return done;
}

template <class Entity, class... Policies>
result<void> sync_engine<Entity, Policies...>::learn_creates_in_doubt(detail::pull_run& run, const server_record& s) {
    // Asked once per run, and only when a record comes without its local id.
    if (run.doubt || s.id) return {};
    auto doubt = find_creates_in_doubt();
    if (!doubt) return unexpected{std::move(doubt).error()};
    run.doubt = *doubt;
    return {};
}

template <class Entity, class... Policies>
result<detail::creates_in_doubt> sync_engine<Entity, Policies...>::find_creates_in_doubt() {
    auto all = store_.list();
    if (!all) return unexpected{std::move(all).error()};
    detail::creates_in_doubt d;
    for (const auto& r : *all) {
        if (r.server_id || !(r.last_attempt_at || in_flight(r.id))) continue;
        (r.status == sync_status::failed ? d.failed : d.settling) = true;
    }
    return d;
}

/// A pulled record without a local id that matches no local record may be one
/// of this device's creates whose answer was lost: inserting it would hold the
/// record twice. From a page, it waits and is fetched on its own at a later
/// pull (a server may give the local id there). Fetched, it still waits while
/// such a create will be sent again by itself (its answer then names the
/// server id), and, when the only ones in doubt have failed (they settle only
/// after `reset_failed`), if this device made its last change; else it is
/// another device's record, inserted (were it one of the failed creates after
/// all, the create's answer after a reset merges the two).
template <class Entity, class... Policies>
bool sync_engine<Entity, Policies...>::may_be_own_create(const detail::pull_run& run, const server_record& s) const {
    if (s.id || !run.doubt || !(run.doubt->settling || run.doubt->failed)) return false;
    if (!run.fetching) return true;
    return run.doubt->settling || is_own_write(s);
}

template <class Entity, class... Policies>
result<void> sync_engine<Entity, Policies...>::skip_pulled(detail::effects<Entity>& fx, detail::pull_run& run,
                                                   sync_report& rep, const std::string& server_id,
                                                   const std::string& why, bool fetch_later) {
    ++rep.unapplied;
    unapplied_.fetch_add(1, std::memory_order_relaxed);
    fx.warnings.push_back("pulled item " + (server_id.empty() ? std::string{"with no server id"} : server_id) +
                          " not applied: " + why);
    if (fetch_later) defer_pulled(run, server_id);
    return {};
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::defer_pulled(detail::pull_run& run, const std::string& server_id) {
    if (server_id.empty() || run.refetch.size() >= detail::max_refetch) return;
    run.refetch_changed |= run.refetch.insert(server_id).second;
    run.deferred.insert(server_id);
}

template <class Entity, class... Policies>
template <class Tx>
result<void> sync_engine<Entity, Policies...>::apply_server_record(Tx& tx, detail::effects<Entity>& fx,
                                                                   detail::pull_run& run,
                                                                   std::unordered_set<std::string>& in_page,
                                                                   const server_record& s, timestamp now,
                                                                   sync_report& rep) {
    if (s.server_id.empty()) return skip_pulled(fx, run, rep, s.server_id, "empty server id", false);
    if (!in_page.insert(s.server_id).second) {
        return skip_pulled(fx, run, rep, s.server_id, "server id twice in one page", true);
    }
    if (s.id && s.id->is_nil()) return skip_pulled(fx, run, rep, s.server_id, "nil local id", false);
    if (run.resync) run.seen.insert(s.server_id);
    auto cur = tx.find_by_server_id(s.server_id);
    if (!cur) return unexpected{std::move(cur).error()};
    if (!*cur && s.id) {
        cur = tx.get(*s.id);
        if (!cur) return unexpected{std::move(cur).error()};
        if (*cur && (*cur)->server_id && *(*cur)->server_id != s.server_id) return {};  // not ours to merge
    }
    if (*cur && in_flight((*cur)->id)) return {};  // the push outcome will settle it
    if (!*cur && may_be_own_create(run, s)) {  // wait for the create's answer, then fetch it again
        defer_pulled(run, s.server_id);
        return {};
    }
    auto value = entity_ops<Entity>::from_json(s.value);
    if (!value) return skip_pulled(fx, run, rep, s.server_id, value.error().message, true);
    if (run.refetch.erase(s.server_id)) run.refetch_changed = true;
    if (!*cur) return insert_pulled(tx, fx, s, std::move(*value), now, rep);
    const record_type& before = **cur;
    if (s.version < before.version && !run.resync) {
        run.back_in_time = true;  // a server restored from a backup: start a full resync
        return {};
    }
    if (s.version == before.version && !run.resync) return {};  // already seen (a duplicate)
    return merge_pulled(tx, fx, before, s, std::move(*value), now, rep, run.resync);
}

template <class Entity, class... Policies>
template <class Tx>
result<void> sync_engine<Entity, Policies...>::insert_pulled(Tx& tx, detail::effects<Entity>& fx,
                                                             const server_record& s, Entity value, timestamp now,
                                                             sync_report& rep) {
    record_type r;
    if (s.id) {
        r.id = *s.id;
    } else {
        std::lock_guard lock{ids_mutex_};
        r.id = ids_(now);
    }
    r.server_id = s.server_id;
    r.value = std::move(value);
    r.status = sync_status::synced;
    r.version = s.version;
    r.created_at = now;
    r.updated_at = now;
    ++rep.pulled;
    return detail::write_record(tx, fx, std::optional<record_type>{}, std::move(r), now, to_string(cause::pull));
}

template <class Entity, class... Policies>
template <class Tx>
result<void> sync_engine<Entity, Policies...>::merge_pulled(Tx& tx, detail::effects<Entity>& fx,
                                                            const record_type& before, const server_record& s,
                                                            Entity value, timestamp now, sync_report& rep,
                                                            bool resync) {
    if (!before.server_id && (before.deleted || !entity_ops<Entity>::equal(before.value, value))) {
        // Our own create, whose response was lost, differs from the server's copy: by local
        // edits or by another device's, a pull cannot tell. Adopting the server's version
        // would push stale fields over a newer change unchecked; leave it to the replayed
        // create, which the server answers `conflict` if the record changed since its create.
        return {};
    }
    record_type after = before;
    std::string why{to_string(cause::pull)};
    ++rep.pulled;
    if (!before.server_id) {
        // Our own create, whose response was lost or is still to come: confirmed as sent.
        after.server_id = s.server_id;
        after.version = s.version;
        after.status = sync_status::synced;
        after.dirty.clear();
        after.attempts = 0;
        after.next_attempt_at.reset();
        after.last_error.reset();
        why = to_string(cause::pull_create_confirmed);
    } else if (before.status == sync_status::synced) {
        after.value = std::move(value);
        after.version = s.version;
    } else if (resync) {
        // A full resync: the server's version is the base local changes go up on.
        after.version = s.version;
        why = to_string(cause::resync_changes_kept);
    } else if (is_own_write(s)) {
        why = rebase_on_own_write(after, s, value);
    } else {
        why = settle_conflict(after, s, std::move(value), rep);
    }
    after.updated_at = now;
    return detail::write_record(tx, fx, std::optional<sync_status>{before.status}, std::move(after), now, why);
}

template <class Entity, class... Policies>
template <class Tx>
result<void> sync_engine<Entity, Policies...>::apply_tombstone(Tx& tx, detail::effects<Entity>& fx,
                                                               detail::pull_run& run,
                                                               std::unordered_set<std::string>& in_page,
                                                               const tombstone& t, timestamp now, sync_report& rep) {
    if (t.server_id.empty()) return skip_pulled(fx, run, rep, t.server_id, "empty server id", false);
    if (!in_page.insert(t.server_id).second) {
        return skip_pulled(fx, run, rep, t.server_id, "server id twice in one page", true);
    }
    if (run.resync) run.seen.insert(t.server_id);
    if (run.refetch.erase(t.server_id)) run.refetch_changed = true;
    // Matched by server id; by local id only a record that has no server id yet
    // (its create's answer was lost), never one held under another server id.
    auto cur = tx.find_by_server_id(t.server_id);
    if (!cur) return unexpected{std::move(cur).error()};
    if (!*cur && t.id && !t.id->is_nil()) {
        cur = tx.get(*t.id);
        if (!cur) return unexpected{std::move(cur).error()};
        if (*cur && (*cur)->server_id) return {};
    }
    if (!*cur || in_flight((*cur)->id)) return {};
    if (t.version < (*cur)->version && !run.resync) return {};  // older than what we hold
    // A deletion on the server is final: local changes to the record are dropped (and reported).
    if ((*cur)->status != sync_status::synced && !(*cur)->deleted) ++rep.conflicts;
    ++rep.removed;
    ++rep.pulled;
    return detail::erase_record(tx, fx, **cur, now, to_string(cause::deleted_on_server));
}

}  // namespace tether

