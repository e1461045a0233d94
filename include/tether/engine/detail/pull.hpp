#pragma once

// The pull pass: pages from the cursor on, each applied with its new cursor
// in one transaction; tombstones; full-list deletion; items that cannot be
// applied, fetched again later; the pull backoff. Full resyncs are in
// resync.hpp. Read after conflict.hpp. Not a public entry point.
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
#include <tether/engine/detail/pull_run.hpp>
#include <tether/engine/detail/resync.hpp>
#include <tether/transport/transport.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tether::detail {

/// @brief The pull pass: every page from the stored cursor on (the whole list
/// from a server without a change feed), then the end of a full resync and the
/// items to fetch again. Sends nothing while the pull backoff is in force.
template <class Ctx>
[[nodiscard]] pass_result run_pull(Ctx& ctx) {
    pass_result out;
    if (const auto not_before = ctx.pull_wait.not_before(ctx.clock.now());
        not_before && ctx.clock.now() < *not_before) {
        out.report.retry_at = not_before;  // backing off after a failed pull: no request now
        return out;
    }
    pull_run run;
    out.status = pull_all(ctx, run, out);
    return out;
}

/// The pages, then what follows the last one. A resync whose pages refused
/// an item without its server id cannot tell which records the server lost
/// (it may be any of them): it stays under way, and a later pull whose pages
/// all read finishes it.
template <class Ctx>
result<void> pull_all(Ctx& ctx, pull_run& run, pass_result& out) {
    auto paged = pull_pages(ctx, run, out);
    if (!paged) return unexpected{std::move(paged).error()};
    if (!*paged) return {};  // ended on a failure, in the report
    if (run.resync && !out.report.failure) {
        if (run.seen_unknown) {
            ctx.shell.log(log_level::warning, "the resync met an item without a readable server id: no record is "
                                              "taken for lost this time; a later pull finishes it");
        } else if (auto f = finish_resync(ctx, run, out); !f) {
            return f;
        }
    }
    return refetch(ctx, run, out);
}

/// Asks for pages while the server has more: true when the last one is in
/// (or sync was stopped), false when the run ended on a failure. A cursor the
/// server no longer knows, or a page showing the server went back in time,
/// starts a full resync (once per run).
template <class Ctx>
result<bool> pull_pages(Ctx& ctx, pull_run& run, pass_result& out) {
    using entity_type = typename Ctx::entity_type;
    run.feed = ctx.transport.has_change_feed();
    auto meta = load_pull_meta(ctx, run);
    if (!meta) return unexpected{std::move(meta).error()};
    std::string cursor = run.feed && !run.resync ? std::move(*meta) : std::string{};
    bool restarted = false;
    while (ctx.shell.may_sync()) {
        auto page = ctx.transport.pull(collection_of<entity_type>(), cursor,
                                       std::max<std::size_t>(1, ctx.options.pull_limit));  // no lock held
        if (!page) {
            if (!restarted && page.error().code == errc::cursor_expired) {
                begin_resync(ctx, run, "the server no longer knows the pull cursor: " + page.error().message);
                restarted = true;
                cursor.clear();
                run.restart_list();
                continue;
            }
            pull_failed(ctx, page.error(), out);
            return false;
        }
        ctx.pull_wait.clear();
        if (auto applied = apply_page(ctx, run, *page, out); !applied) return unexpected{std::move(applied).error()};
        if (run.back_in_time && !restarted) {
            begin_resync(ctx, run, "the server went back in time (a pulled version is below the local one)");
            restarted = true;
            cursor.clear();
            run.restart_list();
            continue;
        }
        if (!page->has_more) break;
        if (page->next_cursor == cursor) {
            out.report.failure = make_error(errc::protocol, "server reported more changes without moving the cursor");
            return false;
        }
        cursor = page->next_cursor;
    }
    return true;
}

