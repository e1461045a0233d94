#pragma once

/// @file
/// @brief `tether::loopback_events`: the live feed of a `loopback_server`, with
/// its fault knobs (duplicate, reorder, drop, delay, a dropped subscription).
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/testing/loopback_faults.hpp>
#include <tether/transport/live.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether {

/// @brief Per-delivery probabilities of the random faults of a `loopback_events` feed.
///
/// Each delivery (one event to one subscription) draws one number `u` in
/// [0, 1) and meets the first fault whose cumulative rate exceeds it, in this
/// order: `drop`, `duplicate`, `reorder`, `delay`, `end_subscription`. Keep
/// their sum at most 1.
struct live_fault_rates {
    double drop = 0;              ///< the event is lost
    double duplicate = 0;         ///< the event is delivered twice in a row
    double reorder = 0;           ///< the event is held and delivered just after the subscription's next one
    double delay = 0;             ///< the event is held until the clock passes now + `delay_for`
    double end_subscription = 0;  ///< the event is lost and the subscription ends (`live_handler::on_end`)
    std::chrono::milliseconds delay_for{1000};  ///< how long a random `delay` holds an event
};

/// @brief How many faults a `loopback_events` feed has injected, and what it delivered.
struct live_fault_counts {
    std::uint64_t published = 0;   ///< deliveries due: one per (change, subscription it goes to)
    std::uint64_t delivered = 0;   ///< events handed to handlers (duplicates count twice)
    std::uint64_t dropped = 0;     ///< events lost
    std::uint64_t duplicated = 0;  ///< events delivered a second time
    std::uint64_t reordered = 0;   ///< events delivered after the one that followed them
    std::uint64_t delayed = 0;     ///< events held for a time (or until `release_held`)
    std::uint64_t ended = 0;       ///< subscriptions the feed ended
    /// @brief Field-wise equality.
    friend bool operator==(const live_fault_counts&, const live_fault_counts&) = default;
};

/// @brief The live feed of a `loopback_server` (`loopback_server::events()`).
///
/// A handle: copies share one feed; every member is thread-safe. Subscriptions
/// are kept per (user, collection); each committed change goes to every
/// subscription of the change's user and collection **except the device it
/// came from** (the record's `origin`; a change with no origin, a server-side
/// edit, goes to all), never to another user. The feed carries the changes
/// committed after a subscription is made: what lies between the subscriber's
/// cursor and that moment is the pull's.
///
/// Delivery: the server queues a change's deliveries when it commits and hands
/// them to the handlers once the request has released the server's lock (on
/// the thread that made the change), in commit order. Handlers run one at a
/// time; a handler may call the server, and may reset its own subscription,
/// but must not wait for another thread that is making a change.
///
/// Faults, scripted (checked first, in this order: `drop_next`,
/// `duplicate_next`, `reorder_next`, `delay_next`) or seeded-random
/// (`live_fault_rates`), per delivery; `end_subscriptions` ends subscriptions
/// now. Held events wait for no timer: a delayed one is delivered at the first
/// delivery or `deliver_due()` once the server's clock has passed its time, a
/// reordered one just after its subscription's next event, and any of them by
/// `release_held()`.
class loopback_events {
public:
    /// @brief A feed whose time is `now()` (for delays).
    explicit loopback_events(std::function<timestamp()> now) : state_(std::make_shared<state>(std::move(now))) {}

    /// @brief Subscribes `handler` to `user`'s changes of `req.collection` (see the class).
    [[nodiscard]] result<live_subscription> subscribe(std::string_view user, const live_request& req,
                                                      live_handler handler) {
        std::lock_guard lock{state_->mutex};
        const std::uint64_t id = ++state_->next_id;
        state_->subs.emplace(id, sub{std::string{user}, std::string{req.collection}, std::string{req.device},
                                     std::move(handler)});
        return live_subscription{[w = std::weak_ptr<state>{state_}, id] {
            if (auto s = w.lock()) cancel_(*s, id);
        }};
    }

    /// @brief Queues `change` of `user` for its subscriptions (the server's
    /// observer calls it, under its lock); `flush()` hands it over.
    void publish(std::string_view user, const live_event& change) {
        std::lock_guard lock{state_->mutex};
        auto& s = *state_;
        std::vector<std::uint64_t> to;  // routing may end a subscription: not while iterating
        for (const auto& [id, sb] : s.subs) {
            if (sb.user != user || sb.collection != change.collection) continue;
            if (!change.record.origin.empty() && change.record.origin == sb.device) continue;
            to.push_back(id);
        }
        for (auto id : to) {
            ++s.counts.published;
            route_(s, id, change);
        }
    }

