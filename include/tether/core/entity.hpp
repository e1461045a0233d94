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

#include <concepts>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

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
