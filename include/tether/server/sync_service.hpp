#pragma once

/// @file
/// @brief `tether::server::sync_service`: the sync protocol's semantics, once,
/// over any `server_store`. The in-process `loopback_server` and the HTTP
/// server are faces of it: they authenticate, inject faults or speak HTTP, and
/// hand the requests in.
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/protocol/append.hpp>
#include <tether/server/change_journal.hpp>
#include <tether/server/cursor.hpp>
#include <tether/server/store.hpp>
#include <tether/transport/live.hpp>
#include <tether/transport/transport.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace tether::server {

/// @brief The sizes a `sync_service` accepts.
struct service_limits {
    /// Ops per push. A larger push fails as a whole with `errc::too_large`
    /// (HTTP 413) and nothing of it applies: the client halves its batch.
    std::size_t max_ops = 500;
    /// Bytes of one record's value as JSON (`dump()`: the value a create stores,
    /// an update's value after the merge). An op that would store a larger one
    /// is `rejected` with `errc::too_large` (HTTP 413) and the rest of its batch
    /// applies: one oversized record never fails a batch. 0: no limit.
    std::size_t max_value_bytes = std::size_t{1} << 20;
};

/// @brief A push as the service takes it: whose, and the ops in order.
struct push_request {
    std::string_view user;                ///< the authenticated user (never taken from the body)
    std::string_view collection;          ///< the collection
    std::span<const push_op> ops;         ///< the batch
    /// The pushing device's id, kept with every change of an op whose own
    /// `origin` is empty (the HTTP body carries it once per batch).
    std::string_view origin{};
};

/// @brief A pull: the changes of `collection` after `cursor`.
struct pull_request {
    std::string_view user;        ///< the authenticated user
    std::string_view collection;  ///< the collection
    std::string_view cursor{};    ///< opaque text from an earlier page; empty: from the start
    std::size_t limit = 100;      ///< the most changes one page holds (0 counts as 1)
};

/// @brief A fetch of one live record.
struct fetch_request {
    std::string_view user;        ///< the authenticated user
    std::string_view collection;  ///< the collection
    std::string_view server_id;   ///< the record
};

/// @brief A push screen that lets every op through (see `sync_service::push`).
struct no_screen {
    /// @brief Never refuses.
    std::optional<error> operator()(const push_op&) const noexcept { return std::nullopt; }
};

