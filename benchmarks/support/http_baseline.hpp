#pragma once

// The HTTP benchmark's baseline: the same job done by hand with cpp-httplib,
// nlohmann_json and SQLite's C API, as an app team would write it without
// tether (no outbox states, no retries, no conflicts: the floor). Its entity
// is in note.hpp.
#include "note.hpp"
#include "processes.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tether_bench {

/// A SQLite connection in WAL mode; statements prepared on demand.
class raw_db {
public:
    raw_db(const std::string& path, bool full) {
        if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error{"sqlite3_open failed"};
        exec("PRAGMA journal_mode = WAL");
        exec(full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    }
    raw_db(const raw_db&) = delete;
    raw_db& operator=(const raw_db&) = delete;
    ~raw_db() { sqlite3_close(db_); }

    void exec(const char* sql) {
        if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
            throw std::runtime_error{std::string{"sqlite: "} + sqlite3_errmsg(db_)};
    }
    sqlite3_stmt* prepare(const char* sql) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK)
            throw std::runtime_error{std::string{"sqlite: "} + sqlite3_errmsg(db_)};
        return s;
    }

private:
    sqlite3* db_ = nullptr;
};

inline void bind_text(sqlite3_stmt* s, int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
inline std::string column_text(sqlite3_stmt* s, int i) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
    return p ? std::string{p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))} : std::string{};
}
inline void step_done(sqlite3_stmt* s) {
    if (sqlite3_step(s) != SQLITE_DONE) throw std::runtime_error{"sqlite step failed"};
    sqlite3_reset(s);
}

/// The plain server: POST /push inserts a batch in one transaction and answers
/// the server ids; GET /changes?after=SEQ serves pages of 100. Runs in a child
/// process of its own.
class baseline_server {
public:
    baseline_server(const std::string& db_path, bool full) {
        int fds[2];
        if (::pipe(fds) != 0) throw std::runtime_error{"pipe failed"};
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error{"fork failed"};
        if (pid_ == 0) {
            ::close(fds[0]);
            serve(db_path, full, fds[1]);
            ::_exit(0);
        }
        ::close(fds[1]);
        if (::read(fds[0], &port_, sizeof port_) != static_cast<ssize_t>(sizeof port_))
            throw std::runtime_error{"the baseline server did not start"};
        ::close(fds[0]);
    }
    baseline_server(const baseline_server&) = delete;
    baseline_server& operator=(const baseline_server&) = delete;
    ~baseline_server() {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] long peak_rss_kb() const { return peak_rss_kb_of(pid_); }

private:
    static void serve(const std::string& db_path, bool full, int port_fd) {
        raw_db db{db_path, full};
        db.exec("CREATE TABLE IF NOT EXISTS items (seq INTEGER PRIMARY KEY, local_id TEXT UNIQUE NOT NULL, "
                "value TEXT NOT NULL, version INTEGER NOT NULL)");
        auto* upsert = db.prepare(
            "INSERT INTO items (local_id, value, version) VALUES (?1, ?2, 1) ON CONFLICT(local_id) DO UPDATE "
            "SET value = excluded.value, version = version + 1 RETURNING seq, version");
        auto* page = db.prepare("SELECT seq, local_id, value, version FROM items WHERE seq > ?1 ORDER BY seq LIMIT 101");
        std::mutex m;  // one connection: requests take turns, as a simple server would
        httplib::Server http;
        http.set_tcp_nodelay(true);
        http.Post("/push", [&](const httplib::Request& req, httplib::Response& res) {
            std::lock_guard lock{m};
            const auto batch = nlohmann::json::parse(req.body);
            nlohmann::json out = nlohmann::json::array();
            db.exec("BEGIN");
            for (const auto& op : batch) {
                bind_text(upsert, 1, op.at("id").get<std::string>());
                bind_text(upsert, 2, op.at("value").dump());
                if (sqlite3_step(upsert) != SQLITE_ROW) throw std::runtime_error{"insert failed"};
                out.push_back({{"id", op.at("id")},
                               {"server_id", "s" + std::to_string(sqlite3_column_int64(upsert, 0))},
                               {"version", sqlite3_column_int64(upsert, 1)}});
                sqlite3_reset(upsert);
            }
            db.exec("COMMIT");
            res.set_content(out.dump(), "application/json");
        });
        http.Get("/changes", [&](const httplib::Request& req, httplib::Response& res) {
            std::lock_guard lock{m};
            sqlite3_bind_int64(page, 1, std::stoll(req.get_param_value("after")));
            nlohmann::json records = nlohmann::json::array();
            long long last = 0;
            while (sqlite3_step(page) == SQLITE_ROW && records.size() < 100) {
                last = sqlite3_column_int64(page, 0);
                records.push_back({{"server_id", "s" + std::to_string(last)},
                                   {"id", column_text(page, 1)},
                                   {"value", nlohmann::json::parse(column_text(page, 2))},
                                   {"version", sqlite3_column_int64(page, 3)}});
            }
            const bool more = sqlite3_stmt_busy(page) != 0;  // a 101st row was read
            sqlite3_reset(page);
            res.set_content(nlohmann::json{{"records", records}, {"next", last}, {"has_more", more}}.dump(),
                            "application/json");
        });
        const int port = http.bind_to_any_port("127.0.0.1");
        if (::write(port_fd, &port, sizeof port) != static_cast<ssize_t>(sizeof port)) return;
        ::close(port_fd);
        http.listen_after_bind();
    }

