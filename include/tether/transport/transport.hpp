#pragma once

#include <tether/core/timestamp.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>

#include <nlohmann/json.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tether {

/// @brief The kind tag of transport policies.
struct transport_tag {};

/// @brief What a push operation asks of the server.
enum class op_kind : std::uint8_t {
    create,  ///< a record the server has not seen: `value` is the whole entity
    update,  ///< a change to a server record: `value` holds only the changed fields
    remove,  ///< delete the server record (`value` is null)
    /// text appended to a string member of a server record: `value` is
    /// `{"member", "chunk", "length_before"}` (see `protocol/append.hpp`); sent
    /// only to a transport that says it carries it (`carries_append_ops`)
    append,
};

/// @brief The canonical name of an op kind (`"create"`, `"update"`, `"remove"`, `"append"`).
[[nodiscard]] constexpr std::string_view to_string(op_kind k) noexcept {
    switch (k) {
        case op_kind::create: return "create";
        case op_kind::update: return "update";
        case op_kind::remove: return "remove";
        case op_kind::append: return "append";
    }
    return "unknown";
}

/// @brief One operation of a push batch.
///
/// `id` (the record's `local_id`) is the idempotency key of a create: a server
/// that already holds a record with that local id for this user and collection
/// answers `applied` with the record it holds (not the value just sent) instead
/// of creating a second one, and the engine pushes any local edits as an update;
/// if that record has changed since its create (another device edited it), the
/// answer is `conflict` with the current record, so the conflict policy decides
/// and stale fields never overwrite the newer change. An `update` or `remove` without a `server_id` (a create whose
/// response was lost) names the record by `id`; with `base_version == 0` the
/// server skips the version check, since the client never learnt a version.
struct push_op {
    op_kind kind = op_kind::create;          ///< what to do
    local_id id;                             ///< the record's local id (idempotency key)
    std::optional<std::string> server_id;    ///< the server's id, once known
    std::uint64_t base_version = 0;          ///< the server version the change is based on
    nlohmann::json value;                    ///< whole entity (create), changed fields (update), null (remove), the append (append)
    std::string origin{};                    ///< the pushing device's id (kept by the server with the change)
    /// A create sent before whose answer never came: it may be on the server
    /// already. A transport whose server has no idempotent create (a plain REST
    /// API) looks it up before sending it again.
    bool resent = false;
};

/// @brief True if transport `T` carries `op_kind::append` ops to a server that
/// applies them (one that speaks this project's protocol: a
/// `server::sync_service` behind it). Opt in with a member
/// `static constexpr bool carries_append_ops = true;`. To any other transport
/// the engine sends appended text as an ordinary update.
template <class T>
inline constexpr bool carries_append_ops = requires {
    requires T::carries_append_ops;
};

/// @brief A record as the server holds it.
struct server_record {
    std::string server_id;                   ///< the server's id
    std::optional<local_id> id;              ///< the local id it was created with, if the server knows it
    std::uint64_t version = 0;               ///< the server's version (increases with every change)
    nlohmann::json value;                    ///< the entity as JSON
    std::optional<timestamp> updated_at;     ///< when the server last changed it, if known
    /// The `origin` of the push that made this version; empty if unknown (a
    /// server that does not track it, or a change from elsewhere). A conflict
    /// whose server copy came from this very device is its own earlier write
    /// (whose response was lost), not another writer's: the engine rebases on it.
    std::string origin{};
};

/// @brief A server-side deletion, as seen by a pull.
struct tombstone {
    std::string server_id;                   ///< the deleted record's server id
    std::optional<local_id> id;              ///< its local id, if the server knows it
    std::uint64_t version = 0;               ///< the version at deletion
};

/// @brief The server's answer to one `push_op`.
struct push_outcome {
    /// @brief How the operation ended.
    enum class kind : std::uint8_t {
        applied,   ///< done; `record` is the server's copy after it (for a remove: its last state)
        conflict,  ///< the server is at a newer version; `record` is its current copy
        rejected,  ///< refused or failed; `failure` says why (retryable or not)
    };
    kind outcome = kind::applied;            ///< how it ended
    server_record record;                    ///< the server's copy (applied, conflict)
    error failure;                           ///< why (rejected); a conflict may carry `errc::conflict` here too
    /// True when the server answered a create with a record it already held
    /// (the create was sent before and its response was lost): `record` is then
    /// what the server holds, not the value just sent, and the engine takes it
    /// as the base on which the device's later edits go up. A fresh create
    /// (false) is answered with the record as the server stored it, which may
    /// differ from what was sent (fields the server fills in): the engine takes
    /// that answer as it is.
    bool replayed = false;
};

