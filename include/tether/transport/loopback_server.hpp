#pragma once

#include <tether/clock/clock.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/transport/transport.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
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
/// `reject_op` is drawn separately for each op of a push that got through;
/// `omit_local_id` for each item of an answered pull page, and `bad_page_item`
/// once per answered pull page. A rate of 0 draws nothing, so turning a kind on
/// changes the draws of the others only from then on.
struct fault_rates {
    double drop_request = 0;    ///< the request is lost before it applies (`errc::transient`)
    double drop_response = 0;   ///< the request applies, then its response is lost (`errc::transient`)
    double transient = 0;       ///< the request fails with `errc::transient` (HTTP 503), nothing applied
    double rate_limited = 0;    ///< the request fails with `errc::rate_limited` (HTTP 429), nothing applied
    double unauthorized = 0;    ///< this one request fails with `errc::unauthorized` (HTTP 401); the token stays valid
    double reject_op = 0;       ///< per op of a push: the op is `rejected` with `errc::rejected` (HTTP 400)
    double omit_local_id = 0;   ///< per record or tombstone of a pull page: sent without its local id
    double bad_page_item = 0;   ///< per answered pull page: one bad item added (kind drawn uniformly, see `bad_item`)
    std::chrono::milliseconds retry_after{1000};  ///< the Retry-After of a random `rate_limited` fault
};

/// @brief A malformed item a `loopback_server` can slip into a pull page
/// (`loopback_server::bad_next_pages`, `fault_rates::bad_page_item`).
///
/// Each is built from a *source*: a record of the page (for the tombstone kind,
/// any live record of the collection that has a local id). A page without a
/// source gets no bad item (nothing is counted; a scripted one waits for the
/// next page). A correct client skips every one of them and applies the rest
/// of the page.
enum class bad_item : std::uint8_t {
    nil_local_id,               ///< a copy of the source whose `id` is the nil local id, just before the source
    empty_server_id,            ///< a copy of the source's value and version with an empty server id and no local id
    empty_server_id_tombstone,  ///< a tombstone with an empty server id and the source's local id
    duplicate_server_id,        ///< after the source: its server id and version again, with a local id nobody
                                ///< uses and a decoy value (every string member gets `"~dup"` appended)
};

/// @brief The canonical name of a bad item kind (`"nil_local_id"`, ...).
[[nodiscard]] constexpr std::string_view to_string(bad_item k) noexcept {
    switch (k) {
        case bad_item::nil_local_id: return "nil_local_id";
        case bad_item::empty_server_id: return "empty_server_id";
        case bad_item::empty_server_id_tombstone: return "empty_server_id_tombstone";
        case bad_item::duplicate_server_id: return "duplicate_server_id";
    }
    return "unknown";
}

/// @brief How many faults a `loopback_server` has injected, by kind (scripted and random alike).
///
/// Besides faults proper it counts the server's hostile-but-legal behaviours
/// (replayed creates, filled creates, omitted local ids, restores), so a test
/// can tell they happened.
struct fault_counts {
    std::uint64_t failed_injected = 0;    ///< requests failed by `fail_next`
    std::uint64_t dropped_requests = 0;   ///< requests lost before applying (`drop_next_requests`, random)
    std::uint64_t dropped_responses = 0;  ///< responses lost after applying (`drop_next_responses`, random)
    std::uint64_t transient = 0;          ///< random `transient` failures
    std::uint64_t rate_limited = 0;       ///< random `rate_limited` failures
    std::uint64_t unauthorized = 0;       ///< random `unauthorized` failures
    std::uint64_t rejected_ops = 0;       ///< ops rejected by `poison` or random `reject_op`
    std::uint64_t replayed_creates = 0;   ///< creates answered with a record already held (`push_outcome::replayed`)
    std::uint64_t filled_creates = 0;     ///< creates whose stored value the create filler changed
    std::uint64_t omitted_local_ids = 0;  ///< pull page items sent without their local id
    std::uint64_t bad_page_items = 0;     ///< bad items added to pull pages (scripted and random)
    std::uint64_t too_large = 0;          ///< pushes refused whole: an op's value over the value limit
    std::uint64_t restores = 0;           ///< `restore` calls
    std::uint64_t expired_cursors = 0;    ///< pulls answered `errc::cursor_expired`

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
/// - a hostile but legal server: `set_create_filler` fills fields on create,
///   `snapshot` / `restore` take it back in time (stale cursors then answer
///   `errc::cursor_expired`, HTTP 410).
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
    struct stored_record {
        server_record rec;
        bool deleted = false;
        std::uint64_t created_version = 0;  // the version its create gave it (0: not created by a push)
    };

