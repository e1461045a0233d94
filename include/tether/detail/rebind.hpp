#pragma once

namespace tether::detail {

/// The type a policy becomes for one entity type: `P::rebind<E>` when the policy
/// depends on the entity (in the manner of an allocator's rebind), else `P` itself.
/// A rebound type is constructible from the policy value it came from.
template <class P, class E>
struct rebound {
    using type = P;
};

template <class P, class E>
    requires requires { typename P::template rebind<E>; }
struct rebound<P, E> {
    using type = typename P::template rebind<E>;
};

template <class P, class E>
using rebound_t = typename rebound<P, E>::type;

}  // namespace tether::detail
