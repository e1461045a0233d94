#pragma once

/// @file
/// @brief Internals of the SQLite storage: a `record<E>` to and from a table row.

#include <tether/core/timestamp.hpp>
#include <tether/core/entity.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/core/status.hpp>
#include <tether/storage/sqlite/statement.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tether::detail {

/// Milliseconds since the epoch, as stored.
[[nodiscard]] constexpr std::int64_t sqlite_time(timestamp t) noexcept { return t.time_since_epoch().count(); }

/// A stored time back as a timestamp.
[[nodiscard]] constexpr timestamp sqlite_timestamp(std::int64_t ms) noexcept {
    return timestamp{std::chrono::milliseconds{ms}};
}

/// The `dirty` column's text: the field names as a JSON array.
inline std::string sqlite_dirty_json(const field_set& dirty) {
    if (dirty.empty()) return "[]";
    nlohmann::json d = nlohmann::json::array();
    for (const auto& f : dirty) d.push_back(f);
    return d.dump();
}

/// The columns of a record row, in `sqlite_record_columns` order (0-based:
/// the upsert binds column `c` to parameter `c + 1`). The four `last_error*`
/// columns change together.
enum class sqlite_column : int {
    local_id, server_id, status, deleted, version, local_rev, dirty, attempts, last_attempt_at, next_attempt_at,
    priority, created_at, updated_at, last_error_code, last_error, last_error_http_status, last_error_retry_after_ms,
    value
};
inline constexpr int sqlite_column_count = 18;
/// Their names, as in `sqlite_record_columns`.
inline constexpr std::array<std::string_view, sqlite_column_count> sqlite_column_names{
    "local_id", "server_id", "status", "deleted", "version", "local_rev", "dirty", "attempts", "last_attempt_at",
    "next_attempt_at", "priority", "created_at", "updated_at", "last_error_code", "last_error",
    "last_error_http_status", "last_error_retry_after_ms", "value"};

/// `UPDATE "<table>" SET <each column of mask> = ?2, ?3, ... WHERE local_id = ?1`
/// (`table` already validated).
inline std::string sqlite_update_sql(const std::string& table, std::uint32_t mask) {
    std::string sql = "UPDATE \"" + table + "\" SET ";
    int param = 2;
    for (int c = 0; c < sqlite_column_count; ++c) {
        if ((mask & (std::uint32_t{1} << c)) == 0) continue;
        if (param > 2) sql += ", ";
        sql += sqlite_column_names[static_cast<std::size_t>(c)];
        sql += " = ?" + std::to_string(param++);
    }
    return sql + " WHERE local_id = ?1";
}

/// Binds column `c` of `r` to parameter `param`, without copies (`r`,
/// `value_json` and `dirty_json` must outlive the step).
template <class E>
void sqlite_bind_column(sqlite_statement& st, int param, sqlite_column c, const record<E>& r,
                        std::string_view value_json, std::string_view dirty_json) {
    auto opt_time = [](const std::optional<timestamp>& t) -> std::optional<std::int64_t> {
        if (!t) return std::nullopt;
        return sqlite_time(*t);
    };
    const auto& e = r.last_error;
    switch (c) {
        case sqlite_column::local_id: st.bind_blob_static(param, r.id.bytes()); break;
        case sqlite_column::server_id:
            if (r.server_id) st.bind_static(param, *r.server_id);
            else st.bind_null(param);
            break;
        case sqlite_column::status: st.bind_static(param, to_string(r.status)); break;
        case sqlite_column::deleted: st.bind(param, std::int64_t{r.deleted ? 1 : 0}); break;
        case sqlite_column::version: st.bind(param, static_cast<std::int64_t>(r.version)); break;  // modular
        case sqlite_column::local_rev: st.bind(param, static_cast<std::int64_t>(r.local_rev)); break;
        case sqlite_column::dirty: st.bind_static(param, dirty_json); break;
        case sqlite_column::attempts: st.bind(param, std::int64_t{r.attempts}); break;
        case sqlite_column::last_attempt_at: st.bind(param, opt_time(r.last_attempt_at)); break;
        case sqlite_column::next_attempt_at: st.bind(param, opt_time(r.next_attempt_at)); break;
        case sqlite_column::priority: st.bind(param, std::int64_t{static_cast<std::uint8_t>(r.priority)}); break;
        case sqlite_column::created_at: st.bind(param, sqlite_time(r.created_at)); break;
        case sqlite_column::updated_at: st.bind(param, sqlite_time(r.updated_at)); break;
        case sqlite_column::last_error_code:
            if (e) st.bind_static(param, to_string(e->code));
            else st.bind_null(param);
            break;
        case sqlite_column::last_error:
            if (e) st.bind_static(param, e->message);
            else st.bind_null(param);
            break;
        case sqlite_column::last_error_http_status:
            st.bind(param, e && e->http_status ? std::optional<std::int64_t>{*e->http_status} : std::nullopt);
            break;
        case sqlite_column::last_error_retry_after_ms:
            st.bind(param, e && e->retry_after ? std::optional<std::int64_t>{e->retry_after->count()} : std::nullopt);
            break;
        case sqlite_column::value: st.bind_static(param, value_json); break;
    }
}

