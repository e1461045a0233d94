#pragma once

// The project's Catch2 face of the storage conformance suite, which lives,
// framework free, in <tether/testing/storage_conformance.hpp>:
//
//     TEST_CASE("my_storage passes the storage conformance suite", "[storage]") {
//         tether_test::require_conformant(tether::testing::check_storage([] { return my_storage{}; }));
//     }
//
// It also names the suite's entities and record helpers for the storage tests
// that go beyond the suite (memory_storage's, sqlite_storage's).

#include <tether/testing/storage_conformance.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

namespace tether_test {

using tether::testing::conformance_item;
using tether::testing::conformance_note;
using tether::testing::detail::at_ms;
using tether::testing::detail::full_record;
using tether::testing::detail::id_n;
using tether::testing::detail::ids_of;
using tether::testing::detail::make_record;
using tether::testing::detail::put_all;

/// Every failure as a line `rule: what`.
inline std::string describe(const std::vector<tether::testing::conformance_failure>& failures) {
    std::string s;
    for (const auto& f : failures) s += f.check + ": " + f.what + "\n";
    return s;
}

/// The names of the rules that failed.
inline std::set<std::string> rules_of(const std::vector<tether::testing::conformance_failure>& failures) {
    std::set<std::string> out;
    for (const auto& f : failures) out.insert(f.check);
    return out;
}

/// Fails the test once per failure (each printed as `rule: what`) unless there are none.
inline void require_conformant(const std::vector<tether::testing::conformance_failure>& failures) {
    for (const auto& f : failures) FAIL_CHECK(f.check << ": " << f.what);
    CHECK(failures.empty());
}

}  // namespace tether_test
