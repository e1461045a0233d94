#pragma once

/// @file
/// @brief `tether::server::postgres_live_feed`: the live events of every
/// tether-server process over one PostgreSQL database, for the `event_hub` of
/// this one (targets `tether::postgres` and `tether::server_http`).
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/server/cursor.hpp>
#include <tether/server/http/events.hpp>
#include <tether/server/postgres/listener.hpp>
#include <tether/server/postgres/notify.hpp>
#include <tether/server/postgres_store.hpp>
#include <tether/transport/live.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::server {

/// @brief The events of `user`'s `collection` after `after`, read from
/// `store` as a pull would carry them: each record at its last change, oldest
/// first, `created` if that change created it, `deleted` for a tombstone,
/// else `updated` with the whole record (an append read back is an update;
/// `replaces` is the change number before it, so only a receiver holding
/// exactly that applies it whole, any other fetches the record), each event's
/// `previous_cursor` the cursor of the one before (the first's: `after`).
/// `errc::cursor_expired` for a cursor of another epoch or beyond the
/// collection's last change, `errc::too_large` for more than `limit` changes
/// (the client pulls instead). A collection the store never held has none.
[[nodiscard]] inline result<std::vector<live_event>> pg_events_after(const postgres_store& store, std::string_view user,
                                                                     std::string_view collection, cursor after,
                                                                     std::size_t limit) {
    return store.read([&](auto& tx) -> result<std::vector<live_event>> {
        const scope s{user, collection};
        auto info = tx.collection(s);
        if (!info) return unexpected{std::move(info).error()};
        if (!*info) return std::vector<live_event>{};
        const collection_info c = **info;
        if (c.epoch != after.epoch || after.change > c.last_change)
            return unexpected{make_error(errc::cursor_expired, "the cursor is not one of this collection now")};
        auto changes = tx.changes_after(s, after.change, limit + 1);
        if (!changes) return unexpected{std::move(changes).error()};
        if (changes->size() > limit)
            return unexpected{make_error(errc::too_large, "more than " + std::to_string(limit) + " changes: pull")};
        std::vector<live_event> out;
        out.reserve(changes->size());
        cursor prev = after;
        for (auto& r : *changes) {
            live_event e;
            e.version = r.record.version;
            e.kind = r.deleted                                ? live_kind::deleted
                     : r.created_version == r.record.version ? live_kind::created
                                                              : live_kind::updated;
            if (e.kind != live_kind::created) {
                if (e.version < 2) continue;  // a tombstone of the collection's first change: no one holds it
                e.replaces = e.version - 1;
            }
            e.collection = std::string{collection};
            e.cursor = format_cursor({e.version, c.epoch});
            e.previous_cursor = prev == cursor{} ? std::string{} : format_cursor(prev);
            e.record = std::move(r.record);
            prev = {e.version, c.epoch};
            out.push_back(std::move(e));
        }
        return out;
    });
}

/// @brief The settings of a `postgres_live_feed`.
struct postgres_live_options {
    /// The most changes read from the store to close one gap or serve one
    /// resume; more and the streams concerned are told `reset` (they pull).
    std::size_t catch_up_limit = 1000;
    /// The listening connection's conninfo, when it must differ from the
    /// store's (a pooler in transaction mode cannot hold a `LISTEN`); empty:
    /// the store's.
    std::string conninfo;
    /// The listening connection's reconnection backoff.
    pg_listener_options listener;
    /// Told one line per trouble (a lost connection, a malformed
    /// notification, a gap it could not close); empty: silent.
    std::function<void(std::string_view)> log;
};

