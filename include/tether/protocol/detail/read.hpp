#pragma once

// Field readers for the protocol's decoders: each checks a member's presence and
// type and names the offending field (never its content) when it is wrong.
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tether::protocol::detail {

/// The JSON type of the protocol.
using json = nlohmann::json;

/// The error of a malformed field: `where.key: what` (protocol, no HTTP status).
[[nodiscard]] inline error malformed(std::string_view where, std::string_view key, std::string_view what) {
    std::string m{where};
    if (!key.empty()) {
        if (!m.empty()) m += '.';
        m += key;
    }
    m += ": ";
    m += what;
    return error{errc::protocol, std::move(m), std::nullopt, std::nullopt};
}

/// `where[i]`, for messages.
[[nodiscard]] inline std::string indexed(std::string_view where, std::size_t i) {
    return std::string{where} + '[' + std::to_string(i) + ']';
}

/// `s` cut to at most `max_bytes` bytes, never inside a UTF-8 sequence (a cut
/// there would leave text that no longer encodes as JSON).
inline void truncate_utf8(std::string& s, std::size_t max_bytes) {
    if (s.size() <= max_bytes) return;
    std::size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0u) == 0x80u) --cut;
    s.resize(cut);
}

/// The member `key` of an object, or null when absent (a JSON null counts as absent).
[[nodiscard]] inline json* member(json& obj, std::string_view key) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
}

/// A non-negative integer as `std::uint64_t`, if `j` is one.
[[nodiscard]] inline std::optional<std::uint64_t> as_uint(const json& j) {
    if (j.is_number_unsigned()) return j.get<std::uint64_t>();
    if (j.is_number_integer() && j.get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(j.get<std::int64_t>());
    return std::nullopt;
}

/// Checks that `j` is an object.
[[nodiscard]] inline result<void> require_object(const json& j, std::string_view where) {
    if (!j.is_object()) return unexpected{malformed(where, {}, "expected a JSON object")};
    return {};
}

/// A required string member of at most `max_bytes` bytes (empty allowed unless `non_empty`).
[[nodiscard]] inline result<std::string> read_string(json& obj, std::string_view key, std::string_view where,
                                                     std::size_t max_bytes, bool non_empty = false) {
    json* m = member(obj, key);
    if (m == nullptr) return unexpected{malformed(where, key, "missing")};
    if (!m->is_string()) return unexpected{malformed(where, key, "expected a string")};
    auto& s = m->get_ref<std::string&>();
    if (non_empty && s.empty()) return unexpected{malformed(where, key, "must not be empty")};
    if (s.size() > max_bytes)
        return unexpected{malformed(where, key, "longer than " + std::to_string(max_bytes) + " bytes")};
    return std::move(s);
}

/// An optional string member (absent or null: `std::nullopt`).
[[nodiscard]] inline result<std::optional<std::string>> read_opt_string(json& obj, std::string_view key,
                                                                        std::string_view where, std::size_t max_bytes,
                                                                        bool non_empty = false) {
    if (member(obj, key) == nullptr) return std::optional<std::string>{};
    auto s = read_string(obj, key, where, max_bytes, non_empty);
    if (!s) return unexpected{std::move(s).error()};
    return std::optional<std::string>{std::move(*s)};
}

/// A required non-negative integer member.
[[nodiscard]] inline result<std::uint64_t> read_uint(json& obj, std::string_view key, std::string_view where) {
    json* m = member(obj, key);
    if (m == nullptr) return unexpected{malformed(where, key, "missing")};
    auto v = as_uint(*m);
    if (!v) return unexpected{malformed(where, key, "expected a non-negative integer")};
    return *v;
}

/// An optional non-negative integer member (absent or null: `fallback`).
[[nodiscard]] inline result<std::uint64_t> read_opt_uint(json& obj, std::string_view key, std::string_view where,
                                                         std::uint64_t fallback) {
    if (member(obj, key) == nullptr) return fallback;
    return read_uint(obj, key, where);
}

/// An optional signed 64-bit integer member.
[[nodiscard]] inline result<std::optional<std::int64_t>> read_opt_int64(json& obj, std::string_view key,
                                                                        std::string_view where) {
    json* m = member(obj, key);
    if (m == nullptr) return std::optional<std::int64_t>{};
    if (m->is_number_integer() && !m->is_number_unsigned()) return std::optional<std::int64_t>{m->get<std::int64_t>()};
    if (m->is_number_unsigned() && m->get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return std::optional<std::int64_t>{static_cast<std::int64_t>(m->get<std::uint64_t>())};
    return unexpected{malformed(where, key, "expected a 64-bit integer")};
}

/// A required boolean member.
[[nodiscard]] inline result<bool> read_bool(json& obj, std::string_view key, std::string_view where) {
    json* m = member(obj, key);
    if (m == nullptr) return unexpected{malformed(where, key, "missing")};
    if (!m->is_boolean()) return unexpected{malformed(where, key, "expected true or false")};
    return m->get<bool>();
}

/// An optional boolean member (absent or null: `fallback`).
[[nodiscard]] inline result<bool> read_opt_bool(json& obj, std::string_view key, std::string_view where, bool fallback) {
    if (member(obj, key) == nullptr) return fallback;
    return read_bool(obj, key, where);
}

/// An optional local id member: absent or null is `std::nullopt`; otherwise the
/// canonical UUID text. The nil UUID is refused when `allow_nil` is false.
[[nodiscard]] inline result<std::optional<local_id>> read_opt_local_id(json& obj, std::string_view key,
                                                                       std::string_view where, bool allow_nil) {
    json* m = member(obj, key);
    if (m == nullptr) return std::optional<local_id>{};
    if (!m->is_string()) return unexpected{malformed(where, key, "expected a UUID string")};
    auto id = local_id::parse(m->get_ref<const std::string&>());
    if (!id) return unexpected{malformed(where, key, "not a UUID in 8-4-4-4-12 form")};
    if (!allow_nil && id->is_nil()) return unexpected{malformed(where, key, "must not be the nil UUID")};
    return std::optional<local_id>{*id};
}

/// A required, non-nil local id member.
[[nodiscard]] inline result<local_id> read_local_id(json& obj, std::string_view key, std::string_view where) {
    if (member(obj, key) == nullptr) return unexpected{malformed(where, key, "missing")};
    auto id = read_opt_local_id(obj, key, where, false);
    if (!id) return unexpected{std::move(id).error()};
    return **id;
}

/// A required array member, taken out of `obj`.
[[nodiscard]] inline result<json> take_array(json& obj, std::string_view key, std::string_view where) {
    json* m = member(obj, key);
    if (m == nullptr) return unexpected{malformed(where, key, "missing")};
    if (!m->is_array()) return unexpected{malformed(where, key, "expected an array")};
    json out = std::move(*m);
    return out;
}

/// An optional member taken out of `obj` (absent: null).
[[nodiscard]] inline json take(json& obj, std::string_view key) {
    json* m = member(obj, key);
    if (m == nullptr) return json{};
    json out = std::move(*m);
    return out;
}

}  // namespace tether::protocol::detail
