#pragma once

/// @file
/// @brief Type tests behind `tether::entity` (which members a type has, what
/// /// nlohmann converts, map- and string-likeness) and `value_path`, the path to a
/// /// value inside an entity that errors name. Part of core/entity.hpp.

#include <boost/hana/concept/struct.hpp>
#include <nlohmann/json.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace tether::detail {


template <class E>
concept has_collection_member = requires {
    { E::collection } -> std::convertible_to<std::string_view>;
};

template <class E>
concept hana_struct = boost::hana::Struct<E>::value;

template <class E>
concept nlohmann_convertible = requires(nlohmann::json& j, const nlohmann::json& cj, const E& e, E& out) {
    to_json(j, e);
    from_json(cj, out);
};

/// True if `j` is an integer that `T` can hold exactly (no booleans, no
/// fractions, no out-of-range values: converting those would be lossy or UB).
template <class T>
bool fits_integral(const nlohmann::json& j) {
    if (j.is_number_unsigned()) {
        return j.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<T>::max());
    }
    if (j.is_number_integer()) {
        const auto v = j.get<std::int64_t>();
        if constexpr (std::is_signed_v<T>) {
            return v >= static_cast<std::int64_t>(std::numeric_limits<T>::min()) &&
                   v <= static_cast<std::int64_t>(std::numeric_limits<T>::max());
        } else {
            return v >= 0 && static_cast<std::uint64_t>(v) <= static_cast<std::uint64_t>(std::numeric_limits<T>::max());
        }
    }
    return false;
}

template <class E>
concept equality_comparable_entity = requires(const E& a, const E& b) {
    { a == b } -> std::convertible_to<bool>;
};

// ---- finite floating-point values (entity_ops<E>::validate) ---------------

template <class T>
struct is_std_optional : std::false_type {};
template <class T>
struct is_std_optional<std::optional<T>> : std::true_type {};

template <class T>
struct is_std_pair : std::false_type {};
template <class A, class B>
struct is_std_pair<std::pair<A, B>> : std::true_type {};

template <class T>
concept map_like = std::ranges::range<T> && requires {
    typename T::key_type;
    typename T::mapped_type;
};

template <class T>
concept string_like = std::is_convertible_v<const T&, std::string_view>;

/// One step of the path to a value inside an entity, kept on the stack while
/// `find_non_finite` descends and spelled out only when it finds something.
struct value_path {
    enum class kind { member, index, string_key, integer_key, key_of_entry };
    const value_path* up = nullptr;
    kind how = kind::member;
    std::string_view name{};  // member, string_key
    std::size_t index = 0;    // index, key_of_entry
    std::int64_t key = 0;     // integer_key

    [[nodiscard]] std::string str() const {
        std::string out = up != nullptr ? up->str() : std::string{};
        switch (how) {
            case kind::member:
                if (!out.empty()) out += '.';
                out += name;
                break;
            case kind::index: out += '[' + std::to_string(index) + ']'; break;
            case kind::string_key:
                out += "[\"";
                out += name;
                out += "\"]";
                break;
            case kind::integer_key: out += '[' + std::to_string(key) + ']'; break;
            case kind::key_of_entry: out += "[key of entry " + std::to_string(index) + ']'; break;
        }
        return out;
    }
};

}  // namespace tether::detail
