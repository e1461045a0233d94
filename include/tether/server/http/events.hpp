#pragma once

/// @file
/// @brief `tether::server::event_hub`: the live events of an HTTP face
/// (`GET /v1/{collection}/events`): a short history per (user, collection)
/// to resume from, and one bounded queue per open stream (target
/// `tether::server_http`).
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/live.hpp>
#include <tether/protocol/sse.hpp>
#include <tether/server/cursor.hpp>
#include <tether/transport/live.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::server {

/// @brief The settings of the live events of an HTTP face.
struct event_options {
    /// Streams open at once, over every user; one more is answered 503 with
    /// `Retry-After`. Each open stream holds one of the server's worker
    /// threads (size the pool for it: `tether-server` adds this many). 0: no
    /// events endpoint (404).
    std::size_t max_streams = 64;
    /// A comment line is sent on a stream when nothing else was for this long.
    std::chrono::milliseconds heartbeat{15'000};
    /// Events kept per (user, collection) to resume a stream from; a cursor
    /// older than the oldest kept is told `reset`.
    std::size_t history = 256;
    /// Events queued for one stream not yet written; one more and the stream
    /// is told `reset` and ends (a slow subscriber does not grow the memory).
    std::size_t queue_limit = 1024;
    /// The `Retry-After` of a 503 when `max_streams` are open.
    std::chrono::seconds retry_after{5};
};

/// @brief One open event stream: its queue of frames, in order.
class event_stream {
public:
    /// @brief What to write next: text (empty: nothing), and whether the stream ends after it.
    struct step {
        std::string text;   ///< frames or a heartbeat comment
        bool last = false;  ///< end the stream after writing it
    };

    /// @brief A stream of `user`'s `collection`, never told `device`'s own changes.
    event_stream(std::string user, std::string collection, std::string device, std::size_t queue_limit)
        : user_(std::move(user)), collection_(std::move(collection)), device_(std::move(device)),
          queue_limit_(queue_limit) {}

    /// @brief Waits up to `heartbeat` for frames: returns them all, else a
    /// heartbeat comment; `reset` then the end once the stream was cut; the
    /// end (no text) once closed.
    [[nodiscard]] step next(std::chrono::milliseconds heartbeat) {
        std::unique_lock lock{mutex_};
        ready_.wait_for(lock, heartbeat, [&] { return !queue_.empty() || cut_ || closed_; });
        if (closed_) return {{}, true};
        if (cut_) {
            closed_ = true;
            return {protocol::sse_event_text({}, "reset", R"({"reason":")" + reason_ + R"("})"), true};
        }
        if (queue_.empty()) return {protocol::sse_comment_text("heartbeat"), false};
        std::string out;
        for (auto& f : queue_) out += f;
        queue_.clear();
        return {std::move(out), false};
    }

    /// @brief Queues `frame` unless the device made the change; past the
    /// queue limit the stream is cut instead.
    void offer(std::string_view origin, const std::string& frame) {
        if (!origin.empty() && origin == device_) return;
        {
            std::lock_guard lock{mutex_};
            if (cut_ || closed_) return;
            if (queue_.size() >= queue_limit_) return cut_locked_("queue limit");
            queue_.push_back(frame);
        }
        ready_.notify_one();
    }

    /// @brief Tells `reset` (with `reason`) and ends the stream.
    void cut(std::string reason) {
        {
            std::lock_guard lock{mutex_};
            cut_locked_(std::move(reason));
        }
        ready_.notify_one();
    }

    /// @brief Ends the stream at once (the server stops).
    void close() {
        {
            std::lock_guard lock{mutex_};
            closed_ = true;
        }
        ready_.notify_one();
    }

    /// @brief The user it serves.
    [[nodiscard]] const std::string& user() const noexcept { return user_; }
    /// @brief The collection it follows.
    [[nodiscard]] const std::string& collection() const noexcept { return collection_; }

private:
    void cut_locked_(std::string reason) {
        if (cut_ || closed_) return;
        cut_ = true;
        reason_ = std::move(reason);
        queue_.clear();
    }

