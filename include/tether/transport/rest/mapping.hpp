#pragma once

// tether::rest_mapping: how one collection of a plain REST API (one that knows
// nothing of tether) is read and written: its URLs, ids, versions, timestamps,
// field names, listing and statuses. A plain aggregate an integrator fills in
// (docs/rest.md has worked examples). Part of the tether::http target.
#include <tether/transport/http/options.hpp>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace tether {

/// @brief How a create reaches the API and who chooses the record's id.
enum class rest_create : unsigned char {
    post_server_id,  ///< POST to the collection URL; the server chooses the id (read from `id_field` or `Location`)
    post_client_id,  ///< POST to the collection URL with the local id in `id_field`
    put_client_id,   ///< PUT to the item URL of the local id
};

/// @brief How the version of a record is sent back with an update or delete.
enum class rest_version_send : unsigned char {
    none,        ///< not at all (no conditional writes: the last writer wins on the server)
    if_match,    ///< an `If-Match` header: `"<version>"`, or the opaque ETag kept (`opaque_etag`) as the server gave it
    body_field,  ///< the `version_field` in the body of a PATCH or PUT (and `If-Match` on a DELETE)
};

/// @brief How an update is sent.
enum class rest_update : unsigned char {
    patch_changed,  ///< PATCH with the changed fields only
    put_whole,      ///< PUT of the whole record: the server's copy with the changed fields over it
};

/// @brief The format of the `updated_at` field.
enum class rest_time_format : unsigned char {
    iso8601,  ///< `2026-12-03T14:05:09.123Z` (fraction optional, up to 9 digits, `Z` or `+hh:mm`; years 1678 to 2261)
    unix_ms,  ///< milliseconds since the epoch (a number)
    unix_s,   ///< seconds since the epoch (a number; a fraction is kept to the millisecond)
};

/// @brief How the API lists a collection.
enum class rest_listing : unsigned char {
    full_list,    ///< everything, every time (paged or not): the engine finds deletions itself
    delta_query,  ///< what changed since a time (`since_param`), oldest first
};

/// @brief How a listing comes in pages.
enum class rest_paging : unsigned char {
    none,       ///< one answer (delta queries: `limit_param` and the watermark page on by themselves)
    next_link,  ///< the answer names the next page's URL (`next_field`), absent on the last one
    cursor,     ///< the answer holds a cursor (`next_field`) sent back as `cursor_param`
    offset,     ///< `offset_param` counts records (full lists only: it may skip while others write)
};

/// @brief What an answer's status means for a push op.
enum class rest_meaning : unsigned char {
    conflict,  ///< the record changed on the server: its copy is in the body or fetched
    gone,      ///< the record is not on the server (an update of it: `not_found`; a remove: done)
    rejected,  ///< refused for good (`errc::rejected`)
    transient, ///< try again later (`errc::transient`)
};

/// @brief One field that the entity and the API name differently.
struct rest_rename {
    std::string entity;  ///< the entity's member, e.g. `audio_path`
    std::string api;     ///< the API's name, a dotted path for a nested field, e.g. `media.audioUrl`
};

/// @brief A status with a meaning of its own for this API (checked before the defaults).
struct rest_status_override {
    int status = 0;                               ///< the HTTP status
    rest_meaning meaning = rest_meaning::rejected;  ///< what it means for a push op
};

/// @brief How one collection of a REST API is read and written.
///
/// Paths are after the base URL's prefix; `{id}` in `item_url` is the server
/// id, percent-encoded. Fields are dotted paths into the API's JSON. An empty
/// string switches a feature off.
///
/// @code
/// tether::rest_mapping jobs;
/// jobs.collection = "jobs";
/// jobs.collection_url = "/api/jobs";
/// jobs.item_url = "/api/jobs/{id}";
/// jobs.version_field = "version";
/// jobs.send_version = tether::rest_version_send::if_match;
/// jobs.updated_at_field = "updatedAt";
/// jobs.listing = tether::rest_listing::delta_query;
/// jobs.since_param = "updatedSince";
/// @endcode
struct rest_mapping {
    /// The tether collection (the entity's `collection`).
    std::string collection;
    /// The collection's URL, e.g. `/api/jobs` (lists, POST creates).
    std::string collection_url;
    /// The item URL template, e.g. `/api/jobs/{id}` (fetch, update, delete, PUT creates).
    std::string item_url;

