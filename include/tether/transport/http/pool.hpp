#pragma once

// tether::http: a small pool of keep-alive cpp-httplib clients. One
// `httplib::Client` must not serve two requests at once, so each request leases
// a client for its duration; requests from several threads run on separate
// connections, up to the pool's size, and the rest wait for one to come back.
// Shared by every HTTP transport.
#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace tether::http {

/// @brief At most `capacity()` clients, made on demand by a factory and kept
/// for reuse (each keeps its connection alive between requests). Thread-safe.
/// The pool must outlive its leases.
class connection_pool {
public:
    /// @brief Makes one client, configured (timeouts, keep-alive, TCP_NODELAY, TLS).
    using factory = std::function<std::unique_ptr<httplib::Client>()>;

    /// @brief Exclusive use of one client until destroyed, when it goes back to the pool.
    class lease {
    public:
        /// @brief Takes over `other`'s client.
        lease(lease&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)), client_(std::move(other.client_)) {}
        lease& operator=(lease&&) = delete;
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;
        /// @brief Gives the client back to the pool.
        ~lease() {
            if (pool_ != nullptr) pool_->give_back_(std::move(client_));
        }

        /// @brief The leased client.
        [[nodiscard]] httplib::Client& client() noexcept { return *client_; }

    private:
        friend class connection_pool;
        lease(connection_pool* pool, std::unique_ptr<httplib::Client> c) : pool_(pool), client_(std::move(c)) {}
        connection_pool* pool_;
        std::unique_ptr<httplib::Client> client_;
    };

    /// @brief A pool of up to `capacity` clients (0 counts as 1) made by `make`.
    connection_pool(std::size_t capacity, factory make)
        : capacity_(capacity == 0 ? 1 : capacity), make_(std::move(make)) {}

    connection_pool(const connection_pool&) = delete;
    connection_pool& operator=(const connection_pool&) = delete;

    /// @brief A client: an idle one (the most recently used, whose connection is
    /// likeliest still open), a new one while fewer than `capacity()` exist, or
    /// else the first one given back. Exceptions from the factory propagate.
    [[nodiscard]] lease acquire() {
        std::unique_lock lock{mutex_};
        returned_.wait(lock, [&] { return !idle_.empty() || made_ < capacity_; });
        if (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            return lease{this, std::move(c)};
        }
        ++made_;
        lock.unlock();
        try {
            return lease{this, make_()};
        } catch (...) {
            lock.lock();
            --made_;
            returned_.notify_one();
            throw;
        }
    }

    /// @brief The most clients the pool makes.
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

    /// @brief How many clients exist now (leased or idle).
    [[nodiscard]] std::size_t made() const {
        std::lock_guard lock{mutex_};
        return made_;
    }

private:
    void give_back_(std::unique_ptr<httplib::Client> c) {
        {
            std::lock_guard lock{mutex_};
            if (c) idle_.push_back(std::move(c));
            else --made_;
        }
        returned_.notify_one();
    }

    const std::size_t capacity_;
    factory make_;
    mutable std::mutex mutex_;
    std::condition_variable returned_;
    std::vector<std::unique_ptr<httplib::Client>> idle_;
    std::size_t made_ = 0;
};

}  // namespace tether::http
