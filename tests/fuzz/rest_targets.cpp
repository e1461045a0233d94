// Fuzz targets for rest_transport's decoders of what a REST API answers: a
// list page and a single record read through mappings of both styles
// (docs/rest.md: minimal, versioned, opaque ETags in a field or the header,
// times as ISO 8601, unix ms and unix s), and its own pull cursor as the
// engine stores it.
#include "fuzz.hpp"

#include <tether/protocol/parse.hpp>
#include <tether/transport/rest/codec.hpp>
#include <tether/transport/rest/cursor.hpp>

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace tether_fuzz {
namespace {

using tether::errc;
using tether::rest_mapping;
namespace rest = tether::rest;

/// The mappings every input goes through, one per way of reading a record.
const std::vector<rest_mapping>& mappings() {
    static const std::vector<rest_mapping> all = [] {
        std::vector<rest_mapping> v;
        rest_mapping minimal;  // style (a): server ids, a client-id field, no versions
        minimal.client_id_field = "clientId";
        minimal.renames = {{"audio_path", "audioUrl"}};
        v.push_back(minimal);
        rest_mapping versioned;  // style (b): version, ISO times, soft deletes, nested rename
        versioned.version_field = "version";
        versioned.updated_at_field = "updatedAt";
        versioned.deleted_field = "deletedAt";
        versioned.items_field = "data";
        versioned.next_field = "nextCursor";
        versioned.renames = {{"audio_path", "media.audioUrl"}};
        v.push_back(versioned);
        auto in_field = versioned;  // opaque ETags in a field, unix ms, client-chosen ids
        in_field.version_field.clear();
        in_field.opaque_etag = true;
        in_field.etag_field = "meta.etag";
        in_field.updated_at_format = tether::rest_time_format::unix_ms;
        in_field.create = tether::rest_create::post_client_id;
        v.push_back(in_field);
        auto in_header = in_field;  // opaque ETags in the header, unix s, a numeric version ETag otherwise
        in_header.etag_field.clear();
        in_header.updated_at_format = tether::rest_time_format::unix_s;
        v.push_back(in_header);
        auto numeric = versioned;
        numeric.version_field.clear();
        numeric.version_from_etag = true;
        v.push_back(numeric);
        return v;
    }();
    return all;
}

/// What every decoded record of `m` holds: a usable id, a tag that may go
/// back in a header, a version by the mapping's rule; the same record again
/// when its JSON is decoded a second time.
void check_record(const char* name, const nlohmann::json& j, const rest::api_record& r, const rest_mapping& m,
                  std::string_view header, bool listed) {
    TETHER_FUZZ_CHECK(name, !r.record.server_id.empty());
    TETHER_FUZZ_CHECK(name, r.record.server_id.size() <= tether::protocol::max_server_id_bytes);
    if (m.opaque_etag) {
        TETHER_FUZZ_CHECK(name, r.etag.empty() ? listed && m.etag_field.empty() : rest::valid_etag(r.etag));
        if (!m.etag_field.empty()) TETHER_FUZZ_CHECK(name, rest::get_path(r.record.value, m.etag_field) == nullptr);
    } else {
        TETHER_FUZZ_CHECK(name, r.etag.empty());
    }
    if (!m.version_field.empty()) {
        TETHER_FUZZ_CHECK(name, *rest::get_path(j, m.version_field) == r.record.version);
    } else if (!(m.version_from_etag && !header.empty())) {
        const bool by_time = r.changed && r.changed->ns >= 0;
        TETHER_FUZZ_CHECK(name, r.record.version ==
                                    (by_time ? static_cast<std::uint64_t>(r.changed->ns / 1'000'000) : 1u));
    }
    if (r.changed) {
        TETHER_FUZZ_CHECK(name, !r.changed->text.empty());
        TETHER_FUZZ_CHECK(name, r.record.updated_at == r.changed->at());
    }
    auto again = rest::decode_item(j, m, header, listed);
    TETHER_FUZZ_CHECK(name, again.has_value());
    TETHER_FUZZ_CHECK(name, again->record.value == r.record.value && again->etag == r.etag);
}

/// A list answer's body: decoded through every mapping; an error is
/// `errc::protocol` (a list of the wrong shape); else every item is either a
/// record (the item decoded on its own) or refused (the item does not decode
/// on its own, and says why), each once, in order.
void rest_page_target(std::string_view input) {
    auto doc = tether::protocol::parse_json(input, tether::protocol::answer_parse_limits);
    if (!doc) return;
    for (const auto& m : mappings()) {
        auto listed = rest::decode_list(*doc, m);
        if (!listed) {
            TETHER_FUZZ_CHECK("rest_page", listed.error().code == errc::protocol && !listed.error().message.empty());
            continue;
        }
        const auto* items = m.items_field.empty() ? &*doc : rest::get_path(*doc, m.items_field);
        TETHER_FUZZ_CHECK("rest_page", items != nullptr &&
                                           items->size() == listed->records.size() + listed->refused.size());
        std::vector<bool> placed(items->size(), false);
        for (const auto& r : listed->records) {
            TETHER_FUZZ_CHECK("rest_page", r.at < items->size() && !placed[r.at]);
            placed[r.at] = true;
            check_record("rest_page", (*items)[r.at], r, m, {}, true);
        }
        for (const auto& x : listed->refused) {
            TETHER_FUZZ_CHECK("rest_page", x.index < items->size() && !placed[x.index]);
            placed[x.index] = true;
            TETHER_FUZZ_CHECK("rest_page", !x.why.empty() && !x.tombstone);
            TETHER_FUZZ_CHECK("rest_page", !rest::decode_item((*items)[x.index], m, {}, true));
            TETHER_FUZZ_CHECK("rest_page", x.server_id.size() <= tether::protocol::max_server_id_bytes);
        }
        if (m.next_field.empty()) TETHER_FUZZ_CHECK("rest_page", listed->next.empty());
    }
}

/// One record's answer: the first line is its ETag header (no line break:
/// none), the rest the body; decoded through every mapping.
void rest_record_target(std::string_view input) {
    const auto nl = input.find('\n');
    const std::string_view header = nl == std::string_view::npos ? std::string_view{} : input.substr(0, nl);
    const std::string_view body = nl == std::string_view::npos ? input : input.substr(nl + 1);
    auto doc = tether::protocol::parse_json(body, tether::protocol::answer_parse_limits);
    if (!doc) return;
    for (const auto& m : mappings()) {
        auto r = rest::decode_item(*doc, m, header);
        if (!r) {
            TETHER_FUZZ_CHECK("rest_record", r.error().code == errc::protocol && !r.error().message.empty());
            continue;
        }
        check_record("rest_record", *doc, *r, m, header, false);
    }
}

/// The pull cursor: anything not made by `encode` is `errc::cursor_expired`;
/// what decodes encodes to a text that decodes and encodes to itself, with
/// the same watermark.
void rest_cursor_target(std::string_view input) {
    auto c = rest::list_cursor::decode(input);
    if (!c) {
        TETHER_FUZZ_CHECK("rest_cursor", c.error().code == errc::cursor_expired);
        return;
    }
    TETHER_FUZZ_CHECK("rest_cursor", c->grow >= 1);
    const auto text = c->encode();
    auto back = rest::list_cursor::decode(text);
    TETHER_FUZZ_CHECK("rest_cursor", back.has_value());
    TETHER_FUZZ_CHECK("rest_cursor", back->encode() == text);
    TETHER_FUZZ_CHECK("rest_cursor", back->offset == c->offset && back->grow == c->grow);
    if (!c->since.empty()) {
        TETHER_FUZZ_CHECK("rest_cursor", back->since == c->since && back->since_ns == c->since_ns);
        TETHER_FUZZ_CHECK("rest_cursor", back->at_since == c->at_since);
    }
}

const std::array<target, 3> all{{
    {"rest_page", rest_page_target},
    {"rest_record", rest_record_target},
    {"rest_cursor", rest_cursor_target},
}};

}  // namespace

std::span<const target> rest_targets() { return all; }

}  // namespace tether_fuzz
