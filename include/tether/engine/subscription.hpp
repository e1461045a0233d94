#pragma once

// A watch registration (RAII), and the registry of callbacks behind it.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace tether {

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