    struct collection_data {
        std::uint64_t seq = 0;              // last change number issued (never decreases, even by a restore)
        std::uint64_t epoch = 0;            // restores so far; cursors carry it (see cursor_)
        std::map<std::string, stored_record, detail::loopback_id_less> records;  // by server id
        std::unordered_map<local_id, std::string> by_local_id;              // local id -> server id
        std::map<std::uint64_t, std::string> changes;                       // version -> server id
    };

    using user_data = std::map<std::string, collection_data, std::less<>>;

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
    /// injected fault, an op value over the limit: `errc::too_large`, HTTP 413,
    /// nothing applied); with "response lost" the ops did apply. A malformed op
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
            if (auto big = over_value_limit_(*state_, ops)) {
                ++state_->counts.too_large;
                if (drop) return unexpected{response_lost_()};
                return unexpected{std::move(*big)};
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
        auto plan = begin_request_(*state_);
        if (plan.failure) return unexpected{std::move(*plan.failure)};
        auto page = pull_locked_(*state_, token, collection, cursor, limit);
        if (!page && page.error().code == errc::cursor_expired) ++state_->counts.expired_cursors;
        if (plan.drop_response) return unexpected{response_lost_()};
        if (page) spoil_page_(*state_, token, collection, *page);
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
        if (const auto* data = find_data_(*state_, user, collection)) {
            if (auto it = data->records.find(server_id); it != data->records.end())
                return entry{it->second.rec, it->second.deleted};
        }
        return std::nullopt;
    }

    /// @brief The record of `user`'s `collection` created with local id `id`, live
    /// or deleted; empty if there is none.
    [[nodiscard]] std::optional<entry> find(std::string_view user, std::string_view collection,
                                            const local_id& id) const {
        std::lock_guard lock{state_->mutex};
        if (const auto* data = find_data_(*state_, user, collection)) {
            if (auto idx = data->by_local_id.find(id); idx != data->by_local_id.end()) {
                if (auto it = data->records.find(idx->second); it != data->records.end())
                    return entry{it->second.rec, it->second.deleted};
            }
        }
        return std::nullopt;
    }

