#pragma once

#include <tether/clock/clock.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/transport/transport.hpp>

#include <nlohmann/json.hpp>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tether {

/// @brief Per-request probabilities of the random faults of a `loopback_server`.
///
/// Each request (push, pull or fetch) draws one number `u` in [0, 1) and meets
/// the first fault whose cumulative rate exceeds it, in this order:
/// `drop_request`, `transient`, `rate_limited`, `unauthorized`, `drop_response`.
/// Keep their sum at most 1 (beyond 1 the later kinds lose probability).
/// `reject_op` is drawn separately for each op of a push that got through.
struct fault_rates {
    double drop_request = 0;    ///< the request is lost before it applies (`errc::transient`)
    double drop_response = 0;   ///< the request applies, then its response is lost (`errc::transient`)
    double transient = 0;       ///< the request fails with `errc::transient` (HTTP 503), nothing applied
    double rate_limited = 0;    ///< the request fails with `errc::rate_limited` (HTTP 429), nothing applied
    double unauthorized = 0;    ///< this one request fails with `errc::unauthorized` (HTTP 401); the token stays valid
    double reject_op = 0;       ///< per op of a push: the op is `rejected` with `errc::rejected` (HTTP 400)
    std::chrono::milliseconds retry_after{1000};  ///< the Retry-After of a random `rate_limited` fault
};

/// @brief How many faults a `loopback_server` has injected, by kind (scripted and random alike).
struct fault_counts {
    std::uint64_t failed_injected = 0;    ///< requests failed by `fail_next`
    std::uint64_t dropped_requests = 0;   ///< requests lost before applying (`drop_next_requests`, random)
    std::uint64_t dropped_responses = 0;  ///< responses lost after applying (`drop_next_responses`, random)
    std::uint64_t transient = 0;          ///< random `transient` failures
    std::uint64_t rate_limited = 0;       ///< random `rate_limited` failures
    std::uint64_t unauthorized = 0;       ///< random `unauthorized` failures
    std::uint64_t rejected_ops = 0;       ///< ops rejected by `poison` or random `reject_op`

    /// @brief Field-wise equality.
    friend bool operator==(const fault_counts&, const fault_counts&) = default;
};

