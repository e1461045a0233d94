#pragma once

// The sync half of tether::sync_engine: single flight, conflicts, failures;
// push.hpp and pull.hpp hold the two directions. Included at the end of
// engine/sync_engine.hpp; not a public entry point.
#include <tether/engine/sync_engine.hpp>
#include <tether/core/transitions.hpp>

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
    if (rerun_.load()) {
        // Writes kept coming, or the run failed with a rerun pending: let the app
        // schedule another run rather than loop here. After a failure, records
        // back off and pulls wait for `next_pull_at()` (`rep.retry_at`), so a
        // run the hook starts at once sends nothing to a server that is down.
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
void sync_engine<Entity, Policies...>::count_failure(record_type& r, const error& e, timestamp now, sync_report& rep,
                                                     attempt_kind how) {
    std::optional<std::chrono::milliseconds> delay;
    if (how == attempt_kind::backs_off || (how == attempt_kind::per_error && is_retryable(e))) {
        std::lock_guard lock{state_mutex_};
        delay = backoff_.next_delay(r.attempts + 1, e);
    }
    if (transitions::fail_attempt(r, e, now, delay)) ++rep.retrying;
    else ++rep.failed;
}

template <class Entity, class... Policies>
template <class Tx>
result<void> sync_engine<Entity, Policies...>::merge_pulled_twin(Tx& tx, detail::effects<Entity>& fx,
                                                                 const local_id& id, const std::string& server_id,
                                                                 timestamp now) {
    // A create's answer names a server id that a record pulled earlier holds
    // (a pull brought the record back without its local id before the create's
    // answer came): the two are one record. The pulled twin goes, without a
    // cleanup (its attached resources are the original's), and its local edits
    // move to the original, which keeps its local id.
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
            orig.value = entity_ops<Entity>::merge(std::move(orig.value), gone.value, gone.dirty);
            for (const auto& f : gone.dirty) orig.dirty.emplace(f);
            orig.local_rev += 1;
            if (auto p = tx.put(std::move(orig)); !p) return p;
        }
    }
    fx.warnings.push_back("record " + gone.id.to_string() + " (server id " + server_id + ") is " + id.to_string() +
                          ", pulled before its create was answered: merged");
    return detail::erase_record(tx, fx, gone, now, to_string(cause::merged_twin), false);
}

template <class Entity, class... Policies>
std::string sync_engine<Entity, Policies...>::settle_conflict(record_type& after, const server_record& s,
                                                              Entity server_value, sync_report& rep) {
    ++rep.conflicts;
    const auto decision = conflict_.resolve(conflict<Entity>{after, server_value, s.version, s.updated_at});
    const auto why = transitions::settle(after, decision, std::move(server_value), s.server_id, s.version);
    if (transitions::wants_push(after)) rerun_.store(true);  // goes up in the next round of this sync
    return std::string{to_string(why)};
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
    auto id = next_id(clock_.now());
    if (!id) return unexpected{std::move(id).error()};
    std::string fresh = id->to_string();
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
    const auto why = transitions::rebase_on_own_write(after, server_value, s.server_id, s.version);
    if (transitions::wants_push(after)) rerun_.store(true);
    return std::string{to_string(why)};
}

}  // namespace tether

#include <tether/engine/detail/pull.hpp>
#include <tether/engine/detail/push.hpp>
#include <tether/engine/detail/resync.hpp>