/// `r`'s value as the value column's JSON, into `out`. An entity that does not
/// serialize to JSON is an `errc::invalid_argument` error.
template <class E>
result<void> sqlite_value_json(const record<E>& r, std::string& out) {
    try {
        out = entity_ops<E>::to_json(r.value).dump();
        return {};
    } catch (const nlohmann::json::exception& ex) {
        return unexpected{make_error(errc::invalid_argument,
                                     "sqlite: record " + r.id.to_string() + " does not serialize to JSON: " + ex.what())};
    }
}

/// Binds every column of `r` to the parameters ?1..?18 of an upsert (column
/// order of `sqlite_record_columns`), without copies: `r`, `value`, `known`
/// and `dirty_json` (`sqlite_dirty_json(r.dirty)`) must outlive the step. The
/// value column is `*known` if given (the caller holds the text of this very
/// value already, e.g. as read from the row), else the entity as JSON, written
/// into `value` here. An entity that does not serialize to JSON is an
/// `errc::invalid_argument` error; nothing is bound then.
template <class E>
result<void> sqlite_bind_record(sqlite_statement& st, const record<E>& r, std::string& value,
                                std::string_view dirty_json, const std::string* known = nullptr) {
    if (known == nullptr) {
        if (auto v = sqlite_value_json(r, value); !v) return v;
    }
    const std::string_view json = known != nullptr ? std::string_view{*known} : std::string_view{value};
    for (int c = 0; c < sqlite_column_count; ++c) {
        sqlite_bind_column(st, c + 1, static_cast<sqlite_column>(c), r, json, dirty_json);
    }
    return {};
}

/// The columns whose stored form differs between `a` (the row as stored) and
/// `b`, as bits (`1 << column`); `value_same` says the values are equal. The
/// four `last_error*` columns are set together.
template <class E>
[[nodiscard]] std::uint32_t sqlite_changed_columns(const record<E>& a, const record<E>& b, bool value_same) {
    std::uint32_t m = 0;
    auto mark = [&m](bool differs, sqlite_column c) {
        if (differs) m |= std::uint32_t{1} << static_cast<int>(c);
    };
    mark(a.server_id != b.server_id, sqlite_column::server_id);
    mark(a.status != b.status, sqlite_column::status);
    mark(a.deleted != b.deleted, sqlite_column::deleted);
    mark(a.version != b.version, sqlite_column::version);
    mark(a.local_rev != b.local_rev, sqlite_column::local_rev);
    mark(a.dirty != b.dirty, sqlite_column::dirty);
    mark(a.attempts != b.attempts, sqlite_column::attempts);
    mark(a.last_attempt_at != b.last_attempt_at, sqlite_column::last_attempt_at);
    mark(a.next_attempt_at != b.next_attempt_at, sqlite_column::next_attempt_at);
    mark(a.priority != b.priority, sqlite_column::priority);
    mark(a.created_at != b.created_at, sqlite_column::created_at);
    mark(a.updated_at != b.updated_at, sqlite_column::updated_at);
    if (a.last_error != b.last_error) {
        for (auto c : {sqlite_column::last_error_code, sqlite_column::last_error, sqlite_column::last_error_http_status,
                       sqlite_column::last_error_retry_after_ms}) {
            mark(true, c);
        }
    }
    mark(!value_same, sqlite_column::value);
    return m;
}

