#pragma once

// A raw sqlite3 connection for the SQLite integration tests: what another
// process would hold on the same file.
#include <sqlite3.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace tether_test {

/// A second, raw connection to a database file (what another process would hold).
class raw_db {
public:
    explicit raw_db(const std::string& path) {
        if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error{"sqlite3_open failed"};
    }
    raw_db(const raw_db&) = delete;
    raw_db& operator=(const raw_db&) = delete;
    ~raw_db() { sqlite3_close(db_); }

    /// Runs `sql` (several statements allowed); SQLITE_OK or the error code.
    int exec(const std::string& sql) { return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr); }

    /// The first column of every row of `sql`, as text (`null_text` for a null).
    std::vector<std::string> column(const std::string& sql, const std::string& null_text = "") {
        std::vector<std::string> out;
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
            throw std::runtime_error{sqlite3_errmsg(db_)};
        }
        while (sqlite3_step(st) == SQLITE_ROW) {
            const auto* t = sqlite3_column_text(st, 0);
            out.emplace_back(t == nullptr ? null_text : std::string{reinterpret_cast<const char*>(t)});
        }
        sqlite3_finalize(st);
        return out;
    }

    /// The last column of every row of `sql` joined by newlines (for EXPLAIN QUERY PLAN).
    std::string last_columns(const std::string& sql) {
        std::string out;
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
            throw std::runtime_error{sqlite3_errmsg(db_)};
        }
        while (sqlite3_step(st) == SQLITE_ROW) {
            const auto* t = sqlite3_column_text(st, sqlite3_column_count(st) - 1);
            out += t == nullptr ? "" : reinterpret_cast<const char*>(t);
            out += '\n';
        }
        sqlite3_finalize(st);
        return out;
    }

private:
    sqlite3* db_ = nullptr;
};

}  // namespace tether_test
