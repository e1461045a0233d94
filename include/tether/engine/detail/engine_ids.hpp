#pragma once

// The ids `sync_engine` (engine/sync_engine.hpp) hands out: local ids for
// created and pulled records (a seeded generator is mixed with a restart
// counter kept in the store's metadata) and this device's id, the origin of
// its pushes. Defined out of the class and included at the end of
// sync_engine.hpp; not a public entry point.
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/engine/detail/context.hpp>
#include <tether/engine/sync_engine.hpp>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace tether {

namespace detail {

/// The storage key of the seeded id generator's restart counter.
inline constexpr std::string_view id_epoch_key = "id_epoch";

/// A seed mixed with a restart counter (splitmix64's finaliser).
constexpr std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t epoch) noexcept {
    std::uint64_t x = seed ^ (epoch * 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

}  // namespace detail

template <class Entity, class... Policies>
result<local_id> sync_engine<Entity, Policies...>::next_id(timestamp now) {
    std::lock_guard lock{ids_mutex_};  // never held while the store is touched: see seed_ids
    if (ids_error_) return unexpected{*ids_error_};
    return ids_(now);
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::seed_ids() {
    if (!options_.id_seed) return;
    auto stored = store_.get_meta(detail::id_epoch_key);
    if (!stored) {
        ids_error_ = std::move(stored).error();
        return;
    }
    std::uint64_t epoch = 0;
    if (*stored) epoch = std::strtoull((*stored)->c_str(), nullptr, 10);
    ++epoch;
    auto saved = store_.transact([&](auto& tx) { return tx.set_meta(detail::id_epoch_key, std::to_string(epoch)); });
    if (!saved) {
        ids_error_ = std::move(saved).error();  // creates fail with it rather than risk a repeated id
        return;
    }
    if (epoch > 1) ids_ = local_id_generator{detail::mix_seed(*options_.id_seed, epoch)};
}

template <class Entity, class... Policies>
local_id sync_engine<Entity, Policies...>::fresh_id(timestamp now) {
    std::lock_guard lock{ids_mutex_};
    return ids_(now);
}

template <class Entity, class... Policies>
result<void> sync_engine<Entity, Policies...>::ensure_device_id() {
    if (!device_id_.empty()) return {};
    auto stored = store_.get_meta(detail::device_id_key);
    if (!stored) return unexpected{std::move(stored).error()};
    if (*stored && !(*stored)->empty()) {
        device_id_ = **stored;
        return {};
    }
    auto id = next_id(clock_.now());
    if (!id) return unexpected{std::move(id).error()};
    std::string fresh = id->to_string();
    auto saved = store_.transact([&](auto& tx) { return tx.set_meta(detail::device_id_key, fresh); });
    if (!saved) return saved;
    device_id_ = std::move(fresh);
    return {};
}

}  // namespace tether
