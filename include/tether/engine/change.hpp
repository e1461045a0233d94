#pragma once

// What watchers are told: one committed change to one record.
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>

#include <cstdint>
#include <optional>
#include <string>

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

}  // namespace tether
