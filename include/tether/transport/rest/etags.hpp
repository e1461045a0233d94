#pragma once

// tether::rest: the opaque ETags a REST transport has seen, by record and the
// engine's numeric version of it. The engine keeps numbers; an API with opaque
// ETags wants its own text back in `If-Match`: the transport looks it up here
// by (server id, base version), and fetches the record when it has forgotten
// (docs/rest.md, "Opaque ETags"). Not a public entry point.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tether::rest {

/// @brief Each record's last ETag seen and the version it came with, shared
/// by a transport's copies (thread-safe), at most `max_entries` records (the
/// oldest forgotten first: a forgotten tag costs one fetch, never a wrong write).
class etag_table {
public:
    /// @brief The most records whose tags are kept.
    static constexpr std::size_t max_entries = 1u << 16;

    /// @brief Keeps `tag` as the ETag of `collection`'s record `server_id` at `version`.
    void keep(std::string_view collection, std::string_view server_id, std::uint64_t version, std::string tag) {
        std::lock_guard lock{mutex_};
        auto k = key_(collection, server_id);
        auto it = tags_.find(k);
        if (it != tags_.end()) {
            it->second = entry{version, std::move(tag)};
            return;
        }
        while (tags_.size() >= max_entries && !order_.empty()) {
            tags_.erase(order_.front());
            order_.pop_front();
        }
        tags_.emplace(k, entry{version, std::move(tag)});
        order_.push_back(std::move(k));
    }

    /// @brief The ETag kept for the record at exactly `version`, or nullopt
    /// (none kept, or one of another version).
    [[nodiscard]] std::optional<std::string> find(std::string_view collection, std::string_view server_id,
                                                  std::uint64_t version) const {
        std::lock_guard lock{mutex_};
        auto it = tags_.find(key_(collection, server_id));
        if (it == tags_.end() || it->second.version != version) return std::nullopt;
        return it->second.tag;
    }

    /// @brief The records whose tags are kept.
    [[nodiscard]] std::size_t size() const {
        std::lock_guard lock{mutex_};
        return tags_.size();
    }

private:
    struct entry {
        std::uint64_t version = 0;
        std::string tag;
    };

    static std::string key_(std::string_view collection, std::string_view server_id) {
        std::string k{collection};
        k += '\0';
        k += server_id;
        return k;
    }

    mutable std::mutex mutex_;
    std::unordered_map<std::string, entry> tags_;
    std::deque<std::string> order_;  // first kept first
};

}  // namespace tether::rest