/// @brief The protocol's semantics over a `server_store` (see `transport_policy`).
///
/// Every request is scoped to one (user, collection): users never see each
/// other's records. The rules:
/// - **push**: one write transaction per batch (all its changes and change
///   numbers commit together, or none); one outcome per op, in order. Creates
///   are idempotent on (user, collection, local id): a second create answers
///   with the record held and `push_outcome::replayed` set — `applied` if it
///   is unchanged since its create, `conflict` (also replayed) if it changed
///   since, so stale create fields never overwrite the newer change, and
///   `errc::not_found` if it was deleted. Updates merge the sent fields; removes
///   leave tombstones; both are checked against `base_version` (a mismatch is
///   a `conflict` carrying the current record), except that an op naming its
///   record by local id alone with `base_version` 0 skips the check (its
///   sender never learnt a version). A server id that no record holds (a
///   restore from a backup lost it) is looked up by the op's local id
///   instead; server ids are never given out twice. An update based on
///   version 0 under such a server id that the local id finds nothing for
///   either is the lost record sent again whole: it is created again under
///   that server id. A remove of a record the server does not hold
///   answers `applied`, and leaves a tombstone with its local id under the
///   server id it names (one no record holds) or else a new one (so devices
///   holding the lost record learn of the delete, and a create of it sent
///   later meets the deletion). A replayed create from another origin than the create's is a
///   `conflict` too. Each change keeps its origin. A malformed op
///   (create or update whose value is not an object, create with a nil local
///   id, an unknown kind) is `rejected` with `errc::protocol` (HTTP 400), and
///   one over `service_limits::max_value_bytes` with `errc::too_large`; the
///   rest of the batch applies either way. An **append** (`op_kind::append`,
///   `protocol::append_value`) adds its chunk to a string member of the
///   record, stored as an update of the value (the store needs nothing
///   more): it applies when the member's text is `length_before` bytes long
///   and `base_version` matches as for an update, taking a change number;
///   a resend already applied (the text ends with the chunk at
///   `length_before`) is acknowledged `applied`, `replayed`, with the record
///   as it is; another length is a `conflict` carrying the record; a
///   malformed append `rejected` (`errc::protocol`), a member that is
///   missing or not a string `rejected` (`errc::invalid_argument`), a text
///   grown over the value limit `rejected` (`errc::too_large`). Its
///   observer event is `live_kind::appended`. A batch over
///   `service_limits::max_ops` fails whole (`errc::too_large`, 413);
/// - **changes**: every change takes the collection's next number; a record's
///   `version` is the number of its last change. Server ids come from the
///   store (the memory store's are `"s1"`, `"s2"`, ...);
/// - **pull**: the changes after a cursor, oldest first; live records as
///   records, deleted ones as tombstones. Cursors are opaque text carrying the
///   collection's epoch (see `cursor`); one that does not parse is
///   `errc::invalid_argument` (400), one beyond the collection's last change
///   or from another epoch (the server was restored since) is
///   `errc::cursor_expired` (410: pull again from the start). With the change
///   feed off (`set_change_feed(false)`, full-list mode) a pull is the whole
///   list of live records, no tombstones, the empty cursor;
/// - **fetch**: one live record, else `errc::not_found` (404);
/// - **admin edits** (`put`, `erase`): changes from elsewhere, with no origin;
/// - the **create filler** (`set_create_filler`) fills server-owned fields of
///   every created record;
/// - the **observer** (`set_observer`) is told of every committed change, as
///   a `live_event`, after its commit and in commit order: the live feed's source.
///
/// Every member is thread-safe; the store serialises what must be serialised.
/// Not copyable or movable: keep it where it is made.
///
/// @code
/// tether::server::sync_service<tether::server::memory_store> service{tether::server::memory_store{}};
/// auto out = service.push({.user = "alice", .collection = "jobs", .ops = ops, .origin = "device-1"});
/// auto page = service.pull({.user = "alice", .collection = "jobs", .cursor = "", .limit = 100});
/// @endcode
template <server_store Store>
class sync_service {
public:
    using store_type = Store;  ///< @brief The store it runs over.

    /// @brief A service over `store`, with `limits`, whose time is `now()` (an
    /// empty function: the system clock, in milliseconds).
    explicit sync_service(Store store, service_limits limits = {}, std::function<timestamp()> now = {})
        : store_(std::move(store)), limits_(limits), now_(now ? std::move(now) : std::function<timestamp()>{system_now_}) {}

    sync_service(const sync_service&) = delete;             ///< @brief Not copyable.
    sync_service& operator=(const sync_service&) = delete;  ///< @brief Not copyable.

    // ---- the protocol ---------------------------------------------------------

    /// @brief Applies a batch; one outcome per op, in order (see the class).
    [[nodiscard]] result<std::vector<push_outcome>> push(const push_request& req) { return push(req, no_screen{}); }

    /// @brief As above, asking `screen(op)` first for each op, in order, inside
    /// the batch's transaction: an error it returns rejects that op with it
    /// (the op is not looked at further), so a face can refuse single ops
    /// (fault injection, a policy of its own) while the rest of the batch applies.
    template <class Screen>
        requires std::convertible_to<std::invoke_result_t<Screen&, const push_op&>, std::optional<error>>
    [[nodiscard]] result<std::vector<push_outcome>> push(const push_request& req, Screen&& screen) {
        if (req.ops.size() > limits_.max_ops)
            return unexpected{error{errc::too_large,
                                    "batch of " + std::to_string(req.ops.size()) + " ops is over the limit of " +
                                        std::to_string(limits_.max_ops),
                                    413, std::nullopt}};
        const timestamp now = now_();
        const auto filler = create_filler_();
        const scope s{req.user, req.collection};
        return write_<std::vector<push_outcome>>(s, [&](auto& tx, journal* j) -> result<std::vector<push_outcome>> {
            if (auto locked = tx.lock_collection(s); !locked) return unexpected{std::move(locked).error()};
            std::vector<push_outcome> out;
            out.reserve(req.ops.size());
            for (const auto& op : req.ops) {
                if (std::optional<error> refused = screen(op)) {
                    out.push_back(rejected_(std::move(*refused)));
                    continue;
                }
                const std::string_view origin = op.origin.empty() ? req.origin : std::string_view{op.origin};
                auto o = apply_(tx, s, op, origin, now, filler.get(), j);
                if (!o) return unexpected{std::move(o).error()};
                out.push_back(std::move(*o));
            }
            return out;
        });
    }

