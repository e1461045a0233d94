#pragma once

// tether::rest: a REST API's record read into a `server_record`, and an op's
// value written as the API's JSON, by a `rest_mapping`. Not a public entry point.
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/limits.hpp>
#include <tether/transport/rest/fields.hpp>
#include <tether/transport/rest/mapping.hpp>
#include <tether/transport/transport.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::rest {

/// @brief One record of the API as tether sees it.
struct api_record {
    server_record record;               ///< the record (value: the entity's JSON, renames undone)
    bool deleted = false;               ///< the soft-delete field says it is deleted
    std::optional<server_time> changed; ///< its `updated_at`, at the server's precision
    std::string etag;                   ///< its opaque ETag (`rest_mapping::opaque_etag`), as the server wrote it
    std::size_t at = 0;                 ///< its place, from 0, in a list answer (0 for a single record)
};

/// @brief The records of a list answer and where the next page is.
struct api_list {
    std::vector<api_record> records;    ///< the records that decode, in the answer's order
    std::string next;                   ///< the next link or cursor (`next_field`); empty on the last page
    std::vector<refused_item> refused;  ///< the records that do not decode (index: the place in the answer)
};

/// @brief The longest opaque ETag kept (bytes).
inline constexpr std::size_t max_etag_bytes = 256;

/// @brief A server id from an id field: a non-empty string of at most 256
/// bytes, or an integer; nullopt for anything else.
[[nodiscard]] inline std::optional<std::string> read_id(const nlohmann::json* j) {
    if (j == nullptr) return std::nullopt;
    if (j->is_string()) {
        const auto& s = j->get_ref<const std::string&>();
        if (s.empty() || s.size() > protocol::max_server_id_bytes) return std::nullopt;
        return s;
    }
    if (j->is_number_unsigned()) return std::to_string(j->get<std::uint64_t>());
    if (j->is_number_integer()) return std::to_string(j->get<std::int64_t>());
    return std::nullopt;
}

/// @brief The version in an ETag (`"7"`, `W/"7"`, `7`), or nullopt if it is not a number.
[[nodiscard]] inline std::optional<std::uint64_t> etag_version(std::string_view etag) {
    if (etag.substr(0, 2) == "W/") etag.remove_prefix(2);
    if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
    if (etag.empty() || etag.size() > 19) return std::nullopt;
    std::uint64_t v = 0;
    for (const char c : etag) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v;
}

/// @brief True for an opaque ETag that may go back in a header: 1 to
/// `max_etag_bytes` bytes, no control character, no space at either end.
[[nodiscard]] inline bool valid_etag(std::string_view tag) {
    if (tag.empty() || tag.size() > max_etag_bytes || tag.front() == ' ' || tag.back() == ' ') return false;
    for (const char ch : tag) {
        const auto u = static_cast<unsigned char>(ch);
        if (u < 0x20 || u == 0x7f) return false;
    }
    return true;
}

/// @brief A truthy soft-delete value: present, not null, not `false`.
[[nodiscard]] inline bool truthy(const nlohmann::json* j) {
    return j != nullptr && !j->is_null() && !(j->is_boolean() && !j->get<bool>());
}

namespace detail {

/// The opaque ETag of a record by `m` (its field, else the header of a single
/// record); empty for a listed record whose tag is in no field; nullopt if it
/// is missing or unusable.
[[nodiscard]] inline std::optional<std::string> opaque_tag(const nlohmann::json& j, const rest_mapping& m,
                                                           std::string_view header, bool listed) {
    if (m.etag_field.empty()) {
        if (listed) return std::string{};
        if (!valid_etag(header)) return std::nullopt;
        return std::string{header};
    }
    const auto* t = get_path(j, m.etag_field);
    if (t == nullptr || !t->is_string() || !valid_etag(t->get_ref<const std::string&>())) return std::nullopt;
    return t->get<std::string>();
}

}  // namespace detail

