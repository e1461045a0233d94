#pragma once

/// @file
/// @brief The JSON form of an entity member, its checked decoding and its
/// /// equality. Part of core/entity.hpp.

#include <tether/core/detail/entity_types.hpp>
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>

#include <boost/hana/accessors.hpp>
#include <boost/hana/first.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/second.hpp>
#include <boost/hana/string.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <ranges>
#include <ratio>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace tether::detail {

// ---- member types: JSON form, decoding, equality --------------------------
//
// What an entity member may be, and its JSON form (each branch of `codable`,
// `encode_value` and `decode_value` below, in this order):
// - `nlohmann::json`: as is;
// - a class or enum with its own nlohmann `to_json`/`from_json` (found by ADL,
//   e.g. `NLOHMANN_JSON_SERIALIZE_ENUM`): what they produce; an enum must
//   read back the name it was given (nlohmann maps an unknown name to the
//   first enumerator silently);
// - `bool`: a JSON boolean; integers of every width: a JSON integer the type
//   holds exactly; floating point: a JSON number (finite, within range);
// - other enums with a fixed underlying type (every `enum class`, `enum E : int`):
//   their underlying integer (an enum without one holds only the values its
//   enumerators' bits span, so an arbitrary integer would be UB: not codable);
// - `std::string`: a JSON string;
// - `std::chrono::time_point<std::chrono::system_clock, D>` (so
//   `tether::timestamp`, `system_clock::time_point`, `sys_days`): an integer,
//   milliseconds since the epoch (finer digits are dropped, rounding down);
// - `std::optional<T>`: `null` when empty, else T's form;
// - `std::vector<T>`: an array; a map keyed by `std::string`: an object;
// - a Hana Struct: an object, one key per member (as the entity itself);
// - `std::pair`, `std::tuple`, `std::array`: an array of exactly their size;
//   other containers (sets, lists, deques): an array; maps with other keys: an
//   array of `[key, value]` arrays. nlohmann's form, but read element by
//   element by these same rules (nlohmann's own reading converts a number to
//   an integer element unchecked: UB for `1e300`);
// - any other type nlohmann converts: nlohmann's form, read with its rules.

template <class T>
struct is_std_vector : std::false_type {};
template <class T, class A>
struct is_std_vector<std::vector<T, A>> : std::true_type {};

template <class T>
concept string_keyed_map = map_like<T> && std::same_as<std::remove_cv_t<typename T::key_type>, std::string>;

/// An enum with a fixed underlying type (every scoped enum, `enum E : int`):
/// it holds every value of that type, so any such integer may be read into it.
template <class T>
concept fixed_enum = std::is_enum_v<T> && requires { T{std::underlying_type_t<T>{}}; };

template <class T>
struct is_std_tuple : std::false_type {};
template <class... A>
struct is_std_tuple<std::tuple<A...>> : std::true_type {};

template <class T>
struct is_std_array : std::false_type {};
template <class T, std::size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {};

template <class T>
struct is_basic_string : std::false_type {};
template <class C, class Tr, class A>
struct is_basic_string<std::basic_string<C, Tr, A>> : std::true_type {};

/// `std::pair` or `std::tuple`: a JSON array of exactly their size.
template <class T>
concept tuple_like = is_std_pair<T>::value || is_std_tuple<T>::value;

/// A map whose keys are not strings: a JSON array of `[key, value]` arrays.
template <class T>
concept pair_keyed_map = map_like<T> && !string_keyed_map<T>;

/// A container other than a vector, a map, a string or `std::array` that takes
/// its elements one by one (sets, lists, deques): a JSON array.
template <class T>
concept insertable_range = std::ranges::range<T> && !map_like<T> && !is_std_vector<T>::value &&
                           !is_basic_string<T>::value && !is_std_array<T>::value &&
                           !std::is_same_v<T, nlohmann::json> && std::default_initializable<T> &&
                           requires(T& c, typename T::value_type v) { c.insert(c.end(), std::move(v)); };

template <class T>
struct is_system_time_point : std::false_type {};
template <class D>
struct is_system_time_point<std::chrono::time_point<std::chrono::system_clock, D>> : std::true_type {};

