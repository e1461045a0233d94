#pragma once

// The checks `sync_engine<Entity, Policies...>` makes of what it is given,
// with the messages a user reads when one fails: first the entity and the
// list of policies (each of a known kind, at most one of each kind), then
// each chosen policy against its concept. Not a public entry point.
#include <tether/backoff/backoff.hpp>
#include <tether/clock/clock.hpp>
#include <tether/conflict/conflict.hpp>
#include <tether/core/entity.hpp>
#include <tether/engine/select.hpp>
#include <tether/storage/storage.hpp>
#include <tether/transport/transport.hpp>

namespace tether::detail {

/// The entity and the policy list given to `sync_engine`; `ok` once they pass.
template <class Entity, class... Policies>
struct policy_list_checks {
    static_assert(entity<Entity>,
                  "tether::sync_engine<Entity, ...>: Entity must be a copyable, default-constructible Boost.Hana "
                  "Struct (or have nlohmann to_json/from_json) with a collection name (E::collection or "
                  "tether::entity_traits<E>)");
    static_assert((detail::is_known_policy_v<Policies> && ...),
                  "tether::sync_engine: every policy must declare `using policy_kind = tether::<kind>_tag;` of a "
                  "known kind (storage_tag, transport_tag, backoff_tag, conflict_tag, clock_tag, options_tag)");
    static_assert(detail::count_kind_v<storage_tag, Policies...> <= 1,
                  "tether::sync_engine: more than one storage policy given");
    static_assert(detail::count_kind_v<transport_tag, Policies...> <= 1,
                  "tether::sync_engine: more than one transport policy given");
    static_assert(detail::count_kind_v<backoff_tag, Policies...> <= 1,
                  "tether::sync_engine: more than one backoff policy given");
    static_assert(detail::count_kind_v<conflict_tag, Policies...> <= 1,
                  "tether::sync_engine: more than one conflict policy given");
    static_assert(detail::count_kind_v<clock_tag, Policies...> <= 1,
                  "tether::sync_engine: more than one clock policy given");
    static_assert(detail::count_kind_v<options_tag, Policies...> <= 1,
                  "tether::sync_engine: more than one engine_options given");

    static constexpr bool ok = true;
};

/// The policies `sync_engine` chose (given or defaulted) against their
/// concepts; `ok` once they pass.
template <class Entity, class Storage, class Transport, class Backoff, class Conflict, class Clock>
struct chosen_policy_checks {
    static_assert(storage_policy<Storage, Entity>,
                  "tether::sync_engine: the storage policy must satisfy tether::storage_policy (a store with "
                  "transact, get, find_by_server_id, list, due, counts and get_meta; see storage/storage.hpp)");
    static_assert(transport_policy<Transport>,
                  "tether::sync_engine: the transport policy must satisfy tether::transport_policy (push, pull, "
                  "fetch, max_batch, has_change_feed; see transport/transport.hpp)");
    static_assert(backoff_policy<Backoff>,
                  "tether::sync_engine: the backoff policy must satisfy tether::backoff_policy (next_delay(attempts, "
                  "error) -> std::optional<std::chrono::milliseconds>)");
    static_assert(conflict_policy<Conflict, Entity>,
                  "tether::sync_engine: the conflict policy must satisfy tether::conflict_policy (resolve(const "
                  "tether::conflict<E>&) -> tether::resolution<E>)");
    static_assert(clock_policy<Clock>,
                  "tether::sync_engine: the clock policy must satisfy tether::clock_policy (now() -> "
                  "tether::timestamp)");

    static constexpr bool ok = true;
};

}  // namespace tether::detail