    /// How a create is sent and who chooses the id.
    rest_create create = rest_create::post_server_id;
    /// The id's field in a record (a string or an integer).
    std::string id_field = "id";
    /// With `post_server_id`: read the new id from the `Location` header's last
    /// segment (when the body does not hold `id_field`).
    bool id_from_location = false;
    /// With `post_server_id`: send `Idempotency-Key: <local id>` with a create
    /// (only if the API honours it: then a create sent twice makes one record).
    bool idempotency_key = false;
    /// A field in which the API stores the local id of a record created here
    /// (written with the create, so the field is visible to other clients);
    /// empty: none. With `lookup_param`, a create whose answer was lost is found
    /// again before it is sent a second time.
    std::string client_id_field;
    /// The query parameter of the collection URL that finds records by
    /// `client_id_field` (`GET /api/jobs?clientId=<local id>`); empty: none.
    std::string lookup_param;

    /// The version's field (an unsigned integer); empty: read from a numeric
    /// `ETag` if `version_from_etag`, else the API has no versions.
    std::string version_field;
    /// Read the version from the answer's `ETag` (`"7"`, `W/"7"`): numeric ETags only.
    bool version_from_etag = false;
    /// Versions are opaque ETags (any text, strong `"…"` or weak `W/"…"`): the
    /// transport keeps each record's tag and sends it back as it came in
    /// `If-Match` (`send_version` = `if_match`). The engine's numeric version is
    /// still the version field, else `updated_at` in milliseconds, else 1
    /// (docs/rest.md, "Opaque ETags"). A record without its tag is `errc::protocol`.
    bool opaque_etag = false;
    /// With `opaque_etag`: the field of a record holding its ETag (a string;
    /// listed records then carry theirs too); empty: the answer's `ETag` header
    /// (single records only: a listed record's tag is fetched when needed).
    std::string etag_field;
    /// How the version goes back with an update or a delete.
    rest_version_send send_version = rest_version_send::none;
    /// The field the server sets when it last changed the record; empty: none.
    std::string updated_at_field;
    /// Its format.
    rest_time_format updated_at_format = rest_time_format::iso8601;
    /// A soft-delete field: a record where it is present, not null and not
    /// `false` is deleted (a tombstone). Empty: deletes are real.
    std::string deleted_field;

    /// How an update is sent.
    rest_update update = rest_update::patch_changed;
    /// Entity members the API names differently.
    std::vector<rest_rename> renames;

    /// How the collection is listed (every mapping of one transport lists the same way).
    rest_listing listing = rest_listing::full_list;
    /// How the listing comes in pages.
    rest_paging paging = rest_paging::none;
    /// Where the records are in a list answer (a dotted path); empty: the body is the array.
    std::string items_field;
    /// The page-size parameter, e.g. `limit`; empty: the server's page size.
    std::string limit_param;
    /// `next_link`: the field holding the next page's URL (absolute, or a path);
    /// `cursor`: the field holding the next cursor. Empty or null on the last page.
    std::string next_field;
    /// `cursor`: the parameter the cursor goes back in.
    std::string cursor_param = "cursor";
    /// `offset`: the parameter counting the records to skip.
    std::string offset_param = "offset";
    /// Delta queries: the "changed since" parameter (given in `updated_at_format`,
    /// inclusive: records changed at that very time come again and are deduplicated).
    std::string since_param;
    /// Delta queries: a parameter that asks for oldest-first order, and its value
    /// (e.g. `sort` = `updatedAt,id`).
    std::pair<std::string, std::string> sort;
    /// Delta queries: the id tie-breaker parameter (records at the watermark with
    /// an id above it), used when a whole page holds one timestamp; empty: the
    /// page grows instead.
    std::string after_id_param;
    /// Delta queries with soft deletes: the parameter and value that list deleted
    /// records too (e.g. `includeDeleted` = `true`).
    std::pair<std::string, std::string> include_deleted;

    /// Statuses that mean something else for this API than the defaults
    /// (409 and 412 conflict, 404 and 410 gone, 400 and 422 rejected).
    std::vector<rest_status_override> statuses;
};

/// @brief The settings of a `rest_transport`: the HTTP client's (base URL,
/// token, timeouts, pool; `max_batch` is the ops per push call, each its own
/// request) and one mapping per collection.
struct rest_options {
    /// The HTTP client settings (`has_change_feed` is ignored: the mappings' listing decides).
    http_options http;
    /// One mapping per collection.
    std::vector<rest_mapping> collections;
};

}  // namespace tether
