#pragma once

/// @file
/// @brief Finding NaN and infinities inside an entity (`entity_ops<E>::validate`):
/// /// JSON cannot carry them, so `create` and `update` refuse them. Part of core/entity.hpp.

#include <tether/core/detail/entity_types.hpp>

#include <boost/hana/accessors.hpp>
#include <boost/hana/first.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/second.hpp>
#include <boost/hana/string.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>

namespace tether::detail {

/// How deep `may_hold_floating` looks before it gives up and answers "maybe"
/// (a recursive type: a node holding a vector of nodes).
inline constexpr int floating_scan_depth = 16;

/// True if a value of `T` may hold a floating-point number, decided from the
/// type alone: floating-point types; `std::optional`, `std::pair`, ranges
/// (vectors, arrays, maps, sets) and Hana Structs of such; `nlohmann::json`;
/// and any other type nlohmann can convert (its JSON is walked, as its members
/// are unknown). False for integers, booleans, enums and strings, and so for
/// any composition of only those: validating such an entity costs nothing.
template <class T, int Depth = 0>
consteval bool may_hold_floating() {
    using U = std::remove_cvref_t<T>;
    if constexpr (Depth > floating_scan_depth) {
        return true;
    } else if constexpr (std::is_floating_point_v<U>) {
        return true;
    } else if constexpr (std::is_arithmetic_v<U> || std::is_enum_v<U> || string_like<U>) {
        return false;
    } else if constexpr (std::is_same_v<U, nlohmann::json>) {
        return true;
    } else if constexpr (is_std_optional<U>::value) {
        return may_hold_floating<typename U::value_type, Depth + 1>();
    } else if constexpr (is_std_pair<U>::value) {
        return may_hold_floating<typename U::first_type, Depth + 1>() ||
               may_hold_floating<typename U::second_type, Depth + 1>();
    } else if constexpr (std::ranges::range<U>) {
        return may_hold_floating<std::ranges::range_value_t<U>, Depth + 1>();
    } else if constexpr (hana_struct<U>) {
        bool any = false;
        boost::hana::for_each(boost::hana::accessors<U>(), [&](auto pair) {
            using member = decltype(boost::hana::second(pair)(std::declval<const U&>()));
            any = any || may_hold_floating<member, Depth + 1>();
        });
        return any;
    } else {
        return std::is_constructible_v<nlohmann::json, const U&>;
    }
}

/// The message for a non-finite `v` at `at`.
inline std::string non_finite_message(long double v, const value_path* at) {
    const std::string where = at != nullptr ? at->str() : std::string{"value"};
    const char* what = std::isnan(v) ? "NaN" : (v > 0 ? "+infinity" : "-infinity");
    return "member '" + where + "' is " + what + "; JSON cannot carry it";
}

/// The first NaN or infinity inside `j` (reached through `at`): its message, or empty.
inline std::optional<std::string> find_non_finite_json(const nlohmann::json& j, const value_path* at) {
    if (j.is_number_float()) {
        const double v = j.get<double>();
        if (!std::isfinite(v)) return non_finite_message(v, at);
    } else if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) {
            const value_path step{at, value_path::kind::member, it.key()};
            if (auto m = find_non_finite_json(*it, &step)) return m;
        }
    } else if (j.is_array()) {
        std::size_t i = 0;
        for (const auto& v : j) {
            const value_path step{at, value_path::kind::index, {}, i++};
            if (auto m = find_non_finite_json(v, &step)) return m;
        }
    }
    return std::nullopt;
}

/// The first NaN or infinity inside `v` (reached through `at`): its message, or
/// empty. Looks only where `may_hold_floating` says a floating-point value may be.
template <class T, int Depth = 0>
std::optional<std::string> find_non_finite(const T& v, const value_path* at) {
    using U = std::remove_cvref_t<T>;
    if constexpr (!may_hold_floating<U, Depth>()) {
        return std::nullopt;
    } else if constexpr (Depth > floating_scan_depth) {
        // A recursive type: carry on from here with a fresh depth count.
        return find_non_finite<U, 0>(v, at);
    } else if constexpr (std::is_floating_point_v<U>) {
        if (!std::isfinite(v)) return non_finite_message(static_cast<long double>(v), at);
        return std::nullopt;
    } else if constexpr (std::is_same_v<U, nlohmann::json>) {
        return find_non_finite_json(v, at);
    } else if constexpr (is_std_optional<U>::value) {
        if (!v) return std::nullopt;
        return find_non_finite<typename U::value_type, Depth + 1>(*v, at);
    } else if constexpr (is_std_pair<U>::value) {
        const value_path first{at, value_path::kind::member, "first"};
        if (auto m = find_non_finite<typename U::first_type, Depth + 1>(v.first, &first)) return m;
        const value_path second{at, value_path::kind::member, "second"};
        return find_non_finite<typename U::second_type, Depth + 1>(v.second, &second);
    } else if constexpr (map_like<U>) {
        using key_t = std::remove_cvref_t<typename U::key_type>;
        using mapped_t = std::remove_cvref_t<typename U::mapped_type>;
        std::size_t i = 0;
        for (const auto& [key, mapped] : v) {
            const value_path key_step{at, value_path::kind::key_of_entry, {}, i};
            if (auto m = find_non_finite<key_t, Depth + 1>(key, &key_step)) return m;
            value_path step{at, value_path::kind::key_of_entry, {}, i};
            if constexpr (string_like<key_t>) {
                step.how = value_path::kind::string_key;
                step.name = std::string_view{key};
            } else if constexpr (std::is_integral_v<key_t> && !std::is_same_v<key_t, bool>) {
                step.how = value_path::kind::integer_key;
                step.key = static_cast<std::int64_t>(key);
            } else {
                step.how = value_path::kind::index;  // spelled [entry number]
                step.index = i;
            }
            if (auto m = find_non_finite<mapped_t, Depth + 1>(mapped, &step)) return m;
            ++i;
        }
        return std::nullopt;
    } else if constexpr (std::ranges::range<U>) {
        std::size_t i = 0;
        for (const auto& element : v) {
            const value_path step{at, value_path::kind::index, {}, i++};
            if (auto m = find_non_finite<std::remove_cvref_t<decltype(element)>, Depth + 1>(element, &step)) return m;
        }
        return std::nullopt;
    } else if constexpr (hana_struct<U>) {
        std::optional<std::string> found;
        boost::hana::for_each(boost::hana::accessors<U>(), [&](auto pair) {
            if (found) return;
            const auto& member = boost::hana::second(pair)(v);
            const value_path step{at, value_path::kind::member, boost::hana::to<char const*>(boost::hana::first(pair))};
            found = find_non_finite<std::remove_cvref_t<decltype(member)>, Depth + 1>(member, &step);
        });
        return found;
    } else {
        return find_non_finite_json(nlohmann::json(v), at);
    }
}

}  // namespace tether::detail
