#pragma once

/// @file
/// @brief `tether::loopback_server`: the in-process face of
/// `tether::server::sync_service` over a `tether::server::memory_store`, with
/// fault knobs, for tests, demos and the simulator.
#include <tether/clock/clock.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/server/memory_store.hpp>
#include <tether/server/store.hpp>
#include <tether/server/sync_service.hpp>
#include <tether/testing/detail/loopback_spoil.hpp>
#include <tether/testing/detail/loopback_state.hpp>
#include <tether/testing/loopback_events.hpp>
#include <tether/testing/loopback_faults.hpp>
#include <tether/transport/transport.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tether {

/// @brief An in-process model of a sync server, for tests, demos and the simulator.
///
/// A handle: copies share one server, and every member is thread-safe. The
/// protocol's rules are those of `tether::server::sync_service` (one
/// `sync_service<server::memory_store>` per server, with its default
/// `server::service_limits`); this face adds the token check, fault injection
/// and the spoiling of pull pages:
/// - a request's token names its user (`"alice"` is user alice); an empty or
///   `revoke`d token gets `errc::unauthorized` (HTTP 401); users never see each
///   other's records;
/// - records live per (user, collection); server ids are `"s1"`, `"s2"`, ...;
///   each (user, collection) numbers its changes 1, 2, 3, ...; a record's
///   `version` is the number of its last change, and pull cursors are those
///   numbers in decimal;
/// - creates are idempotent on the local id (a second create answers with the
///   first record and `push_outcome::replayed` set, or with a `conflict`, also
///   `replayed`, if the record changed since its create; a deleted one answers
///   `errc::not_found`); updates merge the sent fields and removes leave
///   tombstones, both checked against `base_version` (a mismatch is a
///   `conflict` carrying the current record);
/// - faults can be injected, scripted or seeded-random, per request (push, pull
///   and fetch each count as one), checked in this order: `fail_next`,
///   `drop_next_requests`, `drop_next_responses`, random request faults; then
///   the token; then, for a push, the value limit (`set_value_limit`) and, per
///   op, `poison` and random `reject_op`; for an answered pull page, omitted
///   local ids and bad items (`set_omit_local_ids`, `bad_next_pages`);
/// - a live feed (`subscribe`, `events()`: see `loopback_events`): every
///   committed change goes to the user's other devices' subscriptions, with
///   its own fault knobs (duplicate, reorder, drop, delay, a dropped subscription);
/// - a hostile but legal server: `set_create_filler` fills fields on create,
///   `snapshot` / `restore` take it back in time (stale cursors then answer
///   `errc::cursor_expired`, HTTP 410).
///
/// Every request holds the server's lock from start to end (the service's
/// store has its own), so requests apply one at a time and seeded faults are
/// drawn in request order.
///
/// @code
/// tether::manual_clock clock;
/// tether::loopback_server server{[clock] { return clock.now(); }};
/// tether::loopback_transport alice{server, "alice"};
/// server.drop_next_responses(1);      // the next push applies, but its answer is lost
/// auto r = alice.push("jobs", ops);   // errc::transient "response lost"
/// auto again = alice.push("jobs", ops);  // same records: creates are idempotent
/// CHECK(server.records("alice", "jobs").size() == ops.size());
/// @endcode
class loopback_server {
public:
    using fault_rates = tether::fault_rates;    ///< @brief See `tether::fault_rates`.
    using fault_counts = tether::fault_counts;  ///< @brief See `tether::fault_counts`.
    using service_type = server::sync_service<server::memory_store>;  ///< @brief The semantics it serves.

    /// @brief A server whose time is the system clock's (milliseconds).
    loopback_server() : loopback_server(std::function<timestamp()>{}) {}

    /// @brief A server whose time is `now()` (e.g. a `manual_clock`'s); an empty
    /// function means the system clock.
    explicit loopback_server(std::function<timestamp()> now) : state_(std::make_shared<state>(std::move(now))) {}

    // ---- the protocol ---------------------------------------------------------