/// @brief Reads the API's JSON `j` of one record by `m` (`etag`: the answer's
/// ETag header, for a single record; `listed`: one record of a list answer,
/// which has no header of its own). The version is the version field, else a
/// numeric ETag, else `updated_at` in milliseconds, else 1 (an API with no
/// versions: the engine compares content). A missing or malformed id, version,
/// time or (`opaque_etag`) ETag is `errc::protocol` naming it.
[[nodiscard]] inline result<api_record> decode_item(const nlohmann::json& j, const rest_mapping& m,
                                                    std::string_view etag = {}, bool listed = false) {
    auto bad = [](std::string why) { return result<api_record>{unexpect, make_error(errc::protocol, std::move(why))}; };
    if (!j.is_object()) return bad("a record is not a JSON object");
    api_record out;
    auto id = read_id(get_path(j, m.id_field));
    if (!id) return bad("the record has no usable id in '" + m.id_field + "'");
    out.record.server_id = std::move(*id);
    if (!m.updated_at_field.empty()) {
        if (const auto* t = get_path(j, m.updated_at_field); t != nullptr && !t->is_null()) {
            out.changed = parse_time(*t, m.updated_at_format);
            if (!out.changed) return bad("the record's '" + m.updated_at_field + "' is not a time in the mapped format");
            out.record.updated_at = out.changed->at();
        }
    }
    if (!m.version_field.empty()) {
        const auto* v = get_path(j, m.version_field);
        if (v == nullptr || !v->is_number_unsigned())
            return bad("the record's '" + m.version_field + "' is not an unsigned integer");
        out.record.version = v->get<std::uint64_t>();
    } else if (m.version_from_etag && !m.opaque_etag && !etag.empty()) {
        auto v = etag_version(etag);
        if (!v) return bad("the ETag is not a numeric version");
        out.record.version = *v;
    } else if (out.changed && out.changed->ns >= 0) {
        out.record.version = static_cast<std::uint64_t>(out.changed->ns / 1'000'000);
    } else {
        out.record.version = 1;
    }
    if (m.create != rest_create::post_server_id) {
        if (auto lid = local_id::parse(out.record.server_id); lid && !lid->is_nil()) out.record.id = *lid;
    } else if (!m.client_id_field.empty()) {
        if (const auto* c = get_path(j, m.client_id_field); c != nullptr && c->is_string()) {
            if (auto lid = local_id::parse(c->get_ref<const std::string&>()); lid && !lid->is_nil()) out.record.id = *lid;
        }
    }
    if (m.opaque_etag) {
        auto tag = detail::opaque_tag(j, m, etag, listed);
        if (!tag) {
            return bad(m.etag_field.empty() ? std::string{"the answer has no usable ETag"}
                                            : "the record has no usable ETag in '" + m.etag_field + "'");
        }
        out.etag = std::move(*tag);
    }
    out.deleted = !m.deleted_field.empty() && truthy(get_path(j, m.deleted_field));
    nlohmann::json value = j;
    if (m.opaque_etag && !m.etag_field.empty()) erase_path(value, m.etag_field);
    for (const auto& r : m.renames) erase_path(value, r.api);
    for (const auto& r : m.renames) {
        if (const auto* v = get_path(j, r.api)) value[r.entity] = *v;
    }
    out.record.value = std::move(value);
    return out;
}

/// @brief The records of a list answer `doc` by `m` (at `items_field`) and the
/// next link or cursor (at `next_field`). A record that does not decode goes
/// to `refused` (its id when `id_field` reads, its place, why), so one bad
/// record never fails the page; a list of another shape (no array, a next
/// page that is not a string) is `errc::protocol` naming what is wrong.
[[nodiscard]] inline result<api_list> decode_list(const nlohmann::json& doc, const rest_mapping& m) {
    auto bad = [](std::string why) { return result<api_list>{unexpect, make_error(errc::protocol, std::move(why))}; };
    const nlohmann::json* items = m.items_field.empty() ? &doc : get_path(doc, m.items_field);
    if (items == nullptr || !items->is_array()) return bad("no array of records");
    api_list out;
    out.records.reserve(items->size());
    for (std::size_t i = 0; i < items->size(); ++i) {
        const auto& j = (*items)[i];
        auto rec = decode_item(j, m, {}, true);
        if (rec) {
            rec->at = i;
            out.records.push_back(std::move(*rec));
            continue;
        }
        out.refused.push_back(refused_item{read_id(get_path(j, m.id_field)).value_or(std::string{}), i, false,
                                           std::move(rec).error().message});
    }
    if (!m.next_field.empty() && doc.is_object()) {
        if (const auto* n = get_path(doc, m.next_field); n != nullptr && !n->is_null()) {
            if (!n->is_string()) return bad("the next page is not a string");
            out.next = n->get<std::string>();
        }
    }
    return out;
}

/// @brief The API's JSON for an entity's JSON `value` (whole or some fields):
/// renamed members at their API paths, the others as they are.
[[nodiscard]] inline nlohmann::json encode_value(const nlohmann::json& value, const rest_mapping& m) {
    nlohmann::json out = nlohmann::json::object();
    if (!value.is_object()) return out;
    for (auto it = value.begin(); it != value.end(); ++it) {
        const rest_rename* r = nullptr;
        for (const auto& x : m.renames)
            if (x.entity == it.key()) r = &x;
        if (r != nullptr) set_path(out, r->api, *it);
        else out[it.key()] = *it;
    }
    return out;
}

/// @brief The body of a create of `op` by `m`: the value, the local id in the
/// id field (client-chosen ids) and in the client-id field (when mapped).
[[nodiscard]] inline nlohmann::json create_body(const push_op& op, const rest_mapping& m) {
    auto body = encode_value(op.value, m);
    const auto lid = op.id.to_string();
    if (m.create != rest_create::post_server_id) set_path(body, m.id_field, lid);
    if (!m.client_id_field.empty()) set_path(body, m.client_id_field, lid);
    return body;
}

/// @brief True if every field of the entity's JSON `sent` has the same value
/// in `held` (the server's copy): a create found on the server is the one sent.
[[nodiscard]] inline bool holds_all(const nlohmann::json& held, const nlohmann::json& sent) {
    if (!sent.is_object() || !held.is_object()) return false;
    for (auto it = sent.begin(); it != sent.end(); ++it) {
        auto h = held.find(it.key());
        if (h == held.end() || *h != *it) return false;
    }
    return true;
}

}  // namespace tether::rest
