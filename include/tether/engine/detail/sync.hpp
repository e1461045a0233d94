#pragma once

// The sync half of tether::sync_engine: push, pull, outcomes and conflicts.
// Included at the end of engine/sync_engine.hpp; not a public entry point.
#include <tether/engine/sync_engine.hpp>

#include <algorithm>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tether {

namespace detail {
/// Removes ids from the in-flight set when a push batch is settled, whatever happens.
template <class Mutex, class Set, class Ids>
struct in_flight_guard {
    Mutex& mutex;
    Set& set;
    const Ids& ids;
    ~in_flight_guard() {
        std::lock_guard lock{mutex};
        for (const auto& id : ids) set.erase(id);
    }
};

/// The storage key of the pull cursor.
inline constexpr std::string_view pull_cursor_key = "pull_cursor";
/// The storage key of this device's id (the `origin` of its pushes).
inline constexpr std::string_view device_id_key = "device_id";
/// Rounds one sync call runs at most while writes keep asking for more.
inline constexpr int max_sync_rounds = 8;
}  // namespace detail

template <class Entity, class... Policies>
result<sync_report> sync_engine<Entity, Policies...>::sync() {
    return single_flight([this](sync_report& rep) -> result<void> {
        if (auto p = run_push(rep); !p) return p;
        if (rep.failure) return {};
        return run_pull(rep);
    });
}

template <class Entity, class... Policies>
result<sync_report> sync_engine<Entity, Policies...>::push() {
    return single_flight([this](sync_report& rep) { return run_push(rep); });
}

template <class Entity, class... Policies>
result<sync_report> sync_engine<Entity, Policies...>::pull() {
    return single_flight([this](sync_report& rep) { return run_pull(rep); });
}

template <class Entity, class... Policies>
template <class Body>
result<sync_report> sync_engine<Entity, Policies...>::single_flight(Body body) {
    sync_report rep;
    if (!online_.load()) {
        rep.skipped = skip_reason::offline;
        return rep;
    }
    if (!authenticated_.load()) {
        rep.skipped = skip_reason::unauthorized;
        return rep;
    }
    if (running_.exchange(true)) {
        rerun_.store(true);
        rep.skipped = skip_reason::already_running;
        return rep;
    }
    publish_state();
    result<void> outcome;
    int rounds = 0;
    try {
        do {
            rerun_.store(false);
            outcome = body(rep);
        } while (outcome && !rep.failure && rerun_.load() && online_.load() && authenticated_.load() &&
                 ++rounds < detail::max_sync_rounds);
    } catch (...) {
        running_.store(false);
        publish_state();
        throw;
    }
    last_run_failed_.store(!outcome || rep.failure.has_value());
    running_.store(false);
    publish_state();
    if (outcome && !rep.failure && rerun_.load()) {
        // Writes kept coming: let the app schedule another run rather than loop here.
        if (auto h = hook(sync_needed_hook_)) (*h)();
    }
    if (!outcome) return unexpected{std::move(outcome).error()};
    return rep;
}

