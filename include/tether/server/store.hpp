#pragma once

/// @file
/// @brief The server-store concept: what `tether::server::sync_service` needs
/// from the place a server keeps its records.
///
/// A server store keeps, per (user, collection) — a `scope` —, the records the
/// protocol hands out (`stored_record`: the `server_record` plus its deleted
/// flag and the version its create gave it) and one change counter. All access
/// goes through transactions: the service opens one *write* transaction per
/// push batch (or admin edit) and one *read* transaction per pull or fetch.
///
/// **Why the change number is allocated inside the write transaction.** A pull
/// cursor is a change number: a client that has seen change N asks for the
/// changes after N. That is only sound if, once a reader sees change N
/// committed, no change below N of that collection can still commit later;
/// otherwise the client's cursor would skip it for good. With one writer process
/// any counter gives this; with several processes over one database (the target
/// deployment: N stateless servers over PostgreSQL) it holds only if change
/// order equals commit order. Hence the shape of the write transaction:
///
/// - `lock_collection(s)` comes first. A PostgreSQL store upserts the
///   (user, collection) counter row and takes it `FOR UPDATE`, so a second
///   batch on the same collection, in any process, waits there until the first
///   commits or rolls back; batches on other collections do not wait.
/// - `next_change(s)` then increments that locked row (`UPDATE ... SET
///   last_change = last_change + 1 RETURNING last_change`), in the same
///   transaction as the records it numbers. Numbers are given out in commit
///   order, and a rolled-back batch gives its numbers back with everything else.
///
/// The same lock makes the service's read-then-write steps safe across
/// processes: two creates with one local id, or two updates of one record, sent
/// to two processes at once run one after the other, so the second sees the
/// first's record (a replay, a version conflict) rather than racing it; the
/// unique (user, collection, local id) index is the backstop (`put` answers
/// `errc::conflict`).
///
/// A global sequence (`nextval`), a timestamp or a counter kept outside the
/// transaction would hand out numbers before commit, and two processes could
/// commit them in the other order: no cursor scheme built on such numbers
/// survives a second writer process, so none is used here. A read transaction
/// should see one snapshot (PostgreSQL: `REPEATABLE READ`), so that a page and
/// the collection's last change number agree.
///
/// The change feed needs no log of its own: a record's `version` is the number
/// of its last change, so "the changes after N" are the records (live or
/// deleted) whose version is above N, in version order (an index on
/// (user, collection, version)).
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/transport/transport.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tether::server {

/// @brief Whose records: one user's one collection. Records, server-side
/// local-id uniqueness, change numbers and epochs are all per scope.
struct scope {
    std::string_view user;        ///< the user (from the request's token, never from its body)
    std::string_view collection;  ///< the collection name
};

/// @brief A record as a server store keeps it.
struct stored_record {
    /// The record as the protocol hands it out: server id, local id (if it came
    /// from a create), version (the number of its last change), value, when it
    /// last changed (`updated_at`) and the origin of that change.
    server_record record;
    bool deleted = false;                ///< a tombstone: deleted by the change `record.version`
    std::uint64_t created_version = 0;   ///< the version its create gave it; 0 if no create made it (an admin `put`)
};

/// @brief Where a collection's change feed stands.
struct collection_info {
    /// The last change number issued (0: none). It never decreases, not even when
    /// a restore takes the records back in time.
    std::uint64_t last_change = 0;
    /// How many times the collection was restored from a backup; cursors carry
    /// it, so one issued before a restore is never taken for one issued after.
    std::uint64_t epoch = 0;

    /// @brief Field-wise equality.
    friend bool operator==(const collection_info&, const collection_info&) = default;
};

/// @brief Orders server ids shorter first, then by text, so `"s2"` sorts before
/// `"s10"`: the order of full lists (a SQL store: `ORDER BY length(id), id`).
struct server_id_less {
    using is_transparent = void;  ///< @brief Compares any mix of string types.
    /// @brief True if `a` sorts before `b`.
    bool operator()(std::string_view a, std::string_view b) const noexcept {
        return a.size() != b.size() ? a.size() < b.size() : a < b;
    }
};

/// @brief What every server-store transaction offers: reads, seeing the
/// transaction's own writes.
///
/// Requirements on a type `Tx` (every call scoped to `s`; a scope the store
/// holds nothing for simply has no records):
/// 1. `tx.find_by_server_id(s, sid)`: the record (live or deleted) with that
///    server id, or empty;
/// 2. `tx.find_by_local_id(s, id)`: the record (live or deleted) created with
///    that local id, or empty;
/// 3. `tx.changes_after(s, n, limit)`: the records, live and deleted, whose
///    version is above `n`, in increasing version order, at most `limit`;
/// 4. `tx.list(s)`: every live record, in `server_id_less` order;
/// 5. `tx.collection(s)`: the `collection_info`, or empty if the store holds
///    nothing for the scope (no write transaction ever locked it).
/// Failures (I/O, a lost connection) are result errors (`errc::storage`,
/// `errc::busy`, `errc::transient`), never exceptions.
template <class Tx>
concept server_read_transaction =
    requires(Tx& tx, scope s, std::string_view sid, const local_id& id, std::uint64_t n, std::size_t limit) {
        { tx.find_by_server_id(s, sid) } -> std::same_as<result<std::optional<stored_record>>>;
        { tx.find_by_local_id(s, id) } -> std::same_as<result<std::optional<stored_record>>>;
        { tx.changes_after(s, n, limit) } -> std::same_as<result<std::vector<stored_record>>>;
        { tx.list(s) } -> std::same_as<result<std::vector<stored_record>>>;
        { tx.collection(s) } -> std::same_as<result<std::optional<collection_info>>>;
    };

/// @brief What a write transaction offers on top of the reads.
///
/// Requirements on a type `Tx`, besides `server_read_transaction<Tx>`:
/// 1. `tx.lock_collection(s)` makes the scope known to the store if it was not
///    (its `collection_info` all zero) and holds its change counter until the
///    transaction ends: a second write transaction reaching `lock_collection`
///    for the same scope waits until this one has committed or rolled back
///    (see the file's documentation). Returns the scope's `collection_info`.
///    The service calls it before any other write of the scope;
/// 2. `tx.next_change(s)` allocates the scope's next change number (the last
///    one plus 1) and returns it; it is given back if the transaction rolls back;
/// 3. `tx.put(s, rec)` inserts `rec`, or replaces the record with its server id:
///    every field as given (the store keeps what it is told; numbering is the
///    service's job). A local id held by another record of the scope, or a
///    version held by another record of the scope, is `errc::conflict` and
///    changes nothing; an empty server id is `errc::invalid_argument`;
/// 4. `tx.new_server_id()` returns a server id no record of any scope has been
///    given by it before (ids may be skipped, e.g. by a rolled-back transaction
///    of a store that numbers them with a sequence, but never reused).
template <class Tx>
concept server_write_transaction =
    server_read_transaction<Tx> && requires(Tx& tx, scope s, const stored_record& rec) {
        { tx.lock_collection(s) } -> std::same_as<result<collection_info>>;
        { tx.next_change(s) } -> std::same_as<result<std::uint64_t>>;
        { tx.put(s, rec) } -> std::same_as<result<void>>;
        { tx.new_server_id() } -> std::same_as<result<std::string>>;
    };

namespace detail {
/// A callable of the shape `read` / `write` must accept, for the concept check.
template <class Tx>
struct server_tx_probe {
    result<void> operator()(Tx&) const { return {}; }
};
}  // namespace detail

/// @brief Where a server keeps its records: what `sync_service` needs.
///
/// Requirements on a type `S`:
/// 1. `S::read_transaction` satisfies `server_read_transaction`, and
///    `S::write_transaction` satisfies `server_write_transaction`;
/// 2. `s.write(f)` runs `f(tx)` on a write transaction and returns what `f`
///    returns (a `result<T>`): it commits every write of `f` if that is a value,
///    and none of them if it is an error or `f` throws (rethrown after the
///    rollback) — a push batch's records and change numbers commit together or
///    not at all. A failed commit is returned as an error;
/// 3. `cs.read(f)` runs `f(tx)` on a read transaction (one consistent snapshot)
///    and returns what `f` returns;
/// 4. `S` is move constructible; every member is thread-safe, and transactions
///    from many threads (for a database store: many processes) may run at once,
///    within the rules above. Calling `read` or `write` from inside `f` is not
///    required to work.
///
/// `tether::testing::check_server_store` checks a store against this contract.
///
/// @code
/// tether::server::memory_store store;
/// const tether::server::scope s{"alice", "jobs"};
/// auto n = store.write([&](auto& tx) -> tether::result<std::uint64_t> {
///     if (auto c = tx.lock_collection(s); !c) return tether::unexpected{c.error()};
///     return tx.next_change(s);
/// });
/// @endcode
template <class S>
concept server_store = server_read_transaction<typename S::read_transaction> &&
                       server_write_transaction<typename S::write_transaction> && std::move_constructible<S> &&
                       requires(S& s, const S& cs, detail::server_tx_probe<typename S::write_transaction> w,
                                detail::server_tx_probe<typename S::read_transaction> r) {
                           { s.write(w) } -> std::same_as<result<void>>;
                           { cs.read(r) } -> std::same_as<result<void>>;
                       };

/// @brief Optional capability of a `server_store`: it can be taken back in
/// time, as a server restored from a backup (`memory_store` offers it; the
/// loopback server's `snapshot` / `restore` use it).
///
/// `cs.snapshot()` copies every scope and `cs.snapshot(user, collection)` one;
/// `s.restore(b)` brings back exactly the records the scopes of `b` held then,
/// and for each such scope sets the last change number one past every number
/// issued before and the epoch one past the one before, so that every cursor
/// issued before the restore is told apart (`errc::cursor_expired`) and new
/// changes are numbered after all earlier ones.
template <class S>
concept restorable_server_store = server_store<S> && requires(S& s, const S& cs, std::string_view name) {
    { cs.snapshot() } -> std::copy_constructible;
    { cs.snapshot(name, name) } -> std::same_as<decltype(cs.snapshot())>;
    s.restore(cs.snapshot());
};

}  // namespace tether::server
