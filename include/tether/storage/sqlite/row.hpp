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

/// Binds every column of `r` to the parameters ?1..?18 of an upsert (column
/// order of `sqlite_record_columns`), without copies: `r`, `value` (filled
/// here: the entity as JSON) and `dirty_json` (`sqlite_dirty_json(r.dirty)`)
/// must outlive the step. An entity that does not serialize to JSON is an
/// `errc::invalid_argument` error; nothing is bound then.
template <class E>
result<void> sqlite_bind_record(sqlite_statement& st, const record<E>& r, std::string& value,
                                std::string_view dirty_json) {
    try {
        value = entity_ops<E>::to_json(r.value).dump();
    } catch (const nlohmann::json::exception& ex) {
        return unexpected{make_error(errc::invalid_argument,
                                     "sqlite: record " + r.id.to_string() + " does not serialize to JSON: " + ex.what())};
    }
    auto opt_time = [](const std::optional<timestamp>& t) -> std::optional<std::int64_t> {
        if (!t) return std::nullopt;
        return sqlite_time(*t);
    };
    st.bind_blob_static(1, r.id.bytes());
    if (r.server_id) st.bind_static(2, *r.server_id); else st.bind_null(2);
    st.bind_static(3, to_string(r.status));
    st.bind(4, std::int64_t{r.deleted ? 1 : 0});
    st.bind(5, static_cast<std::int64_t>(r.version));  // modular: round-trips every uint64
    st.bind(6, static_cast<std::int64_t>(r.local_rev));
    st.bind_static(7, dirty_json);
    st.bind(8, std::int64_t{r.attempts});
    st.bind(9, opt_time(r.last_attempt_at));
    st.bind(10, opt_time(r.next_attempt_at));
    st.bind(11, std::int64_t{static_cast<std::uint8_t>(r.priority)});
    st.bind(12, sqlite_time(r.created_at));
    st.bind(13, sqlite_time(r.updated_at));
    if (r.last_error) {
        st.bind_static(14, to_string(r.last_error->code));
        st.bind_static(15, r.last_error->message);
        st.bind(16, r.last_error->http_status ? std::optional<std::int64_t>{*r.last_error->http_status}
                                              : std::nullopt);
        st.bind(17, r.last_error->retry_after ? std::optional<std::int64_t>{r.last_error->retry_after->count()}
                                              : std::nullopt);
    } else {
        st.bind_null(14).bind_null(15).bind_null(16).bind_null(17);
    }
    st.bind_static(18, value);
    return {};
}

/// The record in the current row of `st` (a SELECT of `sqlite_record_columns`).
/// A row that does not decode (bad id, status, JSON, or an entity that does not
/// fit) is an `errc::storage` error naming `table` and the record.
template <class E>
result<record<E>> sqlite_read_record(const sqlite_statement& st, std::string_view table) {
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
    return r;
}

}  // namespace tether::detail
