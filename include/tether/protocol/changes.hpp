#pragma once

// tether::protocol: what a pull reads: a page of changes
// (`GET /v1/{collection}/changes`) and one record
// (`GET /v1/{collection}/records/{server_id}`).
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/detail/read.hpp>
#include <tether/protocol/limits.hpp>
#include <tether/protocol/parse.hpp>
#include <tether/protocol/records.hpp>
#include <tether/transport/transport.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::protocol {

/// @brief A page as JSON: `records`, `tombstones`, `next_cursor`, `has_more`.
[[nodiscard]] inline nlohmann::json to_json(const pull_page& p) {
    nlohmann::json j = nlohmann::json::object();
    auto& records = j["records"] = nlohmann::json::array();
    for (const auto& r : p.records) records.push_back(to_json(r));
    auto& tombstones = j["tombstones"] = nlohmann::json::array();
    for (const auto& t : p.tombstones) tombstones.push_back(to_json(t));
    j["next_cursor"] = p.next_cursor;
    j["has_more"] = p.has_more;
    return j;
}

namespace detail {
/// The server id of a page item, when it has one that reads (a string of at
/// most `max_server_id_bytes`); else empty.
[[nodiscard]] inline std::string item_server_id(const nlohmann::json& item) {
    if (!item.is_object()) return {};
    const auto it = item.find("server_id");
    if (it == item.end() || !it->is_string()) return {};
    const auto& sid = it->get_ref<const std::string&>();
    return sid.size() <= max_server_id_bytes ? sid : std::string{};
}

/// `item`, read by `read` into `into`, or into `page.refused` as item `i`.
template <class Read, class T>
void read_item(nlohmann::json& item, std::size_t i, bool is_tombstone, pull_page& page, std::vector<T>& into,
               Read read) {
    std::string sid = item_server_id(item);  // before `read`, which takes members out of `item`
    auto got = read(item);
    if (got) {
        into.push_back(std::move(*got));
        return;
    }
    page.refused.push_back(refused_item{std::move(sid), i, is_tombstone, std::move(got).error().message});
}
}  // namespace detail

/// @brief Reads a page object. `records` is required, `tombstones` absent is
/// empty, `next_cursor` is a string of at most `max_cursor_bytes`, `has_more`
/// a boolean: a page of another shape fails as a whole. A record or tombstone
/// that does not fit its shape goes to `refused` (with its server id when that
/// is a string of at most `max_server_id_bytes`, its index in its array and
/// why), so that one bad item never stops a pull; one with an empty server id,
/// or a nil local id, passes: the engine skips and counts such an item.
[[nodiscard]] inline result<pull_page> page_from_json(nlohmann::json& j, std::string_view where = "page") {
    if (auto ok = detail::require_object(j, where); !ok) return unexpected{std::move(ok).error()};
    auto records = detail::take_array(j, "records", where);
    if (!records) return unexpected{std::move(records).error()};
    nlohmann::json tombstones = detail::take(j, "tombstones");
    if (!tombstones.is_null() && !tombstones.is_array())
        return unexpected{detail::malformed(where, "tombstones", "expected an array")};
    auto cursor = detail::read_string(j, "next_cursor", where, max_cursor_bytes);
    if (!cursor) return unexpected{std::move(cursor).error()};
    auto more = detail::read_bool(j, "has_more", where);
    if (!more) return unexpected{std::move(more).error()};
    pull_page page;
    page.records.reserve(records->size());
    for (std::size_t i = 0; i < records->size(); ++i) {
        detail::read_item((*records)[i], i, false, page, page.records, [&](nlohmann::json& item) {
            return record_from_json(item, detail::indexed("records", i), true);
        });
    }
    if (tombstones.is_array()) {
        page.tombstones.reserve(tombstones.size());
        for (std::size_t i = 0; i < tombstones.size(); ++i) {
            detail::read_item(tombstones[i], i, true, page, page.tombstones, [&](nlohmann::json& item) {
                return tombstone_from_json(item, detail::indexed("tombstones", i));
            });
        }
    }
    page.next_cursor = std::move(*cursor);
    page.has_more = *more;
    return page;
}

/// @brief The body of a changes answer.
[[nodiscard]] inline result<std::string> encode_page(const pull_page& p) { return dump_json(to_json(p)); }

/// @brief Decodes a changes answer (see `page_from_json`); malformed JSON or
/// text over `bounds` is `errc::protocol`. Never throws.
[[nodiscard]] inline result<pull_page> decode_page(std::string_view body,
                                                   const parse_limits& bounds = answer_parse_limits) {
    try {
        auto doc = parse_json(body, bounds);
        if (!doc) return unexpected{std::move(doc).error()};
        return page_from_json(*doc);
    } catch (const std::exception&) {
        return unexpected{make_error(errc::protocol, "page: cannot decode")};
    }
}

/// @brief The body of a record answer (a fetch).
[[nodiscard]] inline result<std::string> encode_record(const server_record& r) { return dump_json(to_json(r)); }

/// @brief Decodes a record answer: the server id must be non-empty (see
/// `record_from_json`); malformed JSON or text over `bounds` is
/// `errc::protocol`. Never throws.
[[nodiscard]] inline result<server_record> decode_record(std::string_view body,
                                                         const parse_limits& bounds = answer_parse_limits) {
    try {
        auto doc = parse_json(body, bounds);
        if (!doc) return unexpected{std::move(doc).error()};
        return record_from_json(*doc, "record");
    } catch (const std::exception&) {
        return unexpected{make_error(errc::protocol, "record: cannot decode")};
    }
}

}  // namespace tether::protocol
