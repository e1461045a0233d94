#pragma once

#include <tether/core/detail/entity_types.hpp>
#include <tether/core/detail/finite.hpp>
#include <tether/core/detail/member_check.hpp>
#include <tether/core/detail/member_codec.hpp>
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