    const std::string user_, collection_, device_;
    const std::size_t queue_limit_;
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::string> queue_;
    bool cut_ = false, closed_ = false;
    std::string reason_;
};

/// @brief The live events of one HTTP face: every change of the service
/// (`publish`, its observer), a short history per (user, collection), and
/// the streams open (see `event_options`). Thread-safe.
///
/// **Resume.** A stream opens at a cursor (the client's pull cursor, or the
/// `id` of the last event it read). The history's events after it are
/// queued first when the history reaches back to it; a cursor older than the
/// history (or of another epoch, or not a cursor of this server) is told
/// `reset` at once; with no history yet (nothing changed since the server
/// started) the stream carries what changes from now on, the pull being the
/// authority for what came before. Change numbers of one collection are
/// contiguous only within one server process: behind several processes
/// sharing a database, a stream hears its own process's changes.
class event_hub {
public:
    /// @brief A hub with `options`.
    explicit event_hub(event_options options) : options_(options) {}

    /// @brief The options it was made with.
    [[nodiscard]] const event_options& options() const noexcept { return options_; }

    /// @brief Opens a stream of `user`'s `collection` from `cursor` for
    /// `device`; `errc::transient` with status 503 and `Retry-After` when
    /// `max_streams` are open or the hub is closed.
    [[nodiscard]] result<std::shared_ptr<event_stream>> open(std::string_view user, std::string_view collection,
                                                             std::string_view device, std::string_view cursor) {
        std::lock_guard lock{mutex_};
        if (closed_ || streams_.size() >= options_.max_streams)
            return unexpected{error{errc::transient, closed_ ? "the server is stopping" : "too many event streams open",
                                    503, options_.retry_after}};
        auto s = std::make_shared<event_stream>(std::string{user}, std::string{collection}, std::string{device},
                                                options_.queue_limit);
        replay_(*s, key{std::string{user}, std::string{collection}}, cursor);
        streams_.insert(s);
        return s;
    }

    /// @brief Forgets stream `s` (it ended).
    void release(const std::shared_ptr<event_stream>& s) {
        std::lock_guard lock{mutex_};
        streams_.erase(s);
    }

    /// @brief One committed change of `user` (the service's observer).
    void publish(std::string_view user, const live_event& ev) {
        auto text = protocol::encode_live_event(ev);
        if (!text) return;  // cannot happen for what the service stores; never sent half
        const auto at = server::parse_cursor(ev.cursor);
        entry e{at.value_or(cursor{}), ev.record.origin,
                protocol::sse_event_text(ev.cursor, to_string(ev.kind), *text)};
        std::lock_guard lock{mutex_};
        auto& h = history_[key{std::string{user}, ev.collection}];
        if (!h.empty() && (!at || h.back().at.epoch != e.at.epoch || h.back().at.change + 1 != e.at.change))
            h.clear();  // not contiguous with what is kept: resume only from here on
        if (at) h.push_back(e);
        while (h.size() > options_.history) h.pop_front();
        for (const auto& s : streams_)
            if (s->user() == user && s->collection() == ev.collection) s->offer(e.origin, e.frame);
    }

    /// @brief Ends every stream and refuses new ones (call before stopping the server).
    void close_all() {
        std::lock_guard lock{mutex_};
        closed_ = true;
        for (const auto& s : streams_) s->close();
    }

    /// @brief How many streams are open now.
    [[nodiscard]] std::size_t open_streams() const {
        std::lock_guard lock{mutex_};
        return streams_.size();
    }

private:
    struct entry {
        cursor at;
        std::string origin;
        std::string frame;
    };
    using key = std::pair<std::string, std::string>;

    // Queues the history after `from` on `s`, or cuts it (under the lock).
    void replay_(event_stream& s, const key& k, std::string_view from) {
        auto found = history_.find(k);
        if (found == history_.end() || found->second.empty()) return;
        const auto& h = found->second;
        const std::optional<cursor> c = from.empty() ? std::optional<cursor>{cursor{}} : server::parse_cursor(from);
        if (!c || c->epoch != h.back().at.epoch) return s.cut("cursor unknown here");
        if (c->change >= h.back().at.change) return;
        if (c->change + 1 < h.front().at.change) return s.cut("cursor older than the history");
        for (const auto& e : h)
            if (e.at.change > c->change) s.offer(e.origin, e.frame);
    }

    const event_options options_;
    mutable std::mutex mutex_;
    std::map<key, std::deque<entry>> history_;
    std::set<std::shared_ptr<event_stream>> streams_;
    bool closed_ = false;
};

}  // namespace tether::server
