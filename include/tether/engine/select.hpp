#pragma once

#include <tether/backoff/backoff.hpp>
#include <tether/clock/clock.hpp>
#include <tether/conflict/conflict.hpp>
#include <tether/engine/options.hpp>
#include <tether/storage/storage.hpp>
#include <tether/transport/transport.hpp>

#include <cstddef>
#include <type_traits>
#include <utility>

namespace tether::detail {

/// The kind a policy declares (`P::policy_kind`), or `void` if it declares none.
template <class P>
struct kind_of {
    using type = void;
};
template <class P>
    requires requires { typename P::policy_kind; }
struct kind_of<P> {
    using type = typename P::policy_kind;
};
template <class P>
using kind_of_t = typename kind_of<P>::type;

/// True if `P` declares one of the kinds the engine knows.
template <class P>
inline constexpr bool is_known_policy_v =
    std::is_same_v<kind_of_t<P>, storage_tag> || std::is_same_v<kind_of_t<P>, transport_tag> ||
    std::is_same_v<kind_of_t<P>, backoff_tag> || std::is_same_v<kind_of_t<P>, conflict_tag> ||
    std::is_same_v<kind_of_t<P>, clock_tag> || std::is_same_v<kind_of_t<P>, options_tag>;

/// How many of `Ps` are of kind `Tag`.
template <class Tag, class... Ps>
inline constexpr std::size_t count_kind_v = (std::size_t{0} + ... + (std::is_same_v<kind_of_t<Ps>, Tag> ? 1u : 0u));

/// The first of `Ps` of kind `Tag`, else `Default` (plain partial specialisation:
/// measured several times cheaper to compile than a Hana search).
template <class Tag, class Default, class... Ps>
struct select {
    using type = Default;
};
template <class Tag, class Default, class P, class... Ps>
struct select<Tag, Default, P, Ps...>
    : std::conditional_t<std::is_same_v<kind_of_t<P>, Tag>, std::type_identity<P>, select<Tag, Default, Ps...>> {};

template <class Tag, class Default, class... Ps>
using select_t = typename select<Tag, Default, Ps...>::type;

/// The argument of kind `Tag` among `ps`, or a default-constructed `Default`.
template <class Tag, class Default>
Default pick() {
    return Default{};
}
template <class Tag, class Default, class P, class... Ps>
select_t<Tag, Default, std::remove_cvref_t<P>, std::remove_cvref_t<Ps>...> pick(P&& p, Ps&&... ps) {
    if constexpr (std::is_same_v<kind_of_t<std::remove_cvref_t<P>>, Tag>) {
        return std::forward<P>(p);
    } else {
        return pick<Tag, Default>(std::forward<Ps>(ps)...);
    }
}

}  // namespace tether::detail