/// The stored cursor, with the resync flag and the list to fetch again.
template <class Ctx>
result<std::string> load_pull_meta(Ctx& ctx, pull_run& run) {
    auto stored = ctx.store.get_meta(pull_cursor_key);
    if (!stored) return unexpected{std::move(stored).error()};
    auto resync = ctx.store.get_meta(resync_key);
    if (!resync) return unexpected{std::move(resync).error()};
    auto refetch = ctx.store.get_meta(refetch_key);
    if (!refetch) return unexpected{std::move(refetch).error()};
    run.resync = *resync && **resync == "1";
    run.refetch = parse_refetch(*refetch);
    return stored->value_or("");
}

/// A failed pull (other than offline or 401) sets one engine-wide "not
/// before": the backoff's delay for the failed pulls in a row (never giving
/// up), raised to the server's Retry-After, so no trigger causes a pull storm
/// against a server that is down or asked to slow down.
template <class Ctx>
void pull_failed(Ctx& ctx, const error& e, pass_result& out) {
    if (e.code == errc::unauthorized) {
        out.unauthorized = e;
        return;
    }
    out.report.failure = e;
    if (e.code == errc::offline) return;
    const auto n = ctx.pull_wait.count_failure();
    std::optional<std::chrono::milliseconds> delay;
    {
        std::lock_guard lock{ctx.state_mutex};
        for (auto k = std::min<std::uint32_t>(n, 32); !delay && k >= 1; --k) delay = ctx.backoff.next_delay(k, e);
    }
    auto d = delay.value_or(std::chrono::milliseconds{0});
    if (e.retry_after && *e.retry_after > d) d = *e.retry_after;
    const auto now = ctx.clock.now();
    const auto at = now + d;
    ctx.pull_wait.wait(now, at);
    out.report.retry_at = at;
}

/// One page and its new cursor, in one transaction. In full-list mode, the
/// synced records the list no longer holds were deleted on the server (those
/// with local changes never are): known only with the last page of the list,
/// which may come over several, and not at all when a page refused an item
/// without its server id (it may be any of them).
template <class Ctx>
result<void> apply_page(Ctx& ctx, pull_run& run, const pull_page& page, pass_result& out) {
    using record_type = typename Ctx::record_type;
    std::vector<record_type> missing;  // full-list mode: synced records the server no longer lists
    if (!run.feed) {
        for (const auto& s : page.records) run.listed.insert(s.server_id);
        for (const auto& r : page.refused) {
            if (!r.server_id.empty()) run.listed.insert(r.server_id);
            else if (!std::exchange(run.listed_unknown, true))
                ctx.shell.log(log_level::warning, "the full list holds an item without a readable server id: "
                                                  "no deletion on the server is inferred from it this time");
        }
        if (!page.has_more && !run.listed_unknown) {
            auto all = ctx.store.list();
            if (!all) return unexpected{std::move(all).error()};
            for (auto& r : *all) {
                if (r.status == sync_status::synced && r.server_id && !run.listed.contains(*r.server_id)) {
                    missing.push_back(std::move(r));
                }
            }
        }
    }
    for (const auto& s : page.records) {
        if (auto d = learn_creates_in_doubt(ctx, run, s); !d) return d;
    }
    const auto now = ctx.clock.now();
    auto fx = ctx.shell.make_effects();
    auto done = ctx.store.transact([&](auto& tx) -> result<void> {
        std::unordered_set<std::string> in_page;
        for (const auto& r : page.refused) skip_refused(ctx, fx, run, r, out);
        for (const auto& s : page.records) {
            if (auto a = apply_server_record(ctx, tx, fx, run, in_page, s, now, out); !a) return a;
        }
        for (const auto& t : page.tombstones) {
            if (auto a = apply_tombstone(ctx, tx, fx, run, in_page, t, now, out); !a) return a;
        }
        for (const auto& gone : missing) {
            auto cur = tx.get(gone.id);
            if (!cur) return unexpected{std::move(cur).error()};
            if (!*cur || (*cur)->status != sync_status::synced || (*cur)->server_id != gone.server_id ||
                is_in_flight(ctx, gone.id)) {
                continue;  // changed in this page (it may hold a new server id) or in flight
            }
            ++out.report.removed;
            if (auto e = erase_record(tx, fx, **cur, now, to_string(cause::deleted_on_server_unlisted)); !e) return e;
        }
        if (run.refetch_changed) {
            if (auto m = tx.set_meta(refetch_key, format_refetch(run.refetch)); !m) return m;
        }
        if (run.feed && !run.back_in_time) return tx.set_meta(pull_cursor_key, page.next_cursor);
        return {};
    });
    ctx.shell.deliver(fx, done.has_value());
    if (done) run.refetch_changed = false;
    return done;
}