/// @brief An item of a pulled page that the transport's decoder could not
/// read (a record or tombstone of the wrong shape): left out of the page's
/// records and tombstones, and reported in its `refused`.
struct refused_item {
    std::string server_id;   ///< its server id, when that much could be read; else empty
    std::size_t index = 0;   ///< its place, from 0, in its list of the server's answer
    bool tombstone = false;  ///< true for an item of the answer's tombstones (if it has such a list)
    std::string why;         ///< what the decoder found wrong with it
};

/// @brief One page of a pull.
///
/// One item the transport cannot read never fails the page: it goes to
/// `refused`, and the others apply. The engine counts each refused item with
/// the items it could not apply (`sync_report::unapplied`, a warning to the
/// log hook) and, when it has a server id, fetches it later, one fetch per
/// pull, until it applies or the server answers `not_found`. A page whose own
/// shape is wrong (no list of records, a cursor that is not one) still fails.
struct pull_page {
    std::vector<server_record> records;      ///< records created or changed since the cursor
    std::vector<tombstone> tombstones;       ///< records deleted since the cursor
    std::string next_cursor;                 ///< where the next page starts
    bool has_more = false;                   ///< true if another page is ready now
    std::vector<refused_item> refused{};     ///< the items of the page the decoder could not read
};

/// @brief How a transport talks to its server, and the server's limits.
///
/// Requirements on a type `T`:
/// 1. `T::policy_kind` is `tether::transport_tag`; `T` is copy constructible;
/// 2. `t.push(collection, ops)` sends a batch and returns one `push_outcome` per
///    op, in order; an error result means the batch as a whole failed (offline,
///    transient, unauthorized, rate_limited, ...), so nothing is known of its ops;
/// 3. `t.pull(collection, cursor, limit)` returns the page after `cursor` (the
///    empty cursor starts at the beginning);
///    one item of the page the transport cannot read goes to the page's
///    `refused` (with its server id when it can read that much), never fails
///    the page;
/// 4. `t.fetch(collection, server_id)` returns one record (`errc::not_found` if
///    absent; `errc::protocol` if its answer cannot be read: the engine counts
///    it and fetches it again at a later pull);
/// 5. `t.max_batch()` is the largest batch `push` accepts (>= 1); a larger one
///    fails as a whole with `errc::too_large` (HTTP 413), as does a batch whose
///    body is over the server's size limit: the engine then halves the batch,
///    down to one record, and only a record too large alone fails;
/// 6. `t.has_change_feed()` is false for a server that only lists everything:
///    then `pull` with the empty cursor returns the full list, in one page
///    (`has_more` false; `limit` may be ignored) or in several (`next_cursor`
///    and `has_more` lead on; a record listed twice counts once), with no
///    tombstones, and the engine detects server-side deletions itself once the
///    last page is in. Versions may be untrustworthy there (an API without
///    them reports one version for ever): a pulled record whose value differs
///    from the local synced copy is a change all the same.
/// No member throws; all may be called from any thread.
///
/// A transport that sends one request per op (`rest_transport`) answers every
/// op the server answered with its outcome, even when a later request of the
/// batch gets no answer (the connection died): the ops from there on are
/// answered `rejected` with that (transient or offline) error, and are tried
/// again later; only when the first request gets no answer is the batch an
/// error as a whole. In full-list mode (6.) such a transport may page its full
/// list: `next_cursor` and `has_more` lead from page to page, and the id set is
/// complete only after the last page.
///
/// @code
/// struct offline_transport {
///     using policy_kind = tether::transport_tag;
///     tether::result<std::vector<tether::push_outcome>> push(std::string_view, std::span<const tether::push_op>) {
///         return tether::unexpected{tether::make_error(tether::errc::offline)};
///     }
///     // ... pull, fetch, max_batch, has_change_feed likewise
/// };
/// @endcode
template <class T>
concept transport_policy = std::same_as<typename T::policy_kind, transport_tag> && std::copy_constructible<T>
    && requires(T& t, const T& ct, std::string_view collection, std::span<const push_op> ops,
                std::string_view cursor, std::string_view server_id, std::size_t limit) {
           { t.push(collection, ops) } -> std::same_as<result<std::vector<push_outcome>>>;
           { t.pull(collection, cursor, limit) } -> std::same_as<result<pull_page>>;
           { t.fetch(collection, server_id) } -> std::same_as<result<server_record>>;
           { ct.max_batch() } -> std::convertible_to<std::size_t>;
           { ct.has_change_feed() } -> std::convertible_to<bool>;
       };

}  // namespace tether