template <class Entity, class... Policies>
bool sync_engine<Entity, Policies...>::in_flight(const local_id& id) const {
    std::lock_guard lock{state_mutex_};
    return in_flight_.contains(id);
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::pause_unauthorized(const error& e, sync_report& rep) {
    authenticated_.store(false);
    rep.failure = e;
    log(log_level::warning, "server refused the credentials; sync paused until set_authenticated(true)");
    publish_state();
}

template <class Entity, class... Policies>
push_op sync_engine<Entity, Policies...>::make_op(const record_type& r) const {
    push_op op;
    op.origin = device_id_;
    op.id = r.id;
    op.server_id = r.server_id;
    op.base_version = r.version;
    if (r.deleted) {
        op.kind = op_kind::remove;
    } else if (!r.server_id) {
        op.kind = op_kind::create;
        op.value = entity_ops<Entity>::to_json(r.value);
    } else {
        op.kind = op_kind::update;
        auto full = entity_ops<Entity>::to_json(r.value);
        if (r.dirty.empty()) {
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

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::count_failure(record_type& r, const error& e, timestamp now,
                                                     sync_report& rep) {
    r.attempts += 1;
    r.last_attempt_at = now;
    r.last_error = e;
    std::optional<std::chrono::milliseconds> delay;
    if (is_retryable(e)) {
        std::lock_guard lock{state_mutex_};
        delay = backoff_.next_delay(r.attempts, e);
    }
    if (delay) {
        r.status = sync_status::error;
        r.next_attempt_at = now + *delay;
        ++rep.retrying;
    } else {
        r.status = sync_status::failed;
        r.next_attempt_at.reset();
        ++rep.failed;
    }
}

template <class Entity, class... Policies>
std::string sync_engine<Entity, Policies...>::settle_conflict(record_type& after, const server_record& s,
                                                              Entity server_value, sync_report& rep) {
    ++rep.conflicts;
    const record_type before = after;
    const auto decision = conflict_.resolve(conflict<Entity>{before, server_value, s.version, s.updated_at});
    if (!s.server_id.empty()) after.server_id = s.server_id;
    after.version = std::max(after.version, s.version);
    // A record that leaves `failed` (or `error`) starts its attempts afresh; one
    // that stays `failed` keeps its count and error, so the user still sees why.
    struct fresh_attempts_unless_failed {
        record_type& r;
        ~fresh_attempts_unless_failed() {
            if (r.status == sync_status::failed) return;
            r.attempts = 0;
            r.next_attempt_at.reset();
            r.last_error.reset();
        }
    } attempts_guard{after};
    auto take_server = [&] {
        after.value = std::move(server_value);
        after.status = sync_status::synced;
        after.deleted = false;
        after.dirty.clear();
    };
    // A resolution that keeps local changes goes up in the next round of this sync.
    struct rerun_if_pending {
        const record_type& r;
        std::atomic<bool>& rerun;
        ~rerun_if_pending() {
            if (r.status == sync_status::pending || r.status == sync_status::pending_deletion) rerun.store(true);
        }
    } rerun_guard{after, rerun_};
    switch (decision.kind) {
        case resolution_kind::take_server:
            take_server();
            return "conflict: server wins";
        case resolution_kind::keep_local:
            if (after.deleted) {
                after.status = sync_status::pending_deletion;
                after.dirty.clear();
                return "conflict: local delete kept";
            }
            after.dirty = entity_ops<Entity>::diff(server_value, after.value);
            if (after.dirty.empty()) {
                take_server();
                return "conflict: local equals server";
            }
            if (after.status != sync_status::failed) after.status = sync_status::pending;
            return "conflict: local kept";
        case resolution_kind::merged:
            if (!decision.value) {
                take_server();
                return "conflict: server wins (empty merge)";
            }
            after.value = *decision.value;
            after.deleted = false;
            after.dirty = entity_ops<Entity>::diff(server_value, after.value);
            if (after.dirty.empty()) {
                take_server();
                return "conflict: merge equals server";
            }
            after.status = sync_status::pending;
            return "conflict: merged";
    }
    take_server();
    return "conflict: server wins";
}

template <class Entity, class... Policies>
result<void> sync_engine<Entity, Policies...>::ensure_device_id() {
    if (!device_id_.empty()) return {};
    auto stored = store_.get_meta(detail::device_id_key);
    if (!stored) return unexpected{std::move(stored).error()};
    if (*stored && !(*stored)->empty()) {
        device_id_ = **stored;
        return {};
    }
    std::string fresh;
    {
        std::lock_guard lock{ids_mutex_};
        fresh = ids_(clock_.now()).to_string();
    }
    auto saved = store_.transact([&](auto& tx) { return tx.set_meta(detail::device_id_key, fresh); });
    if (!saved) return saved;
    device_id_ = std::move(fresh);
    return {};
}

template <class Entity, class... Policies>
bool sync_engine<Entity, Policies...>::is_own_write(const server_record& s) const {
    return !device_id_.empty() && s.origin == device_id_;
}

template <class Entity, class... Policies>
std::string sync_engine<Entity, Policies...>::rebase_on_own_write(record_type& after, const server_record& s,
                                                                  const Entity& server_value) {
    // The server's current version is this device's own earlier push (its
    // response was lost): no other writer is involved, so nothing conflicts.
    // Take that version as the base and send what changed since.
    if (!s.server_id.empty()) after.server_id = s.server_id;
    after.version = std::max(after.version, s.version);
    if (after.status != sync_status::failed) {
        after.attempts = 0;
        after.next_attempt_at.reset();
        after.last_error.reset();
    }
    if (after.deleted) {
        if (after.status != sync_status::failed) after.status = sync_status::pending_deletion;
        rerun_.store(true);
        return "own earlier write confirmed; delete kept";
    }
    after.dirty = entity_ops<Entity>::diff(server_value, after.value);
    if (after.dirty.empty()) {
        if (after.status != sync_status::failed) after.status = sync_status::synced;
        return "own earlier write confirmed";
    }
    if (after.status != sync_status::failed) {
        after.status = sync_status::pending;
        rerun_.store(true);
    }
    return "own earlier write confirmed; later changes kept";
}

// ---- push -------------------------------------------------------------------------

template <class Entity, class... Policies>
result<void> sync_engine<Entity, Policies...>::run_push(sync_report& rep) {
    const std::size_t max_batch = std::max<std::size_t>(1, transport_.max_batch());
    const std::size_t batch = options_.push_batch ? std::min(options_.push_batch, max_batch) : max_batch;
    const auto collection = std::string_view{collection_of<Entity>()};
    // Each record goes up at most once per run; those still due after their
    // outcome (edited during the push) are skipped, so ask for that many more.
    if (auto d = ensure_device_id(); !d) return d;
    std::unordered_set<local_id> handled;
    handled_still_due_ = 0;
    while (online_.load() && authenticated_.load()) {
        auto due = store_.due(clock_.now(), batch + handled_still_due_);
        if (!due) return unexpected{std::move(due).error()};
        std::vector<record_type> picked;
        for (auto& r : *due) {
            if (picked.size() == batch) break;
            if (!handled.contains(r.id)) picked.push_back(std::move(r));
        }
        if (picked.empty()) return {};

        std::vector<local_id> ids;
        ids.reserve(picked.size());
        for (const auto& r : picked) {
            handled.insert(r.id);
            ids.push_back(r.id);
        }
        {
            std::lock_guard lock{state_mutex_};
            in_flight_.insert(ids.begin(), ids.end());
        }
        detail::in_flight_guard<std::mutex, std::set<local_id>, std::vector<local_id>> guard{state_mutex_, in_flight_,
                                                                                              ids};
        // Re-read now that the records are marked in flight: a remove() that ran
        // before the mark may have erased a never-sent record, and an edit may
        // have landed since `due` was read. From here on, remove() of these
        // records only marks them pending_deletion.
        std::vector<push_op> ops;
        ops.reserve(picked.size());
        std::vector<record_type> batch_records;
        batch_records.reserve(picked.size());
        for (const auto& r : picked) {
            auto fresh = store_.get(r.id);
            if (!fresh) return unexpected{std::move(fresh).error()};
            if (!*fresh || !is_due(**fresh, clock_.now())) continue;
            ops.push_back(make_op(**fresh));
            batch_records.push_back(std::move(**fresh));
        }
        if (ops.empty()) continue;
        // A create may reach the server even if the app dies before its outcome is stored:
        // mark it attempted first, so that a remove() after a restart goes to the server.
        if (std::any_of(batch_records.begin(), batch_records.end(),
                        [](const record_type& r) { return !r.server_id && !r.last_attempt_at; })) {
            const auto sent_at = clock_.now();
            auto marked = store_.transact([&](auto& tx) -> result<void> {
                for (auto& r : batch_records) {
                    if (r.server_id || r.last_attempt_at) continue;
                    auto cur = tx.get(r.id);
                    if (!cur) return unexpected{std::move(cur).error()};
                    if (!*cur) continue;
                    record_type m = **cur;
                    m.last_attempt_at = sent_at;
                    r.last_attempt_at = sent_at;
                    if (auto p = tx.put(std::move(m)); !p) return p;
                }
                return {};
            });
            if (!marked) return marked;
        }
        auto outcomes = transport_.push(collection, std::span<const push_op>{ops});  // no lock held
        if (outcomes && outcomes->size() != ops.size()) {
            outcomes = unexpected{make_error(errc::transient, "server answered " + std::to_string(outcomes->size()) +
                                                                  " outcomes for " + std::to_string(ops.size()) + " ops")};
        }
        if (!outcomes) {
            if (auto f = fail_batch(batch_records, outcomes.error(), rep); !f) return f;
            return {};
        }
        const auto now = clock_.now();
        auto fx = make_effects();
        std::optional<error> unauthorized;
        auto done = store_.transact([&](auto& tx) -> result<void> {
            for (std::size_t i = 0; i < ops.size(); ++i) {
                const auto& out = (*outcomes)[i];
                if (out.outcome == push_outcome::kind::rejected && out.failure.code == errc::unauthorized) {
                    unauthorized = out.failure;  // not the record's fault: no attempt is counted
                    ++handled_still_due_;
                    continue;
                }
                if (auto a = apply_outcome(tx, fx, ops[i], batch_records[i].local_rev, out, now, rep); !a) return a;
            }
            return {};
        });
        deliver(fx, done.has_value());
        if (!done) return done;
        if (unauthorized) {
            pause_unauthorized(*unauthorized, rep);
            return {};
        }
    }
    return {};
}

template <class Entity, class... Policies>
result<void> sync_engine<Entity, Policies...>::fail_batch(const std::vector<record_type>& batch, const error& e,
                                                          sync_report& rep) {
    if (e.code == errc::unauthorized) {
        pause_unauthorized(e, rep);
        return {};
    }
    rep.failure = e;
    if (e.code == errc::offline) return {};  // the request never left: not an attempt
    const auto now = clock_.now();
    auto fx = make_effects();
    auto done = store_.transact([&](auto& tx) -> result<void> {
        for (const auto& picked : batch) {
            auto cur = tx.get(picked.id);
            if (!cur) return unexpected{std::move(cur).error()};
            if (!*cur) continue;
            record_type after = **cur;
            count_failure(after, e, now, rep);
            if (is_due(after, now)) ++handled_still_due_;
            const std::string cause = std::string{"push failed: "} + std::string{to_string(e.code)};
            if (auto w = detail::write_record(tx, fx, *cur, std::move(after), now, cause); !w) return w;
        }
        return {};
    });
    deliver(fx, done.has_value());
    return done;
}

template <class Entity, class... Policies>
template <class Tx>
result<void> sync_engine<Entity, Policies...>::apply_outcome(Tx& tx, detail::effects<Entity>& fx, const push_op& op,
                                                             std::uint64_t rev, const push_outcome& out,
                                                             timestamp now, sync_report& rep) {
    auto cur = tx.get(op.id);
    if (!cur) return unexpected{std::move(cur).error()};
    if (!*cur) return {};  // cannot happen while in flight; nothing to settle
    const record_type& before = **cur;
    record_type after = before;
    std::string cause;
    switch (out.outcome) {
        case push_outcome::kind::applied: {
            ++rep.pushed;
            if (op.kind == op_kind::remove) {
                ++rep.removed;
                return detail::erase_record(tx, fx, before, now, "push applied: deleted on server");
            }
            if (!out.record.server_id.empty()) after.server_id = out.record.server_id;
            after.version = std::max(after.version, out.record.version);
            after.attempts = 0;
            after.next_attempt_at.reset();
            after.last_error.reset();
            if (before.local_rev == rev) {
                auto v = entity_ops<Entity>::from_json(out.record.value);
                if (v && op.kind == op_kind::create && !entity_ops<Entity>::equal(*v, before.value)) {
                    // A replayed create (its first response was lost): the server answers
                    // with what it holds, which predates the local edits sent now.
                    after.dirty = entity_ops<Entity>::diff(*v, before.value);
                    after.status = sync_status::pending;
                    rerun_.store(true);
                    cause = "push applied: create replayed, local changes kept";
                    break;
                }
                if (v) {
                    after.value = std::move(*v);
                } else {
                    fx.warnings.push_back("server value of " + op.id.to_string() + " does not fit: " +
                                                v.error().message + "; keeping the local value");
                }
                after.status = sync_status::synced;
                after.dirty.clear();
                after.updated_at = now;
                cause = "push applied";
            } else {
                after.status = after.deleted ? sync_status::pending_deletion : sync_status::pending;
                cause = "push applied; changed during push";
            }
            break;
        }
        case push_outcome::kind::conflict: {
            auto v = entity_ops<Entity>::from_json(out.record.value);
            if (!v) {
                count_failure(after, v.error(), now, rep);
                cause = "push conflict with an unreadable server value";
                break;
            }
            if (op.kind != op_kind::create && is_own_write(out.record)) {
                cause = rebase_on_own_write(after, out.record, *v);
                break;
            }
            cause = settle_conflict(after, out.record, std::move(*v), rep);
            after.updated_at = now;
            break;
        }
        case push_outcome::kind::rejected: {
            if (out.failure.code == errc::not_found) {
                // The server has no such record: a delete is done; an edit met a server-side deletion.
                if (op.kind != op_kind::remove) ++rep.conflicts;
                ++rep.removed;
                return detail::erase_record(tx, fx, before, now,
                                            op.kind == op_kind::remove ? "push applied: already deleted on server"
                                                                       : "deleted on server");
            }
            count_failure(after, out.failure, now, rep);
            cause = std::string{"push rejected: "} + std::string{to_string(out.failure.code)};
            break;
        }
    }
    if (is_due(after, now)) ++handled_still_due_;
    return detail::write_record(tx, fx, *cur, std::move(after), now, cause);
}

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
