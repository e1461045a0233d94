#pragma once

#include <tether/core/timestamp.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/status.hpp>
#include <tether/core/result.hpp>
#include <tether/detail/rebind.hpp>

#include <concepts>
#include <functional>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tether {

/// @brief The kind tag of storage policies.
struct storage_tag {};

/// @brief How many records a store holds in each status, and the oldest unsynced change.
struct status_counts {
    std::size_t pending = 0;                  ///< records in `pending`
    std::size_t synced = 0;                   ///< records in `synced`
    std::size_t pending_deletion = 0;         ///< records in `pending_deletion`
    std::size_t error = 0;                    ///< records in `error`
    std::size_t failed = 0;                   ///< records in `failed`
    std::optional<timestamp> oldest_pending;  ///< least `updated_at` among pending, pending_deletion and error
    /// Records the store holds but cannot decode (a value written by another
    /// version of the app, a corrupt row): `list()` and `due()` skip them, and
    /// `get` of one returns an error. Counts the rows the store's reads have met
    /// so far (see `reports_unreadable`, and the store's own documentation for
    /// exactly which). It overlaps the counts above: a store that can still read
    /// such a row's status counts it there too. A store that always decodes
    /// leaves it 0.
    std::size_t unreadable = 0;

    friend bool operator==(const status_counts&, const status_counts&) = default;
};

/// @brief One atomic unit of work on a store (see `record_store::transact`).
///
/// Requirements on a type `Tx` for entity `E`:
/// 1. `tx.get(id)` returns `result<std::optional<record<E>>>`, seeing the
///    transaction's own writes;
/// 2. `tx.find_by_server_id(sid)` likewise, by server id;
/// 3. `tx.put(rec)` inserts or replaces the record with `rec.id`: `result<void>`;
///    a server id already held by another record is an `errc::storage` error;
/// 4. `tx.erase(id)` removes it (absent is not an error): `result<void>`;
/// 5. `tx.get_meta(key)` / `tx.set_meta(key, value)` read and write the store's
///    string metadata (cursors), in the same transaction.
template <class Tx, class E>
concept storage_transaction = requires(Tx& tx, const local_id& id, const record<E>& r, std::string_view key,
                                       std::string value) {
    { tx.get(id) } -> std::same_as<result<std::optional<record<E>>>>;
    { tx.find_by_server_id(key) } -> std::same_as<result<std::optional<record<E>>>>;
    { tx.put(r) } -> std::same_as<result<void>>;
    { tx.erase(id) } -> std::same_as<result<void>>;
    { tx.get_meta(key) } -> std::same_as<result<std::optional<std::string>>>;
    { tx.set_meta(key, std::move(value)) } -> std::same_as<result<void>>;
};

/// @brief What a transaction's optional `edit(id)` hands out: the stored record,
/// to be changed in place, and a copy of it as it was (kept for rollback).
///
/// A store whose transaction offers `record_edit<E> edit(const local_id&)`
/// lets the engine update a record without building and moving a replacement
/// (the memory store does; see `record_store`, item 8). Both pointers are null
/// when there is no such record, and stay valid until the transaction's next
/// write or its end. The change must keep `id` and `server_id` as they are.
template <class E>
struct record_edit {
    record<E>* current = nullptr;       ///< the stored record: changes to it are the write
    const record<E>* before = nullptr;  ///< the record as it was when `edit` was called
    /// @brief True if the record exists.
    explicit operator bool() const noexcept { return current != nullptr; }
};

namespace detail {
/// A callable of the shape `transact` must accept, for the concept check.
template <class Tx>
struct transaction_probe {
    result<void> operator()(Tx&) const;
};
}  // namespace detail

/// @brief A store of `record<E>`s: what the engine needs from its storage.
///
/// Requirements on a type `S` for entity `E`:
/// 1. `S::transaction` satisfies `storage_transaction<S::transaction, E>`;
/// 2. `s.transact(f)` runs `f(tx)` and commits all its writes if `f` returns a
///    value, none of them if it returns an error (which `transact` returns) or
///    throws (rethrown after the rollback); transactions are serialised;
/// 3. `s.get(id)`, `s.find_by_server_id(sid)` read one record;
///    `s.list()` every record, in `local_id` order;
/// 4. `s.due(now, limit)` at most `limit` records for which `is_due(r, now)`
///    (`pending`/`pending_deletion`/`error`, with no `next_attempt_at` in the future),
///    highest `priority` first, then least `updated_at`, then `local_id`;
/// 5. `s.counts()` the `status_counts`; `s.get_meta(key)` a metadata value;
///    `s.earliest_next_attempt()` the least `next_attempt_at` among the records
///    `due()` may pick (`pending`, `pending_deletion`, `error`), empty when none
///    of them has one: when the next retry falls due (the scheduler wakes then);
/// 6. every member is thread-safe and reports failure as a `result` error
///    (`errc::storage`, or `errc::busy` for a lock held elsewhere), never by throwing;
/// 7. optionally, the store offers the capabilities named by the concepts
///    below (`audited_transaction`, `peekable_transaction`,
///    `editable_transaction`, `deferring_store`, `reports_unreadable`); the
///    engine uses each one it finds, and works without any of them.
/// Nesting `transact` inside `transact` on the same store is not required to work.
///
/// @code
/// tether::memory_storage::rebind<Job> store{tether::memory_storage{}};  // what the engine does
/// auto r = store.transact([&](auto& tx) { return tx.put(rec); });
/// @endcode
template <class S, class E>
concept record_store = storage_transaction<typename S::transaction, E>
    && requires(S& s, const S& cs, const local_id& id, std::string_view key, timestamp now, std::size_t limit,
                detail::transaction_probe<typename S::transaction> fn) {
           { s.transact(fn) } -> std::same_as<result<void>>;
           { cs.get(id) } -> std::same_as<result<std::optional<record<E>>>>;
           { cs.find_by_server_id(key) } -> std::same_as<result<std::optional<record<E>>>>;
           { cs.list() } -> std::same_as<result<std::vector<record<E>>>>;
           { cs.due(now, limit) } -> std::same_as<result<std::vector<record<E>>>>;
           { cs.counts() } -> std::same_as<result<status_counts>>;
           { cs.earliest_next_attempt() } -> std::same_as<result<std::optional<timestamp>>>;
           { cs.get_meta(key) } -> std::same_as<result<std::optional<std::string>>>;
       };

