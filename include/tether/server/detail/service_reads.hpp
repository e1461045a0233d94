#pragma once

// The readers of `server::sync_service` (server/sync_service.hpp declares
// them): `pull`, the page of changes after a cursor (or, with the change feed
// off, every live record), and `fetch`, one live record. Defined out of the
// class and included at the end of sync_service.hpp; not a public entry point.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/server/cursor.hpp>
#include <tether/server/store.hpp>
#include <tether/server/sync_service.hpp>
#include <tether/transport/transport.hpp>

#include <cstddef>
#include <limits>
#include <string>
#include <utility>

namespace tether::server {

template <server_store Store>
result<pull_page> sync_service<Store>::pull(const pull_request& req) const {
    const scope s{req.user, req.collection};
    if (!has_change_feed()) {
        return store_.read([&](auto& tx) -> result<pull_page> {
            auto live = tx.list(s);
            if (!live) return unexpected{std::move(live).error()};
            pull_page page;
            page.records.reserve(live->size());
            for (auto& r : *live) page.records.push_back(std::move(r.record));
            return page;
        });
    }
    cursor after;
    if (!req.cursor.empty()) {
        auto parsed = parse_cursor(req.cursor);
        if (!parsed)
            return unexpected{error{errc::invalid_argument,
                                    "bad cursor '" + std::string{req.cursor.substr(0, 64)} + "'", 400,
                                    std::nullopt}};
        after = *parsed;
    }
    const std::size_t limit = req.limit == 0 ? 1 : req.limit;
    return store_.read([&](auto& tx) -> result<pull_page> {
        auto info = tx.collection(s);
        if (!info) return unexpected{std::move(info).error()};
        pull_page page;
        page.next_cursor = std::string{req.cursor};
        if (!*info) return page;
        const collection_info c = **info;
        if (!req.cursor.empty() && (after.change > c.last_change || after.epoch != c.epoch))
            return unexpected{error{errc::cursor_expired,
                                    "cursor " + std::string{req.cursor} + " expired: pull again from the start",
                                    410, std::nullopt}};
        const std::size_t ask = limit == std::numeric_limits<std::size_t>::max() ? limit : limit + 1;
        auto changes = tx.changes_after(s, after.change, ask);
        if (!changes) return unexpected{std::move(changes).error()};
        page.has_more = changes->size() > limit;
        if (page.has_more) changes->resize(limit);
        for (auto& r : *changes) {
            page.next_cursor = format_cursor({r.record.version, c.epoch});
            if (r.deleted)
                page.tombstones.push_back(tombstone{std::move(r.record.server_id), r.record.id, r.record.version});
            else
                page.records.push_back(std::move(r.record));
        }
        if (!page.has_more) page.next_cursor = format_cursor({c.last_change, c.epoch});
        return page;
    });
}

template <server_store Store>
result<server_record> sync_service<Store>::fetch(const fetch_request& req) const {
    return store_.read([&](auto& tx) -> result<server_record> {
        auto found = tx.find_by_server_id(scope{req.user, req.collection}, req.server_id);
        if (!found) return unexpected{std::move(found).error()};
        if (!*found || (*found)->deleted) return unexpected{not_found_(req.server_id)};
        return std::move((*found)->record);
    });
}

}  // namespace tether::server