    /// @brief The page of changes after `req.cursor` (see the class).
    ///
    /// `next_cursor` is the cursor of the last change returned, or on the last
    /// page (`has_more` false) of the collection's last change number (the
    /// same, unless a restore took the collection back). A collection the store
    /// never held has no changes: a well-formed cursor gets an empty page that
    /// keeps it.
    [[nodiscard]] result<pull_page> pull(const pull_request& req) const;

    /// @brief The live record `req.server_id`; `errc::not_found` (404) if it is missing or deleted.
    [[nodiscard]] result<server_record> fetch(const fetch_request& req) const;

    // ---- admin edits: changes from elsewhere ---------------------------------------

    /// @brief Creates or replaces a record as if another device (or an admin)
    /// had written it: a new record (a new server id, no local id) when
    /// `server_id` is empty, one with that server id when it is unknown, else
    /// the record's whole value is replaced (a deleted record comes back). It
    /// takes the next change number and no origin. `errc::invalid_argument`
    /// (400) if `value` is not a JSON object.
    result<server_record> put(scope s, std::string_view server_id, nlohmann::json value) {
        if (!value.is_object())
            return unexpected{error{errc::invalid_argument, "put: value must be a JSON object", 400, std::nullopt}};
        const timestamp now = now_();
        return write_<server_record>(s, [&](auto& tx, journal* j) -> result<server_record> {
            if (auto locked = tx.lock_collection(s); !locked) return unexpected{std::move(locked).error()};
            std::optional<stored_record> rec;
            if (!server_id.empty()) {
                auto found = tx.find_by_server_id(s, server_id);
                if (!found) return unexpected{std::move(found).error()};
                rec = std::move(*found);
            }
            if (!rec) {
                std::string sid{server_id};
                if (sid.empty()) {
                    auto fresh = new_server_id_(tx, s);
                    if (!fresh) return unexpected{std::move(fresh).error()};
                    sid = std::move(*fresh);
                }
                rec = stored_record{server_record{std::move(sid), std::nullopt, 0, {}, now, {}}, false, 0};
            }
            rec->record.value = std::move(value);
            rec->record.origin.clear();  // a change from elsewhere
            rec->deleted = false;
            if (auto ok = commit_change_(tx, s, *rec, now, j); !ok) return unexpected{std::move(ok).error()};
            return std::move(rec->record);
        });
    }

    /// @brief Deletes a record server-side: it becomes a tombstone and takes the
    /// next change number (no origin). Already deleted: nothing changes.
    /// `errc::not_found` (404) if there is no such record.
    result<void> erase(scope s, std::string_view server_id) {
        const timestamp now = now_();
        // The transaction commits even when the record is missing: the scope stays known, as after a push.
        auto found = write_<bool>(s, [&](auto& tx, journal* j) -> result<bool> {
            if (auto locked = tx.lock_collection(s); !locked) return unexpected{std::move(locked).error()};
            auto rec = tx.find_by_server_id(s, server_id);
            if (!rec) return unexpected{std::move(rec).error()};
            if (!*rec) return false;
            if ((*rec)->deleted) return true;
            (*rec)->deleted = true;
            (*rec)->record.origin.clear();
            if (auto ok = commit_change_(tx, s, **rec, now, j); !ok) return unexpected{std::move(ok).error()};
            return true;
        });
        if (!found) return unexpected{std::move(found).error()};
        if (!*found) return unexpected{not_found_(server_id)};
        return {};
    }

    // ---- configuration --------------------------------------------------------

