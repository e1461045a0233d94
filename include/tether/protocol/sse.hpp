#pragma once

/// @file
/// @brief Server-Sent Events (the `text/event-stream` of
/// `GET /v1/{collection}/events`, docs/protocol.md "Live events"): the frames
/// the server writes, and `tether::protocol::sse_decoder`, a strict, bounded
/// reader of them.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tether::protocol {

/// @brief One event of an event stream: its `id:`, `event:` and `data:` fields.
struct sse_frame {
    std::string id;         ///< the `id:` field (empty when absent)
    std::string event;      ///< the `event:` field (empty when absent: SSE's "message")
    std::string data;       ///< the `data:` lines, joined by `\n`
    bool has_id = false;    ///< whether an `id:` field came
};

/// @brief The text of one event: `id: <id>` (when not empty), `event: <event>`,
/// `data: <data>`, then the blank line. `id`, `event` and `data` must hold no
/// line break (the encoder of a live event writes one line of JSON).
[[nodiscard]] inline std::string sse_event_text(std::string_view id, std::string_view event, std::string_view data) {
    std::string out;
    out.reserve(id.size() + event.size() + data.size() + 24);
    if (!id.empty()) out.append("id: ").append(id).append("\n");
    out.append("event: ").append(event).append("\n");
    out.append("data: ").append(data).append("\n\n");
    return out;
}

/// @brief A comment line (`: <text>`), as a heartbeat; ignored by every reader.
[[nodiscard]] inline std::string sse_comment_text(std::string_view text) {
    return std::string{": "}.append(text).append("\n\n");
}

/// @brief The bounds of an `sse_decoder`.
struct sse_limits {
    std::size_t max_line_bytes = 2u * 1024u * 1024u;   ///< longest line (without its line break)
    std::size_t max_event_bytes = 2u * 1024u * 1024u;  ///< most bytes of fields in one event
};

/// @brief Reads an event stream as it arrives, in chunks of any size.
///
/// Lines end with `\n` (a `\r` before it is dropped; a lone `\r` is refused).
/// A blank line ends an event; a line starting with `:` is a comment
/// (counted by `comments()`); `field: value` sets `id`, `event` or `data`
/// (repeated `data` lines are joined with `\n`), `retry` is ignored, and any
/// other field, a NUL byte, a line over `max_line_bytes` or an event over
/// `max_event_bytes` is an error. After an error the decoder stays failed:
/// every later `feed` returns the same error (the stream cannot be trusted
/// past it). Never throws.
class sse_decoder {
public:
    /// @brief A decoder within `limits`.
    explicit sse_decoder(sse_limits limits = {}) : limits_(limits) {}

    /// @brief Feeds `chunk`; calls `on_frame(sse_frame&&)` for each event it
    /// completes, in order. The first error stops it (see the class).
    template <class OnFrame>
    result<void> feed(std::string_view chunk, OnFrame&& on_frame) {
        if (failed_) return unexpected{*failed_};
        for (const char c : chunk) {
            if (c != '\n') {
                if (c == '\0') return fail_("a NUL byte in the stream");
                if (line_.size() >= limits_.max_line_bytes)
                    return fail_("a line over " + std::to_string(limits_.max_line_bytes) + " bytes");
                line_.push_back(c);
                continue;
            }
            if (!line_.empty() && line_.back() == '\r') line_.pop_back();
            if (line_.find('\r') != std::string::npos) return fail_("a lone carriage return in a line");
            if (line_.empty()) {
                if (pending_) {
                    pending_ = pending_data_ = false;
                    event_bytes_ = 0;
                    on_frame(std::exchange(frame_, sse_frame{}));
                }
                continue;
            }
            if (auto ok = field_(); !ok) return ok;
            line_.clear();
        }
        return {};
    }

    /// @brief How many comment lines (heartbeats) it has read.
    [[nodiscard]] std::uint64_t comments() const noexcept { return comments_; }
    /// @brief Bytes of an unfinished line or event held now.
    [[nodiscard]] std::size_t buffered() const noexcept { return line_.size() + event_bytes_; }

private:
    result<void> field_() {
        if (line_.front() == ':') {
            ++comments_;
            return {};
        }
        const auto colon = line_.find(':');
        std::string_view name{line_};
        std::string_view value;
        if (colon != std::string::npos) {
            name = std::string_view{line_}.substr(0, colon);
            value = std::string_view{line_}.substr(colon + 1);
            if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        }
        event_bytes_ += value.size() + 1;
        if (event_bytes_ > limits_.max_event_bytes)
            return fail_("an event over " + std::to_string(limits_.max_event_bytes) + " bytes");
        if (name == "data") {
            if (pending_data_) frame_.data.push_back('\n');
            frame_.data.append(value);
            pending_data_ = true;
        } else if (name == "event") {
            frame_.event.assign(value);
        } else if (name == "id") {
            frame_.id.assign(value);
            frame_.has_id = true;
        } else if (name == "retry") {
            return {};
        } else {
            return fail_("an unknown field '" + std::string{name.substr(0, 32)} + "'");
        }
        pending_ = true;
        return {};
    }

    result<void> fail_(std::string why) {
        failed_ = error{errc::protocol, "event stream: " + std::move(why), std::nullopt, std::nullopt};
        line_.clear();
        frame_ = {};
        return unexpected{*failed_};
    }

    sse_limits limits_;
    std::string line_;
    sse_frame frame_;
    bool pending_ = false;       // a field of the current event came
    bool pending_data_ = false;  // a data line of it came (an empty one included)
    std::size_t event_bytes_ = 0;
    std::uint64_t comments_ = 0;
    std::optional<error> failed_;
};

}  // namespace tether::protocol