    /// @brief Hands every queued delivery to its handler (and delayed ones now due).
    void flush() {
        std::lock_guard delivering{state_->delivering};
        for (;;) {
            std::function<void()> call;
            {
                std::lock_guard lock{state_->mutex};
                auto& s = *state_;
                release_due_(s);
                if (s.ready.empty()) return;
                call = take_(s);
            }
            if (call) call();
        }
    }

    /// @brief Delivers the delayed events whose time the clock has passed.
    void deliver_due() { flush(); }

    /// @brief Delivers every held event now (delayed and reordered), in the order they were held.
    void release_held() {
        {
            std::lock_guard lock{state_->mutex};
            auto& s = *state_;
            for (auto& h : s.held) s.ready.push_back(delivery{h.sub, std::move(h.event), {}, {}});
            s.held.clear();
        }
        flush();
    }

    /// @brief Ends every subscription to `user`'s `collection`: each is told
    /// `why` (`live_handler::on_end`) and hears nothing more.
    void end_subscriptions(std::string_view user, std::string_view collection,
                           error why = error{errc::transient, "live feed closed", std::nullopt, std::nullopt}) {
        {
            std::lock_guard lock{state_->mutex};
            auto& s = *state_;
            std::vector<std::uint64_t> ids;
            for (const auto& [id, sb] : s.subs)
                if (sb.user == user && sb.collection == collection) ids.push_back(id);
            for (auto id : ids) end_(s, id, why);
        }
        flush();
    }

    /// @brief The next `n` deliveries are lost.
    void drop_next(std::size_t n) { with_([n](state& s) { s.drop = n; }); }
    /// @brief The next `n` deliveries are each delivered twice.
    void duplicate_next(std::size_t n) { with_([n](state& s) { s.duplicate = n; }); }
    /// @brief The next `n` deliveries are each held until just after their subscription's next event.
    void reorder_next(std::size_t n) { with_([n](state& s) { s.reorder = n; }); }
    /// @brief The next `n` deliveries are held until the clock passes `until`
    /// (empty: until `release_held()`).
    void delay_next(std::size_t n, std::optional<timestamp> until = std::nullopt) {
        with_([n, until](state& s) {
            s.delay = n;
            s.delay_until = until;
        });
    }
    /// @brief Turns on random faults at `rates`, drawn from `seed` (deterministic per seed).
    void set_random_faults(live_fault_rates rates, std::uint64_t seed) {
        with_([rates, seed](state& s) {
            s.random = rates;
            s.rng = seed;
        });
    }
    /// @brief Turns random faults off.
    void clear_random_faults() { with_([](state& s) { s.random.reset(); }); }

    /// @brief The faults injected and deliveries made so far.
    [[nodiscard]] live_fault_counts faults() const {
        std::lock_guard lock{state_->mutex};
        return state_->counts;
    }
    /// @brief How many subscriptions to `user`'s `collection` are open.
    [[nodiscard]] std::size_t subscriptions(std::string_view user, std::string_view collection) const {
        std::lock_guard lock{state_->mutex};
        std::size_t n = 0;
        for (const auto& [id, sb] : state_->subs) n += sb.user == user && sb.collection == collection ? 1 : 0;
        return n;
    }
    /// @brief How many events are held (delayed or reordered).
    [[nodiscard]] std::size_t held() const {
        std::lock_guard lock{state_->mutex};
        return state_->held.size();
    }

private:
    struct sub {
        std::string user, collection, device;
        live_handler handler;
    };
    struct delivery {
        std::uint64_t sub = 0;
        std::optional<live_event> event;      // an event, or
        std::function<void(error)> on_end{};  // the end of a subscription (already removed), with
        std::optional<error> why{};           // its reason
    };
    struct hold {
        std::uint64_t sub = 0;
        live_event event;
        std::optional<timestamp> due;  // delayed until; empty: reordered (or until released)
        bool reorder = false;
    };
    struct state {
        explicit state(std::function<timestamp()> n) : now(std::move(n)) {}
        std::mutex mutex;                  // guards everything below
        std::recursive_mutex delivering;   // held while handlers run (a handler may reset its subscription)
        std::function<timestamp()> now;
        std::uint64_t next_id = 0;
        std::map<std::uint64_t, sub> subs;
        std::deque<delivery> ready;
        std::vector<hold> held;
        std::size_t drop = 0, duplicate = 0, reorder = 0, delay = 0;
        std::optional<timestamp> delay_until;
        std::optional<live_fault_rates> random;
        std::uint64_t rng = 0;
        live_fault_counts counts;
    };