    /// @brief Applies a batch of ops for the user `token` names; one outcome per op, in order.
    ///
    /// An error result means the request as a whole failed (unauthorized, an
    /// injected fault, an op value over the limit: `errc::too_large`, HTTP 413,
    /// nothing applied); with "response lost" the ops did apply. A malformed op
    /// (create or update whose value is not an object, create with a nil id) is
    /// `rejected` with `errc::protocol`. An op that names its record only by
    /// local id, with `base_version` 0, skips the version check: its sender never
    /// learnt a version (its create's response was lost).
    [[nodiscard]] result<std::vector<push_outcome>> push(std::string_view token, std::string_view collection,
                                                         std::span<const push_op> ops) {
        result<std::vector<push_outcome>> outcomes{std::vector<push_outcome>{}};
        std::function<void()> hook;
        bool drop = false;
        {
            std::lock_guard lock{state_->mutex};
            auto& s = *state_;
            auto plan = begin_request_(s);
            if (plan.failure) return unexpected{std::move(*plan.failure)};
            drop = plan.drop_response;
            if (auto denied = check_token_(s, token)) {
                if (drop) return unexpected{response_lost_()};
                return unexpected{std::move(*denied)};
            }
            if (auto big = over_value_limit_(s, ops)) {
                ++s.counts.too_large;
                if (drop) return unexpected{response_lost_()};
                return unexpected{std::move(*big)};
            }
            outcomes = s.service.push({.user = token, .collection = collection, .ops = ops},
                                      [&s](const push_op& op) { return screen_(s, op); });
            if (!outcomes) {
                if (drop) return unexpected{response_lost_()};
                return outcomes;
            }
            for (const auto& o : *outcomes)
                if (o.replayed) ++s.counts.replayed_creates;
            hook = s.push_hook;
        }
        state_->events.flush();
        if (hook) hook();
        if (drop) return unexpected{response_lost_()};
        return outcomes;
    }

    /// @brief The changes after `cursor` (decimal change number, `""` = from the start),
    /// oldest first, at most `limit` (0 counts as 1).
    ///
    /// Live records go to `records`, deleted ones to `tombstones`; `next_cursor`
    /// is the last returned version, or on the last page (`has_more` false) the
    /// collection's last change number (the same, unless a `restore` took the
    /// collection back); `has_more` says whether more are waiting. A cursor that
    /// is not a cursor is `errc::invalid_argument`; one the server cannot
    /// vouch for is `errc::cursor_expired` (HTTP 410: pull again from `""`):
    /// a cursor beyond the collection's last change number, or, after a
    /// `restore`, any cursor issued before it. Cursors are decimal change
    /// numbers; after a restore they also carry the number of restores
    /// (`"23@1"`), since restored records keep their old version numbers. With the change feed off
    /// (`set_change_feed(false)`) every pull returns all live records, no
    /// tombstones, `next_cursor` `""`, and the cursor is ignored. An answered page
    /// may then lose local ids and gain a bad item (`set_omit_local_ids`,
    /// `bad_next_pages`, `fault_rates`).
    [[nodiscard]] result<pull_page> pull(std::string_view token, std::string_view collection,
                                         std::string_view cursor, std::size_t limit) {
        std::lock_guard lock{state_->mutex};
        auto& s = *state_;
        auto plan = begin_request_(s);
        if (plan.failure) return unexpected{std::move(*plan.failure)};
        auto page = [&]() -> result<pull_page> {
            if (auto denied = check_token_(s, token)) return unexpected{std::move(*denied)};
            return s.service.pull({.user = token, .collection = collection, .cursor = cursor, .limit = limit});
        }();
        if (!page && page.error().code == errc::cursor_expired) ++s.counts.expired_cursors;
        if (plan.drop_response) return unexpected{response_lost_()};
        if (page) spoil_page_(s, server::scope{token, collection}, *page);
        return page;
    }

    /// @brief The live record `server_id`; `errc::not_found` if it is missing or deleted.
    [[nodiscard]] result<server_record> fetch(std::string_view token, std::string_view collection,
                                              std::string_view server_id) {
        std::lock_guard lock{state_->mutex};
        auto& s = *state_;
        auto plan = begin_request_(s);
        if (plan.failure) return unexpected{std::move(*plan.failure)};
        auto found = [&]() -> result<server_record> {
            if (auto denied = check_token_(s, token)) return unexpected{std::move(*denied)};
            return s.service.fetch({.user = token, .collection = collection, .server_id = server_id});
        }();
        if (plan.drop_response) return unexpected{response_lost_()};
        return found;
    }

    // ---- inspection -----------------------------------------------------------

    /// @brief The live records of `user`'s `collection`, in server-id order (`s2` before `s10`).
    [[nodiscard]] std::vector<server_record> records(std::string_view user, std::string_view collection) const {
        std::lock_guard lock{state_->mutex};
        std::vector<server_record> out;
        for (auto& r : detail::loopback_read(state_->service.store(), [&](const auto& tx) { return tx.list({user, collection}); }))
            out.push_back(std::move(r.record));
        return out;
    }

