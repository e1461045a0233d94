#pragma once

#include <tether/core/error.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>

#include <boost/hana/accessors.hpp>
#include <boost/hana/adapt_struct.hpp>
#include <boost/hana/concept/struct.hpp>
#include <boost/hana/define_struct.hpp>
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

namespace tether {

namespace detail {

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

}  // namespace detail

/// @brief Where an entity lives: its collection name.
///
/// By default `E::collection` (a static member convertible to `std::string_view`).
/// For a type you cannot change, specialise this template:
///
/// @code
/// template <> struct tether::entity_traits<thirdparty::Note> {
///     static constexpr std::string_view collection = "notes";
/// };
/// @endcode
template <class E>
struct entity_traits {};

/// @brief The default `entity_traits`: `collection` is `E::collection`.
template <detail::has_collection_member E>
struct entity_traits<E> {
    /// @brief The collection (server-side and local table) the entity lives in.
    static constexpr std::string_view collection = E::collection;
};

/// @brief What tether derives from an entity type: JSON form, equality, field
/// diff and field merge.
///
/// Two kinds of type are served:
/// - a struct made visible with `BOOST_HANA_DEFINE_STRUCT` / `BOOST_HANA_ADAPT_STRUCT`
///   (every member of a type listed in `tether::entity`): fields map to JSON
///   keys, equality and diff go member by member. A member is one field however
///   deep it is: a nested struct, an optional or a vector that differs anywhere
///   is named whole by `diff`, and `merge` takes it whole;
/// - a type with its own nlohmann `to_json`/`from_json` producing a JSON object:
///   its fields are the object's top-level keys.
///
/// @code
/// struct Job {
///     BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
///     static constexpr std::string_view collection = "jobs";
/// };
/// auto changed = tether::entity_ops<Job>::diff(Job{"a", 1}, Job{"a", 2});  // {"progress"}
/// @endcode
template <class E>
struct entity_ops {
    // A member that does not convert is named here (see entity_member_does_not_convert).
    static_assert(detail::check_members_convert<E>());

    /// @brief The entity as a JSON object.
    static nlohmann::json to_json(const E& e) {
        if constexpr (detail::nlohmann_convertible<E>) {
            nlohmann::json j;
            using nlohmann::to_json;
            to_json(j, e);
            return j;
        } else {
            static_assert(detail::hana_struct<E>,
                          "tether: an entity must be a Boost.Hana Struct (BOOST_HANA_DEFINE_STRUCT / "
                          "BOOST_HANA_ADAPT_STRUCT) or provide nlohmann to_json/from_json");
            nlohmann::json j = nlohmann::json::object();
            boost::hana::for_each(boost::hana::accessors<E>(), [&](auto pair) {
                const auto& member = boost::hana::second(pair)(e);
                j[boost::hana::to<char const*>(boost::hana::first(pair))] =
                    detail::encode_value<std::remove_cvref_t<decltype(member)>>(member);
            });
            return j;
        }
    }

    /// @brief The entity from JSON. A non-object or a member of the wrong type is
    /// an `errc::protocol` error; a missing member keeps its default value (so an
    /// app can add fields before the server knows them).
    static result<E> from_json(const nlohmann::json& j) {
        if (!j.is_object()) {
            return unexpected{make_error(errc::protocol, "entity JSON must be an object, got " +
                                                             std::string{j.type_name()})};
        }
        try {
            E e{};
            if constexpr (detail::nlohmann_convertible<E>) {
                using nlohmann::from_json;
                from_json(j, e);
            } else if (auto failure = detail::decode_members(j, e, nullptr)) {
                return unexpected{make_error(errc::protocol, std::string{"entity JSON does not fit "} +
                                                                 std::string{collection_or_type()} + ": " + *failure)};
            }
            return e;
        } catch (const std::exception& ex) {
            return unexpected{make_error(errc::protocol, std::string{"entity JSON does not fit "} +
                                                             std::string{collection_or_type()} + ": " + ex.what())};
        }
    }

    /// @brief `errc::invalid_argument` if a floating-point value anywhere in `e`
    /// is NaN or infinite: JSON has no such numbers (nlohmann writes them as
    /// `null`, which then reads back as a default or not at all).
    ///
    /// Looks into plain members, `std::optional`, `std::pair`, ranges (vectors,
    /// arrays, maps: `samples[3]`, `weights["a"]`) and nested Hana Structs; an
    /// entity with its own nlohmann `to_json` has its JSON walked instead. The
    /// message names the value (`member 'samples[3]' is NaN; JSON cannot carry it`).
    /// Decided at compile time where it can: for a Hana entity without
    /// floating-point members it is an empty function.
    static result<void> validate(const E& e) {
        std::optional<std::string> found;
        try {
            if constexpr (detail::nlohmann_convertible<E>) {
                found = detail::find_non_finite_json(to_json(e), nullptr);
            } else if constexpr (detail::may_hold_floating<E>()) {
                found = detail::find_non_finite(e, nullptr);
            }
        } catch (const nlohmann::json::exception& ex) {
            return unexpected{make_error(errc::invalid_argument, std::string{"entity does not convert to JSON: "} +
                                                                     ex.what())};
        }
        if (found) return unexpected{make_error(errc::invalid_argument, std::move(*found))};
        return {};
    }