    template <class F>
    void with_(F f) {
        std::lock_guard lock{state_->mutex};
        f(*state_);
    }

    static timestamp now_(const state& s) {
        return s.now ? s.now()
                     : std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    }

    enum class fate : std::uint8_t { deliver, drop, duplicate, reorder, delay, end };

    // The fault of one delivery: scripted first, then one random draw (a
    // random delay lasts `delay_for`; a scripted one until `delay_until`).
    static fate draw_(state& s, std::optional<timestamp>& due) {
        if (s.drop > 0) return --s.drop, fate::drop;
        if (s.duplicate > 0) return --s.duplicate, fate::duplicate;
        if (s.reorder > 0) return --s.reorder, fate::reorder;
        if (s.delay > 0) {
            due = s.delay_until;
            return --s.delay, fate::delay;
        }
        if (!s.random) return fate::deliver;
        const auto& r = *s.random;
        const double u = detail::loopback_unit(s.rng);
        double edge = r.drop;
        if (u < edge) return fate::drop;
        if (u < (edge += r.duplicate)) return fate::duplicate;
        if (u < (edge += r.reorder)) return fate::reorder;
        if (u < (edge += r.delay)) {
            due = now_(s) + r.delay_for;
            return fate::delay;
        }
        if (u < (edge += r.end_subscription)) return fate::end;
        return fate::deliver;
    }

    // One change for subscription `id`: queued, held, doubled or lost (under the lock).
    static void route_(state& s, std::uint64_t id, const live_event& ev) {
        std::optional<timestamp> due;
        switch (draw_(s, due)) {
            case fate::drop: ++s.counts.dropped; return;
            case fate::end: end_(s, id, error{errc::transient, "live subscription dropped", std::nullopt, std::nullopt}); return;
            case fate::reorder:
                ++s.counts.reordered;
                s.held.push_back(hold{id, ev, std::nullopt, true});
                return;
            case fate::delay:
                ++s.counts.delayed;
                s.held.push_back(hold{id, ev, due, false});
                return;
            case fate::duplicate:
                ++s.counts.duplicated;
                s.ready.push_back(delivery{id, ev, {}, {}});
                break;
            case fate::deliver: break;
        }
        s.ready.push_back(delivery{id, ev, {}, {}});
        // Events held to be reordered go just after this one.
        for (auto it = s.held.begin(); it != s.held.end();) {
            if (it->reorder && it->sub == id) {
                s.ready.push_back(delivery{id, std::move(it->event), {}, {}});
                it = s.held.erase(it);
            } else {
                ++it;
            }
        }
    }

    static void release_due_(state& s) {
        if (s.held.empty()) return;
        const timestamp now = now_(s);
        for (auto it = s.held.begin(); it != s.held.end();) {
            if (!it->reorder && it->due && *it->due <= now) {
                s.ready.push_back(delivery{it->sub, std::move(it->event), {}, {}});
                it = s.held.erase(it);
            } else {
                ++it;
            }
        }
    }

    // The next delivery as a call to make outside the lock (empty: its subscription is gone).
    static std::function<void()> take_(state& s) {
        delivery d = std::move(s.ready.front());
        s.ready.pop_front();
        if (d.on_end) return [f = std::move(d.on_end), why = std::move(*d.why)] { f(why); };
        auto found = s.subs.find(d.sub);
        if (found == s.subs.end() || !found->second.handler.on_event) return {};
        ++s.counts.delivered;
        return [f = found->second.handler.on_event, ev = std::move(*d.event)]() mutable { f(std::move(ev)); };
    }

    // Ends subscription `id`: removed now, told after the deliveries before it (under the lock).
    static void end_(state& s, std::uint64_t id, error why) {
        auto found = s.subs.find(id);
        if (found == s.subs.end()) return;
        ++s.counts.ended;
        auto on_end = std::move(found->second.handler.on_end);
        s.subs.erase(found);
        forget_held_(s, id);
        if (on_end) s.ready.push_back(delivery{id, std::nullopt, std::move(on_end), std::move(why)});
    }

    static void forget_held_(state& s, std::uint64_t id) {
        std::erase_if(s.held, [id](const hold& h) { return h.sub == id; });
    }

    // A handle's reset: waits for a handler running on another thread.
    static void cancel_(state& s, std::uint64_t id) {
        std::lock_guard delivering{s.delivering};
        std::lock_guard lock{s.mutex};
        s.subs.erase(id);
        forget_held_(s, id);
        std::erase_if(s.ready, [id](const delivery& d) { return d.sub == id; });
    }

    std::shared_ptr<state> state_;
};

}  // namespace tether
