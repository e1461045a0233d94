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
#include <functional>
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
        {
            std::lock_guard lock{mutex_};
            if (!queue_locked_(origin, frame)) return;
        }
        ready_.notify_one();
    }

    /// @brief As above, for the change that moves the collection from
    /// `before` to `at`. Once the stream knows where it is (`place`, or an
    /// earlier offer of this form), a change at or before that point is a
    /// duplicate (dropped), one that does not start at or before it is a gap
    /// (the stream is cut: `reset`, never a silent gap), and a change of
    /// another epoch starts over there. While the stream is held (`hold`),
    /// offers wait in order for `unhold`.
    void offer(std::string_view origin, const std::string& frame, cursor before, cursor at) {
        {
            std::lock_guard lock{mutex_};
            if (cut_ || closed_) return;
            if (held_) {
                if (pending_.size() >= queue_limit_) return cut_locked_("queue limit");
                pending_.push_back(change{std::string{origin}, frame, before, at});
                return;
            }
            if (step_locked_(before, at)) (void)queue_locked_(origin, frame);
        }
        ready_.notify_one();  // also for a cut
    }

    /// @brief Offers wait from now on (see `offer`) until `unhold`: the hub
    /// fills the stream from the store meanwhile.
    void hold() {
        std::lock_guard lock{mutex_};
        held_ = true;
    }

    /// @brief Sets where the stream is: every change up to `at` is told (or
    /// was, to the client, before it opened).
    void place(cursor at) {
        std::lock_guard lock{mutex_};
        last_ = at;
    }

    /// @brief A change as `offer` takes it.
    struct change {
        std::string origin;  ///< the device that made it
        std::string frame;   ///< its event's frame
        cursor before;       ///< the cursor just before it
        cursor at;           ///< the cursor just after it
    };

    /// @brief Ends `hold`: `first` (the fill) is queued, then the offers
    /// that waited, in order (the ones the fill covered are duplicates then).
    void unhold(const std::vector<change>& first = {}) {
        {
            std::lock_guard lock{mutex_};
            held_ = false;
            for (const auto& p : first)
                if (!cut_ && !closed_ && step_locked_(p.before, p.at)) (void)queue_locked_(p.origin, p.frame);
            for (const auto& p : pending_)
                if (!cut_ && !closed_ && step_locked_(p.before, p.at)) (void)queue_locked_(p.origin, p.frame);
            pending_.clear();
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
    // Queues `frame` unless the device made the change (true: queued).
    bool queue_locked_(std::string_view origin, const std::string& frame) {
        if (!origin.empty() && origin == device_) return false;
        if (cut_ || closed_) return false;
        if (queue_.size() >= queue_limit_) {
            cut_locked_("queue limit");
            return true;  // the reader wakes to the reset
        }
        queue_.push_back(frame);
        return true;
    }

    // Moves the stream's place for a change from `before` to `at`; false if
    // the change is not to be queued (a duplicate, or a gap: then cut).
    bool step_locked_(cursor before, cursor at) {
        if (last_ && last_->epoch == at.epoch) {
            if (at.change <= last_->change) return false;
            if (before.epoch != at.epoch || before.change > last_->change) {
                cut_locked_("gap in the live feed");
                return false;
            }
        }
        last_ = at;
        return true;
    }

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
    std::optional<cursor> last_;   // where the stream is, once known
    bool held_ = false;            // offers wait in pending_
    std::deque<change> pending_;
    bool cut_ = false, closed_ = false;
    std::string reason_;
};

/// @brief What `event_hub::set_backfill` takes: the events of `user`'s
/// `collection` after `after`, as a pull would carry them (each record at its
/// last change, in order, each event's `previous_cursor` the cursor of the one
/// before it, the first's `after`); an error when the store cannot serve them
/// (another epoch, a cursor beyond the collection's last change, too many):
/// the stream is told `reset` then.
using backfill_fn =
    std::function<result<std::vector<live_event>>(std::string_view user, std::string_view collection, cursor after)>;

/// @brief The live events of one HTTP face: every change of the service
/// (`publish`, its observer, or a feed from elsewhere), a short history per
/// (user, collection), and the streams open (see `event_options`). Thread-safe.
///
/// **Order.** Per (user, collection) the hub keeps the last change it told:
/// a change at or before it is a duplicate and dropped (a feed may tell a
/// change twice: once per process, once per source), so each change is told
/// once. A stream that knows where it is (it resumed from the history or the
/// store) is cut with `reset` on a change that does not follow on from it:
/// never a silent gap.
///
/// **Memory.** With a backfill set, only the collections with a stream open
/// keep a history (the others keep their last change); without, every
/// collection changed since the first stream opened keeps one.
///
/// **Resume.** A stream opens at a cursor (the client's pull cursor, or the
/// `id` of the last event it read). The history's events after it are
/// queued first when the history reaches back to it. When it does not (the
/// cursor is older, or this process has no history of the collection yet:
/// the client last read from another process), the backfill (`set_backfill`,
/// the store's changes) serves the events after the cursor, or the stream is
/// told `reset` when it cannot (an empty cursor the history does not reach
/// carries what changes from now on: the client pulls from the start anyway);
/// with no backfill set, a cursor older than the
/// history (or of another epoch, or not a cursor of this server) is told
/// `reset` at once, and with no history yet the stream carries what changes
/// from now on, the pull being the authority for what came before.
class event_hub {
public:
    /// @brief A hub with `options`.
    explicit event_hub(event_options options) : options_(options) {}

    /// @brief The options it was made with.
    [[nodiscard]] const event_options& options() const noexcept { return options_; }

    /// @brief Serves resumes the history cannot serve from `fill` (see the
    /// class); an empty function: none (the default).
    void set_backfill(backfill_fn fill) {
        std::lock_guard lock{mutex_};
        backfill_ = fill ? std::make_shared<const backfill_fn>(std::move(fill)) : nullptr;
    }

    /// @brief Opens a stream of `user`'s `collection` from `cursor` for
    /// `device`; `errc::transient` with status 503 and `Retry-After` when
    /// `max_streams` are open or the hub is closed. A backfill runs on the
    /// calling thread, before this returns.
    [[nodiscard]] result<std::shared_ptr<event_stream>> open(std::string_view user, std::string_view collection,
                                                             std::string_view device, std::string_view cursor) {
        std::shared_ptr<event_stream> s;
        std::optional<server::cursor> fill_from;
        std::shared_ptr<const backfill_fn> fill;
        {
            std::lock_guard lock{mutex_};
            if (closed_ || streams_.size() >= options_.max_streams)
                return unexpected{error{errc::transient,
                                        closed_ ? "the server is stopping" : "too many event streams open", 503,
                                        options_.retry_after}};
            s = std::make_shared<event_stream>(std::string{user}, std::string{collection}, std::string{device},
                                               options_.queue_limit);
            fill_from = replay_(*s, key{std::string{user}, std::string{collection}}, cursor);
            if (fill_from) s->hold();
            streams_.insert(s);
            fill = backfill_;
        }
        if (fill_from) backfill_stream_(*s, *fill, user, collection, *fill_from);
        return s;
    }

    /// @brief Forgets stream `s` (it ended).
    void release(const std::shared_ptr<event_stream>& s) {
        std::lock_guard lock{mutex_};
        streams_.erase(s);
    }

    /// @brief One committed change of `user` (the service's observer, or a
    /// feed): told to the streams of its collection unless it is a duplicate
    /// (see the class).
    void publish(std::string_view user, const live_event& ev) {
        auto e = entry_of_(ev);
        if (!e) return;  // cannot happen for what the service stores; never sent half
        std::lock_guard lock{mutex_};
        const key k{std::string{user}, ev.collection};
        if (!e->placed) {
            for (const auto& s : streams_)
                if (s->user() == user && s->collection() == ev.collection) s->offer(e->origin, e->frame);
            return;
        }
        bool followed = false;
        for (const auto& s : streams_)
            if (s->user() == user && s->collection() == ev.collection) followed = true;
        if (backfill_ && !followed) {
            // Nobody follows it here and the store serves its resumes: nothing is
            // kept of it, so the map does not grow with every scope the feed hears.
            trails_.erase(k);
            return;
        }
        auto& t = trails_[k];
        if (t.last && t.last->epoch == e->at.epoch && e->at.change <= t.last->change) return;  // told already
        const bool follows = t.last && t.last->epoch == e->at.epoch && e->before.epoch == e->at.epoch &&
                             e->before.change <= t.last->change;
        // Not contiguous with what is kept: resume only from here on. With a
        // backfill, only a collection followed here keeps a history (the
        // store serves the others' resumes): a feed of every process's
        // changes does not fill the memory with collections nobody follows here.
        if (!follows || (backfill_ && !followed)) t.kept.clear();
        t.last = e->at;
        if (!backfill_ || followed) t.kept.push_back(*e);
        while (t.kept.size() > options_.history) t.kept.pop_front();
        for (const auto& s : streams_)
            if (s->user() == user && s->collection() == ev.collection) s->offer(e->origin, e->frame, e->before, e->at);
    }

    /// @brief True if a stream of `user`'s `collection` is open here.
    [[nodiscard]] bool follows(std::string_view user, std::string_view collection) const {
        std::lock_guard lock{mutex_};
        for (const auto& s : streams_)
            if (s->user() == user && s->collection() == collection) return true;
        return false;
    }

    /// @brief The last change told of `user`'s `collection`; empty if none yet.
    [[nodiscard]] std::optional<cursor> last(std::string_view user, std::string_view collection) const {
        std::lock_guard lock{mutex_};
        auto found = trails_.find(key{std::string{user}, std::string{collection}});
        if (found == trails_.end()) return std::nullopt;
        return found->second.last;
    }

    /// @brief Every (user, collection) a stream follows now and a change was
    /// told of; the others' last changes are forgotten (a feed that lost
    /// track catches up only what someone follows: the next change of another
    /// collection starts it over).
    [[nodiscard]] std::vector<std::pair<std::string, std::string>> followed() {
        std::lock_guard lock{mutex_};
        std::set<key> open;
        for (const auto& s : streams_) open.insert(key{s->user(), s->collection()});
        std::vector<std::pair<std::string, std::string>> out;
        for (auto it = trails_.begin(); it != trails_.end();) {
            if (!open.contains(it->first)) {
                it = trails_.erase(it);
                continue;
            }
            if (it->second.last) out.push_back(it->first);
            ++it;
        }
        return out;
    }

    /// @brief Tells the streams of `user`'s `collection` `reset` (with
    /// `reason`) and forgets its history: the feed lost track of it.
    void cut(std::string_view user, std::string_view collection, const std::string& reason) {
        std::lock_guard lock{mutex_};
        trails_.erase(key{std::string{user}, std::string{collection}});
        for (const auto& s : streams_)
            if (s->user() == user && s->collection() == collection) s->cut(reason);
    }

    /// @brief Tells `reset` to every stream of a collection no change was
    /// told of yet (the feed was interrupted: what it missed is unknown).
    void cut_untold(const std::string& reason) {
        std::lock_guard lock{mutex_};
        for (const auto& s : streams_) {
            auto found = trails_.find(key{s->user(), s->collection()});
            if (found == trails_.end() || !found->second.last) s->cut(reason);
        }
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
        cursor before, at;
        bool placed = false;  // the cursors parsed
        std::string origin;
        std::string frame;
    };
    struct trail {
        std::deque<entry> kept;       // the history, contiguous
        std::optional<cursor> last;   // the last change told
    };
    using key = std::pair<std::string, std::string>;

    // The frame of `ev` and where it steps the collection (from its previous cursor to its cursor).
    static std::optional<entry> entry_of_(const live_event& ev) {
        auto text = protocol::encode_live_event(ev);
        if (!text) return std::nullopt;
        entry e;
        e.origin = ev.record.origin;
        e.frame = protocol::sse_event_text(ev.cursor, to_string(ev.kind), *text);
        if (const auto at = server::parse_cursor(ev.cursor)) {
            e.placed = true;
            e.at = *at;
            const auto before = server::parse_cursor(ev.previous_cursor);
            e.before = ev.previous_cursor.empty() ? cursor{} : before.value_or(cursor{at->change - 1, at->epoch});
        }
        return e;
    }

    // Queues the history after `from` on `s` (under the lock); returns the
    // cursor to backfill from when the history does not reach back to it and
    // a backfill is set; cuts `s` when neither can serve it.
    std::optional<cursor> replay_(event_stream& s, const key& k, std::string_view from) {
        const std::optional<cursor> c = from.empty() ? std::optional<cursor>{cursor{}} : server::parse_cursor(from);
        auto found = trails_.find(k);
        if (found == trails_.end() || found->second.kept.empty()) {
            if (!backfill_ || from.empty()) return std::nullopt;  // from now on
            if (!c) s.cut("cursor unknown here");
            return c;
        }
        const auto& h = found->second.kept;
        const bool reaches = c && c->epoch == h.back().at.epoch &&
                             (c->change >= h.back().at.change ||
                              (h.front().before.epoch == c->epoch && c->change >= h.front().before.change));
        if (!reaches) {
            if (backfill_ && from.empty()) return std::nullopt;  // from now on, as with no history: the pull covers it
            if (backfill_ && c) return c;
            s.cut(!c || c->epoch != h.back().at.epoch ? "cursor unknown here" : "cursor older than the history");
            return std::nullopt;
        }
        s.place(*c);
        for (const auto& e : h)
            if (e.at.change > c->change) s.offer(e.origin, e.frame, e.before, e.at);
        return std::nullopt;
    }

    // Fills held stream `s` from `fill` after `from`, then lets it go on.
    static void backfill_stream_(event_stream& s, const backfill_fn& fill, std::string_view user,
                                 std::string_view collection, cursor from) {
        std::vector<event_stream::change> first;
        auto events = fill(user, collection, from);
        if (!events) {
            s.cut("cannot resume here");  // the store cannot serve the cursor: pull
        } else {
            s.place(from);
            for (const auto& ev : *events)
                if (auto e = entry_of_(ev); e && e->placed) first.push_back({e->origin, e->frame, e->before, e->at});
        }
        s.unhold(first);
    }

    const event_options options_;
    mutable std::mutex mutex_;
    std::map<key, trail> trails_;
    std::set<std::shared_ptr<event_stream>> streams_;
    std::shared_ptr<const backfill_fn> backfill_;
    bool closed_ = false;
};

}  // namespace tether::server