/// True for the time points that map onto milliseconds without overflow checks
/// of their own: an integer count at millisecond resolution or finer, or a
/// whole number of milliseconds per tick.
template <class T>
consteval bool millisecond_mappable() {
    using D = typename T::duration;
    using per_ms = std::ratio_divide<typename D::period, std::milli>;
    return std::is_integral_v<typename D::rep> && (std::ratio_less_equal_v<typename D::period, std::milli> || per_ms::den == 1);
}

/// A class or enum with nlohmann conversions of its own (ADL `to_json`/`from_json`).
template <class T>
concept own_json_conversion = (std::is_class_v<T> || std::is_enum_v<T>) && nlohmann_convertible<T>;

/// A type nlohmann converts by itself (both ways).
template <class T>
concept nlohmann_native = std::is_constructible_v<nlohmann::json, const T&>
    && requires(const nlohmann::json& j, T& out) { j.get_to(out); };

/// How deep `codable` looks before it answers "yes" (a recursive type: a node
/// holding a vector of nodes, whose every level is the same type).
inline constexpr int codec_scan_depth = 16;

/// True if an entity member of type `T` converts to and from JSON (see above).
template <class T, int Depth = 0>
consteval bool codable() {
    using U = std::remove_cv_t<T>;
    if constexpr (Depth > codec_scan_depth) {
        return true;
    } else if constexpr (std::is_same_v<U, nlohmann::json> || own_json_conversion<U>) {
        return true;
    } else if constexpr (std::is_arithmetic_v<U> || fixed_enum<U> || std::is_same_v<U, std::string>) {
        return true;
    } else if constexpr (std::is_enum_v<U>) {
        return false;  // no fixed underlying type: give it one (`enum E : int`) or nlohmann conversions
    } else if constexpr (is_system_time_point<U>::value) {
        return millisecond_mappable<U>();
    } else if constexpr (is_std_optional<U>::value || is_std_vector<U>::value) {
        return std::default_initializable<typename U::value_type> && codable<typename U::value_type, Depth + 1>();
    } else if constexpr (string_keyed_map<U>) {
        return std::default_initializable<typename U::mapped_type> && codable<typename U::mapped_type, Depth + 1>();
    } else if constexpr (tuple_like<U>) {
        return []<std::size_t... I>(std::index_sequence<I...>) {
            return ((std::default_initializable<std::tuple_element_t<I, U>> &&
                     codable<std::tuple_element_t<I, U>, Depth + 1>()) && ...);
        }(std::make_index_sequence<std::tuple_size_v<U>>{});
    } else if constexpr (is_std_array<U>::value || insertable_range<U>) {
        return std::default_initializable<typename U::value_type> && codable<typename U::value_type, Depth + 1>();
    } else if constexpr (pair_keyed_map<U>) {
        using key_t = std::remove_cv_t<typename U::key_type>;
        return std::default_initializable<key_t> && std::default_initializable<typename U::mapped_type> &&
               codable<key_t, Depth + 1>() && codable<typename U::mapped_type, Depth + 1>();
    } else if constexpr (hana_struct<U>) {
        bool all = true;
        boost::hana::for_each(boost::hana::accessors<U>(), [&](auto pair) {
            using member = std::remove_cvref_t<decltype(boost::hana::second(pair)(std::declval<const U&>()))>;
            all = all && codable<member, Depth + 1>();
        });
        return all;
    } else if constexpr (std::is_pointer_v<U> || std::is_same_v<U, std::string_view>) {
        return false;  // nlohmann would read a string into them, left dangling
    } else {
        return nlohmann_native<U>;
    }
}

/// Milliseconds since the epoch of a time point (rounded down).
template <class TP>
std::int64_t to_epoch_ms(const TP& tp) {
    using D = typename TP::duration;
    if constexpr (std::ratio_less_equal_v<typename D::period, std::milli>) {
        return static_cast<std::int64_t>(std::chrono::floor<std::chrono::milliseconds>(tp.time_since_epoch()).count());
    } else {
        constexpr auto factor = static_cast<std::int64_t>(std::ratio_divide<typename D::period, std::milli>::num);
        const auto count = static_cast<std::int64_t>(tp.time_since_epoch().count());
        // Saturates rather than overflow (only counts beyond +-292 million years reach it).
        if (count > std::numeric_limits<std::int64_t>::max() / factor) return std::numeric_limits<std::int64_t>::max();
        if (count < std::numeric_limits<std::int64_t>::min() / factor) return std::numeric_limits<std::int64_t>::min();
        return count * factor;
    }
}