    /// @brief How many records (live or deleted) of `user`'s `collection` carry `id`.
    /// Idempotent creates keep this at most 1.
    [[nodiscard]] std::size_t count_with_local_id(std::string_view user, std::string_view collection,
                                                  const local_id& id) const {
        return find(user, collection, id) ? 1 : 0;  // the store keeps local ids unique per collection
    }

    /// @brief A record as the server holds it, live or deleted (see `find`).
    struct entry {
        server_record record;  ///< the record (for a deleted one: its last state)
        bool deleted = false;  ///< true for a tombstone
    };

    /// @brief The record `server_id` of `user`'s `collection`, live or deleted;
    /// empty if the server has no such record (never had, or forgot it in a `restore`).
    [[nodiscard]] std::optional<entry> find(std::string_view user, std::string_view collection,
                                            std::string_view server_id) const {
        std::lock_guard lock{state_->mutex};
        return to_entry_(detail::loopback_read(state_->service.store(), [&](const auto& tx) { return tx.find_by_server_id({user, collection}, server_id); }));
    }

    /// @brief The record of `user`'s `collection` created with local id `id`, live
    /// or deleted; empty if there is none.
    [[nodiscard]] std::optional<entry> find(std::string_view user, std::string_view collection,
                                            const local_id& id) const {
        std::lock_guard lock{state_->mutex};
        return to_entry_(detail::loopback_read(state_->service.store(), [&](const auto& tx) { return tx.find_by_local_id({user, collection}, id); }));
    }

    /// @brief The last change number `user`'s `collection` has issued (0 if none):
    /// every version it gave out is at most this, and after a `restore` every
    /// version given out before the restore is below it.
    [[nodiscard]] std::uint64_t last_change(std::string_view user, std::string_view collection) const {
        std::lock_guard lock{state_->mutex};
        auto info = detail::loopback_read(state_->service.store(), [&](const auto& tx) { return tx.collection({user, collection}); });
        return info ? info->last_change : 0;
    }

    /// @brief True when pulls follow the change feed (the default), false in full-list mode.
    [[nodiscard]] bool has_change_feed() const {
        std::lock_guard lock{state_->mutex};
        return state_->service.has_change_feed();
    }

    /// @brief How many requests (push, pull, fetch) the server has received, failed ones included.
    [[nodiscard]] std::uint64_t requests() const {
        std::lock_guard lock{state_->mutex};
        return state_->requests;
    }

    // ---- configuration --------------------------------------------------------

    /// @brief Turns the change feed on (the default) or off (full-list mode: see `pull`).
    void set_change_feed(bool on) {
        std::lock_guard lock{state_->mutex};
        state_->service.set_change_feed(on);
    }

    /// @brief Fills server-side fields on create: `filler(value)` edits the value
    /// of every record a push creates before it is stored, so the stored record
    /// and the create's answer differ from what was sent (an id, a timestamp, a
    /// default the server owns). Not called for idempotent replays (the record
    /// exists), updates, or `put`. A value the filler leaves not an object
    /// rejects the create (`errc::protocol`). Each create the filler changes is
    /// counted (`fault_counts::filled_creates`). Called under the server's lock:
    /// it must not call the server. A second call replaces the filler; an empty
    /// function turns it off (the default).
    void set_create_filler(std::function<void(nlohmann::json&)> filler) {
        std::lock_guard lock{state_->mutex};
        if (!filler) {
            state_->service.set_create_filler({});
            return;
        }
        // Counted here, under the server's lock (the service calls it inside a push).
        state_->service.set_create_filler([s = state_.get(), f = std::move(filler)](nlohmann::json& value) {
            const nlohmann::json sent = value;
            f(value);
            if (value.is_object() && value != sent) ++s->counts.filled_creates;
        });
    }

    /// @brief With `on`, every record and tombstone of every answered pull page
    /// (change feed and full list; not fetch, not push answers) comes without
    /// its local id, as from a server that does not keep it; each one is counted
    /// (`fault_counts::omitted_local_ids`). `false` (the default) turns it off;
    /// `fault_rates::omit_local_id` omits ids at random instead. A second call
    /// replaces the first.
    void set_omit_local_ids(bool on) {
        std::lock_guard lock{state_->mutex};
        state_->omit_local_ids = on;
    }

    /// @brief Refuses every push holding an op whose value, serialized as JSON
    /// (`value.dump()`: the whole entity of a create, the sent fields of an
    /// update), is over `bytes` bytes: the push fails as a whole with
    /// `errc::too_large` (HTTP 413) and nothing of it applies, so a client must
    /// split the batch to get the other ops through. Checked after the request
    /// faults and the token; counted per refused push (`fault_counts::too_large`).
    /// 0 (the default) means no limit; a second call replaces the limit.
    ///
    /// A fault knob of this face, as a server whose body limit is small: the
    /// service's own value limit (`server::service_limits::max_value_bytes`)
    /// rejects only the op concerned and applies the rest of the batch.
    void set_value_limit(std::size_t bytes) {
        std::lock_guard lock{state_->mutex};
        state_->value_limit = bytes;
    }

