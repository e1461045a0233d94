#pragma once

// The crash test's server: a transport policy whose "server" lives in a SQLite
// file of its own, so that it outlives the client processes the test kills.
// Shared by tests/integration/crash_child.cpp (the client under test) and
// tests/integration/test_sqlite_crash.cpp (which resumes and checks).
//
// It keeps the protocol of tether::loopback_server (see transport/transport.hpp):
// - one table `records(user, collection, server_id, local_id, version, value,
//   deleted, created_version)`, at most one row per (user, collection, local_id);
// - every change takes the next number of its (user, collection): a record's
//   version is the number of its last change, and a pull cursor is such a number
//   (the cursor of a page is the largest version in it);
// - creates are idempotent on the local id (a second create answers with the
//   record the first made, or `conflict` if it has changed since; a deleted one
//   answers `errc::not_found`), without setting `push_outcome::replayed`, like a
//   server older than that flag, so the engine's fallback for such servers is
//   exercised; updates
//   merge the sent fields and removes leave tombstones, both checked against
//   `base_version` (a mismatch is a `conflict` with the current record), except
//   that an op naming its record by local id alone with `base_version` 0 skips
//   the check;
// - a push is one SQLite transaction (synchronous = FULL): all of its ops apply
//   or none do, and a response is only returned once they are on disk.
// Seeded faults: a request may be lost before it applies, or its response after.
#include <tether/clock/clock.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/transport/transport.hpp>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace tether_test {

/// The transport to a server kept in the SQLite file `path`.
class durable_transport {
public:
    using policy_kind = tether::transport_tag;

    /// A transport for `user`; each request is lost (before it applies, or its
    /// response after it applied) with probability `fault_rate`, drawn from `seed`.
    durable_transport(std::string path, std::string user, double fault_rate = 0, std::uint64_t seed = 1,
                      std::size_t max_batch = 8)
        : state_(std::make_shared<state>(std::move(path), fault_rate, seed)),
          user_(std::move(user)),
          max_batch_(max_batch == 0 ? 1 : max_batch) {}

    /// Applies `ops` in one transaction; one outcome per op.
    [[nodiscard]] tether::result<std::vector<tether::push_outcome>> push(std::string_view collection,
                                                                         std::span<const tether::push_op> ops) {
        if (ops.size() > max_batch_) {
            return tether::unexpected{tether::error{tether::errc::invalid_argument, "batch too large", 413, std::nullopt}};
        }
        std::lock_guard lock{state_->mutex};
        if (auto e = state_->ready(); !e) return tether::unexpected{std::move(e).error()};
        const fault f = state_->draw();
        if (f == fault::request_lost) return tether::unexpected{lost("request lost")};
        std::vector<tether::push_outcome> outcomes;
        if (!state_->exec("BEGIN IMMEDIATE")) return tether::unexpected{state_->failure("BEGIN")};
        for (const auto& op : ops) {
            auto out = apply(collection, op);
            if (!out) {
                state_->exec("ROLLBACK");
                return tether::unexpected{std::move(out).error()};
            }
            outcomes.push_back(std::move(*out));
        }
        if (!state_->exec("COMMIT")) {
            auto e = state_->failure("COMMIT");
            state_->exec("ROLLBACK");
            return tether::unexpected{std::move(e)};
        }
        if (push_committed_) push_committed_();
        if (f == fault::response_lost) return tether::unexpected{lost("response lost")};
        return outcomes;
    }

    /// The changes after `cursor`, oldest first, at most `limit`.
    [[nodiscard]] tether::result<tether::pull_page> pull(std::string_view collection, std::string_view cursor,
                                                         std::size_t limit) {
        std::lock_guard lock{state_->mutex};
        if (auto e = state_->ready(); !e) return tether::unexpected{std::move(e).error()};
        const fault f = state_->draw();
        if (f == fault::request_lost) return tether::unexpected{lost("request lost")};
        std::uint64_t after = 0;
        if (!cursor.empty()) {
            const auto [end, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), after);
            if (ec != std::errc{} || end != cursor.data() + cursor.size()) {
                return tether::unexpected{tether::error{tether::errc::invalid_argument, "bad cursor", 400, std::nullopt}};
            }
        }
        if (limit == 0) limit = 1;
        tether::pull_page page;
        page.next_cursor = std::string{cursor};
        stmt st{state_->db,
                "SELECT server_id, local_id, version, value, deleted, created_version FROM records"
                " WHERE user = ?1 AND collection = ?2 AND version > ?3 ORDER BY version LIMIT ?4"};
        st.bind(1, user_).bind(2, collection).bind(3, static_cast<std::int64_t>(after));
        st.bind(4, static_cast<std::int64_t>(limit + 1));
        std::size_t taken = 0;
        int rc = SQLITE_ROW;
        while ((rc = st.step()) == SQLITE_ROW) {
            if (taken == limit) {
                page.has_more = true;
                break;
            }
            ++taken;
            auto r = read(st);
            if (!r) return tether::unexpected{std::move(r).error()};
            page.next_cursor = std::to_string(r->rec.version);
            if (r->deleted) {
                page.tombstones.push_back(tether::tombstone{r->rec.server_id, r->rec.id, r->rec.version});
            } else {
                page.records.push_back(std::move(r->rec));
            }
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return tether::unexpected{state_->failure("pull")};
        if (f == fault::response_lost) return tether::unexpected{lost("response lost")};
        return page;
    }