/// The JSON form of a member value (`T` must be `codable`).
template <class T>
nlohmann::json encode_value(const T& v) {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same_v<U, nlohmann::json>) {
        return v;
    } else if constexpr (own_json_conversion<U>) {
        return nlohmann::json(v);
    } else if constexpr (std::is_floating_point_v<U>) {
        return nlohmann::json(static_cast<double>(v));
    } else if constexpr (std::is_arithmetic_v<U>) {
        return nlohmann::json(v);
    } else if constexpr (fixed_enum<U>) {
        return nlohmann::json(static_cast<std::underlying_type_t<U>>(v));
    } else if constexpr (std::is_same_v<U, std::string>) {
        return nlohmann::json(v);
    } else if constexpr (is_system_time_point<U>::value) {
        return nlohmann::json(to_epoch_ms(v));
    } else if constexpr (is_std_optional<U>::value) {
        if (!v) return nlohmann::json(nullptr);
        return encode_value<typename U::value_type>(*v);
    } else if constexpr (is_std_vector<U>::value) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& element : v) out.push_back(encode_value<typename U::value_type>(element));
        return out;
    } else if constexpr (string_keyed_map<U>) {
        nlohmann::json out = nlohmann::json::object();
        for (const auto& [key, mapped] : v) out[key] = encode_value<typename U::mapped_type>(mapped);
        return out;
    } else if constexpr (tuple_like<U>) {
        nlohmann::json out = nlohmann::json::array();
        std::apply([&](const auto&... e) { (out.push_back(encode_value<std::remove_cvref_t<decltype(e)>>(e)), ...); },
                   v);
        return out;
    } else if constexpr (is_std_array<U>::value || insertable_range<U>) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& element : v) out.push_back(encode_value<typename U::value_type>(element));
        return out;
    } else if constexpr (pair_keyed_map<U>) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& [key, mapped] : v) {
            out.push_back(nlohmann::json::array({encode_value<std::remove_cv_t<typename U::key_type>>(key),
                                                 encode_value<typename U::mapped_type>(mapped)}));
        }
        return out;
    } else if constexpr (hana_struct<U>) {
        nlohmann::json out = nlohmann::json::object();
        boost::hana::for_each(boost::hana::accessors<U>(), [&](auto pair) {
            const auto& member = boost::hana::second(pair)(v);
            out[boost::hana::to<char const*>(boost::hana::first(pair))] =
                encode_value<std::remove_cvref_t<decltype(member)>>(member);
        });
        return out;
    } else {
        return nlohmann::json(v);
    }
}

/// "member 'path' has the wrong type: expected ..., got <JSON type>".
inline std::string wrong_type(const value_path* at, std::string_view expected, const nlohmann::json& got) {
    std::string out = "member '" + (at != nullptr ? at->str() : std::string{"value"}) + "' has the wrong type: expected ";
    out += expected;
    out += ", got ";
    if (got.is_number_float()) {
        out += "the number " + got.dump();
    } else if (got.is_number()) {
        out += "the integer " + got.dump();
    } else {
        out += got.type_name();  // not the value: a string may be long, or private
    }
    return out;
}

template <class T>
std::string integer_range() {
    return "an integer in [" + std::to_string(std::numeric_limits<T>::min()) + ", " +
           std::to_string(std::numeric_limits<T>::max()) + "]";
}

template <class T>
std::optional<std::string> decode_value(const nlohmann::json& j, T& out, const value_path* at);

/// Reads the members of Hana Struct `out` from object `j`: a missing or null
/// key keeps the member's value (an empty `std::optional` for null), a key
/// that does not fit is the error message, naming it.
template <class S>
std::optional<std::string> decode_members(const nlohmann::json& j, S& out, const value_path* at) {
    std::optional<std::string> failure;
    boost::hana::for_each(boost::hana::accessors<S>(), [&](auto pair) {
        if (failure) return;
        const char* name = boost::hana::to<char const*>(boost::hana::first(pair));
        auto it = j.find(name);
        if (it == j.end()) return;
        auto& member = boost::hana::second(pair)(out);
        using member_t = std::remove_cvref_t<decltype(member)>;
        if (it->is_null()) {
            if constexpr (is_std_optional<member_t>::value || std::is_same_v<member_t, nlohmann::json>) {
                member = member_t{};
            }
            return;  // null counts as missing
        }
        const value_path step{at, value_path::kind::member, name};
        failure = decode_value<member_t>(*it, member, &step);
    });
    return failure;
}

