#pragma once

// tether::protocol: whether a JSON value can be sent. JSON text is UTF-8, so a
// string holding other bytes (a binary blob in a std::string) has no encoding;
// checking before encoding lets one such op be refused alone.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace tether::protocol {

/// @brief True if `s` is well-formed UTF-8 (no overlong forms, no surrogates,
/// nothing above U+10FFFF).
[[nodiscard]] constexpr bool valid_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<std::uint8_t>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t n = 0;
        std::uint32_t cp = 0;
        std::uint32_t min = 0;
        if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1Fu; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0Fu; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07u; min = 0x10000; }
        else return false;
        if (s.size() - i <= n) return false;
        for (std::size_t k = 1; k <= n; ++k) {
            const auto cc = static_cast<std::uint8_t>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n + 1;
    }
    return true;
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