    /// One live record.
    [[nodiscard]] tether::result<tether::server_record> fetch(std::string_view collection,
                                                              std::string_view server_id) {
        std::lock_guard lock{state_->mutex};
        if (auto e = state_->ready(); !e) return tether::unexpected{std::move(e).error()};
        auto found = find_by_server_id(collection, server_id);
        if (!found) return tether::unexpected{std::move(found).error()};
        if (!*found || (*found)->deleted) return tether::unexpected{not_found(server_id)};
        return std::move((*found)->rec);
    }

    [[nodiscard]] std::size_t max_batch() const noexcept { return max_batch_; }
    [[nodiscard]] bool has_change_feed() const noexcept { return true; }

    /// Calls `fn` whenever a push has committed on the server, before its
    /// response goes back (the crash test stops the client there).
    void on_push_committed(std::function<void()> fn) { push_committed_ = std::move(fn); }

private:
    enum class fault { none, request_lost, response_lost };

    struct stored {
        tether::server_record rec;
        bool deleted = false;
        std::uint64_t created_version = 0;  // the version its create gave it
    };

    /// A prepared statement, finalized on scope exit.
    class stmt {
    public:
        stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &st_, nullptr); }
        stmt(const stmt&) = delete;
        stmt& operator=(const stmt&) = delete;
        ~stmt() { sqlite3_finalize(st_); }
        stmt& bind(int i, std::string_view v) {
            sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
            return *this;
        }
        stmt& bind(int i, std::int64_t v) {
            sqlite3_bind_int64(st_, i, v);
            return *this;
        }
        stmt& bind_null(int i) {
            sqlite3_bind_null(st_, i);
            return *this;
        }
        int step() { return st_ == nullptr ? SQLITE_MISUSE : sqlite3_step(st_); }
        [[nodiscard]] std::string text(int i) const {
            const auto* t = sqlite3_column_text(st_, i);
            return t == nullptr ? std::string{} : std::string{reinterpret_cast<const char*>(t),
                                                              static_cast<std::size_t>(sqlite3_column_bytes(st_, i))};
        }
        [[nodiscard]] bool is_null(int i) const { return sqlite3_column_type(st_, i) == SQLITE_NULL; }
        [[nodiscard]] std::int64_t int64(int i) const { return sqlite3_column_int64(st_, i); }

    private:
        sqlite3_stmt* st_ = nullptr;
    };

    struct state {
        state(std::string p, double rate, std::uint64_t seed) : path(std::move(p)), fault_rate(rate), rng(seed) {}
        state(const state&) = delete;
        state& operator=(const state&) = delete;
        ~state() {
            if (db != nullptr) sqlite3_close_v2(db);
        }

        /// Opens the file on first use and creates the table.
        tether::result<void> ready() {
            if (db != nullptr) return {};
            if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
                auto e = failure("open");
                sqlite3_close_v2(db);
                db = nullptr;
                return tether::unexpected{std::move(e)};
            }
            sqlite3_busy_timeout(db, 5000);
            for (const char* sql : {
                     "PRAGMA journal_mode = WAL",
                     "PRAGMA synchronous = FULL",
                     "CREATE TABLE IF NOT EXISTS records (user TEXT NOT NULL, collection TEXT NOT NULL,"
                     " server_id TEXT NOT NULL, local_id TEXT, version INTEGER NOT NULL, value TEXT NOT NULL,"
                     " deleted INTEGER NOT NULL DEFAULT 0, created_version INTEGER NOT NULL DEFAULT 0,"
                     " PRIMARY KEY (user, collection, server_id),"
                     " UNIQUE (user, collection, local_id))",
                     "CREATE INDEX IF NOT EXISTS records_version ON records (user, collection, version)",
                 }) {
                if (!exec(sql)) return tether::unexpected{failure(sql)};
            }
            return {};
        }

        bool exec(const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }

        tether::error failure(std::string_view what) const {
            const std::string msg = "server.db: " + std::string{what} + ": " +
                                    (db != nullptr ? sqlite3_errmsg(db) : "cannot open");
            std::fprintf(stderr, "durable_transport: %s\n", msg.c_str());  // a server fault: always worth seeing
            return tether::error{tether::errc::transient, msg, 500, std::nullopt};
        }

        fault draw() {
            if (fault_rate <= 0) return fault::none;
            const double u = std::uniform_real_distribution<double>{0.0, 1.0}(rng);
            if (u < fault_rate / 2) return fault::request_lost;
            if (u < fault_rate) return fault::response_lost;
            return fault::none;
        }

        std::mutex mutex;
        std::string path;
        double fault_rate;
        std::mt19937_64 rng;
        sqlite3* db = nullptr;
    };

    static tether::error lost(std::string what) {
        return tether::error{tether::errc::transient, std::move(what), std::nullopt, std::nullopt};
    }
    static tether::error not_found(std::string_view what) {
        return tether::error{tether::errc::not_found, "no record " + std::string{what}, 404, std::nullopt};
    }
    static tether::push_outcome applied(tether::server_record r) {
        return {tether::push_outcome::kind::applied, std::move(r), {}};
    }
    static tether::push_outcome rejected(tether::error e) {
        return {tether::push_outcome::kind::rejected, {}, std::move(e)};
    }

    /// The row `st` is on (columns: server_id, local_id, version, value, deleted, created_version).
    tether::result<stored> read(const stmt& st) const {
        stored s;
        s.rec.server_id = st.text(0);
        if (!st.is_null(1)) {
            auto id = tether::local_id::parse(st.text(1));
            if (!id) return tether::unexpected{state_->failure("bad local_id " + st.text(1))};
            s.rec.id = *id;
        }
        s.rec.version = static_cast<std::uint64_t>(st.int64(2));
        s.rec.value = nlohmann::json::parse(st.text(3), nullptr, false);
        if (s.rec.value.is_discarded()) return tether::unexpected{state_->failure("bad value of " + s.rec.server_id)};
        s.deleted = st.int64(4) != 0;
        s.created_version = static_cast<std::uint64_t>(st.int64(5));
        return s;
    }

    tether::result<std::optional<stored>> one(stmt& st) const {
        const int rc = st.step();
        if (rc == SQLITE_DONE) return std::optional<stored>{};
        if (rc != SQLITE_ROW) return tether::unexpected{state_->failure("lookup")};
        auto r = read(st);
        if (!r) return tether::unexpected{std::move(r).error()};
        return std::optional<stored>{std::move(*r)};
    }

    tether::result<std::optional<stored>> find_by_server_id(std::string_view collection, std::string_view sid) {
        stmt st{state_->db,
                "SELECT server_id, local_id, version, value, deleted, created_version FROM records"
                " WHERE user = ?1 AND collection = ?2 AND server_id = ?3"};
        st.bind(1, user_).bind(2, collection).bind(3, sid);
        return one(st);
    }

    tether::result<std::optional<stored>> find_by_local_id(std::string_view collection, const tether::local_id& id) {
        stmt st{state_->db,
                "SELECT server_id, local_id, version, value, deleted, created_version FROM records"
                " WHERE user = ?1 AND collection = ?2 AND local_id = ?3"};
        st.bind(1, user_).bind(2, collection).bind(3, id.to_string());
        return one(st);
    }

    static bool names_by_server_id(const tether::push_op& op) { return op.server_id && !op.server_id->empty(); }

    tether::result<std::optional<stored>> find(std::string_view collection, const tether::push_op& op) {
        if (names_by_server_id(op)) return find_by_server_id(collection, *op.server_id);
        if (op.id.is_nil()) return std::optional<stored>{};
        return find_by_local_id(collection, op.id);
    }

    /// The next change number of the collection.
    tether::result<std::uint64_t> next_version(std::string_view collection) {
        stmt st{state_->db, "SELECT coalesce(max(version), 0) + 1 FROM records WHERE user = ?1 AND collection = ?2"};
        st.bind(1, user_).bind(2, collection);
        if (st.step() != SQLITE_ROW) return tether::unexpected{state_->failure("next version")};
        return static_cast<std::uint64_t>(st.int64(0));
    }

    /// Writes `s` (insert or replace) with the next version; updates `s.rec.version`.
    tether::result<void> write(std::string_view collection, stored& s) {
        auto v = next_version(collection);
        if (!v) return tether::unexpected{std::move(v).error()};
        s.rec.version = *v;
        stmt st{state_->db,
                "INSERT INTO records (user, collection, server_id, local_id, version, value, deleted, created_version)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?5) ON CONFLICT (user, collection, server_id) DO UPDATE SET"
                " version = excluded.version, value = excluded.value, deleted = excluded.deleted"};
        st.bind(1, user_).bind(2, collection).bind(3, s.rec.server_id);
        if (s.rec.id) st.bind(4, s.rec.id->to_string()); else st.bind_null(4);
        st.bind(5, static_cast<std::int64_t>(s.rec.version)).bind(6, s.rec.value.dump());
        st.bind(7, std::int64_t{s.deleted ? 1 : 0});
        if (st.step() != SQLITE_DONE) return tether::unexpected{state_->failure("write")};
        return {};
    }

    tether::result<tether::push_outcome> apply(std::string_view collection, const tether::push_op& op) {
        auto conflict = [&](const stored& r) {
            return tether::push_outcome{tether::push_outcome::kind::conflict, r.rec,
                                        tether::error{tether::errc::conflict, "stale base_version", 409, std::nullopt}};
        };
        auto version_matches = [&](const stored& r) {
            return op.base_version == r.rec.version || (op.base_version == 0 && !names_by_server_id(op));
        };
        auto protocol = [](std::string m) {
            return rejected(tether::error{tether::errc::protocol, std::move(m), 400, std::nullopt});
        };
        switch (op.kind) {
            case tether::op_kind::create: {
                if (!op.value.is_object()) return protocol("create: value must be an object");
                if (op.id.is_nil()) return protocol("create: nil local id");
                auto found = find_by_local_id(collection, op.id);
                if (!found) return tether::unexpected{std::move(found).error()};
                if (*found) {
                    if ((*found)->deleted) return rejected(not_found(op.id.to_string()));
                    // Changed since its create: the sender's values would overwrite that change.
                    if ((*found)->rec.version != (*found)->created_version) return conflict(**found);
                    return applied((*found)->rec);  // idempotent: the first create's record
                }
                stmt count{state_->db, "SELECT count(*) + 1 FROM records WHERE user = ?1 AND collection = ?2"};
                count.bind(1, user_).bind(2, collection);
                if (count.step() != SQLITE_ROW) return tether::unexpected{state_->failure("server id")};
                stored s;
                s.rec.server_id = std::string{"s"} + std::to_string(count.int64(0));
                s.rec.id = op.id;
                s.rec.value = op.value;
                if (auto w = write(collection, s); !w) return tether::unexpected{std::move(w).error()};
                return applied(s.rec);
            }
            case tether::op_kind::update: {
                if (!op.value.is_object()) return protocol("update: value must be an object");
                auto found = find(collection, op);
                if (!found) return tether::unexpected{std::move(found).error()};
                if (!*found || (*found)->deleted) {
                    return rejected(not_found(names_by_server_id(op) ? *op.server_id : op.id.to_string()));
                }
                stored s = std::move(**found);
                if (!version_matches(s)) return conflict(s);
                for (const auto& field : op.value.items()) s.rec.value[field.key()] = field.value();
                if (auto w = write(collection, s); !w) return tether::unexpected{std::move(w).error()};
                return applied(s.rec);
            }
            case tether::op_kind::remove: {
                auto found = find(collection, op);
                if (!found) return tether::unexpected{std::move(found).error()};
                if (!*found) {  // idempotent: nothing to delete
                    tether::server_record known;
                    known.server_id = op.server_id.value_or(std::string{});
                    if (!op.id.is_nil()) known.id = op.id;
                    return applied(std::move(known));
                }
                stored s = std::move(**found);
                if (s.deleted) return applied(s.rec);
                if (!version_matches(s)) return conflict(s);
                s.deleted = true;
                if (auto w = write(collection, s); !w) return tether::unexpected{std::move(w).error()};
                return applied(s.rec);
            }
            case tether::op_kind::append: break;  // never sent here: the transport does not carry appends
        }
        return protocol("unknown op kind");
    }

    std::shared_ptr<state> state_;
    std::string user_;
    std::size_t max_batch_;
    std::function<void()> push_committed_;
};

static_assert(tether::transport_policy<durable_transport>);

}  // namespace tether_test
