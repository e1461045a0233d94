#pragma once

// The mappings of the two REST styles in rest_servers.hpp, as an integrator
// would fill them in (docs/rest.md walks through the same two).
#include <tether/transport/rest.hpp>

#include <chrono>
#include <string>

namespace tether_test {

/// Style (a): integer ids chosen by the server, the local id kept in
/// `clientId` (and found by `?clientId=`), no versions, a full list.
inline tether::rest_mapping minimal_mapping() {
    tether::rest_mapping m;
    m.collection = "jobs";
    m.collection_url = "/api/jobs";
    m.item_url = "/api/jobs/{id}";
    m.client_id_field = "clientId";
    m.lookup_param = "clientId";
    m.renames = {{"audio_path", "audioUrl"}};
    m.listing = tether::rest_listing::full_list;
    return m;
}

/// Style (a) with string ids chosen by the client (the local id in `id`).
inline tether::rest_mapping minimal_client_id_mapping() {
    auto m = minimal_mapping();
    m.create = tether::rest_create::post_client_id;
    m.client_id_field.clear();
    m.lookup_param.clear();
    return m;
}

/// Style (b): server ids, `Idempotency-Key`, `version` sent back in `If-Match`,
/// `updatedAt`, `deletedAt` soft deletes, a delta query paged by cursor.
inline tether::rest_mapping versioned_mapping() {
    tether::rest_mapping m;
    m.collection = "jobs";
    m.collection_url = "/v2/tasks";
    m.item_url = "/v2/tasks/{id}";
    m.idempotency_key = true;
    m.version_field = "version";
    m.send_version = tether::rest_version_send::if_match;
    m.updated_at_field = "updatedAt";
    m.deleted_field = "deletedAt";
    m.renames = {{"audio_path", "media.audioUrl"}};
    m.listing = tether::rest_listing::delta_query;
    m.paging = tether::rest_paging::cursor;
    m.items_field = "data";
    m.next_field = "nextCursor";
    m.cursor_param = "cursor";
    m.limit_param = "limit";
    m.since_param = "updatedSince";
    m.sort = {"sort", "updatedAt,id"};
    m.include_deleted = {"includeDeleted", "true"};
    return m;
}

/// Options for a transport to `url` with `m`.
inline tether::rest_options rest_options_for(const std::string& url, tether::rest_mapping m) {
    tether::rest_options o;
    o.http.base_url = url;
    o.http.timeouts.connect = std::chrono::seconds{5};
    o.http.timeouts.read = std::chrono::seconds{10};
    o.http.timeouts.write = std::chrono::seconds{10};
    o.collections.push_back(std::move(m));
    return o;
}

}  // namespace tether_test
