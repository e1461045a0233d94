#pragma once

/// @file
/// @brief Naming, in a compile error, the entity member whose type does not
/// /// convert to JSON. Part of core/entity.hpp.

#include <tether/core/detail/member_codec.hpp>

#include <boost/hana/accessors.hpp>
#include <boost/hana/first.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/string.hpp>

#include <cstddef>
#include <type_traits>

namespace tether::detail {

// ---- naming the member that does not convert -------------------------------

/// A member name as a template argument, so that a diagnostic shows it.
template <std::size_t N>
struct member_name {
    char text[N];
};

template <class Name>
struct member_name_of;
template <char... C>
struct member_name_of<boost::hana::string<C...>> {
    static constexpr member_name<sizeof...(C) + 1> value{{C..., '\0'}};
};

/// Instantiated only for a member that does not convert: the diagnostic shows
/// the struct, the member's name and its type as this template's arguments.
template <class Struct, member_name Name, class Member>
struct entity_member_does_not_convert {
    static_assert(sizeof(Member) == 0,
                  "tether: an entity member does not convert to and from JSON (the struct, the member's name and "
                  "its type are the arguments of entity_member_does_not_convert above). Supported: bool, integers, "
                  "floating point, enums with a fixed underlying type (enum class, enum E : int), std::string, std::chrono::system_clock time points, std::optional, "
                  "std::vector, std::map<std::string, T>, nested Hana Structs, nlohmann::json, and types with "
                  "nlohmann to_json/from_json (docs/guide.md, section 1)");
    static constexpr bool value = false;
};

/// The innermost type of `std::optional`, `std::vector` and string-keyed maps.
template <class T>
struct unwrapped {
    using type = T;
};
template <class T>
    requires(is_std_optional<T>::value || is_std_vector<T>::value)
struct unwrapped<T> : unwrapped<std::remove_cv_t<typename T::value_type>> {};
template <string_keyed_map T>
struct unwrapped<T> : unwrapped<std::remove_cv_t<typename T::mapped_type>> {};

/// True if every member of Hana Struct `S` converts; a static_assert naming
/// each one that does not (the innermost struct's member, for nested ones).
template <class S>
consteval bool check_members_convert() {
    if constexpr (hana_struct<S> && !own_json_conversion<S>) {
        bool all = true;
        boost::hana::for_each(boost::hana::accessors<S>(), [&](auto pair) {
            using member = std::remove_cvref_t<decltype(boost::hana::second(pair)(std::declval<const S&>()))>;
            if constexpr (!codable<member, 1>()) {
                using inner = typename unwrapped<member>::type;
                if constexpr (hana_struct<inner> && !own_json_conversion<inner> && !std::is_same_v<inner, S> &&
                              !check_members_convert<inner>()) {
                    all = false;  // named inside
                } else {
                    using name = std::remove_cvref_t<decltype(boost::hana::first(pair))>;
                    all = entity_member_does_not_convert<S, member_name_of<name>::value, member>::value && all;
                }
            }
        });
        return all;
    } else {
        return true;
    }
}

}  // namespace tether::detail