    /// @brief Makes `token` unauthorized (HTTP 401) until `restore(token)`.
    void revoke(std::string_view token) {
        std::lock_guard lock{state_->mutex};
        state_->revoked.emplace(token);
    }

    /// @brief Undoes `revoke(token)`.
    void restore(std::string_view token) {
        std::lock_guard lock{state_->mutex};
        if (auto it = state_->revoked.find(token); it != state_->revoked.end()) state_->revoked.erase(it);
    }

    // ---- server-side edits (another device, an admin) ---------------------------

    /// @brief Creates or replaces a record of `user`'s `collection` as if another
    /// device had written it: a new record (with a new server id, and no local id)
    /// when `server_id` is empty or unknown, else the record's whole value is
    /// replaced (a deleted record comes back). Bumps the sequence.
    /// `errc::invalid_argument` if `value` is not a JSON object.
    result<server_record> put(std::string_view user, std::string_view collection, std::string_view server_id,
                              nlohmann::json value) {
        auto done = [&] {
            std::lock_guard lock{state_->mutex};
            return state_->service.put({user, collection}, server_id, std::move(value));
        }();
        state_->events.flush();
        return done;
    }

    /// @brief Deletes a record of `user`'s `collection` server-side (it becomes a
    /// tombstone and bumps the sequence). Already deleted: nothing changes.
    /// `errc::not_found` if there is no such record.
    result<void> erase(std::string_view user, std::string_view collection, std::string_view server_id) {
        auto done = [&] {
            std::lock_guard lock{state_->mutex};
            return state_->service.erase({user, collection}, server_id);
        }();
        state_->events.flush();
        return done;
    }

    // ---- the live feed (see loopback_events.hpp) --------------------------------

    /// @brief Subscribes `handler` to the changes of the user `token` names in
    /// `req.collection`, from the user's other devices and server-side edits
    /// (never `req.device`'s own, never another user's); `errc::unauthorized`
    /// for an empty or revoked token. See `loopback_events`.
    [[nodiscard]] result<live_subscription> subscribe(std::string_view token, const live_request& req,
                                                      live_handler handler) {
        {
            std::lock_guard lock{state_->mutex};
            if (auto denied = check_token_(*state_, token)) return unexpected{std::move(*denied)};
        }
        return state_->events.subscribe(token, req, std::move(handler));
    }

    /// @brief The live feed (a handle: its fault knobs, its counts).
    [[nodiscard]] loopback_events events() const { return state_->events; }

    /// @brief A copy of the server's records at one moment (see `snapshot`, `restore`).
    ///
    /// A value: copy it, keep it, restore it any number of times. It holds
    /// records, tombstones, local-id index and change numbers, not tokens,
    /// faults or configuration. A default-constructed one is an empty
    /// whole-state backup: restoring it empties the server.
    using backup = server::memory_store::backup;

    /// @brief The whole state: every user's every collection, as it is now.
    [[nodiscard]] backup snapshot() const {
        std::lock_guard lock{state_->mutex};
        return state_->service.store().snapshot();
    }

    /// @brief One user's collection, as it is now (restoring it touches nothing else).
    [[nodiscard]] backup snapshot(std::string_view user, std::string_view collection) const {
        std::lock_guard lock{state_->mutex};
        return state_->service.store().snapshot(user, collection);
    }

    /// @brief Takes the server back to `b`, as a restore from a backup does: the
    /// collections `b` covers (all of them for a whole-state backup, including
    /// ones created since, which become empty) hold again exactly the records
    /// and tombstones they held then. Changes made since are forgotten; server
    /// ids are never reused. Every cursor issued before the restore then answers
    /// `errc::cursor_expired` (HTTP 410), so each client learns it must pull
    /// everything again; new changes are numbered after every number issued
    /// before, so a forgotten cursor never comes back into use. Counted per call
    /// (`fault_counts::restores`). A second call goes back again.
    void restore(const backup& b) {
        std::lock_guard lock{state_->mutex};
        ++state_->counts.restores;
        state_->service.store().restore(b);
    }

    // ---- fault injection ------------------------------------------------------

    /// @brief The next `n` requests fail with `e` before anything applies
    /// (replaces a previous `fail_next`).
    void fail_next(std::size_t n, error e) {
        std::lock_guard lock{state_->mutex};
        state_->fail_next_count = n;
        state_->fail_next_error = std::move(e);
    }