/// The record in the current row of `st` (a SELECT of `sqlite_record_columns`).
/// A row that does not decode (bad id, status, JSON, or an entity that does not
/// fit) is an `errc::storage` error naming `table` and the record. With
/// `value_text`, the value column's text is copied there when the row decodes.
template <class E>
result<record<E>> sqlite_read_record(const sqlite_statement& st, std::string_view table,
                                     std::string* value_text = nullptr) {
    record<E> r;
    auto corrupt = [&](std::string_view what) {
        return unexpected{make_error(errc::storage, "sqlite: " + std::string{table} + ": record " +
                                                        r.id.to_string() + " does not decode: " + std::string{what})};
    };
    const auto id = st.blob(0);
    if (id.size() != 16) return corrupt("local_id is not 16 bytes");
    local_id::bytes_type bytes{};
    std::copy(id.begin(), id.end(), bytes.begin());
    r.id = local_id{bytes};
    r.server_id = st.opt_text(1);
    const auto status = sync_status_from_string(st.text(2));
    if (!status) return corrupt("unknown status '" + std::string{st.text(2)} + "'");
    r.status = *status;
    r.deleted = st.int64(3) != 0;
    r.version = static_cast<std::uint64_t>(st.int64(4));
    r.local_rev = static_cast<std::uint64_t>(st.int64(5));
    {
        const auto text = st.text(6);
        const auto d = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
        if (d.is_discarded() || !d.is_array()) return corrupt("dirty is not a JSON array");
        for (const auto& f : d) {
            if (!f.is_string()) return corrupt("dirty holds a non-string");
            r.dirty.insert(f.get<std::string>());
        }
    }
    const auto attempts = st.int64(7);
    if (attempts < 0 || attempts > std::int64_t{UINT32_MAX}) return corrupt("attempts out of range");
    r.attempts = static_cast<std::uint32_t>(attempts);
    if (auto t = st.opt_int64(8)) r.last_attempt_at = sqlite_timestamp(*t);
    if (auto t = st.opt_int64(9)) r.next_attempt_at = sqlite_timestamp(*t);
    const auto prio = st.int64(10);
    if (prio < 0 || prio > 3) return corrupt("priority out of range");
    r.priority = static_cast<tether::priority>(prio);
    r.created_at = sqlite_timestamp(st.int64(11));
    r.updated_at = sqlite_timestamp(st.int64(12));
    if (!st.is_null(13)) {
        const auto code = errc_from_string(st.text(13));
        if (!code) return corrupt("unknown error code '" + std::string{st.text(13)} + "'");
        error e = make_error(*code, st.opt_text(14).value_or(std::string{}));
        if (auto h = st.opt_int64(15)) e.http_status = static_cast<int>(*h);
        if (auto ra = st.opt_int64(16)) e.retry_after = std::chrono::milliseconds{*ra};
        r.last_error = std::move(e);
    }
    const auto text = st.text(17);
    const auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) return corrupt("value is not valid JSON");
    auto value = entity_ops<E>::from_json(j);
    if (!value) return corrupt(value.error().message);
    r.value = std::move(*value);
    if (value_text != nullptr) value_text->assign(text.begin(), text.end());
    return r;
}

}  // namespace tether::detail