/// This device's creates in doubt, asked once per run and only when a record
/// comes without its local id.
template <class Ctx>
result<void> learn_creates_in_doubt(Ctx& ctx, pull_run& run, const server_record& s) {
    if (run.doubt || s.id) return {};
    auto all = ctx.store.list();
    if (!all) return unexpected{std::move(all).error()};
    creates_in_doubt d;
    for (const auto& r : *all) {
        if (r.server_id || !(r.last_attempt_at || is_in_flight(ctx, r.id))) continue;
        (r.status == sync_status::failed ? d.failed : d.settling) = true;
    }
    run.doubt = d;
    return {};
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
template <class Ctx>
[[nodiscard]] bool may_be_own_create(const Ctx& ctx, const pull_run& run, const server_record& s) {
    if (s.id || !run.doubt || !(run.doubt->settling || run.doubt->failed)) return false;
    if (!run.fetching) return true;
    return run.doubt->settling || is_own_write(ctx, s);
}

/// An item that cannot be applied: counted, logged and, when `fetch_later`,
/// fetched again at a later pull.
template <class Ctx>
result<void> skip_pulled(Ctx& ctx, effects<typename Ctx::entity_type>& fx, pull_run& run, pass_result& out,
                         const std::string& server_id, const std::string& why, bool fetch_later) {
    ++out.report.unapplied;
    ctx.counters.unapplied.fetch_add(1, std::memory_order_relaxed);
    fx.warnings.push_back("pulled item " + (server_id.empty() ? std::string{"with no server id"} : server_id) +
                          " not applied: " + why);
    if (fetch_later && !run.defer(server_id)) {
        ctx.shell.log(log_level::error, "pulled item " + server_id + " not kept for a later fetch: " +
                                            std::to_string(max_refetch) + " are waiting already; it comes again when it changes");
    }
    return {};
}

/// An item the transport's decoder refused: counted (once a run) and logged
/// like one that cannot be applied and, with a server id, fetched at a later
/// pull (not in this one: the answer just read would come again). A resync
/// takes its server id for one the server holds; one without a server id
/// keeps the resync from taking any record for lost (see `pull_all`).
template <class Ctx>
void skip_refused(Ctx& ctx, effects<typename Ctx::entity_type>& fx, pull_run& run, const refused_item& r,
                  pass_result& out) {
    if (r.server_id.empty()) {
        run.seen_unknown |= run.resync;
    } else {
        if (run.resync) run.seen.insert(r.server_id);
        if (!run.refused.insert(r.server_id).second) return;  // counted already by an earlier page of this run
    }
    const std::string where = std::string{r.tombstone ? "tombstone" : "record"} + " " + std::to_string(r.index);
    (void)skip_pulled(ctx, fx, run, out, r.server_id, "refused by the transport (" + where + " of the page): " + r.why,
                      !r.server_id.empty());
}

/// True if the server's `value` is what `before` holds of the server's copy:
/// every field but those changed here since the last sync (all of them for a
/// `synced` record). A server with no trustworthy versions (a full list, a
/// REST API without them) reports another writer's change at the same
/// version: a differing value is a change, applied like any other. A record
/// without a server id, or deleted here, is left to its push.
template <class Entity, class Record>
[[nodiscard]] bool same_content(const Record& before, const Entity& value) {
    if (!before.server_id || before.deleted) return true;
    if (before.dirty.empty()) return entity_ops<Entity>::equal(before.value, value);
    const auto held = entity_ops<Entity>::to_json(before.value);
    const auto got = entity_ops<Entity>::to_json(value);
    for (auto it = held.begin(); it != held.end(); ++it) {
        if (before.dirty.contains(it.key())) continue;
        auto g = got.find(it.key());
        if (g == got.end() || *g != *it) return false;
    }
    return true;
}

/// One server record: matched by server id, then by the local id the server
/// reports; inserted, skipped, or merged with the local record.
template <class Ctx, class Tx>
result<void> apply_server_record(Ctx& ctx, Tx& tx, effects<typename Ctx::entity_type>& fx, pull_run& run,
                                 std::unordered_set<std::string>& in_page, const server_record& s, timestamp now,
                                 pass_result& out) {
    using entity_type = typename Ctx::entity_type;
    if (s.server_id.empty()) return skip_pulled(ctx, fx, run, out, s.server_id, "empty server id", false);
    // The server holds the server id, even if this item cannot be applied (a bad copy of
    // the record may come first in the page): a resync must not take it for lost.
    if (run.resync) run.seen.insert(s.server_id);
    // A copy with a nil local id is no copy of the record: it does not keep the real one
    // that may follow in the page from applying.
    if (s.id && s.id->is_nil()) return skip_pulled(ctx, fx, run, out, s.server_id, "nil local id", false);
    if (!in_page.insert(s.server_id).second) {
        return skip_pulled(ctx, fx, run, out, s.server_id, "server id twice in one page", true);
    }
    auto cur = tx.find_by_server_id(s.server_id);
    if (!cur) return unexpected{std::move(cur).error()};
    if (!*cur && s.id) {
        cur = tx.get(*s.id);
        if (!cur) return unexpected{std::move(cur).error()};
        if (*cur && (*cur)->server_id && *(*cur)->server_id != s.server_id) {
            // Held under another server id. In a full resync after a restore, the one a
            // server lost: another device sent the record again and it got a new one.
            if (!run.resync) return {};  // not ours to merge
            (*cur)->server_id = s.server_id;
        }
    }
    if (*cur && is_in_flight(ctx, (*cur)->id)) return {};  // the push outcome will settle it
    if (!*cur && may_be_own_create(ctx, run, s)) {      // wait for the create's answer, then fetch it again
        run.defer(s.server_id);
        return {};
    }
    auto value = entity_ops<entity_type>::from_json(s.value);
    if (!value) return skip_pulled(ctx, fx, run, out, s.server_id, value.error().message, true);
    run.drop_refetch(s.server_id);
    if (!*cur) {
        const local_id id = s.id ? *s.id : ctx.shell.fresh_id(now);
        ++out.report.pulled;
        return write_record(tx, fx, std::optional<typename Ctx::record_type>{},
                            transitions::pulled_new<entity_type>(id, s.server_id, std::move(*value), s.version, now),
                            now, to_string(cause::pull));
    }
    const auto& before = **cur;
    if (s.version < before.version && !run.resync) {
        run.back_in_time = true;  // a server restored from a backup: start a full resync
        return {};
    }
    if (s.version == before.version && !run.resync && same_content<entity_type>(before, *value)) {
        return {};  // already seen (a duplicate)
    }
    return merge_pulled(ctx, tx, fx, before, s, std::move(*value), now, out, run.resync);
}

/// A server record for a record held here: our own unconfirmed create is
/// confirmed, a `synced` one takes the server's copy, one with local changes
/// keeps them in a resync, is rebased on our own earlier write, or goes to the
/// conflict policy.
template <class Ctx, class Tx>
result<void> merge_pulled(Ctx& ctx, Tx& tx, effects<typename Ctx::entity_type>& fx,
                          const typename Ctx::record_type& before, const server_record& s,
                          typename Ctx::entity_type value, timestamp now, pass_result& out, bool resync) {
    using entity_type = typename Ctx::entity_type;
    if (!before.server_id && (before.deleted || !entity_ops<entity_type>::equal(before.value, value))) {
        // Our own create, whose response was lost, differs from the server's copy: by local
        // edits or by another device's, a pull cannot tell. Adopting the server's version
        // would push stale fields over a newer change unchecked; leave it to the replayed
        // create, which the server answers `conflict` if the record changed since its create.
        return {};
    }
    auto after = before;
    std::string why;
    ++out.report.pulled;
    if (!before.server_id) {
        // Our own create, whose response was lost or is still to come: confirmed as sent.
        why = to_string(transitions::confirm_create(after, s.server_id, s.version));
    } else if (before.status == sync_status::synced) {
        why = to_string(transitions::take_pulled(after, std::move(value), s.version));
    } else if (resync && s.version <= before.version) {
        // A full resync, and no one changed the record since this device's base: the
        // server's version (taken even below the local one) is the base local changes go up on.
        why = to_string(transitions::keep_changes_on(after, s.version));
    } else if (is_own_write(ctx, s)) {
        why = rebase_own_write(after, s, value, out);
    } else {
        why = settle_conflict(ctx, after, s, std::move(value), out);
    }
    after.updated_at = now;
    return write_record(tx, fx, std::optional<sync_status>{before.status}, std::move(after), now, why);
}

/// A tombstone deletes the record whatever its status (a deletion on the
/// server is final), unless it is in flight or older than what we hold.
/// Matched by server id; by local id only a record that has no server id yet
/// (its create's answer was lost), never one held under another server id.
template <class Ctx, class Tx>
result<void> apply_tombstone(Ctx& ctx, Tx& tx, effects<typename Ctx::entity_type>& fx, pull_run& run,
                             std::unordered_set<std::string>& in_page, const tombstone& t, timestamp now,
                             pass_result& out) {
    if (t.server_id.empty()) return skip_pulled(ctx, fx, run, out, t.server_id, "empty server id", false);
    if (run.resync) run.seen.insert(t.server_id);
    if (!in_page.insert(t.server_id).second) {
        return skip_pulled(ctx, fx, run, out, t.server_id, "server id twice in one page", true);
    }
    run.drop_refetch(t.server_id);
    auto cur = tx.find_by_server_id(t.server_id);
    if (!cur) return unexpected{std::move(cur).error()};
    if (!*cur && t.id && !t.id->is_nil()) {
        cur = tx.get(*t.id);
        if (!cur) return unexpected{std::move(cur).error()};
        if (*cur && (*cur)->server_id) return {};
    }
    if (!*cur || is_in_flight(ctx, (*cur)->id)) return {};
    if (t.version < (*cur)->version && !run.resync) return {};  // older than what we hold
    // Local changes to the record are dropped, and reported as a conflict.
    if ((*cur)->status != sync_status::synced && !(*cur)->deleted) ++out.report.conflicts;
    ++out.report.removed;
    ++out.report.pulled;
    return erase_record(tx, fx, **cur, now, to_string(cause::deleted_on_server));
}

/// The ids `refetch` fetches in this pull: at most `refetch_per_pull`, starting
/// at a place that moves with the clock, so ids that never read cannot keep
/// the others from their turn; none a page of this run refused.
template <class Ctx>
std::vector<std::string> refetch_todo(Ctx& ctx, const pull_run& run) {
    const bool settling = run.doubt && run.doubt->settling;
    std::vector<std::string> todo;
    if (run.refetch.empty()) return todo;
    auto x = static_cast<std::uint64_t>(ctx.clock.now().time_since_epoch().count());
    x ^= x >> 33;  // mixed: a clock that moves in round steps still moves the start
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    auto first = std::next(run.refetch.begin(), static_cast<std::ptrdiff_t>(x % run.refetch.size()));
    auto it = first;
    do {
        const auto& sid = *it;
        if (!run.refused.contains(sid) && (!settling || !run.deferred.contains(sid))) todo.push_back(sid);
        if (++it == run.refetch.end()) it = run.refetch.begin();
    } while (it != first && todo.size() < refetch_per_pull);
    return todo;
}

/// A deferred id the server no longer holds (`not_found` on its fetch): gone,
/// as a tombstone says (a refused tombstone's deletion arrives this way).
template <class Ctx>
result<void> apply_gone(Ctx& ctx, pull_run& run, const std::string& sid, pass_result& out) {
    const auto now = ctx.clock.now();
    auto fx = ctx.shell.make_effects();
    auto done = ctx.store.transact([&](auto& tx) -> result<void> {
        std::unordered_set<std::string> alone;
        const tombstone gone{sid, std::nullopt, std::numeric_limits<std::uint64_t>::max()};
        if (auto a = apply_tombstone(ctx, tx, fx, run, alone, gone, now, out); !a) return a;
        return tx.set_meta(refetch_key, format_refetch(run.refetch));
    });
    ctx.shell.deliver(fx, done.has_value());
    if (done) run.refetch_changed = false;
    return done;
}

/// Fetches again, one by one, the items earlier pages could not apply (at
/// most `refetch_per_pull`), until they apply or the server answers
/// `not_found`; an answer the transport cannot read (`errc::protocol`) is
/// counted and kept; one a page of this run refused waits for the next pull,
/// so each is fetched at most once a pull and never in a loop. One deferred
/// by this run waits for the next one while a create in doubt may still
/// settle by itself; else (only failed creates in doubt) it is fetched now: a
/// server listing its full list would defer it again at every pull.
template <class Ctx>
result<void> refetch(Ctx& ctx, pull_run& run, pass_result& out) {
    using entity_type = typename Ctx::entity_type;
    for (const auto& sid : refetch_todo(ctx, run)) {
        if (!ctx.shell.may_sync()) break;
        auto got = ctx.transport.fetch(collection_of<entity_type>(), sid);  // no lock held
        if (!got && got.error().code == errc::not_found) {
            if (auto g = apply_gone(ctx, run, sid, out); !g) return g;
            continue;
        }
        if (!got && got.error().code == errc::protocol) {
            // An answer the transport cannot read (the record is still of the wrong shape):
            // counted, kept for a later pull, and the others are fetched all the same.
            auto fx = ctx.shell.make_effects();
            (void)skip_pulled(ctx, fx, run, out, sid, "fetched again, refused: " + got.error().message, false);
            ctx.shell.deliver(fx, true);
            continue;
        }
        if (!got) break;  // try again at a later pull
        if (got->server_id != sid) {
            ctx.shell.log(log_level::warning, "fetch of " + sid + " answered another record (" + got->server_id + ")");
            break;
        }
        if (auto d = learn_creates_in_doubt(ctx, run, *got); !d) return d;
        const auto now = ctx.clock.now();
        auto fx = ctx.shell.make_effects();
        auto done = ctx.store.transact([&](auto& tx) -> result<void> {
            std::unordered_set<std::string> alone;
            run.fetching = true;
            auto a = apply_server_record(ctx, tx, fx, run, alone, *got, now, out);
            run.fetching = false;
            if (!a) return a;
            if (!run.refetch_changed) return {};
            return tx.set_meta(refetch_key, format_refetch(run.refetch));
        });
        ctx.shell.deliver(fx, done.has_value());
        if (!done) return done;
        run.refetch_changed = false;
        if (run.back_in_time && !run.resync) {
            // Below the version held here: the server went back in time (restored from a
            // backup) since the resync that deferred it, or no resync saw it. The next
            // round of this sync pulls everything again.
            begin_resync(ctx, run, "the server went back in time (a fetched version is below the local one)");
            out.rerun = true;
            break;
        }
    }
    if (!run.refetch_changed) return {};
    return ctx.store.transact([&](auto& tx) { return tx.set_meta(refetch_key, format_refetch(run.refetch)); });
}

}  // namespace tether::detail
