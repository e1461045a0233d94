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

#include <algorithm>
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
    const std::size_t n = listed->records.size() + listed->refused.size();  // a refused record takes its place
    for (auto& r : listed->records)
        if (!r.deleted) page.records.push_back(std::move(r.record));
    page.refused = std::move(listed->refused);
    list_cursor next;
    if (m.paging == rest_paging::offset) {
        page.has_more = !m.limit_param.empty() && n >= limit && n > 0;
        next.offset = from.offset + n;
    } else if (m.paging != rest_paging::none && !listed->next.empty()) {
        page.has_more = true;
        next.next = std::move(listed->next);
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
    const std::size_t answered = listed->records.size() + listed->refused.size();
    page.refused = std::move(listed->refused);
    std::optional<std::int64_t> oldest;  // of the records with a readable time
    std::string last_id;
    for (auto& r : listed->records) {
        if (!r.changed) {  // no place in the order of the watermark: refused, seen again when it changes
            page.refused.push_back(refused_item{r.record.server_id, r.at, false,
                                                "changes " + m.collection + ": the record has no '" +
                                                    m.updated_at_field + "'"});
            continue;
        }
        last_id = r.record.server_id;
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
    std::sort(page.refused.begin(), page.refused.end(),
              [](const refused_item& a, const refused_item& b) { return a.index < b.index; });
    const bool all_one = oldest && *oldest == next.since_ns;  // the whole page at the watermark
    const bool none_read = !oldest;                          // not one time of the page reads
    const bool full = !m.limit_param.empty() && answered >= asked;
    next.after_id.clear();
    next.grow = 1;
    if (m.paging != rest_paging::none && !listed->next.empty()) {
        next.query_since = since;
        next.next = std::move(listed->next);
        page.has_more = true;
    } else {
        next.next.clear();
        next.query_since.clear();
        if (full && m.paging == rest_paging::none) {
            page.has_more = true;
            if (all_one && !m.after_id_param.empty()) {
                next.after_id = last_id;
            } else if (all_one || none_read) {  // a larger page of the same query goes past them
                if (asked * 2 > max_grown_page)
                    return unexpected{c.malformed(*got, "changes", none_read ? "a full page of records without a time"
                                                                              : "more records at one time than the largest page")};
                if (none_read) next.after_id = from.after_id;
                next.grow = from.grow * 2;
            }
        }
    }
    page.next_cursor = next.encode();
    return page;
}

}  // namespace tether::rest
