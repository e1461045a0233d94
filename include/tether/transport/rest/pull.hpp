#pragma once

// tether::rest: one page of a REST listing: a full list (one answer, or pages
// by next link, cursor or offset) or a delta query from the watermark (the
// largest server `updated_at` seen), its ties asked for inclusively and
// dropped by (id, version); a page full of one timestamp goes on by the id
// tie-breaker or a larger page, so it never loops and never skips. Not a
// public entry point.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/transport/rest/client.hpp>
#include <tether/transport/rest/cursor.hpp>
#include <tether/transport/transport.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tether::rest {

/// @brief The largest page a delta query grows to (a page full of one timestamp).
inline constexpr std::size_t max_grown_page = 1u << 20;

namespace detail {

/// The list request: the server's next link, or the collection URL with `params`.
inline result<http::full_answer> list_request(const client& c, const std::string& next,
                                              const std::vector<std::pair<std::string, std::string>>& params) {
    if (c.mapping().paging == rest_paging::next_link && !next.empty()) {
        auto target = c.link_target(next);
        if (!target) return unexpected{make_error(errc::protocol, "list " + c.mapping().collection +
                                                                      ": the next link is not on the server's origin")};
        return c.send("GET", *target, nullptr, {}, "list");
    }
    return c.send("GET", client::with_query(c.mapping().collection_url, params), nullptr, {}, "list");
}

inline std::string tag(const server_record& r) { return r.server_id + "@" + std::to_string(r.version); }

}  // namespace detail

/// @brief One page of a full list: the live records (soft-deleted ones are
/// left out, so the engine takes them for deleted); `has_more` while the
/// server's paging goes on.
inline result<pull_page> pull_full(const client& c, const list_cursor& from, std::size_t limit) {
    const auto& m = c.mapping();
    std::vector<std::pair<std::string, std::string>> params;
    if (m.paging != rest_paging::none) params.emplace_back(m.limit_param, std::to_string(limit));
    if (m.paging == rest_paging::offset) params.emplace_back(m.offset_param, std::to_string(from.offset));
    if (m.paging == rest_paging::cursor && !from.next.empty()) params.emplace_back(m.cursor_param, from.next);
    auto got = detail::list_request(c, from.next, params);
    if (!got) return unexpected{std::move(got).error()};
    if (!http::is_success(got->status)) return unexpected{c.status_error(*got, http::request_kind::changes, "list")};
    auto listed = c.list(*got, "list");
    if (!listed) return unexpected{std::move(listed).error()};
    pull_page page;
    const std::size_t n = listed->first.size();
    for (auto& r : listed->first)
        if (!r.deleted) page.records.push_back(std::move(r.record));
    list_cursor next;
    if (m.paging == rest_paging::offset) {
        page.has_more = !m.limit_param.empty() && n >= limit && n > 0;
        next.offset = from.offset + n;
    } else if (m.paging != rest_paging::none && !listed->second.empty()) {
        page.has_more = true;
        next.next = std::move(listed->second);
    }
    if (page.has_more) page.next_cursor = next.encode();
    return page;
}

/// @brief One page of a delta query from the watermark in `from` (see the file comment).
inline result<pull_page> pull_delta(const client& c, const list_cursor& from, std::size_t limit) {
    const auto& m = c.mapping();
    const std::size_t asked = m.limit_param.empty() ? limit : limit * from.grow;
    const std::string& since = from.next.empty() ? from.since : from.query_since;
    std::vector<std::pair<std::string, std::string>> params;
    if (!since.empty()) params.emplace_back(m.since_param, since);
    params.push_back(m.sort);
    params.push_back(m.include_deleted);
    if (!m.limit_param.empty()) params.emplace_back(m.limit_param, std::to_string(asked));
    if (!from.after_id.empty()) params.emplace_back(m.after_id_param, from.after_id);
    if (m.paging == rest_paging::cursor && !from.next.empty()) params.emplace_back(m.cursor_param, from.next);
    auto got = detail::list_request(c, from.next, params);
    if (!got) return unexpected{std::move(got).error()};
    if (!http::is_success(got->status)) return unexpected{c.status_error(*got, http::request_kind::changes, "changes")};
    auto listed = c.list(*got, "changes");
    if (!listed) return unexpected{std::move(listed).error()};
    list_cursor next = from;
    pull_page page;
    std::optional<std::int64_t> oldest;
    std::string last_id;
    for (auto& r : listed->first) {
        last_id = r.record.server_id;
        if (!r.changed) return unexpected{c.malformed(*got, "changes", "a record without '" + m.updated_at_field + "'")};
        const auto t = detail::tag(r.record);
        if (!oldest || r.changed->ns < *oldest) oldest = r.changed->ns;
        if (next.since.empty() || r.changed->ns > next.since_ns) {
            next.since = r.changed->text;
            next.since_ns = r.changed->ns;
            next.at_since.clear();
        }
        if (r.changed->ns == next.since_ns) next.at_since.insert(t);
        if (!from.since.empty() && r.changed->ns == from.since_ns && from.at_since.contains(t)) continue;  // a tie seen
        if (r.deleted) page.tombstones.push_back(tombstone{r.record.server_id, r.record.id, r.record.version});
        else page.records.push_back(std::move(r.record));
    }
    const bool all_one = oldest && *oldest == next.since_ns;  // the whole page at the watermark
    const bool full = !m.limit_param.empty() && listed->first.size() >= asked;
    next.after_id.clear();
    next.grow = 1;
    if (m.paging != rest_paging::none && !listed->second.empty()) {
        next.query_since = since;
        next.next = std::move(listed->second);
        page.has_more = true;
    } else {
        next.next.clear();
        next.query_since.clear();
        if (full && m.paging == rest_paging::none) {
            page.has_more = true;
            if (all_one && !m.after_id_param.empty()) {
                next.after_id = last_id;
            } else if (all_one) {
                if (asked * 2 > max_grown_page)
                    return unexpected{c.malformed(*got, "changes", "more records at one time than the largest page")};
                next.grow = from.grow * 2;
            }
        }
    }
    page.next_cursor = next.encode();
    return page;
}

}  // namespace tether::rest