namespace detail {

/// @brief Orders server ids shorter first, then by text, so `"s2"` sorts before `"s10"`.
struct loopback_id_less {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const noexcept {
        return a.size() != b.size() ? a.size() < b.size() : a < b;
    }
};

/// @brief One splitmix64 step: advances `state` and returns the next 64 random bits.
inline std::uint64_t loopback_splitmix64(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/// @brief The next number in [0, 1) from a splitmix64 `state` (53 random bits).
inline double loopback_unit(std::uint64_t& state) noexcept {
    return static_cast<double>(loopback_splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace detail

/// @brief An in-process model of a sync server, for tests, demos and the simulator.
///
/// A handle: copies share one server, and every member is thread-safe. It keeps
/// the protocol's rules (see `transport_policy`):
/// - a request's token names its user (`"alice"` is user alice); an empty or
///   `revoke`d token gets `errc::unauthorized` (HTTP 401); users never see each
///   other's records;
/// - records live per (user, collection); server ids are `"s1"`, `"s2"`, ...;
///   each (user, collection) numbers its changes 1, 2, 3, ...; a record's
///   `version` is the number of its last change, and pull cursors are those
///   numbers in decimal;
/// - creates are idempotent on the local id (a second create answers with the
///   first record; a deleted one answers `errc::not_found`); updates merge the
///   sent fields and removes leave tombstones, both checked against `base_version`
///   (a mismatch is a `conflict` carrying the current record);
/// - faults can be injected, scripted or seeded-random, per request (push, pull
///   and fetch each count as one), checked in this order: `fail_next`,
///   `drop_next_requests`, `drop_next_responses`, random request faults; then,
///   per op of a push, `poison` and random `reject_op`.
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

    /// @brief A server whose time is the system clock's (milliseconds).
    loopback_server() : loopback_server(std::function<timestamp()>{}) {}

    /// @brief A server whose time is `now()` (e.g. a `manual_clock`'s); an empty
    /// function means the system clock.
    explicit loopback_server(std::function<timestamp()> now)
        : state_(std::make_shared<state>(now ? std::move(now) : std::function<timestamp()>{system_now_})) {}

    // ---- the protocol ---------------------------------------------------------

    /// @brief Applies a batch of ops for the user `token` names; one outcome per op, in order.
    ///
    /// An error result means the request as a whole failed (unauthorized, an
    /// injected fault); with "response lost" the ops did apply. A malformed op
    /// (create or update whose value is not an object, create with a nil id) is
    /// `rejected` with `errc::protocol`. An op that names its record only by
    /// local id, with `base_version` 0, skips the version check: its sender never
    /// learnt a version (its create's response was lost).
    [[nodiscard]] result<std::vector<push_outcome>> push(std::string_view token, std::string_view collection,
                                                         std::span<const push_op> ops) {
        const timestamp now = state_->now();
        std::vector<push_outcome> outcomes;
        std::function<void()> hook;
        bool drop = false;
        {
            std::lock_guard lock{state_->mutex};
            auto plan = begin_request_(*state_);
            if (plan.failure) return unexpected{std::move(*plan.failure)};
            drop = plan.drop_response;
            if (auto denied = check_token_(*state_, token)) {
                if (drop) return unexpected{response_lost_()};
                return unexpected{std::move(*denied)};
            }
            auto& data = data_(*state_, token, collection);
            outcomes.reserve(ops.size());
            for (const auto& op : ops) outcomes.push_back(apply_op_(*state_, data, op, now));
            hook = state_->push_hook;
        }
        if (hook) hook();
        if (drop) return unexpected{response_lost_()};
        return outcomes;
    }

    /// @brief The changes after `cursor` (decimal change number, `""` = from the start),
    /// oldest first, at most `limit` (0 counts as 1).
    ///
    /// Live records go to `records`, deleted ones to `tombstones`; `next_cursor`
    /// is the last returned version (the incoming cursor if none), `has_more` says
    /// whether more are waiting. A cursor that is not a decimal number is
    /// `errc::invalid_argument`. With the change feed off (`set_change_feed(false)`)
    /// every pull returns all live records, no tombstones, `next_cursor` `""`.
    [[nodiscard]] result<pull_page> pull(std::string_view token, std::string_view collection,
                                         std::string_view cursor, std::size_t limit) {
        std::lock_guard lock{state_->mutex};
        auto plan = begin_request_(*state_);
        if (plan.failure) return unexpected{std::move(*plan.failure)};
        auto page = pull_locked_(*state_, token, collection, cursor, limit);
        if (plan.drop_response) return unexpected{response_lost_()};
        return page;
    }

    /// @brief The live record `server_id`; `errc::not_found` if it is missing or deleted.
    [[nodiscard]] result<server_record> fetch(std::string_view token, std::string_view collection,
                                              std::string_view server_id) {
        std::lock_guard lock{state_->mutex};
        auto plan = begin_request_(*state_);
        if (plan.failure) return unexpected{std::move(*plan.failure)};
        auto found = fetch_locked_(*state_, token, collection, server_id);
        if (plan.drop_response) return unexpected{response_lost_()};
        return found;
    }

    // ---- inspection -----------------------------------------------------------

    /// @brief The live records of `user`'s `collection`, in server-id order (`s2` before `s10`).
    [[nodiscard]] std::vector<server_record> records(std::string_view user, std::string_view collection) const {
        std::lock_guard lock{state_->mutex};
        std::vector<server_record> out;
        if (const auto* data = find_data_(*state_, user, collection)) {
            for (const auto& [sid, r] : data->records)
                if (!r.deleted) out.push_back(r.rec);
        }
        return out;
    }

    /// @brief How many records (live or deleted) of `user`'s `collection` carry `id`.
    /// Idempotent creates keep this at most 1.
    [[nodiscard]] std::size_t count_with_local_id(std::string_view user, std::string_view collection,
                                                  const local_id& id) const {
        std::lock_guard lock{state_->mutex};
        std::size_t n = 0;
        if (const auto* data = find_data_(*state_, user, collection)) {
            for (const auto& [sid, r] : data->records)
                if (r.rec.id == id) ++n;
        }
        return n;
    }

    /// @brief True when pulls follow the change feed (the default), false in full-list mode.
    [[nodiscard]] bool has_change_feed() const {
        std::lock_guard lock{state_->mutex};
        return state_->change_feed;
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
        state_->change_feed = on;
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
        if (!value.is_object())
            return unexpected{error{errc::invalid_argument, "put: value must be a JSON object", 400, std::nullopt}};
        const timestamp now = state_->now();
        std::lock_guard lock{state_->mutex};
        auto& data = data_(*state_, user, collection);
        auto it = server_id.empty() ? data.records.end() : data.records.find(server_id);
        if (it == data.records.end()) {
            std::string sid = server_id.empty() ? new_server_id_(*state_, data) : std::string{server_id};
            it = data.records.emplace(sid, stored_record{server_record{sid, std::nullopt, 0, {}, now, {}}, false}).first;
        }
        it->second.rec.value = std::move(value);
        it->second.rec.origin.clear();  // a change from elsewhere
        it->second.deleted = false;
        bump_(data, it->second, now);
        return it->second.rec;
    }

    /// @brief Deletes a record of `user`'s `collection` server-side (it becomes a
    /// tombstone and bumps the sequence). Already deleted: nothing changes.
    /// `errc::not_found` if there is no such record.
    result<void> erase(std::string_view user, std::string_view collection, std::string_view server_id) {
        const timestamp now = state_->now();
        std::lock_guard lock{state_->mutex};
        auto& data = data_(*state_, user, collection);
        auto it = data.records.find(server_id);
        if (it == data.records.end()) return unexpected{not_found_(server_id)};
        if (!it->second.deleted) {
            it->second.deleted = true;
            it->second.rec.origin.clear();
            bump_(data, it->second, now);
        }
        return {};
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
    [[nodiscard]] static error transient_error() {
        return error{errc::transient, "service unavailable", 503, std::nullopt};
    }
    /// @brief Slow down: `errc::rate_limited`, HTTP 429, Retry-After `retry_after`.
    [[nodiscard]] static error rate_limited_error(std::chrono::milliseconds retry_after) {
        return error{errc::rate_limited, "too many requests", 429, retry_after};
    }
    /// @brief Bad credentials: `errc::unauthorized`, HTTP 401.
    [[nodiscard]] static error unauthorized_error() {
        return error{errc::unauthorized, "unauthorized", 401, std::nullopt};
    }
    /// @brief A permanent refusal: `errc::rejected`, HTTP 400.
    [[nodiscard]] static error rejected_error() {
        return error{errc::rejected, "rejected", 400, std::nullopt};
    }

private:
    struct stored_record {
        server_record rec;
        bool deleted = false;
        std::uint64_t created_version = 0;  // the version its create gave it (0: not created by a push)
    };

    struct collection_data {
        std::uint64_t seq = 0;                                              // last change number
        std::map<std::string, stored_record, detail::loopback_id_less> records;  // by server id
        std::unordered_map<local_id, std::string> by_local_id;              // local id -> server id
        std::map<std::uint64_t, std::string> changes;                       // version -> server id
    };

    using user_data = std::map<std::string, collection_data, std::less<>>;

    struct state {
        explicit state(std::function<timestamp()> n) : now(std::move(n)) {}

        std::mutex mutex;
        const std::function<timestamp()> now;  // set once: called without the lock
        std::map<std::string, user_data, std::less<>> users;
        std::set<std::string, std::less<>> revoked;
        std::uint64_t next_server_id = 0;
        bool change_feed = true;
        std::uint64_t requests = 0;
        std::size_t fail_next_count = 0;
        error fail_next_error;
        std::size_t drop_requests = 0;
        std::size_t drop_responses = 0;
        std::unordered_set<local_id> poisoned;
        std::optional<fault_rates> random;
        std::uint64_t rng = 0;
        fault_counts counts;
        std::function<void()> push_hook;
    };

    struct request_plan {
        std::optional<error> failure;  // fail before applying
        bool drop_response = false;    // apply, then lose the response
    };

    static timestamp system_now_() {
        return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    }

    static error request_lost_() { return error{errc::transient, "request lost", std::nullopt, std::nullopt}; }
    static error response_lost_() { return error{errc::transient, "response lost", std::nullopt, std::nullopt}; }
    static error not_found_(std::string_view what) {
        return error{errc::not_found, "no record " + std::string{what}, 404, std::nullopt};
    }

    // Counts the request and decides its request-level fault (under the lock).
    // With random faults on, every request draws once, so the sequence of draws
    // depends only on the sequence of requests.
    static request_plan begin_request_(state& s) {
        ++s.requests;
        const double u = s.random ? detail::loopback_unit(s.rng) : 1.0;
        auto& c = s.counts;
        if (s.fail_next_count > 0) {
            --s.fail_next_count;
            ++c.failed_injected;
            return {s.fail_next_error, false};
        }
        if (s.drop_requests > 0) {
            --s.drop_requests;
            ++c.dropped_requests;
            return {request_lost_(), false};
        }
        if (s.drop_responses > 0) {
            --s.drop_responses;
            ++c.dropped_responses;
            return {std::nullopt, true};
        }
        if (!s.random) return {};
        const auto& r = *s.random;
        double edge = r.drop_request;
        if (u < edge) {
            ++c.dropped_requests;
            return {request_lost_(), false};
        }
        if (u < (edge += r.transient)) {
            ++c.transient;
            return {transient_error(), false};
        }
        if (u < (edge += r.rate_limited)) {
            ++c.rate_limited;
            return {rate_limited_error(r.retry_after), false};
        }
        if (u < (edge += r.unauthorized)) {
            ++c.unauthorized;
            return {unauthorized_error(), false};
        }
        if (u < (edge += r.drop_response)) {
            ++c.dropped_responses;
            return {std::nullopt, true};
        }
        return {};
    }

    static std::optional<error> check_token_(const state& s, std::string_view token) {
        if (token.empty()) return error{errc::unauthorized, "missing token", 401, std::nullopt};
        if (s.revoked.contains(token)) return error{errc::unauthorized, "token revoked", 401, std::nullopt};
        return std::nullopt;
    }

    static collection_data& data_(state& s, std::string_view user, std::string_view collection) {
        auto u = s.users.find(user);
        if (u == s.users.end()) u = s.users.emplace(std::string{user}, user_data{}).first;
        auto c = u->second.find(collection);
        if (c == u->second.end()) c = u->second.emplace(std::string{collection}, collection_data{}).first;
        return c->second;
    }

    static const collection_data* find_data_(const state& s, std::string_view user, std::string_view collection) {
        auto u = s.users.find(user);
        if (u == s.users.end()) return nullptr;
        auto c = u->second.find(collection);
        return c == u->second.end() ? nullptr : &c->second;
    }

    static std::string new_server_id_(state& s, const collection_data& data) {
        std::string sid;
        do sid = "s" + std::to_string(++s.next_server_id);
        while (data.records.contains(sid));
        return sid;
    }

    // Gives `r` the next change number of its collection.
    static void bump_(collection_data& data, stored_record& r, timestamp now) {
        data.changes.erase(r.rec.version);
        r.rec.version = ++data.seq;
        r.rec.updated_at = now;
        data.changes.emplace(r.rec.version, r.rec.server_id);
    }

    static bool names_by_server_id_(const push_op& op) { return op.server_id && !op.server_id->empty(); }

    static stored_record* find_(collection_data& data, const push_op& op) {
        if (names_by_server_id_(op)) {
            auto it = data.records.find(*op.server_id);
            return it == data.records.end() ? nullptr : &it->second;
        }
        if (op.id.is_nil()) return nullptr;
        auto idx = data.by_local_id.find(op.id);
        if (idx == data.by_local_id.end()) return nullptr;
        auto it = data.records.find(idx->second);
        return it == data.records.end() ? nullptr : &it->second;
    }

    static bool version_matches_(const push_op& op, const stored_record& r) {
        return op.base_version == r.rec.version || (op.base_version == 0 && !names_by_server_id_(op));
    }

    static push_outcome applied_(const server_record& r) { return {push_outcome::kind::applied, r, {}}; }
    static push_outcome rejected_(error e) { return {push_outcome::kind::rejected, {}, std::move(e)}; }
    static push_outcome conflict_(const push_op& op, const server_record& r) {
        return {push_outcome::kind::conflict, r,
                error{errc::conflict,
                      "base_version " + std::to_string(op.base_version) + ", server at " + std::to_string(r.version),
                      409, std::nullopt}};
    }
    static push_outcome protocol_(std::string message) {
        return rejected_(error{errc::protocol, std::move(message), 400, std::nullopt});
    }
    static push_outcome op_not_found_(const push_op& op) {
        return rejected_(not_found_(names_by_server_id_(op) ? *op.server_id : op.id.to_string()));
    }

    static push_outcome apply_op_(state& s, collection_data& data, const push_op& op, timestamp now) {
        if (s.poisoned.contains(op.id)) {
            ++s.counts.rejected_ops;
            return rejected_(error{errc::rejected, "poisoned record " + op.id.to_string(), 400, std::nullopt});
        }
        if (s.random && s.random->reject_op > 0 && detail::loopback_unit(s.rng) < s.random->reject_op) {
            ++s.counts.rejected_ops;
            return rejected_(error{errc::rejected, "injected rejection", 400, std::nullopt});
        }
        try {
            switch (op.kind) {
                case op_kind::create: return create_(s, data, op, now);
                case op_kind::update: return update_(data, op, now);
                case op_kind::remove: return remove_(data, op, now);
            }
            return protocol_("unknown op kind");
        } catch (const nlohmann::json::exception& e) {
            return protocol_(std::string{"malformed op: "} + e.what());
        }
    }

    static push_outcome create_(state& s, collection_data& data, const push_op& op, timestamp now) {
        if (!op.value.is_object()) return protocol_("create: value must be a JSON object");
        if (op.id.is_nil()) return protocol_("create: the local id is nil");
        if (auto idx = data.by_local_id.find(op.id); idx != data.by_local_id.end()) {
            const auto it = data.records.find(idx->second);
            if (it == data.records.end() || it->second.deleted) return op_not_found_(op);
            // Changed since its create (another device): the sender's edits would overwrite that change.
            auto replay = it->second.rec.version != it->second.created_version ? conflict_(op, it->second.rec)
                                                                               : applied_(it->second.rec);
            replay.replayed = true;  // idempotent: the first create's record, not the value just sent
            return replay;
        }
        std::string sid = new_server_id_(s, data);
        auto& r = data.records.emplace(sid, stored_record{server_record{sid, op.id, 0, op.value, now, op.origin}, false})
                      .first->second;
        data.by_local_id.emplace(op.id, std::move(sid));
        bump_(data, r, now);
        r.created_version = r.rec.version;
        return applied_(r.rec);
    }

    static push_outcome update_(collection_data& data, const push_op& op, timestamp now) {
        if (!op.value.is_object()) return protocol_("update: value must be a JSON object of changed fields");
        auto* r = find_(data, op);
        if (r == nullptr || r->deleted) return op_not_found_(op);
        if (!version_matches_(op, *r)) return conflict_(op, r->rec);
        nlohmann::json merged = r->rec.value;  // merge into a copy: all fields or none
        for (const auto& field : op.value.items()) merged[field.key()] = field.value();
        r->rec.value = std::move(merged);
        r->rec.origin = op.origin;
        bump_(data, *r, now);
        return applied_(r->rec);
    }

    static push_outcome remove_(collection_data& data, const push_op& op, timestamp now) {
        auto* r = find_(data, op);
        if (r == nullptr) {  // idempotent: nothing to delete; answer with what is known
            server_record known;
            known.server_id = op.server_id.value_or(std::string{});
            if (!op.id.is_nil()) known.id = op.id;
            return applied_(known);
        }
        if (r->deleted) return applied_(r->rec);
        if (!version_matches_(op, *r)) return conflict_(op, r->rec);
        r->deleted = true;
        r->rec.origin = op.origin;
        bump_(data, *r, now);
        return applied_(r->rec);
    }

    static result<pull_page> pull_locked_(const state& s, std::string_view token, std::string_view collection,
                                          std::string_view cursor, std::size_t limit) {
        if (auto denied = check_token_(s, token)) return unexpected{std::move(*denied)};
        const auto* data = find_data_(s, token, collection);
        pull_page page;
        if (!s.change_feed) {
            if (data != nullptr) {
                for (const auto& [sid, r] : data->records)
                    if (!r.deleted) page.records.push_back(r.rec);
            }
            return page;
        }
        std::uint64_t after = 0;
        if (!cursor.empty()) {
            const auto [end, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), after);
            if (ec != std::errc{} || end != cursor.data() + cursor.size())
                return unexpected{error{errc::invalid_argument,
                                        "bad cursor '" + std::string{cursor.substr(0, 64)} + "'", 400, std::nullopt}};
        }
        page.next_cursor = std::string{cursor};
        if (data == nullptr) return page;
        if (limit == 0) limit = 1;
        std::size_t taken = 0;
        auto it = data->changes.upper_bound(after);
        for (; it != data->changes.end() && taken < limit; ++it, ++taken) {
            const auto& r = data->records.find(it->second)->second;
            if (r.deleted) page.tombstones.push_back(tombstone{r.rec.server_id, r.rec.id, r.rec.version});
            else page.records.push_back(r.rec);
            page.next_cursor = std::to_string(it->first);
        }
        page.has_more = it != data->changes.end();
        return page;
    }

    static result<server_record> fetch_locked_(const state& s, std::string_view token, std::string_view collection,
                                               std::string_view server_id) {
        if (auto denied = check_token_(s, token)) return unexpected{std::move(*denied)};
        if (const auto* data = find_data_(s, token, collection)) {
            if (auto it = data->records.find(server_id); it != data->records.end() && !it->second.deleted)
                return it->second.rec;
        }
        return unexpected{not_found_(server_id)};
    }

    std::shared_ptr<state> state_;
};

}  // namespace tether