/// Reads `out` from `j`; the error message (naming the member through `at`) if
/// `j` does not fit `T`. Never throws (for `codable` types whose own
/// conversions throw only standard exceptions).
template <class T>
std::optional<std::string> decode_value(const nlohmann::json& j, T& out, const value_path* at) {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same_v<U, nlohmann::json>) {
        out = j;
    } else if constexpr (own_json_conversion<U>) {
        try {
            j.get_to(out);
        } catch (const std::exception& e) {
            return "member '" + (at != nullptr ? at->str() : std::string{"value"}) + "' does not convert: " + e.what();
        }
        if constexpr (std::is_enum_v<U>) {
            if (nlohmann::json(out) != j) return wrong_type(at, "one of the enumeration's names", j);
        }
    } else if constexpr (std::is_same_v<U, bool>) {
        if (!j.is_boolean()) return wrong_type(at, "a boolean", j);
        out = j.get<bool>();
    } else if constexpr (std::is_integral_v<U>) {
        if (!fits_integral<U>(j)) return wrong_type(at, integer_range<U>(), j);
        out = j.get<U>();
    } else if constexpr (std::is_floating_point_v<U>) {
        if (!j.is_number()) return wrong_type(at, "a number", j);
        const double d = j.get<double>();
        if (!std::isfinite(d) || std::fabs(d) > static_cast<double>(std::numeric_limits<U>::max())) {
            return wrong_type(at, "a finite number in the member's range", j);
        }
        out = static_cast<U>(d);
    } else if constexpr (fixed_enum<U>) {
        using under = std::underlying_type_t<U>;
        if (!fits_integral<under>(j)) return wrong_type(at, "an enumerator's value, " + integer_range<under>(), j);
        out = static_cast<U>(j.get<under>());
    } else if constexpr (std::is_same_v<U, std::string>) {
        if (!j.is_string()) return wrong_type(at, "a string", j);
        out = j.get<std::string>();
    } else if constexpr (is_system_time_point<U>::value) {
        using D = typename U::duration;
        if (!fits_integral<std::int64_t>(j)) return wrong_type(at, "an integer (milliseconds since the epoch)", j);
        const std::chrono::milliseconds ms{j.get<std::int64_t>()};
        if constexpr (std::ratio_less_equal_v<typename D::period, std::milli>) {
            if (ms > std::chrono::floor<std::chrono::milliseconds>(D::max()) ||
                ms < std::chrono::ceil<std::chrono::milliseconds>(D::min())) {
                return wrong_type(at, "milliseconds since the epoch within the time point's range", j);
            }
            out = U{std::chrono::duration_cast<D>(ms)};
        } else {
            out = U{std::chrono::floor<D>(ms)};
        }
    } else if constexpr (is_std_optional<U>::value) {
        if (j.is_null()) {
            out.reset();
        } else {
            typename U::value_type v{};
            if (auto failure = decode_value<typename U::value_type>(j, v, at)) return failure;
            out = std::move(v);
        }
    } else if constexpr (is_std_vector<U>::value) {
        if (!j.is_array()) return wrong_type(at, "an array", j);
        U v;
        v.reserve(j.size());
        std::size_t i = 0;
        for (const auto& element : j) {
            const value_path step{at, value_path::kind::index, {}, i++};
            typename U::value_type e{};  // null only fits an optional (or a json) element
            if (auto failure = decode_value<typename U::value_type>(element, e, &step)) return failure;
            v.push_back(std::move(e));
        }
        out = std::move(v);
    } else if constexpr (string_keyed_map<U>) {
        if (!j.is_object()) return wrong_type(at, "an object", j);
        U m;
        for (auto it = j.begin(); it != j.end(); ++it) {
            const value_path step{at, value_path::kind::string_key, it.key()};
            typename U::mapped_type v{};
            if (auto failure = decode_value<typename U::mapped_type>(*it, v, &step)) return failure;
            m.emplace(it.key(), std::move(v));
        }
        out = std::move(m);
    } else if constexpr (tuple_like<U> || is_std_array<U>::value) {
        constexpr std::size_t n = std::tuple_size_v<U>;
        if (!j.is_array() || j.size() != n) return wrong_type(at, "an array of " + std::to_string(n) + " elements", j);
        U v{};
        std::optional<std::string> failure;
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            auto one = [&](auto& element, std::size_t i) {
                if (failure) return;
                const value_path step{at, value_path::kind::index, {}, i};
                failure = decode_value<std::remove_cvref_t<decltype(element)>>(j[i], element, &step);
            };
            (one(std::get<I>(v), I), ...);
        }(std::make_index_sequence<n>{});
        if (failure) return failure;
        out = std::move(v);
    } else if constexpr (insertable_range<U>) {
        if (!j.is_array()) return wrong_type(at, "an array", j);
        U v{};
        std::size_t i = 0;
        for (const auto& element : j) {
            const value_path step{at, value_path::kind::index, {}, i++};
            typename U::value_type e{};
            if (auto failure = decode_value<typename U::value_type>(element, e, &step)) return failure;
            v.insert(v.end(), std::move(e));
        }
        out = std::move(v);
    } else if constexpr (pair_keyed_map<U>) {
        if (!j.is_array()) return wrong_type(at, "an array of [key, value] arrays", j);
        U m{};
        std::size_t i = 0;
        for (const auto& entry : j) {
            const value_path step{at, value_path::kind::key_of_entry, {}, i};
            if (!entry.is_array() || entry.size() != 2) return wrong_type(&step, "a [key, value] array", entry);
            std::remove_cv_t<typename U::key_type> key{};
            if (auto failure = decode_value<std::remove_cv_t<typename U::key_type>>(entry[0], key, &step))
                return failure;
            const value_path mapped_step{at, value_path::kind::index, {}, i++};
            typename U::mapped_type mapped{};
            if (auto failure = decode_value<typename U::mapped_type>(entry[1], mapped, &mapped_step)) return failure;
            m.emplace(std::move(key), std::move(mapped));
        }
        out = std::move(m);
    } else if constexpr (hana_struct<U>) {
        if (!j.is_object()) return wrong_type(at, "an object", j);
        return decode_members(j, out, at);
    } else {
        try {
            j.get_to(out);
        } catch (const std::exception& e) {
            return "member '" + (at != nullptr ? at->str() : std::string{"value"}) + "' does not convert: " + e.what();
        }
    }
    return std::nullopt;
}

