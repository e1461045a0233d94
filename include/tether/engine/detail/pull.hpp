#pragma once

// The pull half of tether::sync_engine: pages, cursor, tombstones, full-list deletion.
// Included from engine/detail/sync.hpp; not a public entry point.
#include <tether/engine/sync_engine.hpp>

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
    const auto collection = std::string_view{collection_of<Entity>()};
    const bool feed = transport_.has_change_feed();
    if (auto d = ensure_device_id(); !d) return d;
    auto stored = store_.get_meta(detail::pull_cursor_key);
    if (!stored) return unexpected{std::move(stored).error()};
    std::string cursor = feed ? stored->value_or("") : std::string{};
    while (online_.load() && authenticated_.load()) {
        auto page = transport_.pull(collection, cursor, std::max<std::size_t>(1, options_.pull_limit));  // no lock held
        if (!page) {
            if (page.error().code == errc::unauthorized) {
                pause_unauthorized(page.error(), rep);
            } else {
                rep.failure = page.error();
            }
            return {};
        }
        if (!feed && page->has_more) {
            // Deletion detection needs the whole list: a partial one would delete
            // every synced record past its end.
            rep.failure = make_error(errc::protocol, "a server without a change feed must return its full list in one page");
            return {};
        }
        std::vector<record_type> missing;  // full-list mode: synced records the server no longer lists
        if (!feed) {
            auto all = store_.list();
            if (!all) return unexpected{std::move(all).error()};
            std::unordered_set<std::string> listed;
            for (const auto& s : page->records) listed.insert(s.server_id);
            for (auto& r : *all) {
                if (r.status == sync_status::synced && r.server_id && !listed.contains(*r.server_id)) {
                    missing.push_back(std::move(r));
                }
            }
        }
        const auto now = clock_.now();
        auto fx = make_effects();
        auto done = store_.transact([&](auto& tx) -> result<void> {
            for (const auto& s : page->records) {
                if (auto a = apply_server_record(tx, fx, s, now, rep); !a) return a;
            }
            for (const auto& t : page->tombstones) {
                if (auto a = apply_tombstone(tx, fx, t, now, rep); !a) return a;
            }
            for (const auto& gone : missing) {
                auto cur = tx.get(gone.id);
                if (!cur) return unexpected{std::move(cur).error()};
                // Only a record still synced is deleted this way; one with local changes never is.
                if (!*cur || (*cur)->status != sync_status::synced || in_flight(gone.id)) continue;
                ++rep.removed;
                if (auto e = detail::erase_record(tx, fx, **cur, now, "deleted on server (missing from full list)"); !e) {
                    return e;
                }
            }
            if (feed) return tx.set_meta(detail::pull_cursor_key, page->next_cursor);
            return {};
        });
        deliver(fx, done.has_value());
        if (!done) return done;
        if (!feed || !page->has_more) return {};
        if (page->next_cursor == cursor) {
            rep.failure = make_error(errc::protocol, "server reported more changes without moving the cursor");
            return {};
        }
        cursor = page->next_cursor;
    }
    return {};
}

template <class Entity, class... Policies>
template <class Tx>
result<void> sync_engine<Entity, Policies...>::apply_server_record(Tx& tx, detail::effects<Entity>& fx,
                                                                   const server_record& s, timestamp now,
                                                                   sync_report& rep) {
    auto cur = tx.find_by_server_id(s.server_id);
    if (!cur) return unexpected{std::move(cur).error()};
    if (!*cur && s.id) {
        cur = tx.get(*s.id);
        if (!cur) return unexpected{std::move(cur).error()};
        if (*cur && (*cur)->server_id && *(*cur)->server_id != s.server_id) return {};  // not ours to merge
    }
    if (*cur && in_flight((*cur)->id)) return {};  // the push outcome will settle it
    auto value = entity_ops<Entity>::from_json(s.value);
    if (!value) {
        fx.warnings.push_back("pulled record " + s.server_id + " does not fit: " + value.error().message);
        return {};
    }
    if (!*cur) {
        record_type r;
        if (s.id) {
            r.id = *s.id;
        } else {
            std::lock_guard lock{ids_mutex_};
            r.id = ids_(now);
        }
        r.server_id = s.server_id;
        r.value = std::move(*value);
        r.status = sync_status::synced;
        r.version = s.version;
        r.created_at = now;
        r.updated_at = now;
        ++rep.pulled;
        return detail::write_record(tx, fx, std::optional<record_type>{}, std::move(r), now, "pull");
    }
    const record_type& before = **cur;
    if (s.version <= before.version) return {};  // already seen (duplicate or stale)
    if (!before.server_id && (before.deleted || !entity_ops<Entity>::equal(before.value, *value))) {
        // Our own create, whose response was lost, differs from the server's copy: by local
        // edits or by another device's, a pull cannot tell. Adopting the server's version
        // would push stale fields over a newer change unchecked; leave it to the replayed
        // create, which the server answers `conflict` if the record changed since its create.
        return {};
    }
    record_type after = before;
    std::string cause = "pull";
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
        cause = "pull: create confirmed";
    } else if (before.status == sync_status::synced) {
        after.value = std::move(*value);
        after.version = s.version;
    } else if (is_own_write(s)) {
        cause = rebase_on_own_write(after, s, *value);
    } else {
        cause = settle_conflict(after, s, std::move(*value), rep);
    }
    after.updated_at = now;
    return detail::write_record(tx, fx, *cur, std::move(after), now, cause);
}

template <class Entity, class... Policies>
template <class Tx>
result<void> sync_engine<Entity, Policies...>::apply_tombstone(Tx& tx, detail::effects<Entity>& fx,
                                                               const tombstone& t, timestamp now, sync_report& rep) {
    auto cur = tx.find_by_server_id(t.server_id);
    if (!cur) return unexpected{std::move(cur).error()};
    if (!*cur && t.id) {
        cur = tx.get(*t.id);
        if (!cur) return unexpected{std::move(cur).error()};
    }
    if (!*cur || in_flight((*cur)->id)) return {};
    // A deletion on the server is final: local changes to the record are dropped (and reported).
    if ((*cur)->status != sync_status::synced && !(*cur)->deleted) ++rep.conflicts;
    ++rep.removed;
    ++rep.pulled;
    return detail::erase_record(tx, fx, **cur, now, "deleted on server");
}

}  // namespace tether
