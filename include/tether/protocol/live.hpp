#pragma once

/// @file
/// @brief The wire form of a `live_event` (docs/protocol.md, "Live events"):
/// one line of JSON, the `data:` of a Server-Sent Event of
/// `GET /v1/{collection}/events`, with its encoder and a strict decoder.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/detail/read.hpp>
#include <tether/protocol/limits.hpp>
#include <tether/protocol/parse.hpp>
#include <tether/protocol/paths.hpp>
#include <tether/protocol/records.hpp>
#include <tether/transport/live.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tether::protocol {

/// @brief The `live_kind` of its canonical name (`to_string(live_kind)`), if it is one.
[[nodiscard]] constexpr std::optional<live_kind> live_kind_from_string(std::string_view s) noexcept {
    for (auto k : {live_kind::created, live_kind::updated, live_kind::deleted, live_kind::appended})
        if (to_string(k) == s) return k;
    return std::nullopt;
}

/// @brief The longest cursor a live event may carry (as a pull's).
inline constexpr std::size_t max_live_cursor_bytes = max_cursor_bytes;

/// @brief The target of `GET /v1/{collection}/events` from `cursor` (the
/// `cursor` parameter, left out when empty) for `device` (the `device`
/// parameter, left out when empty: the device whose own changes the stream
/// leaves out), both percent-encoded.
[[nodiscard]] inline std::string events_path(std::string_view collection, std::string_view cursor,
                                             std::string_view device) {
    std::string p = "/v1/" + std::string{collection} + "/events";
    char sep = '?';
    if (!cursor.empty()) {
        p += sep + std::string{"cursor="} + percent_encode(cursor);
        sep = '&';
    }
    if (!device.empty()) p += sep + std::string{"device="} + percent_encode(device);
    return p;
}

/// @brief A live event as JSON: `kind`, `collection`, `record` (a record
/// object), `version`, `replaces`, `cursor`, `previous_cursor` (absent when
/// empty) and `append` (`member`, `chunk`, `length_before`, `length_after`;
/// only when present).
[[nodiscard]] inline nlohmann::json to_json(const live_event& e) {
    nlohmann::json j = nlohmann::json::object();
    j["kind"] = std::string{to_string(e.kind)};
    j["collection"] = e.collection;
    j["record"] = to_json(e.record);
    j["version"] = e.version;
    j["replaces"] = e.replaces;
    j["cursor"] = e.cursor;
    if (!e.previous_cursor.empty()) j["previous_cursor"] = e.previous_cursor;
    if (e.append) {
        j["append"] = nlohmann::json{{"member", e.append->member},
                                     {"chunk", e.append->chunk},
                                     {"length_before", e.append->length_before},
                                     {"length_after", e.append->length_after}};
    }
    return j;
}

/// @brief The wire form of `e`: compact JSON on one line (JSON escapes every
/// line break inside a string). A string that is not UTF-8 is
/// `errc::invalid_argument`.
[[nodiscard]] inline result<std::string> encode_live_event(const live_event& e) {
    try {
        return dump_json(to_json(e));
    } catch (const std::exception&) {
        return unexpected{make_error(errc::invalid_argument, "live event: cannot encode")};
    }
}

