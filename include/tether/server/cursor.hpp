#pragma once

/// @file
/// @brief The text of a pull cursor, as `sync_service` hands it out.
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace tether::server {

/// @brief What a pull cursor says: the last change the client has, in which
/// epoch of its collection (see `collection_info`).
///
/// Clients treat cursors as opaque text. Its form is `"N"` (change number N,
/// epoch 0) or, once the collection has been restored, `"N@E"`: restored
/// records keep their old version numbers, so a number alone issued before a
/// restore could pass for one issued after it.
struct cursor {
    std::uint64_t change = 0;  ///< the last change number the client has seen
    std::uint64_t epoch = 0;   ///< the collection's epoch when the cursor was issued

    /// @brief Field-wise equality.
    friend bool operator==(const cursor&, const cursor&) = default;
};

/// @brief The text of `c`: `"N"` in epoch 0, else `"N@E"`.
[[nodiscard]] inline std::string format_cursor(cursor c) {
    return c.epoch == 0 ? std::to_string(c.change) : std::to_string(c.change) + "@" + std::to_string(c.epoch);
}

/// @brief Parses the text `format_cursor` makes (decimal digits, optionally
/// `@` and more digits); empty for anything else, the empty text included.
[[nodiscard]] inline std::optional<cursor> parse_cursor(std::string_view text) {
    if (text.empty()) return std::nullopt;
    cursor c;
    const char* end = text.data() + text.size();
    auto parsed = std::from_chars(text.data(), end, c.change);
    if (parsed.ec == std::errc{} && parsed.ptr != end && *parsed.ptr == '@' && parsed.ptr + 1 != end)
        parsed = std::from_chars(parsed.ptr + 1, end, c.epoch);
    if (parsed.ec != std::errc{} || parsed.ptr != end) return std::nullopt;
    return c;
}

}  // namespace tether::server
