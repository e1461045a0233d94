#pragma once

// tether::rest: small pieces the REST transport reads and writes JSON with:
// dotted field paths, the server's `updated_at` in its formats, a short
// printable excerpt of an answer for error messages. Not a public entry point.
#include <tether/core/timestamp.hpp>
#include <tether/transport/rest/mapping.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tether::rest {

/// @brief The value at dotted `path` in `j` (`media.audioUrl`), or null if absent.
[[nodiscard]] inline const nlohmann::json* get_path(const nlohmann::json& j, std::string_view path) {
    const nlohmann::json* at = &j;
    while (!path.empty()) {
        const auto dot = path.find('.');
        const auto key = path.substr(0, dot);
        if (!at->is_object()) return nullptr;
        auto it = at->find(key);
        if (it == at->end()) return nullptr;
        at = &*it;
        path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
    }
    return at;
}

/// @brief Sets dotted `path` in `j` to `v`, making the objects on the way
/// (false if a step on the way is not an object).
inline bool set_path(nlohmann::json& j, std::string_view path, nlohmann::json v) {
    nlohmann::json* at = &j;
    for (;;) {
        if (at->is_null()) *at = nlohmann::json::object();
        if (!at->is_object()) return false;
        const auto dot = path.find('.');
        const std::string key{path.substr(0, dot)};
        if (dot == std::string_view::npos) {
            (*at)[key] = std::move(v);
            return true;
        }
        at = &(*at)[key];
        path = path.substr(dot + 1);
    }
}

/// @brief Removes dotted `path` from `j` (and objects left empty on the way).
inline void erase_path(nlohmann::json& j, std::string_view path) {
    if (!j.is_object()) return;
    const auto dot = path.find('.');
    const std::string key{path.substr(0, dot)};
    auto it = j.find(key);
    if (it == j.end()) return;
    if (dot == std::string_view::npos) {
        j.erase(it);
        return;
    }
    erase_path(*it, path.substr(dot + 1));
    if (it->is_object() && it->empty()) j.erase(it);
}

/// @brief At most 120 bytes of `body`, control characters as spaces: what an
/// error message quotes of a malformed answer.
[[nodiscard]] inline std::string excerpt(std::string_view body) {
    constexpr std::size_t max = 120;
    std::string out{body.substr(0, max)};
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
    if (body.size() > max) out += "...";
    return out;
}

/// @brief A server time at the precision it was given: nanoseconds since the
/// epoch (the order of the watermark), and the text as the server wrote it
/// (sent back as it came, so no precision is lost on the way).
struct server_time {
    std::int64_t ns = 0;  ///< nanoseconds since the epoch
    std::string text;     ///< the server's own text (or number) of it

    /// @brief The time in tether's precision (milliseconds, rounded down).
    [[nodiscard]] timestamp at() const {
        auto ms = ns / 1'000'000;
        if (ns < 0 && ns % 1'000'000 != 0) --ms;
        return timestamp{std::chrono::milliseconds{ms}};
    }
};

namespace detail {
/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
[[nodiscard]] constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

/// The `n` digits at `s[i]` as a number, or -1.
[[nodiscard]] inline int digits(std::string_view s, std::size_t i, std::size_t n) {
    if (i + n > s.size()) return -1;
    int v = 0;
    for (std::size_t k = i; k < i + n; ++k) {
        if (s[k] < '0' || s[k] > '9') return -1;
        v = v * 10 + (s[k] - '0');
    }
    return v;
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)` as nanoseconds, or nullopt.
[[nodiscard]] inline std::optional<std::int64_t> parse_iso8601(std::string_view s) {
    const int y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
    const int h = digits(s, 11, 2), mi = digits(s, 14, 2), se = digits(s, 17, 2);
    if (s.size() < 20 || y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
        se < 0 || se > 60 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':')
        return std::nullopt;
    std::size_t i = 19;
    std::int64_t frac = 0;
    if (s[i] == '.') {
        std::size_t n = 0;
        for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++n) {
            if (n < 9) frac = frac * 10 + (s[i] - '0');
        }
        if (n == 0) return std::nullopt;
        for (; n < 9; ++n) frac *= 10;
    }
    std::int64_t offset_s = 0;
    if (i < s.size() && (s[i] == 'Z' || s[i] == 'z') && i + 1 == s.size()) {
        // UTC
    } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        const int oh = digits(s, i + 1, 2), om = digits(s, i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59) return std::nullopt;
        offset_s = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
    } else {
        return std::nullopt;
    }
    const auto days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
    const std::int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - offset_s;
    if (secs > 9'200'000'000 || secs < -9'200'000'000) return std::nullopt;  // nanoseconds within int64: 1678 to 2261
    return secs * 1'000'000'000 + frac;
}
}  // namespace detail

/// @brief Reads a server time in `format`; nullopt for anything else (a wrong
/// type, a malformed text, a number out of range).
[[nodiscard]] inline std::optional<server_time> parse_time(const nlohmann::json& j, rest_time_format format) {
    constexpr double max_s = 9.2e9;  // nanoseconds within int64
    if (format == rest_time_format::iso8601) {
        if (!j.is_string()) return std::nullopt;
        const auto& text = j.get_ref<const std::string&>();
        auto ns = detail::parse_iso8601(text);
        if (!ns) return std::nullopt;
        return server_time{*ns, text};
    }
    if (!j.is_number()) return std::nullopt;
    const double v = j.get<double>();
    const double secs = format == rest_time_format::unix_ms ? v / 1000.0 : v;
    if (!std::isfinite(v) || std::fabs(secs) > max_s) return std::nullopt;
    std::int64_t ns = 0;
    if (j.is_number_integer()) {
        const auto n = j.get<std::int64_t>();
        ns = format == rest_time_format::unix_ms ? n * 1'000'000 : n * 1'000'000'000;
    } else if (format == rest_time_format::unix_s) {
        // Kept to the millisecond: a double's seconds near today hold no finer
        // time, and 1e9 * v would round the millisecond itself away.
        ns = static_cast<std::int64_t>(std::llround(v * 1000.0)) * 1'000'000;
    } else {
        const double whole = std::floor(v);  // exact: the fraction of a ms is what the double holds
        const auto frac = std::min<std::int64_t>(std::llround((v - whole) * 1e6), 999'999);
        ns = static_cast<std::int64_t>(whole) * 1'000'000 + frac;
    }
    return server_time{ns, j.dump()};
}

}  // namespace tether::rest
