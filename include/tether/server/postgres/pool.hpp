#pragma once

/// @file
/// @brief Internals of the PostgreSQL server store: a pool of connections to
/// one database, so that transactions from many threads run at once.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/server/postgres/connection.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tether::server::detail {

/// Up to `max` connections to one database, opened when first needed. A
/// connection goes back to the pool only if it works and has no transaction
/// open; a lost one is dropped, and the next caller opens a fresh one.
class pg_pool {
public:
    /// A pool of at most `max` (at least 1) connections with `conninfo`.
    pg_pool(std::string conninfo, std::size_t max) : conninfo_(std::move(conninfo)), max_(max == 0 ? 1 : max) {}

    /// A connection taken from the pool; it goes back when the lease ends.
    class lease {
    public:
        /// Takes `c` from `pool`.
        lease(pg_pool* pool, pg_connection c) noexcept : pool_(pool), c_(std::move(c)) {}
        /// Takes over `o`'s connection.
        lease(lease&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), c_(std::move(o.c_)) {}
        lease(const lease&) = delete;             ///< Not copyable.
        lease& operator=(const lease&) = delete;  ///< Not copyable.
        lease& operator=(lease&&) = delete;       ///< Not assignable.
        /// Gives the connection back (or drops it if it is lost or mid-transaction).
        ~lease() {
            if (pool_) pool_->give_back_(std::move(*c_));
        }
        /// The connection.
        pg_connection& operator*() noexcept { return *c_; }
        /// The connection.
        pg_connection* operator->() noexcept { return &*c_; }

    private:
        pg_pool* pool_;
        std::optional<pg_connection> c_;
    };

    /// An idle connection, a new one if none is idle and fewer than `max` are
    /// open, else the next one given back; a failure to connect is `errc::transient`.
    result<lease> acquire() {
        std::unique_lock lock{mutex_};
        freed_.wait(lock, [&] { return !idle_.empty() || open_ < max_; });
        if (!idle_.empty()) {
            pg_connection c = std::move(idle_.back());
            idle_.pop_back();
            return lease{this, std::move(c)};
        }
        ++open_;
        lock.unlock();
        auto c = pg_connection::open(conninfo_);
        if (!c) {
            lock.lock();
            --open_;
            freed_.notify_one();
            return unexpected{std::move(c).error()};
        }
        c->count_round_trips_in(&round_trips_);
        return lease{this, std::move(*c)};
    }

    /// How many times its connections waited for the server since the pool was made.
    [[nodiscard]] std::uint64_t round_trips() const noexcept { return round_trips_.load(std::memory_order_relaxed); }

    /// The conninfo it connects with.
    [[nodiscard]] const std::string& conninfo() const noexcept { return conninfo_; }

private:
    void give_back_(pg_connection c) {
        const bool keep = c.reusable();
        std::optional<pg_connection> dropped;
        if (!keep) dropped.emplace(std::move(c));  // closed outside the lock
        {
            std::lock_guard lock{mutex_};
            if (keep) idle_.push_back(std::move(c));
            else --open_;
        }
        freed_.notify_one();
    }

    std::string conninfo_;
    std::size_t max_;
    std::mutex mutex_;
    std::condition_variable freed_;
    std::vector<pg_connection> idle_;
    std::size_t open_ = 0;
    std::atomic<std::uint64_t> round_trips_{0};
};

}  // namespace tether::server::detail