    /// @brief Turns the change feed on (the default) or off (full-list mode: see `pull`).
    void set_change_feed(bool on) noexcept { change_feed_.store(on, std::memory_order_release); }

    /// @brief True when pulls follow the change feed (the default), false in full-list mode.
    [[nodiscard]] bool has_change_feed() const noexcept { return change_feed_.load(std::memory_order_acquire); }

    /// @brief Fills server-side fields on create: `filler(value)` edits the value
    /// of every record a push creates before it is stored, so the stored record
    /// and the create's answer differ from what was sent (an id, a timestamp, a
    /// default the server owns). Not called for idempotent replays (the record
    /// exists), updates, or `put`. A value the filler leaves not an object
    /// rejects the create (`errc::protocol`). Called inside the push's write
    /// transaction: it must not call the service. A second call replaces the
    /// filler; an empty function turns it off (the default).
    void set_create_filler(std::function<void(nlohmann::json&)> filler) {
        auto next = filler ? std::make_shared<const std::function<void(nlohmann::json&)>>(std::move(filler)) : nullptr;
        std::lock_guard lock{filler_mutex_};
        filler_ = std::move(next);
    }

    /// @brief What `set_observer` takes: the user and one committed change.
    using observer_fn = std::function<void(std::string_view user, const live_event& change)>;

    /// @brief Tells `observer(user, change)` of every change committed from now
    /// on (pushes, `put`, `erase`), after its transaction commits, in commit
    /// order per collection (with an observer set, a write and its telling hold
    /// one lock, so writes to the service apply one at a time). The change is a
    /// `live_event`: kind (`created` when it replaces no version, `deleted` for
    /// a tombstone, `appended` for an applied append, with its `live_append`,
    /// else `updated`), the record with its `origin`, its version,
    /// the version it replaces, and the cursors just after and just before it.
    /// The observer must not write to the service (it holds the lock). An empty
    /// function turns it off (the default); a second call replaces it.
    void set_observer(observer_fn observer) {
        auto next = observer ? std::make_shared<const observer_fn>(std::move(observer)) : nullptr;
        std::lock_guard lock{filler_mutex_};
        observer_ = std::move(next);
    }

    /// @brief The limits it was made with.
    [[nodiscard]] const service_limits& limits() const noexcept { return limits_; }

    /// @brief The store (a face may inspect it, or use what only its kind offers).
    [[nodiscard]] Store& store() noexcept { return store_; }
    /// @brief The store, read-only.
    [[nodiscard]] const Store& store() const noexcept { return store_; }

private:
    using filler_fn = std::function<void(nlohmann::json&)>;

    using journal = change_journal;
    // Whether the store's write transaction takes the journal before its commit (`tx.announce(s, journal)`).
    static constexpr bool announces_changes_of_() {
        if constexpr (requires { typename Store::write_transaction; })
            return requires(typename Store::write_transaction& tx, const journal& jr) { tx.announce(scope{}, jr); };
        else
            return false;
    }

    // Runs `body(tx, journal*)` in a write transaction of scope `s`; with an
    // observer, under the publication lock, telling it the journal after commit.
    template <class T, class F>
    result<T> write_(scope s, F&& body) {
        std::shared_ptr<const observer_fn> obs;
        {
            std::lock_guard lock{filler_mutex_};
            obs = observer_;
        }
        std::unique_lock<std::mutex> order;
        if (obs) order = std::unique_lock{publish_mutex_};
        journal jr;
        // A store that announces changes (`tx.announce(s, journal)`, before its commit) is told the journal too.
        constexpr bool announces = announces_changes_of_();
        journal* j = obs || announces ? &jr : nullptr;
        auto done = store_.write([&](auto& tx) -> result<T> {
            auto r = body(tx, j);
            if (r && j != nullptr && !jr.entries.empty()) {
                auto info = tx.collection(s);
                if (!info) return unexpected{std::move(info).error()};
                if (*info) jr.epoch = (*info)->epoch;
                if constexpr (requires { tx.announce(s, std::as_const(jr)); }) tx.announce(s, std::as_const(jr));
            }
            return r;
        });
        if (done && obs) jr.publish(s, *obs);
        return done;
    }

