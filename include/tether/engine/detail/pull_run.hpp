#pragma once

// What one pull run knows beyond its pages, and the metadata keys it keeps.
// Not a public entry point.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>

namespace tether {

namespace detail {
/// The storage key of the pull cursor.
inline constexpr std::string_view pull_cursor_key = "pull_cursor";
/// The storage key of the server ids to fetch again (items skipped by a pull).
inline constexpr std::string_view refetch_key = "pull_refetch";
/// The storage key of a full resync under way ("1"): pull from the start, and
/// take the server's versions even where they are below the local ones.
inline constexpr std::string_view resync_key = "pull_resync";
/// Server ids kept for a later fetch, at most.
inline constexpr std::size_t max_refetch = 1000;
/// Fetches one pull makes of them, at most.
inline constexpr std::size_t refetch_per_pull = 16;

/// This device's creates whose answer never came (sent, no server id yet): a
/// pulled record without a local id may be one of them.
struct creates_in_doubt {
    bool settling = false;  // some will be sent again by themselves (pending, error)
    bool failed = false;    // some gave up (failed): they settle only after reset_failed
};

/// What one pull run knows beyond its pages (see `run_pull`).
struct pull_run {
    bool feed = true;
    bool resync = false;                     // a full resync is under way
    bool back_in_time = false;               // a page showed a version below the local one
    std::set<std::string> refetch;           // server ids to fetch again later
    std::set<std::string> deferred;          // ...of which this run deferred (not fetched again now)
    bool refetch_changed = false;
    std::unordered_set<std::string> seen;    // every server id a resync saw
    std::optional<creates_in_doubt> doubt;   // this device's creates whose answer was lost (asked once per run)
    bool fetching = false;                   // the record being applied came from a fetch, not a page
    std::unordered_set<std::string> listed;  // full-list mode: every server id the pages so far listed
    bool listed_unknown = false;             // full-list mode: a page refused an item without its server id
    bool seen_unknown = false;               // a resync page refused an item without its server id
    std::unordered_set<std::string> refused; // server ids a page of this run refused: fetched at a later pull

    /// The list starts again from the beginning (a resync).
    void restart_list() {
        listed.clear();
        listed_unknown = false;
        seen_unknown = false;
    }

    /// Keeps a server id to fetch again at a later pull (at most `max_refetch`);
    /// false if the list is full (the item is then seen again only when it changes).
    bool defer(const std::string& server_id) {
        if (server_id.empty()) return true;
        if (!refetch.contains(server_id) && refetch.size() >= max_refetch) return false;
        refetch_changed |= refetch.insert(server_id).second;
        deferred.insert(server_id);
        return true;
    }
    /// The server id came and applied (or is gone): no longer fetched again.
    void drop_refetch(const std::string& server_id) {
        if (refetch.erase(server_id) > 0) refetch_changed = true;
    }
};

inline std::set<std::string> parse_refetch(const std::optional<std::string>& text) {
    std::set<std::string> out;
    if (!text || text->empty()) return out;
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_array()) return out;
    for (const auto& v : j)
        if (v.is_string() && !v.get_ref<const std::string&>().empty()) out.insert(v.get<std::string>());
    return out;
}

inline std::string format_refetch(const std::set<std::string>& ids) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& id : ids) j.push_back(id);
    return j.dump();
}
}  // namespace detail

}  // namespace tether