namespace detail {

inline result<live_append> append_from_json(json& j) {
    constexpr std::string_view where = "live event.append";
    if (auto ok = require_object(j, where); !ok) return unexpected{std::move(ok).error()};
    auto member = read_string(j, "member", where, 256, true);
    if (!member) return unexpected{std::move(member).error()};
    auto chunk = read_string(j, "chunk", where, static_cast<std::size_t>(-1), false);
    if (!chunk) return unexpected{std::move(chunk).error()};
    auto before = read_uint(j, "length_before", where);
    if (!before) return unexpected{std::move(before).error()};
    auto after = read_uint(j, "length_after", where);
    if (!after) return unexpected{std::move(after).error()};
    if (*after < *before || *after - *before != chunk->size())
        return unexpected{malformed(where, "length_after", "is not length_before plus the chunk's bytes")};
    return live_append{std::move(*member), std::move(*chunk), *before, *after};
}

// The rules between the members of a decoded event.
inline result<void> check_live_event(const live_event& e) {
    constexpr std::string_view where = "live event";
    if (e.version != e.record.version) return unexpected{malformed(where, "version", "is not record.version")};
    if (e.version == 0) return unexpected{malformed(where, "version", "must be at least 1")};
    if (e.kind == live_kind::created && e.replaces != 0)
        return unexpected{malformed(where, "replaces", "a created record replaces no version")};
    if (e.kind != live_kind::created && e.replaces == 0)
        return unexpected{malformed(where, "replaces", "only a created record replaces no version")};
    if (e.replaces >= e.version) return unexpected{malformed(where, "replaces", "is not below version")};
    if (e.record.server_id.empty()) return unexpected{malformed(where, "record.server_id", "is empty")};
    if ((e.kind == live_kind::appended) != e.append.has_value())
        return unexpected{malformed(where, "append", "present exactly for kind appended")};
    return {};
}

}  // namespace detail

/// @brief Decodes the wire form of one live event, strictly.
///
/// Refused with `errc::protocol` (never a crash, never a partial event): text
/// over `bounds`, malformed JSON, a missing or ill-typed member, an unknown
/// `kind`, a collection name that is not valid, an empty or over-long
/// `cursor`, an over-long `previous_cursor`, `version` other than
/// `record.version` or 0, `replaces` not below `version` (or not 0 exactly
/// for `created`), an `append` on another kind (or none on `appended`) or one
/// whose lengths disagree with its chunk. Unknown members are ignored.
[[nodiscard]] inline result<live_event> decode_live_event(std::string_view text, const parse_limits& bounds = {}) {
    constexpr std::string_view where = "live event";
    try {
        auto parsed = parse_json(text, bounds);
        if (!parsed) return unexpected{std::move(parsed).error()};
        auto& j = *parsed;
        if (auto ok = detail::require_object(j, where); !ok) return unexpected{std::move(ok).error()};
        auto kind_text = detail::read_string(j, "kind", where, 32, true);
        if (!kind_text) return unexpected{std::move(kind_text).error()};
        auto kind = live_kind_from_string(*kind_text);
        if (!kind) return unexpected{detail::malformed(where, "kind", "unknown kind")};
        auto collection = detail::read_string(j, "collection", where, 64, true);
        if (!collection) return unexpected{std::move(collection).error()};
        if (!valid_collection(*collection))
            return unexpected{detail::malformed(where, "collection", "not a valid name")};
        auto* rec_json = detail::member(j, "record");
        if (rec_json == nullptr) return unexpected{detail::malformed(where, "record", "missing")};
        auto rec = record_from_json(*rec_json, "live event.record");
        if (!rec) return unexpected{std::move(rec).error()};
        auto version = detail::read_uint(j, "version", where);
        if (!version) return unexpected{std::move(version).error()};
        auto replaces = detail::read_uint(j, "replaces", where);
        if (!replaces) return unexpected{std::move(replaces).error()};
        auto cursor = detail::read_string(j, "cursor", where, max_live_cursor_bytes, true);
        if (!cursor) return unexpected{std::move(cursor).error()};
        auto previous = detail::read_opt_string(j, "previous_cursor", where, max_live_cursor_bytes);
        if (!previous) return unexpected{std::move(previous).error()};
        live_event e;
        e.kind = *kind;
        e.collection = std::move(*collection);
        e.record = std::move(*rec);
        e.version = *version;
        e.replaces = *replaces;
        e.cursor = std::move(*cursor);
        e.previous_cursor = std::move(*previous).value_or(std::string{});
        if (auto* a = detail::member(j, "append")) {
            auto append = detail::append_from_json(*a);
            if (!append) return unexpected{std::move(append).error()};
            e.append = std::move(*append);
        }
        if (auto ok = detail::check_live_event(e); !ok) return unexpected{std::move(ok).error()};
        return e;
    } catch (const std::exception&) {
        return unexpected{make_error(errc::protocol, "live event: malformed")};
    }
}

}  // namespace tether::protocol