    static timestamp system_now_() {
        return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    }

    std::shared_ptr<const filler_fn> create_filler_() const {
        std::lock_guard lock{filler_mutex_};
        return filler_;
    }

    static error not_found_(std::string_view what) {
        return error{errc::not_found, "no record " + std::string{what}, 404, std::nullopt};
    }
    static push_outcome applied_(server_record r) { return {push_outcome::kind::applied, std::move(r), {}}; }
    static push_outcome replayed_(push_outcome out) {
        out.replayed = true;
        return out;
    }
    static push_outcome rejected_(error e) { return {push_outcome::kind::rejected, {}, std::move(e)}; }
    static push_outcome conflict_(const push_op& op, server_record r) {
        error why{errc::conflict,
                  "base_version " + std::to_string(op.base_version) + ", server at " + std::to_string(r.version), 409,
                  std::nullopt};
        return {push_outcome::kind::conflict, std::move(r), std::move(why)};
    }
    static push_outcome protocol_(std::string message) {
        return rejected_(error{errc::protocol, std::move(message), 400, std::nullopt});
    }
    static bool names_by_server_id_(const push_op& op) { return op.server_id && !op.server_id->empty(); }
    static push_outcome op_not_found_(const push_op& op) {
        return rejected_(not_found_(names_by_server_id_(op) ? *op.server_id : op.id.to_string()));
    }
    static bool version_matches_(const push_op& op, const stored_record& r) {
        return op.base_version == r.record.version || (op.base_version == 0 && !names_by_server_id_(op));
    }

    // A store that takes the value's JSON text with a put (`put(s, rec, text)`)
    // writes it as it is instead of serializing the value again.
    template <class Tx>
    static constexpr bool takes_text_ = requires(Tx& tx, scope s, const stored_record& r, std::string_view t) {
        { tx.put(s, r, t) } -> std::same_as<result<void>>;
    };

    // `value` as compact JSON (invalid UTF-8 replaced), as the value limit
    // counts it: made only if the limit or the store needs it (else empty).
    template <class Tx>
    std::string value_text_(const nlohmann::json& value) const {
        if (limits_.max_value_bytes == 0 && !takes_text_<Tx>) return {};
        return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }

    // Stores `rec`, with `text` (its value's JSON) if made and the store takes it.
    template <class Tx>
    static result<void> put_(Tx& tx, scope s, const stored_record& rec, const std::string& text) {
        if constexpr (takes_text_<Tx>) {
            if (!text.empty()) return tx.put(s, rec, std::string_view{text});
        }
        return tx.put(s, rec);
    }

    // A record new to the store: its create's change number is its version.
    template <class Tx>
    static result<push_outcome> insert_(Tx& tx, scope s, stored_record rec, const std::string& text, journal* j) {
        auto n = tx.next_change(s);
        if (!n) return unexpected{std::move(n).error()};
        rec.record.version = *n;
        rec.created_version = *n;
        if (auto ok = put_(tx, s, rec, text); !ok) return unexpected{std::move(ok).error()};
        if (j != nullptr) j->note(rec, 0);
        return applied_(std::move(rec.record));
    }

    // The op's value limit: empty if `text`, the value's JSON, fits.
    std::optional<push_outcome> over_limit_(const push_op& op, const std::string& text) const {
        if (limits_.max_value_bytes == 0) return std::nullopt;
        const auto size = text.size();
        if (size <= limits_.max_value_bytes) return std::nullopt;
        return rejected_(error{errc::too_large,
                               "value of " + op.id.to_string() + " is " + std::to_string(size) +
                                   " bytes, over the limit of " + std::to_string(limits_.max_value_bytes),
                               413, std::nullopt});
    }

    // A server id no record of the scope holds (an admin `put` may have chosen one).
    template <class Tx>
    static result<std::string> new_server_id_(Tx& tx, scope s) {
        for (;;) {
            auto sid = tx.new_server_id();
            if (!sid) return sid;
            auto held = tx.find_by_server_id(s, *sid);
            if (!held) return unexpected{std::move(held).error()};
            if (!*held) return sid;
        }
    }

