#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace tether {

/// @brief The kind tag of `engine_options`.
struct options_tag {};

/// @brief Engine settings that are not a policy of their own, passed like one.
///
/// @code
/// auto engine = tether::make_engine<Job>(tether::engine_options{.id_seed = 42, .pull_limit = 500});
/// @endcode
struct engine_options {
    using policy_kind = options_tag;

    /// @brief Seed for `local_id` generation; empty: seeded from `std::random_device`.
    /// A fixed seed with a manual clock makes a whole run reproducible.
    std::optional<std::uint64_t> id_seed{};
    /// @brief Records asked for per pull page.
    std::size_t pull_limit = 100;
    /// @brief Ops per push batch; 0 means the transport's `max_batch()`.
    std::size_t push_batch = 0;
    /// @brief Live events queued and not yet applied, at most (0: no bound).
    /// Past it the queued events are dropped and the next live pass pulls
    /// from the cursor instead (nothing is lost: `live_status::overflows`).
    std::size_t live_inbox_limit = 4096;
};

}  // namespace tether