    /// @brief True if `a` and `b` hold the same data.
    static bool equal(const E& a, const E& b) {
        if constexpr (detail::equality_comparable_entity<E>) {
            return static_cast<bool>(a == b);
        } else if constexpr (detail::hana_struct<E> && !detail::nlohmann_convertible<E>) {
            bool same = true;
            boost::hana::for_each(boost::hana::accessors<E>(), [&](auto pair) {
                const auto& ma = boost::hana::second(pair)(a);
                same = same && detail::value_equal<std::remove_cvref_t<decltype(ma)>>(ma, boost::hana::second(pair)(b));
            });
            return same;
        } else {
            return to_json(a) == to_json(b);
        }
    }

    /// @brief The names of the fields whose values differ between `a` and `b`.
    static field_set diff(const E& a, const E& b) {
        field_set out;
        diff_into(a, b, out);
        return out;
    }

    /// @brief Adds to `out` the names of the fields that differ between `a` and
    /// `b` (a name already in `out` costs no allocation); true if any differ.
    static bool diff_into(const E& a, const E& b, field_set& out) {
        bool any = false;
        auto add = [&](std::string_view name) {
            any = true;
            if (!out.contains(name)) out.emplace(name);
        };
        if constexpr (detail::hana_struct<E> && !detail::nlohmann_convertible<E>) {
            boost::hana::for_each(boost::hana::accessors<E>(), [&](auto pair) {
                const auto& ma = boost::hana::second(pair)(a);
                if (!detail::value_equal<std::remove_cvref_t<decltype(ma)>>(ma, boost::hana::second(pair)(b))) {
                    add(boost::hana::to<char const*>(boost::hana::first(pair)));
                }
            });
        } else {
            const auto ja = to_json(a);
            const auto jb = to_json(b);
            for (auto it = ja.begin(); it != ja.end(); ++it) {
                auto other = jb.find(it.key());
                if (other == jb.end() || *other != it.value()) add(it.key());
            }
            for (auto it = jb.begin(); it != jb.end(); ++it) {
                if (!ja.contains(it.key())) add(it.key());
            }
        }
        return any;
    }

    /// @brief `base` with the fields named in `fields` taken from `from`.
    static E merge(E base, const E& from, const field_set& fields) {
        if constexpr (detail::hana_struct<E> && !detail::nlohmann_convertible<E>) {
            boost::hana::for_each(boost::hana::accessors<E>(), [&](auto pair) {
                if (fields.contains(std::string_view{boost::hana::to<char const*>(boost::hana::first(pair))})) {
                    boost::hana::second(pair)(base) = boost::hana::second(pair)(from);
                }
            });
            return base;
        } else {
            auto jb = to_json(base);
            const auto jf = to_json(from);
            for (const auto& name : fields) {
                if (auto it = jf.find(name); it != jf.end()) {
                    jb[name] = *it;
                } else {
                    jb.erase(name);
                }
            }
            auto merged = from_json(jb);
            return merged ? std::move(*merged) : base;
        }
    }

private:
    static constexpr std::string_view collection_or_type() noexcept {
        if constexpr (requires { entity_traits<E>::collection; }) {
            return std::string_view{entity_traits<E>::collection};
        } else {
            return "the entity type";
        }
    }
};

/// @brief A type tether can keep and sync: copyable, default-constructible,
/// with a collection name and a JSON form through `entity_traits<E>`.
///
/// Requirements on `E`:
/// 1. `E` is a copyable, default-constructible object type;
/// 2. `entity_traits<E>::collection` is convertible to `std::string_view`;
/// 3. `E` is a Boost.Hana Struct or has nlohmann `to_json`/`from_json`;
/// 4. for a Hana Struct, every member converts to and from JSON: `bool`,
///    integers, floating point, enums with a fixed underlying type, `std::string`,
///    `system_clock` time points, `std::optional`, `std::vector`, maps, sets,
///    `std::pair`, `std::tuple`, `std::array`, nested Hana Structs,
///    `nlohmann::json`, types with nlohmann conversions, and compositions of these (docs/guide.md, section 1, gives each one's JSON form).
///
/// Item 4 is not a quiet `false`: a Hana Struct that meets 1 to 3 but has a
/// member that does not convert stops the compilation where the concept is
/// checked, with a `static_assert` naming the member (`tether: an entity member
/// does not convert ...`, the struct, the member's name and its type shown as
/// the arguments of `entity_member_does_not_convert`), rather than deep inside
/// the JSON conversion later.
template <class E>
concept entity = std::is_object_v<E> && std::copyable<E> && std::default_initializable<E>
    && requires {
           { entity_traits<E>::collection } -> std::convertible_to<std::string_view>;
       }
    && (detail::hana_struct<E> || detail::nlohmann_convertible<E>) && detail::check_members_convert<E>();

/// @brief The collection name of `E` (shorthand for `entity_traits<E>::collection`).
template <entity E>
[[nodiscard]] constexpr std::string_view collection_of() noexcept {
    return std::string_view{entity_traits<E>::collection};
}

}  // namespace tether