/// @brief A record a store holds but cannot decode, as `reports_unreadable`
/// stores list them.
struct unreadable_record {
    local_id id;  ///< the record's id
    error why;    ///< what reading it returns: `errc::storage`, naming the id and the cause

    friend bool operator==(const unreadable_record&, const unreadable_record&) = default;
};

/// @brief Optional capability of a `record_store`: it can hold records it
/// cannot decode, and says which.
///
/// A persistent store may meet a row it cannot turn back into a `record<E>`: an
/// entity written by an older version of the app whose member has since changed
/// type, a value damaged outside tether. Such a row affects only itself:
/// `list()` and `due()` skip it (`due` still returns up to `limit` readable
/// records), `get` / `tx.get` / `tx.peek` of it return an `errc::storage` error
/// naming it, `tx.erase` removes it without decoding it, and
/// `counts().unreadable` counts it. What the capability buys the engine:
///
/// - `s.unreadable()`: the rows the store has found undecodable so far (by any
///   read), in `local_id` order, so that the engine can report skipped rows
///   once rather than on every sync;
/// - `tx.unreadable(id)`: true if the row `id` exists but does not decode (false
///   if it decodes, is absent, or cannot be read at all), so that the engine's
///   `remove(id)` can erase such a row instead of failing on it.
///
/// `memory_storage` does not offer it: what it holds are `record<E>` values,
/// which always "decode", so its `counts().unreadable` is always 0.
template <class S, class E>
concept reports_unreadable = record_store<S, E>
    && requires(const S& cs, typename S::transaction& tx, const local_id& id) {
           { cs.unreadable() } -> std::same_as<result<std::vector<unreadable_record>>>;
           { tx.unreadable(id) } -> std::same_as<bool>;
       };

// ---- optional capabilities: what a store may offer, and what each buys ----------

/// @brief Optional capability: the transaction keeps an audit log. Buys: every
/// status transition the engine makes is recorded in the same transaction as
/// the write (`result<void> audit(const transition&)`), so the log and the data
/// never disagree (DOMAIN.md §3, auditable transitions).
template <class Tx>
concept audited_transaction = requires(Tx& tx, const transition& t) {
    { tx.audit(t) } -> std::same_as<result<void>>;
};

/// @brief Optional capability: the transaction lends a stored record without
/// copying it (`peek(id)` returning `const record<E>*`, or
/// `result<const record<E>*>` when the lookup may fail; null when absent, valid
/// until the transaction's next write). Buys: reads on the write path (update,
/// remove, create's collision check) cost no record copy.
template <class Tx, class E>
concept peekable_transaction = requires(Tx& tx, const local_id& id) {
    requires std::convertible_to<decltype(tx.peek(id)), const record<E>*> ||
                 std::same_as<decltype(tx.peek(id)), result<const record<E>*>>;
};

/// @brief Optional capability: the transaction hands out the stored record to
/// change in place (`record_edit<E> edit(const local_id&)`). Buys: `update`
/// changes the record where it lies, one lookup, no replacement moved through
/// the store.
template <class Tx, class E>
concept editable_transaction = requires(Tx& tx, const local_id& id) {
    { tx.edit(id) } -> std::same_as<record_edit<E>>;
};

/// @brief Optional capability: engine writes may join a transaction the app
/// opened around several of them (`bool defer_until_commit(std::function<void()>&)`
/// keeps the function and runs it after the outermost commit, drops it on a
/// rollback, and returns false when no such transaction is open). Buys:
/// watchers and hooks hear of a write inside the app's transaction only once it
/// commits, and never of one that rolls back.
template <class S>
concept deferring_store = requires(S& s, std::function<void()>& fn) {
    { s.defer_until_commit(fn) } -> std::same_as<bool>;
};

/// @brief The store type a storage policy `P` gives for entity `E`:
/// `P::rebind<E>` if `P` has it, else `P`.
template <class P, class E>
using store_for_t = detail::rebound_t<P, E>;

/// @brief A storage policy for entity `E`.
///
/// Requirements on a type `P`:
/// 1. `P::policy_kind` is `tether::storage_tag`;
/// 2. `P` is copy constructible; `store_for_t<P, E>` is constructible from a `const P&`;
/// 3. `store_for_t<P, E>` satisfies `record_store<store_for_t<P, E>, E>`.
///
/// A policy that keeps several entity types (one table each) provides
/// `template <class E> using rebind = ...;`; the engine rebinds it, so the user
/// never repeats the entity type.
template <class P, class E>
concept storage_policy = std::same_as<typename P::policy_kind, storage_tag> && std::copy_constructible<P>
    && std::constructible_from<store_for_t<P, E>, const P&> && record_store<store_for_t<P, E>, E>;

}  // namespace tether
