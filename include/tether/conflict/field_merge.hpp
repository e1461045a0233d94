#pragma once

#include <tether/conflict/conflict.hpp>
#include <tether/core/entity.hpp>
#include <tether/core/record.hpp>
#include <tether/core/status.hpp>

#include <utility>

namespace tether {

/// @brief A conflict policy that merges field by field: the server's value,
/// with the fields the local change touched taken from the local value.
///
/// For a local edit (`pending`, `error` or `failed`):
/// 1. `merged = entity_ops<E>::merge(c.server_value, c.local.value, c.local.dirty)`,
///    i.e. the server's copy with every field named in `local.dirty` replaced by
///    the local one; where both sides changed the same field, the local side wins;
/// 2. `changed = entity_ops<E>::diff(c.server_value, merged)`;
/// 3. `changed` empty (the local fields already equal the server's, or
///    `local.dirty` is empty) → `take_server`; otherwise
///    `resolution<E>::merged(merged)`, and the next push sends only
///    `changed`.
///
/// For a local delete (`c.local.deleted`, whatever its status) there are no fields to merge:
/// the result is `take_server`, i.e. the server's edit restores the deleted record.
///
/// Fields come from `entity_ops<E>` (Hana struct members, or the top-level keys
/// of the entity's JSON object).
///
/// @code
/// auto jobs = tether::make_engine<Job>(tether::field_merge{});
///
/// // local: {title "b", progress 0}, dirty {"title"}; server: {title "a", progress 50}
/// auto r = tether::field_merge{}.resolve(c);
/// assert(r.kind == tether::resolution_kind::merged);
/// assert(r.value->title == "b" && r.value->progress == 50);
/// @endcode
///
/// @see server_wins, client_wins, last_writer_wins, resolve_with, entity_ops
struct field_merge {
    using policy_kind = conflict_tag;  ///< a conflict policy

    /// @brief The server's value plus the local dirty fields (`merged`), or
    /// `take_server` when that adds nothing or the local change is a delete.
    template <class E>
    [[nodiscard]] resolution<E> resolve(const conflict<E>& c) const {
        if (c.local.deleted || c.local.status == sync_status::pending_deletion) {
            return resolution<E>::take_server();
        }
        E merged = entity_ops<E>::merge(c.server_value, c.local.value, c.local.dirty);
        if (entity_ops<E>::diff(c.server_value, merged).empty()) {
            return resolution<E>::take_server();
        }
        return resolution<E>::merged(std::move(merged));
    }
};

}  // namespace tether
