#pragma once

// tether::rest: the pull cursor of a REST listing, opaque to the engine. For a
// delta query it holds the watermark: the largest server `updated_at` seen
// (never the device clock), the (id, version) pairs already delivered at that
// very time (the next query asks from it inclusively and drops them), and how
// a page full of one timestamp goes on (the last id, for the tie-breaker
// parameter, or a larger page). For a full list: where the next page starts.
// Not a public entry point.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

namespace tether::rest {

/// @brief What a REST pull cursor holds (all empty: from the beginning).
struct list_cursor {
    std::string since;                ///< the watermark as the server wrote it (empty: none yet)
    std::int64_t since_ns = 0;        ///< the watermark, in nanoseconds
    std::set<std::string> at_since;   ///< `id@version` of the records delivered at the watermark
    std::string query_since;          ///< the watermark the server's paging (`next`) started from
    std::string next;                 ///< the server's next link or cursor, while its paging goes on
    std::string after_id;             ///< the last id of a page full of the watermark (tie-breaker)
    std::uint32_t grow = 1;           ///< the page size's multiple (a page full of one timestamp)
    std::uint64_t offset = 0;         ///< full lists by offset: records already listed

    /// @brief The cursor as the engine stores it (empty for the beginning).
    [[nodiscard]] std::string encode() const {
        nlohmann::json j = nlohmann::json::object();
        if (!since.empty()) {
            j["w"] = since;
            j["k"] = since_ns;
            j["s"] = at_since;
        }
        if (!next.empty()) {
            j["n"] = next;
            j["q"] = query_since;
        }
        if (!after_id.empty()) j["a"] = after_id;
        if (grow != 1) j["g"] = grow;
        if (offset != 0) j["o"] = offset;
        return j.empty() ? std::string{} : j.dump();
    }

    /// @brief Reads a cursor made by `encode`; anything else is `errc::cursor_expired`
    /// (the engine starts from the beginning).
    [[nodiscard]] static result<list_cursor> decode(std::string_view text) {
        list_cursor c;
        if (text.empty()) return c;
        auto expired = [] {
            return result<list_cursor>{unexpect, make_error(errc::cursor_expired, "not a cursor of this REST transport")};
        };
        auto j = nlohmann::json::parse(text, nullptr, false);
        if (!j.is_object()) return expired();
        try {
            if (j.contains("w")) {
                c.since = j.at("w").get<std::string>();
                if (!j.at("k").is_number_integer()) return expired();  // a float would not convert safely
                c.since_ns = j.at("k").get<std::int64_t>();
                c.at_since = j.at("s").get<std::set<std::string>>();
            }
            if (j.contains("n")) {
                c.next = j.at("n").get<std::string>();
                c.query_since = j.at("q").get<std::string>();
            }
            if (j.contains("a")) c.after_id = j.at("a").get<std::string>();
            if (j.contains("g")) {
                const auto& g = j.at("g");
                if (!g.is_number_unsigned() || g.get<std::uint64_t>() > (1u << 20)) return expired();
                c.grow = g.get<std::uint32_t>();
            }
            if (j.contains("o")) {
                if (!j.at("o").is_number_unsigned()) return expired();
                c.offset = j.at("o").get<std::uint64_t>();
            }
        } catch (const std::exception&) {
            return expired();
        }
        if (c.grow == 0) return expired();
        return c;
    }
};

}  // namespace tether::rest
