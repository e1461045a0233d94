#pragma once

// Delivery in commit order: what watchers and hooks hear, outside every lock.
// Not a public entry point.
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

namespace tether::detail {

/// Runs callbacks in the order of numbers handed out beforehand, whichever
/// thread finishes first, and never under the caller's locks.
///
/// A writer takes a number with `reserve()` while it holds the store's write
/// lock (so numbers follow commit order), then hands in what to run with
/// `fulfil(n, fn)` after it released the lock (an empty `fn` when there is
/// nothing to run, e.g. the transaction rolled back). Whoever hands in the next
/// number due runs it, and every later one already handed in; a callback that
/// writes again (a watcher editing the record) hands in its own number and
/// returns, and the loop already running delivers it next. So two threads
/// writing one record are heard in commit order, `v1` before `v2`.
class ordered_delivery {
public:
    /// @brief The next number, to be taken under the store's write lock.
    std::uint64_t reserve() {
        std::lock_guard lock{mutex_};
        return next_seq_++;
    }

    /// @brief Hands in what number `seq` runs (empty: nothing) and runs what is due.
    void fulfil(std::uint64_t seq, std::function<void()> fn) {
        std::unique_lock lock{mutex_};
        pending_.emplace(seq, std::move(fn));
        drain(lock);
    }

    /// @brief Takes the next number and runs `make()` under the queue's lock to
    /// say what to run (an empty function: nothing), so the order of the calls
    /// is the order of delivery (engine states).
    template <class Make>
    void post(Make&& make) {
        std::unique_lock lock{mutex_};
        pending_.emplace(next_seq_++, std::forward<Make>(make)());
        drain(lock);
    }

private:
    void drain(std::unique_lock<std::mutex>& lock) {
        if (draining_) return;  // the loop running (maybe this thread's, further up) delivers it
        draining_ = true;
        struct reset {
            bool& flag;
            std::unique_lock<std::mutex>& lock;
            ~reset() {
                if (!lock.owns_lock()) lock.lock();
                flag = false;
            }
        } guard{draining_, lock};
        while (!pending_.empty() && pending_.begin()->first == next_run_) {
            auto fn = std::move(pending_.begin()->second);
            pending_.erase(pending_.begin());
            ++next_run_;
            if (!fn) continue;
            lock.unlock();
            fn();  // an exception propagates to this caller; later numbers wait for the next hand-in
            lock.lock();
        }
    }

    std::mutex mutex_;
    std::uint64_t next_seq_ = 0;
    std::uint64_t next_run_ = 0;
    std::map<std::uint64_t, std::function<void()>> pending_;
    bool draining_ = false;
};

/// A reserved delivery number that is always handed in: moved along with the
/// effects it orders, and handed in empty if they are dropped unsent (a write
/// that threw, a deferred delivery that rolled back).
class delivery_ticket {
public:
    delivery_ticket() = default;
    delivery_ticket(const delivery_ticket&) = delete;
    delivery_ticket& operator=(const delivery_ticket&) = delete;
    delivery_ticket(delivery_ticket&& o) noexcept : order_(std::exchange(o.order_, nullptr)), seq_(o.seq_) {}
    delivery_ticket& operator=(delivery_ticket&& o) noexcept {
        if (this != &o) {
            release();
            order_ = std::exchange(o.order_, nullptr);
            seq_ = o.seq_;
        }
        return *this;
    }
    ~delivery_ticket() { release(); }

    /// @brief Takes a number from `order` unless one is held already (under the write lock).
    void take(ordered_delivery& order) {
        if (order_ != nullptr) return;
        seq_ = order.reserve();
        order_ = &order;
    }
    /// @brief True while a number is held.
    [[nodiscard]] bool held() const noexcept { return order_ != nullptr; }
    /// @brief Hands `fn` in under the held number (runs it now when nothing is held).
    void fulfil(std::function<void()> fn) {
        if (order_ == nullptr) {
            if (fn) fn();
            return;
        }
        std::exchange(order_, nullptr)->fulfil(seq_, std::move(fn));
    }

private:
    void release() noexcept {
        if (order_ == nullptr) return;
        try {
            std::exchange(order_, nullptr)->fulfil(seq_, {});
        } catch (...) {
            // Only a watcher's exception from a later delivery can end up here: dropped.
        }
    }

    ordered_delivery* order_ = nullptr;
    std::uint64_t seq_ = 0;
};

}  // namespace tether::detail