    // Gives `rec` the scope's next change number and stores it (`text`: its
    // value's JSON, if made).
    template <class Tx>
    static result<void> commit_change_(Tx& tx, scope s, stored_record& rec, timestamp now, journal* j,
                                       const std::string* text = nullptr,
                                       std::optional<live_append> appended = std::nullopt) {
        auto n = tx.next_change(s);
        if (!n) return unexpected{std::move(n).error()};
        const std::uint64_t replaced = rec.record.version;
        rec.record.version = *n;
        rec.record.updated_at = now;
        auto put = text != nullptr ? put_(tx, s, rec, *text) : tx.put(s, rec);
        if (put && j != nullptr) j->note(rec, replaced, std::move(appended));
        return put;
    }

    // The record an update or remove names: by server id, else by a non-nil local
    // id. A server id no record holds is one a restore from a backup lost: then
    // the local id names the record (another device may have sent it again).
    // (The op's local id may differ from the record's: a device that pulled it
    // from a server that gave no local id made its own.) Server ids are never
    // given out twice, not even after a restore.
    template <class Tx>
    static result<std::optional<stored_record>> find_(Tx& tx, scope s, const push_op& op) {
        if (names_by_server_id_(op)) {
            auto by_sid = tx.find_by_server_id(s, *op.server_id);
            if (!by_sid || *by_sid || op.id.is_nil()) return by_sid;
        }
        if (op.id.is_nil()) return std::optional<stored_record>{};
        return tx.find_by_local_id(s, op.id);
    }

    template <class Tx>
    result<push_outcome> apply_(Tx& tx, scope s, const push_op& op, std::string_view origin, timestamp now,
                                const filler_fn* filler, journal* j) const;

    template <class Tx>
    result<push_outcome> create_(Tx& tx, scope s, const push_op& op, std::string_view origin, timestamp now,
                                 const filler_fn* filler, journal* j) const;

    template <class Tx>
    result<push_outcome> update_(Tx& tx, scope s, const push_op& op, std::string_view origin, timestamp now,
                                 journal* j) const;

    // An update based on version 0 naming a server id no record holds: a record a
    // restore from a backup lost, sent again whole by a device that held it (see
    // the class). It is created again under that server id, with the op's local
    // id and value, so the devices that held it under other local ids (pulled
    // without one) meet it there, and a remove naming the id finds it.
    template <class Tx>
    result<push_outcome> recreate_(Tx& tx, scope s, const push_op& op, std::string_view origin, timestamp now,
                                   journal* j) const;

    // An append (see the class): stored as an update of the member's text.
    template <class Tx>
    result<push_outcome> append_(Tx& tx, scope s, const push_op& op, std::string_view origin, timestamp now,
                                 journal* j) const;

    template <class Tx>
    result<push_outcome> remove_(Tx& tx, scope s, const push_op& op, std::string_view origin, timestamp now,
                                 journal* j) const;

    // A remove of a record this server does not hold: idempotent, nothing to
    // delete. It leaves a tombstone, under the server id it names (one no
    // record holds: lost in a restore from a backup) or else a new one, with
    // its local id, so the devices that still hold the record learn of the
    // delete instead of sending it again (after a restore, a device may hold
    // it without a server id: its create of it, or one the resync made, to go
    // up again), and a create of it sent later meets the deletion.
    template <class Tx>
    static result<push_outcome> remove_unknown_(Tx& tx, scope s, const push_op& op, std::string_view origin,
                                                timestamp now, journal* j);

    Store store_;
    const service_limits limits_;
    const std::function<timestamp()> now_;
    std::atomic<bool> change_feed_{true};
    mutable std::mutex filler_mutex_;
    std::shared_ptr<const filler_fn> filler_;
    std::shared_ptr<const observer_fn> observer_;  // guarded by filler_mutex_
    std::mutex publish_mutex_;                     // a write and its telling, with an observer set
};

}  // namespace tether::server

// The members defined out of the class, one concern per header.
#include <tether/server/detail/append_op.hpp>
#include <tether/server/detail/push_ops.hpp>
#include <tether/server/detail/service_reads.hpp>