    /// @brief The last change number `user`'s `collection` has issued (0 if none):
    /// every version it gave out is at most this, and after a `restore` every
    /// version given out before the restore is below it.
    [[nodiscard]] std::uint64_t last_change(std::string_view user, std::string_view collection) const {
        std::lock_guard lock{state_->mutex};
        const auto* data = find_data_(*state_, user, collection);
        return data == nullptr ? 0 : data->seq;
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
        state_->create_filler = std::move(filler);
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

    /// @brief A copy of the server's records at one moment (see `snapshot`, `restore`).
    ///
    /// A value: copy it, keep it, restore it any number of times. It holds
    /// records, tombstones, local-id index and change numbers, not tokens,
    /// faults or configuration.
    class backup {
    public:
        backup() = default;  ///< @brief An empty whole-state backup: restoring it empties the server.

    private:
        friend class loopback_server;
        std::map<std::string, user_data, std::less<>> users_;
        std::optional<std::pair<std::string, std::string>> scope_;  // (user, collection); empty: everything
    };

    /// @brief The whole state: every user's every collection, as it is now.
    [[nodiscard]] backup snapshot() const {
        std::lock_guard lock{state_->mutex};
        backup b;
        b.users_ = state_->users;
        return b;
    }

    /// @brief One user's collection, as it is now (restoring it touches nothing else).
    [[nodiscard]] backup snapshot(std::string_view user, std::string_view collection) const {
        std::lock_guard lock{state_->mutex};
        backup b;
        b.scope_.emplace(std::string{user}, std::string{collection});
        if (const auto* data = find_data_(*state_, user, collection))
            b.users_[std::string{user}].emplace(std::string{collection}, *data);
        return b;
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
        auto take_back = [](collection_data& now, const collection_data* then) {
            const std::uint64_t issued = now.seq;
            const std::uint64_t epoch = now.epoch;
            now = then ? *then : collection_data{};
            now.seq = std::max(issued, now.seq) + 1;  // a mark: no cursor issued so far
            now.epoch = std::max(epoch, now.epoch) + 1;
        };
        if (b.scope_) {
            const auto& [user, collection] = *b.scope_;
            const auto* then = find_in_(b.users_, user, collection);
            take_back(data_(*state_, user, collection), then);
            return;
        }
        for (const auto& [user, collections] : b.users_)
            for (const auto& [collection, data] : collections) (void)data_(*state_, user, collection);
        for (auto& [user, collections] : state_->users)
            for (auto& [collection, data] : collections) take_back(data, find_in_(b.users_, user, collection));
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
        std::function<void(nlohmann::json&)> create_filler;
        bool omit_local_ids = false;
        std::size_t value_limit = 0;
        std::size_t bad_pages = 0;
        bad_item bad_kind = bad_item::nil_local_id;
        std::uint64_t decoys = 0;  // local ids handed out for duplicate_server_id items
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
        return find_in_(s.users, user, collection);
    }

    static const collection_data* find_in_(const std::map<std::string, user_data, std::less<>>& users,
                                           std::string_view user, std::string_view collection) {
        auto u = users.find(user);
        if (u == users.end()) return nullptr;
        auto c = u->second.find(collection);
        return c == u->second.end() ? nullptr : &c->second;
    }

    static std::optional<error> over_value_limit_(const state& s, std::span<const push_op> ops) {
        if (s.value_limit == 0) return std::nullopt;
        for (const auto& op : ops) {
            if (op.value.is_null()) continue;
            const auto size = op.value.dump().size();
            if (size > s.value_limit)
                return error{errc::too_large,
                             "value of " + op.id.to_string() + " is " + std::to_string(size) +
                                 " bytes, over the limit of " + std::to_string(s.value_limit),
                             413, std::nullopt};
        }
        return std::nullopt;
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
    static push_outcome replayed_(push_outcome out) {
        out.replayed = true;
        return out;
    }
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
            ++s.counts.replayed_creates;
            // Changed since its create (another device): the sender's edits would overwrite that change.
            if (it->second.rec.version != it->second.created_version)
                return replayed_(conflict_(op, it->second.rec));
            return replayed_(applied_(it->second.rec));  // idempotent: the first create's record
        }
        nlohmann::json value = op.value;
        if (s.create_filler) {
            s.create_filler(value);
            if (!value.is_object()) return protocol_("create: the create filler left the value not an object");
            if (value != op.value) ++s.counts.filled_creates;
        }
        std::string sid = new_server_id_(s, data);
        auto& r = data.records
                      .emplace(sid, stored_record{server_record{sid, op.id, 0, std::move(value), now, op.origin}, false})
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
        // A cursor is "<change number>", or "<change number>@<epoch>" after a restore.
        std::uint64_t after = 0;
        std::uint64_t epoch = 0;
        if (!cursor.empty()) {
            const char* end = cursor.data() + cursor.size();
            auto parsed = std::from_chars(cursor.data(), end, after);
            if (parsed.ec == std::errc{} && parsed.ptr != end && *parsed.ptr == '@' && parsed.ptr + 1 != end)
                parsed = std::from_chars(parsed.ptr + 1, end, epoch);
            if (parsed.ec != std::errc{} || parsed.ptr != end)
                return unexpected{error{errc::invalid_argument,
                                        "bad cursor '" + std::string{cursor.substr(0, 64)} + "'", 400, std::nullopt}};
        }
        if (data != nullptr && !cursor.empty() && (after > data->seq || epoch != data->epoch))
            return unexpected{error{errc::cursor_expired,
                                    "cursor " + std::string{cursor} + " expired: pull again from the start", 410,
                                    std::nullopt}};
        page.next_cursor = std::string{cursor};
        if (data == nullptr) return page;
        if (limit == 0) limit = 1;
        std::size_t taken = 0;
        auto it = data->changes.upper_bound(after);
        for (; it != data->changes.end() && taken < limit; ++it, ++taken) {
            const auto& r = data->records.find(it->second)->second;
            if (r.deleted) page.tombstones.push_back(tombstone{r.rec.server_id, r.rec.id, r.rec.version});
            else page.records.push_back(r.rec);
            page.next_cursor = cursor_(*data, it->first);
        }
        page.has_more = it != data->changes.end();
        if (!page.has_more) page.next_cursor = cursor_(*data, data->seq);
        return page;
    }

