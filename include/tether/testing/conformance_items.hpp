#pragma once

/// @file
/// @brief The entities `tether::testing::check_storage` stores, and its settings.
#include <boost/hana/define_struct.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tether::testing {

/// @brief The entity `check_storage` stores (collection `"conformance_items"`):
/// a string, a signed integer and a vector, so a store's encoding of each is
/// exercised.
struct conformance_item {
    BOOST_HANA_DEFINE_STRUCT(conformance_item, (std::string, title), (std::int64_t, count),
                             (std::vector<std::string>, tags));
    static constexpr std::string_view collection = "conformance_items";
    friend bool operator==(const conformance_item&, const conformance_item&) = default;
};

/// @brief A second entity type (collection `"conformance_notes"`), to check that
/// types sharing one policy stay apart.
struct conformance_note {
    BOOST_HANA_DEFINE_STRUCT(conformance_note, (std::string, text));
    static constexpr std::string_view collection = "conformance_notes";
    friend bool operator==(const conformance_note&, const conformance_note&) = default;
};

/// @brief Settings of `check_storage`.
struct storage_conformance_options {
    /// True if a store built from a *copy* of the policy sees the same records
    /// and metadata (the policy is a handle on one database, as `memory_storage`
    /// and `sqlite_storage` are). False for a policy whose every store is a
    /// database of its own: the "copies share" rule is then skipped.
    bool copies_share = true;
    /// Threads of the "concurrent transactions" rule (0 skips it).
    int threads = 4;
    /// Transactions each of those threads runs.
    int transactions_per_thread = 25;
};

}  // namespace tether::testing
