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

#include <cmath>
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
///   (every member convertible with nlohmann_json): fields map to JSON keys,
///   equality and diff go member by member;
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
                j[boost::hana::to<char const*>(boost::hana::first(pair))] = boost::hana::second(pair)(e);
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
            } else {
                const char* mistyped = nullptr;
                boost::hana::for_each(boost::hana::accessors<E>(), [&](auto pair) {
                    const char* name = boost::hana::to<char const*>(boost::hana::first(pair));
                    if (auto it = j.find(name); it != j.end() && !it->is_null()) {
                        auto& field = boost::hana::second(pair)(e);
                        // nlohmann converts between booleans and numbers silently; a
                        // payload that mixes them up is malformed, not a value.
                        using field_t = std::remove_cvref_t<decltype(field)>;
                        if constexpr (std::is_same_v<field_t, bool>) {
                            if (!it->is_boolean()) mistyped = name;
                        } else if constexpr (std::is_integral_v<field_t>) {
                            if (!detail::fits_integral<field_t>(*it)) mistyped = name;
                        } else if constexpr (std::is_arithmetic_v<field_t>) {
                            if (!it->is_number()) mistyped = name;
                        }
                        if (!mistyped) it->get_to(field);
                    }
                });
                if (mistyped) {
                    return unexpected{make_error(errc::protocol, std::string{"entity JSON does not fit "} +
                                                                     std::string{collection_or_type()} + ": member '" +
                                                                     mistyped + "' has the wrong type")};
                }
            }
            return e;
        } catch (const nlohmann::json::exception& ex) {
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
                same = same && (boost::hana::second(pair)(a) == boost::hana::second(pair)(b));
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
                if (!(boost::hana::second(pair)(a) == boost::hana::second(pair)(b))) {
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
/// 3. `E` is a Boost.Hana Struct or has nlohmann `to_json`/`from_json`.
template <class E>
concept entity = std::is_object_v<E> && std::copyable<E> && std::default_initializable<E>
    && requires {
           { entity_traits<E>::collection } -> std::convertible_to<std::string_view>;
       }
    && (detail::hana_struct<E> || detail::nlohmann_convertible<E>);

/// @brief The collection name of `E` (shorthand for `entity_traits<E>::collection`).
template <entity E>
[[nodiscard]] constexpr std::string_view collection_of() noexcept {
    return std::string_view{entity_traits<E>::collection};
}

}  // namespace tether