    // The cursor after change `n`: its number, and after a restore the epoch, so a
    // number issued before the restore (restored records keep their old versions)
    // never passes for one issued after it.
    static std::string cursor_(const collection_data& data, std::uint64_t n) {
        return data.epoch == 0 ? std::to_string(n) : std::to_string(n) + "@" + std::to_string(data.epoch);
    }

    // Omits local ids and adds a bad item to an answered page (under the lock).
    static void spoil_page_(state& s, std::string_view user, std::string_view collection, pull_page& page) {
        const double omit_rate = s.random ? s.random->omit_local_id : 0.0;
        if (s.omit_local_ids || omit_rate > 0) {
            auto omit = [&](std::optional<local_id>& id) {
                if (!id) return;
                if (!s.omit_local_ids && detail::loopback_unit(s.rng) >= omit_rate) return;
                id.reset();
                ++s.counts.omitted_local_ids;
            };
            for (auto& r : page.records) omit(r.id);
            for (auto& t : page.tombstones) omit(t.id);
        }
        std::optional<bad_item> kind;
        if (s.bad_pages > 0) {
            kind = s.bad_kind;
        } else if (s.random && s.random->bad_page_item > 0 && detail::loopback_unit(s.rng) < s.random->bad_page_item) {
            kind = static_cast<bad_item>(detail::loopback_splitmix64(s.rng) % 4);
        }
        if (!kind) return;
        const collection_data* data = find_data_(s, user, collection);
        if (data == nullptr) return;
        // The source: a record of the page (drawn when random faults are on, else the first).
        const std::size_t n = page.records.size();
        const std::size_t at = n == 0 ? 0 : s.random ? detail::loopback_splitmix64(s.rng) % n : 0;
        if (*kind == bad_item::empty_server_id_tombstone) {
            const stored_record* source = nullptr;
            if (n > 0) {
                auto it = data->records.find(page.records[at].server_id);
                if (it != data->records.end() && !it->second.deleted && it->second.rec.id) source = &it->second;
            }
            for (auto it = data->records.begin(); source == nullptr && it != data->records.end(); ++it)
                if (!it->second.deleted && it->second.rec.id) source = &it->second;
            if (source == nullptr) return;
            page.tombstones.push_back(tombstone{std::string{}, source->rec.id, source->rec.version});
        } else {
            if (n == 0) return;
            server_record bad = page.records[at];
            switch (*kind) {
                case bad_item::nil_local_id:
                    bad.id = local_id{};
                    page.records.insert(page.records.begin() + static_cast<std::ptrdiff_t>(at), std::move(bad));
                    break;
                case bad_item::empty_server_id:
                    bad.server_id.clear();
                    bad.id.reset();
                    page.records.push_back(std::move(bad));
                    break;
                default:  // duplicate_server_id
                    bad.id = local_id::from_parts(timestamp{}, 0x0BAD, ++s.decoys);
                    for (auto it = bad.value.begin(); bad.value.is_object() && it != bad.value.end(); ++it)
                        if (it->is_string()) *it = it->get<std::string>() + "~dup";
                    page.records.push_back(std::move(bad));
                    break;
            }
        }
        ++s.counts.bad_page_items;
        if (s.bad_pages > 0) --s.bad_pages;
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