    /// @brief The next `n` requests are lost before they apply: `errc::transient` "request lost".
    void drop_next_requests(std::size_t n) {
        std::lock_guard lock{state_->mutex};
        state_->drop_requests = n;
    }

    /// @brief The next `n` requests apply, then their responses are lost:
    /// `errc::transient` "response lost" (a retried create then finds its record).
    void drop_next_responses(std::size_t n) {
        std::lock_guard lock{state_->mutex};
        state_->drop_responses = n;
    }

    /// @brief The next `n` answered pull pages (change feed or full list; failed
    /// or dropped pulls do not count) that have a source each carry one bad item
    /// of kind `k` (see `bad_item`); each is counted (`fault_counts::bad_page_items`).
    /// A second call replaces the first (`n` = 0 cancels).
    void bad_next_pages(bad_item k, std::size_t n) {
        std::lock_guard lock{state_->mutex};
        state_->bad_pages = n;
        state_->bad_kind = k;
    }

    /// @brief Every push op for `id` is `rejected` with `errc::rejected` (a permanent
    /// failure) until `unpoison(id)`; the rest of its batch applies normally.
    void poison(const local_id& id) {
        std::lock_guard lock{state_->mutex};
        state_->poisoned.insert(id);
    }

    /// @brief Undoes `poison(id)`.
    void unpoison(const local_id& id) {
        std::lock_guard lock{state_->mutex};
        state_->poisoned.erase(id);
    }

    /// @brief Turns on random faults at `rates`, drawn from a splitmix64 generator
    /// seeded with `seed`: the same seed and the same requests give the same faults.
    void set_random_faults(fault_rates rates, std::uint64_t seed) {
        std::lock_guard lock{state_->mutex};
        state_->random = rates;
        state_->rng = seed;
    }

    /// @brief Turns random faults off.
    void clear_random_faults() {
        std::lock_guard lock{state_->mutex};
        state_->random.reset();
    }

    /// @brief The faults injected so far, by kind.
    [[nodiscard]] fault_counts faults() const {
        std::lock_guard lock{state_->mutex};
        return state_->counts;
    }

    /// @brief Sets every fault counter back to 0.
    void reset_fault_counts() {
        std::lock_guard lock{state_->mutex};
        state_->counts = {};
    }

    /// @brief Calls `hook()` (outside the server's lock) after each push has
    /// applied and before its response returns, also when that response is then
    /// lost: tests make local edits "while a push is in flight". Empty = none.
    void set_push_hook(std::function<void()> hook) {
        std::lock_guard lock{state_->mutex};
        state_->push_hook = std::move(hook);
    }

    /// @brief A network failure or 5xx: `errc::transient`, HTTP 503.
    [[nodiscard]] static error transient_error() { return detail::loopback_transient_error(); }
    /// @brief Slow down: `errc::rate_limited`, HTTP 429, Retry-After `retry_after`.
    [[nodiscard]] static error rate_limited_error(std::chrono::milliseconds retry_after) {
        return detail::loopback_rate_limited_error(retry_after);
    }
    /// @brief Bad credentials: `errc::unauthorized`, HTTP 401.
    [[nodiscard]] static error unauthorized_error() { return detail::loopback_unauthorized_error(); }
    /// @brief A permanent refusal: `errc::rejected`, HTTP 400.
    [[nodiscard]] static error rejected_error() { return detail::loopback_rejected_error(); }

private:
    using state = detail::loopback_state;  // testing/detail/loopback_state.hpp
    using request_plan = detail::loopback_request_plan;

    static error request_lost_() { return detail::loopback_request_lost(); }
    static error response_lost_() { return detail::loopback_response_lost(); }

    static request_plan begin_request_(state& s) { return detail::loopback_begin_request(s); }
    static std::optional<error> check_token_(const state& s, std::string_view token) {
        return detail::loopback_check_token(s, token);
    }
    static std::optional<error> over_value_limit_(const state& s, std::span<const push_op> ops) {
        return detail::loopback_over_value_limit(s, ops);
    }
    static std::optional<error> screen_(state& s, const push_op& op) { return detail::loopback_screen(s, op); }

    static std::optional<entry> to_entry_(std::optional<server::stored_record> r) {
        if (!r) return std::nullopt;
        return entry{std::move(r->record), r->deleted};
    }

    static void spoil_page_(state& s, server::scope where, pull_page& page) { detail::loopback_spoil_page(s, where, page); }

    std::shared_ptr<state> state_;
};

}  // namespace tether
