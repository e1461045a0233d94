#pragma once

#include <tether/clock/clock.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether {

/// @brief What happened to a record, as told to watchers.
enum class change_kind : std::uint8_t {
    created,  ///< a new record (local create or pulled from the server)
    updated,  ///< value or sync metadata changed (local write, push outcome, pull)
    removed,  ///< the record is gone from the local store
};

/// @brief One change to one record, delivered to `watch` callbacks after it committed.
template <class E>
struct change {
    change_kind kind = change_kind::updated;  ///< what happened
    local_id id;                              ///< the record
    std::optional<record<E>> current;         ///< the record after the change (empty when removed)
    std::string cause;                        ///< "create", "update", "push applied", "pull", ...
};

/// @brief The engine's overall sync state, for a status indicator.
enum class engine_state : std::uint8_t {
    idle,          ///< nothing running; the last run had no failure
    syncing,       ///< a push or pull is running
    offline,       ///< `set_online(false)`: sync does nothing
    unauthorized,  ///< logged out or the server said 401: sync waits for `set_authenticated(true)`
    error,         ///< the last run met a failure (see its report); will retry
};

/// @brief The canonical name of an engine state.
[[nodiscard]] constexpr std::string_view to_string(engine_state s) noexcept {
    switch (s) {
        case engine_state::idle: return "idle";
        case engine_state::syncing: return "syncing";
        case engine_state::offline: return "offline";
        case engine_state::unauthorized: return "unauthorized";
        case engine_state::error: return "error";
    }
    return "unknown";
}

inline std::ostream& operator<<(std::ostream& os, engine_state s) { return os << to_string(s); }

/// @brief Health figures: counts by status and the age of the oldest unsynced change.
struct health_report {
    std::size_t pending = 0;                                ///< records waiting to go up
    std::size_t synced = 0;                                 ///< records equal to the server's
    std::size_t pending_deletion = 0;                       ///< local deletes not yet confirmed
    std::size_t error = 0;                                  ///< records waiting for a retry
    std::size_t failed = 0;                                 ///< records that gave up (see `reset_failed`)
    std::optional<std::chrono::milliseconds> oldest_pending_age;  ///< now − oldest unsynced change
    engine_state state = engine_state::idle;                ///< the engine's state
    std::uint64_t cleanup_failures = 0;                     ///< cleanup hook failures since start
    std::size_t unreadable = 0;       ///< stored records that do not decode (see `status_counts::unreadable`)
    std::uint64_t unapplied = 0;      ///< pulled items refused or skipped since start (see `sync_report::unapplied`)
    std::uint64_t resyncs = 0;        ///< full resyncs since start (a server gone back in time, or a 410)
};

/// @brief Why a sync call did nothing.
enum class skip_reason : std::uint8_t {
    offline,          ///< `set_online(false)` was called
    unauthorized,     ///< not authenticated (or paused by a 401)
    already_running,  ///< another sync was running; it goes round once more unless it failed or hit
                      ///< its round limit, in which case the sync-needed hook fires when it ends
};

/// @brief The canonical name of a skip reason.
[[nodiscard]] constexpr std::string_view to_string(skip_reason s) noexcept {
    switch (s) {
        case skip_reason::offline: return "offline";
        case skip_reason::unauthorized: return "unauthorized";
        case skip_reason::already_running: return "already_running";
    }
    return "unknown";
}

/// @brief What a `sync()`, `push()` or `pull()` did.
struct sync_report {
    std::size_t pushed = 0;               ///< ops the server applied
    std::size_t pulled = 0;               ///< server records and tombstones applied locally
    std::size_t conflicts = 0;            ///< conflicts settled by the conflict policy
    std::size_t retrying = 0;             ///< records moved to `error` (will retry after backoff)
    std::size_t failed = 0;               ///< records moved to `failed`
    std::size_t removed = 0;              ///< records deleted locally (confirmed or by the server)
    /// Pulled items that could not be applied (malformed: an empty, nil or
    /// duplicate id; a value that does not decode): each is skipped and logged,
    /// the rest of its page and the cursor commit, and one with a usable server
    /// id is fetched again at a later pull.
    std::size_t unapplied = 0;
    /// When the server said to come back (a 429/503's Retry-After, or the pull
    /// backoff after a failed pull): pulls before then are not sent.
    std::optional<timestamp> retry_at;
    std::optional<skip_reason> skipped;   ///< set if the call did nothing, and why
    std::optional<tether::error> failure; ///< a failure that cut the run short (e.g. offline mid-run)

    /// @brief True if the run did nothing because it was gated.
    [[nodiscard]] bool was_skipped() const noexcept { return skipped.has_value(); }
};

/// @brief Severity of a message from the engine's log hook.
enum class log_level : std::uint8_t { debug, info, warning, error };

/// @brief Keeps a watch callback registered; unregisters it when destroyed or `reset()`.
///
/// A callback already running on another thread may finish after `reset()` returns.
class subscription {
public:
    subscription() = default;
    /// @brief Wraps the function that cancels the registration.
    explicit subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
    subscription(subscription&& other) noexcept : cancel_(std::exchange(other.cancel_, {})) {}
    subscription& operator=(subscription&& other) noexcept {
        if (this != &other) {
            reset();
            cancel_ = std::exchange(other.cancel_, {});
        }
        return *this;
    }
    subscription(const subscription&) = delete;
    subscription& operator=(const subscription&) = delete;
    ~subscription() { reset(); }

    /// @brief Unregisters the callback now (idempotent).
    void reset() noexcept {
        if (cancel_) {
            auto c = std::exchange(cancel_, {});
            c();
        }
    }
    /// @brief True while the callback is registered.
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(cancel_); }

private:
    std::function<void()> cancel_;
};

namespace detail {

/// Callbacks keyed by id; notification copies the list under the lock and calls
/// outside it, so a callback may subscribe, unsubscribe or write to the engine.
template <class... Args>
class registry : public std::enable_shared_from_this<registry<Args...>> {
public:
    using fn_type = std::function<void(Args...)>;

    subscription add(fn_type fn) {
        auto shared = std::make_shared<const fn_type>(std::move(fn));
        std::uint64_t id = 0;
        {
            std::lock_guard lock{mutex_};
            id = next_++;
            entries_.emplace_back(id, std::move(shared));
            size_.store(entries_.size(), std::memory_order_release);
        }
        std::weak_ptr<registry> weak = this->shared_from_this();
        return subscription{[weak, id] {
            if (auto self = weak.lock()) self->remove(id);
        }};
    }

    void notify(const Args&... args) const {
        if (size_.load(std::memory_order_acquire) == 0) return;
        std::vector<std::shared_ptr<const fn_type>> snapshot;
        {
            std::lock_guard lock{mutex_};
            snapshot.reserve(entries_.size());
            for (const auto& e : entries_) snapshot.push_back(e.second);
        }
        for (const auto& fn : snapshot) (*fn)(args...);
    }

    [[nodiscard]] bool empty() const noexcept { return size_.load(std::memory_order_acquire) == 0; }

private:
    void remove(std::uint64_t id) {
        std::lock_guard lock{mutex_};
        std::erase_if(entries_, [&](const auto& e) { return e.first == id; });
        size_.store(entries_.size(), std::memory_order_release);
    }

    mutable std::mutex mutex_;
    std::vector<std::pair<std::uint64_t, std::shared_ptr<const fn_type>>> entries_;
    std::uint64_t next_ = 1;
    std::atomic<std::size_t> size_{0};
};

}  // namespace detail
}  // namespace tether