/// True if `a` and `b` hold the same value: `==` for the leaves, member by
/// member for Hana Structs without `==`, element by element for optionals,
/// vectors and string-keyed maps (whose `==` would need their elements' `==`).
template <class T>
bool value_equal(const T& a, const T& b) {
    using U = std::remove_cv_t<T>;
    if constexpr (is_std_optional<U>::value) {
        if (a.has_value() != b.has_value()) return false;
        return !a || value_equal<typename U::value_type>(*a, *b);
    } else if constexpr (is_std_vector<U>::value) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (!value_equal<typename U::value_type>(a[i], b[i])) return false;
        }
        return true;
    } else if constexpr (string_keyed_map<U>) {
        if (a.size() != b.size()) return false;
        for (const auto& [key, mapped] : a) {
            auto it = b.find(key);
            if (it == b.end() || !value_equal<typename U::mapped_type>(mapped, it->second)) return false;
        }
        return true;
    } else if constexpr (std::equality_comparable<U>) {
        return static_cast<bool>(a == b);
    } else if constexpr (hana_struct<U>) {
        bool same = true;
        boost::hana::for_each(boost::hana::accessors<U>(), [&](auto pair) {
            const auto& ma = boost::hana::second(pair)(a);
            same = same && value_equal<std::remove_cvref_t<decltype(ma)>>(ma, boost::hana::second(pair)(b));
        });
        return same;
    } else {
        return encode_value(a) == encode_value(b);
    }
}

}  // namespace tether::detail
