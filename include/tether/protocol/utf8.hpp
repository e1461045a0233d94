#pragma once

// tether::protocol: whether a JSON value can be sent. JSON text is UTF-8, so a
// string holding other bytes (a binary blob in a std::string) has no encoding;
// checking before encoding lets one such op be refused alone.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tether::protocol {

namespace detail {

/// The length of the well-formed UTF-8 sequence at `s[i]`, or 0 if there is none.
[[nodiscard]] constexpr std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
    const auto c = static_cast<std::uint8_t>(s[i]);
    if (c < 0x80) return 1;
    std::size_t n = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1Fu; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0Fu; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07u; min = 0x10000; }
    else return 0;
    if (s.size() - i <= n) return 0;
    for (std::size_t k = 1; k <= n; ++k) {
        const auto cc = static_cast<std::uint8_t>(s[i + k]);
        if ((cc & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n + 1;
}

}  // namespace detail

/// @brief True if `s` is well-formed UTF-8 (no overlong forms, no surrogates,
/// nothing above U+10FFFF).
[[nodiscard]] constexpr bool valid_utf8(std::string_view s) noexcept {
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = detail::utf8_sequence(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

/// @brief `s` with each byte that is not part of well-formed UTF-8 replaced by
/// U+FFFD, so that it can be sent as a JSON string (text for people, such as
/// an error message quoting what a peer sent).
[[nodiscard]] inline std::string to_valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = detail::utf8_sequence(s, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

/// @brief True if every string and object key in `j` is valid UTF-8, so that
/// `j` serialises as JSON. Walks iteratively: any depth is safe.
[[nodiscard]] inline bool encodable(const nlohmann::json& j) {
    std::vector<const nlohmann::json*> todo{&j};
    while (!todo.empty()) {
        const auto* v = todo.back();
        todo.pop_back();
        if (v->is_string()) {
            if (!valid_utf8(v->get_ref<const std::string&>())) return false;
        } else if (v->is_object()) {
            for (auto it = v->begin(); it != v->end(); ++it) {
                if (!valid_utf8(it.key())) return false;
                todo.push_back(&it.value());
            }
        } else if (v->is_array()) {
            for (const auto& e : *v) todo.push_back(&e);
        }
    }
    return true;
}

}  // namespace tether::protocol
