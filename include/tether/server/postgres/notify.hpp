#pragma once

/// @file
/// @brief The notification a PostgreSQL write transaction sends on commit
/// (`NOTIFY tether_changes`) so that every tether-server process over the
/// database hears the changes: its payload, made and decoded strictly
/// (target `tether::postgres`).
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/live.hpp>
#include <tether/server/cursor.hpp>
#include <tether/transport/live.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::server {

/// @brief The channel the write transactions of a `postgres_store` in
/// schema `schema` notify on: `tether_changes:` and the schema's name, or a
/// hash of it when that would be over PostgreSQL's 63 bytes of a name
/// (channels are per database: each schema has its own).
[[nodiscard]] inline std::string pg_change_channel_of(std::string_view schema) {
    std::string channel = "tether_changes:" + std::string{schema};
    if (channel.size() <= 63) return channel;
    std::uint64_t h = 14695981039346656037ull;  // FNV-1a
    for (const char ch : schema) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
    static constexpr char digits[] = "0123456789abcdef";
    channel = "tether_changes:#";
    for (int i = 60; i >= 0; i -= 4) channel += digits[(h >> i) & 0xf];
    return channel;
}

/// @brief `LISTEN` on `channel`, quoted as an SQL identifier.
[[nodiscard]] inline std::string pg_listen_sql(std::string_view channel) {
    std::string sql = "LISTEN \"";
    for (const char ch : channel) {
        if (ch == '"') sql += '"';
        sql += ch;
    }
    return sql + "\"";
}

/// @brief The largest payload a notification carries: PostgreSQL refuses
/// 8000 bytes or more; the events of a batch that do not fit are left out
/// (the payload is then a hint, resolved by reading the store).
inline constexpr std::size_t pg_max_payload_bytes = 7999;

/// @brief What one committed write transaction tells of one scope: the user
/// and collection, the collection's epoch, the change numbers it took
/// (`from`..`to`) and, when they fit the payload, the events themselves.
struct pg_change_note {
    std::string user;                 ///< the scope's user (bytes as they are)
    std::string collection;           ///< the scope's collection
    std::uint64_t epoch = 0;          ///< the collection's epoch
    std::uint64_t from = 0;           ///< the first change number the transaction took
    std::uint64_t to = 0;             ///< ...and the last (`from <= to`)
    std::vector<live_event> events;   ///< every change from..to, in order; empty: a hint only
};

/// @brief The payload of a change whose scope is too long to name: version 1
/// and nothing else (`decode_pg_change_note` refuses it, as a gap).
inline constexpr std::string_view pg_unnamed_change_payload = R"({"v":1})";

namespace detail {

/// `bytes` as lowercase hex (users and collections are bytes: a payload is ASCII).
inline std::string pg_hex_(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char ch : bytes) {
        const auto b = static_cast<unsigned char>(ch);
        out += digits[b >> 4];
        out += digits[b & 0xf];
    }
    return out;
}

/// The bytes of lowercase hex `hex`; empty for anything else.
inline std::optional<std::string> pg_unhex_(std::string_view hex) {
    if (hex.size() % 2 != 0) return std::nullopt;
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    std::string out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>((hi << 4) | lo);
    }
    return out;
}

}  // namespace detail

/// @brief The payload of `note`: ASCII JSON (`v`, `u` and `c` in hex, `e`,
/// `f`, `t`, and `ev`, the events' wire form, when every event is there and
/// the whole fits `pg_max_payload_bytes`); else the same without `ev` (a
/// hint). When even the hint does not fit (a user name of thousands of
/// bytes), `pg_unnamed_change_payload`: the listeners decode no scope from it
/// and catch up every collection they follow.
[[nodiscard]] inline std::string encode_pg_change_note(const pg_change_note& note) {
    nlohmann::json j = nlohmann::json::object();
    j["v"] = 1;
    j["u"] = detail::pg_hex_(note.user);
    j["c"] = detail::pg_hex_(note.collection);
    j["e"] = note.epoch;
    j["f"] = note.from;
    j["t"] = note.to;
    std::string hint = j.dump(-1, ' ', true);
    if (hint.size() > pg_max_payload_bytes) return std::string{pg_unnamed_change_payload};
    if (note.events.empty() || note.events.size() != note.to - note.from + 1) return hint;
    nlohmann::json events = nlohmann::json::array();
    for (const auto& e : note.events) events.push_back(protocol::to_json(e));
    j["ev"] = std::move(events);
    std::string full = j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    return full.size() <= pg_max_payload_bytes ? full : hint;
}

/// @brief Decodes a payload `encode_pg_change_note` made, strictly: over
/// `pg_max_payload_bytes`, not JSON, a missing or ill-typed member, another
/// version, bad hex, `from` above `to` or 0, events whose count is not
/// `to - from + 1`, or an event that does not decode, is of another
/// collection, or whose version and cursors are not the next change in the
/// epoch: `errc::protocol` (the listener treats it as a gap).
[[nodiscard]] inline result<pg_change_note> decode_pg_change_note(std::string_view payload) {
    auto bad = [](std::string why) {
        return unexpected{make_error(errc::protocol, "postgres notification: " + std::move(why))};
    };
    if (payload.size() > pg_max_payload_bytes) return bad("over " + std::to_string(pg_max_payload_bytes) + " bytes");
    try {
        const auto j = nlohmann::json::parse(payload, nullptr, false);
        if (!j.is_object()) return bad("not a JSON object");
        auto uint_of = [&](const char* k) -> std::optional<std::uint64_t> {
            auto it = j.find(k);
            if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
            return it->get<std::uint64_t>();
        };
        auto hex_of = [&](const char* k) -> std::optional<std::string> {
            auto it = j.find(k);
            if (it == j.end() || !it->is_string()) return std::nullopt;
            return detail::pg_unhex_(it->get_ref<const std::string&>());
        };
        const auto v = uint_of("v");
        if (!v || *v != 1) return bad("not version 1");
        pg_change_note n;
        auto user = hex_of("u"), collection = hex_of("c");
        const auto epoch = uint_of("e"), from = uint_of("f"), to = uint_of("t");
        if (payload == pg_unnamed_change_payload) return bad("a change of a scope too long to name");
        if (!user || !collection || !epoch || !from || !to) return bad("a member is missing or ill-typed");
        if (*from == 0 || *from > *to) return bad("not a change range");
        n.user = std::move(*user);
        n.collection = std::move(*collection);
        n.epoch = *epoch;
        n.from = *from;
        n.to = *to;
        auto ev = j.find("ev");
        if (ev == j.end()) return n;
        if (!ev->is_array() || ev->size() != n.to - n.from + 1) return bad("events do not cover the range");
        std::uint64_t next = n.from;
        for (const auto& item : *ev) {
            auto e = protocol::decode_live_event(item.dump());
            if (!e) return bad(e.error().message);
            const auto at = parse_cursor(e->cursor);
            if (e->collection != n.collection || e->version != next || !at || *at != cursor{next, n.epoch})
                return bad("an event is not the range's next change");
            const auto before = parse_cursor(e->previous_cursor);
            const bool first = next == 1 && n.epoch == 0;  // the collection's first change has none
            if (e->previous_cursor.empty() ? !first : (!before || *before != cursor{next - 1, n.epoch}))
                return bad("an event's previous cursor is not the change before it");
            n.events.push_back(std::move(*e));
            ++next;
        }
        return n;
    } catch (const std::exception&) {
        return bad("malformed");
    }
}

}  // namespace tether::server