    pid_t pid_ = 0;
    int port_ = 0;
};

/// The plain client: a local table of notes with a synced flag.
class baseline_client {
public:
    baseline_client(const std::string& db_path, bool full, int port) : db_{db_path, full}, http_{"127.0.0.1", port} {
        http_.set_tcp_nodelay(true);
        http_.set_keep_alive(true);
        db_.exec("CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, value TEXT NOT NULL, synced INTEGER NOT "
                 "NULL, server_id TEXT, version INTEGER)");
        db_.exec("CREATE INDEX IF NOT EXISTS notes_pending ON notes (id) WHERE synced = 0");
    }

    void insert_pending(const std::vector<note>& notes) {
        auto* ins = db_.prepare("INSERT INTO notes (id, value, synced) VALUES (?1, ?2, 0)");
        db_.exec("BEGIN");
        std::size_t k = 0;
        for (const auto& n : notes) {
            bind_text(ins, 1, "local-" + std::to_string(k++));
            bind_text(ins, 2, nlohmann::json{{"text", n.text}, {"audio_path", n.audio_path},
                                             {"duration_ms", n.duration_ms}, {"status", n.status}}
                                  .dump());
            step_done(ins);
        }
        db_.exec("COMMIT");
        sqlite3_finalize(ins);
    }

    /// Pushes every pending row, 100 at a time; returns how many were acknowledged.
    std::size_t push_all() {
        auto* pick = db_.prepare("SELECT id, value FROM notes WHERE synced = 0 ORDER BY id LIMIT 100");
        auto* mark = db_.prepare("UPDATE notes SET synced = 1, server_id = ?2, version = ?3 WHERE id = ?1");
        std::size_t acked = 0;
        for (;;) {
            nlohmann::json batch = nlohmann::json::array();
            while (sqlite3_step(pick) == SQLITE_ROW)
                batch.push_back({{"id", column_text(pick, 0)}, {"value", nlohmann::json::parse(column_text(pick, 1))}});
            sqlite3_reset(pick);
            if (batch.empty()) break;
            auto res = http_.Post("/push", batch.dump(), "application/json");
            if (!res || res->status != 200) throw std::runtime_error{"push failed"};
            const auto answer = nlohmann::json::parse(res->body);
            db_.exec("BEGIN");
            for (const auto& a : answer) {
                bind_text(mark, 1, a.at("id").get<std::string>());
                bind_text(mark, 2, a.at("server_id").get<std::string>());
                sqlite3_bind_int64(mark, 3, a.at("version").get<long long>());
                step_done(mark);
                ++acked;
            }
            db_.exec("COMMIT");
        }
        sqlite3_finalize(pick);
        sqlite3_finalize(mark);
        return acked;
    }

    /// Pulls every page into the local table, one transaction per page; returns the rows received.
    std::size_t pull_all() {
        auto* put = db_.prepare(
            "INSERT INTO notes (id, value, synced, server_id, version) VALUES (?1, ?2, 1, ?3, ?4) "
            "ON CONFLICT(id) DO UPDATE SET value = excluded.value, server_id = excluded.server_id, "
            "version = excluded.version");
        std::size_t got = 0;
        long long after = 0;
        for (bool more = true; more;) {
            auto res = http_.Get(("/changes?after=" + std::to_string(after)).c_str());
            if (!res || res->status != 200) throw std::runtime_error{"pull failed"};
            const auto page = nlohmann::json::parse(res->body);
            db_.exec("BEGIN");
            for (const auto& r : page.at("records")) {
                bind_text(put, 1, r.at("id").get<std::string>());
                bind_text(put, 2, r.at("value").dump());
                bind_text(put, 3, r.at("server_id").get<std::string>());
                sqlite3_bind_int64(put, 4, r.at("version").get<long long>());
                step_done(put);
                ++got;
            }
            db_.exec("COMMIT");
            after = page.at("next").get<long long>();
            more = page.at("has_more").get<bool>();
        }
        sqlite3_finalize(put);
        return got;
    }

private:
    raw_db db_;
    httplib::Client http_;
};

}  // namespace tether_bench