/// @brief Feeds `hub` with every change committed to the database, by any
/// process: one listening connection (`pg_listener` on the store's `change_channel()`)
/// whose notifications (see `postgres_store`) are told to the hub in commit
/// order. Each change once (the hub drops what it told already, so this
/// process's own changes, heard back from PostgreSQL, are not told twice),
/// never to the stream of the device that made it.
///
/// **Gaps.** A notification that carries its events and follows on from the
/// hub's last change of its collection is told as it is. A hint (the events
/// did not fit the payload), or one that does not follow on, is resolved by
/// reading the store after the hub's last change (`pg_events_after`). A
/// malformed payload is logged and treated as a gap of every collection.
/// Each time the connection listens again, every collection a stream follows
/// is caught up from the store from the last change told (the streams of one
/// no change was told of yet are told `reset`):
/// what the feed missed is read back or told, never silently skipped. What
/// the store cannot serve (over `catch_up_limit` changes, another epoch) is
/// told as `reset` to the collection's streams.
///
/// **Resume.** It sets the hub's backfill: a stream that resumes from a
/// cursor this process's history does not reach (the client read from
/// another process) gets the store's changes after it.
///
/// The listener runs on its own thread and reads the store through the
/// store's pool: a stalled listener never blocks a push.
class postgres_live_feed {
public:
    /// @brief Starts listening for `hub`, over the database of `store`.
    postgres_live_feed(postgres_store store, std::shared_ptr<event_hub> hub, postgres_live_options options = {})
        : store_(std::move(store)), hub_(std::move(hub)), options_(std::move(options)) {
        hub_->set_backfill([store = store_, limit = options_.catch_up_limit](std::string_view u, std::string_view c,
                                                                             cursor after) {
            return pg_events_after(store, u, c, after, limit);
        });
        pg_listener_handlers h;
        h.on_note = [this](std::string_view payload) { note_(payload); };
        h.on_listening = [this] { catch_up_all_("the live feed was interrupted"); };
        h.on_lost = [this](const error& why) { log_("live feed: " + why.message); };
        const std::string& conninfo = options_.conninfo.empty() ? store_.conninfo() : options_.conninfo;
        listener_ = std::make_unique<pg_listener>(conninfo, store_.change_channel(), std::move(h), options_.listener);
    }

    postgres_live_feed(const postgres_live_feed&) = delete;             ///< @brief Not copyable.
    postgres_live_feed& operator=(const postgres_live_feed&) = delete;  ///< @brief Not copyable.

    /// @brief Stops listening (the hub keeps its streams) and drops the backfill.
    ~postgres_live_feed() {
        listener_->stop();
        hub_->set_backfill({});
    }

    /// @brief True while the connection listens.
    [[nodiscard]] bool listening() const noexcept { return listener_->listening(); }
    /// @brief How many times the connection started listening.
    [[nodiscard]] std::uint64_t connects() const noexcept { return listener_->connects(); }
    /// @brief The listening session's backend pid (0 while not listening).
    [[nodiscard]] int backend_pid() const noexcept { return listener_->backend_pid(); }
    /// @brief Notifications heard so far.
    [[nodiscard]] std::uint64_t notes() const noexcept { return notes_.load(); }
    /// @brief Gaps closed by reading the store, or told as `reset`, so far.
    [[nodiscard]] std::uint64_t gaps() const noexcept { return gaps_.load(); }
    /// @brief Malformed notifications so far.
    [[nodiscard]] std::uint64_t malformed() const noexcept { return malformed_.load(); }

private:
    void note_(std::string_view payload) {
        notes_.fetch_add(1);
        auto n = decode_pg_change_note(payload);
        if (!n) {
            malformed_.fetch_add(1);
            log_("live feed: " + n.error().message + "; catching up from the store");
            return catch_up_all_("a malformed notification");
        }
        // Nobody follows the scope in this process: nothing to tell, nothing to read
        // (a stream opened later resumes from the store).
        if (!hub_->follows(n->user, n->collection)) return;
        const auto last = hub_->last(n->user, n->collection);
        const bool same_epoch = last && last->epoch == n->epoch;
        if (same_epoch && last->change >= n->to) return;  // told already
        const bool follows = !last || (same_epoch && last->change + 1 >= n->from);
        if (follows && !n->events.empty()) {
            for (const auto& e : n->events) hub_->publish(n->user, e);
            return;
        }
        if (!follows) gaps_.fetch_add(1);
        catch_up_(n->user, n->collection, same_epoch ? *last : cursor{n->from - 1, n->epoch});
    }

    // Tells the hub the store's changes of the scope after `after`, or `reset` if it cannot.
    void catch_up_(const std::string& user, const std::string& collection, cursor after) {
        auto events = pg_events_after(store_, user, collection, after, options_.catch_up_limit);
        if (!events) {
            gaps_.fetch_add(1);
            log_("live feed: cannot catch up '" + collection + "': " + events.error().message + "; streams reset");
            return hub_->cut(user, collection, "the live feed fell behind");
        }
        for (const auto& e : *events) hub_->publish(user, e);
    }

    void catch_up_all_(const std::string& reason) {
        for (const auto& [user, collection] : hub_->followed()) {
            const auto last = hub_->last(user, collection);
            if (last) catch_up_(user, collection, *last);
        }
        hub_->cut_untold(reason);
    }

    void log_(const std::string& line) const {
        if (options_.log) options_.log(line);
    }

    postgres_store store_;
    std::shared_ptr<event_hub> hub_;
    const postgres_live_options options_;
    std::atomic<std::uint64_t> notes_{0}, gaps_{0}, malformed_{0};
    std::unique_ptr<pg_listener> listener_;  // last: its thread stops first
};

}  // namespace tether::server
