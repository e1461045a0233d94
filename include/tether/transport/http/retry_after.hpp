#pragma once

// tether::http: the Retry-After header (RFC 9110, 10.2.3) in both of its forms:
// delay-seconds ("120") and an HTTP-date, in any of the three date formats a
// recipient must accept (IMF-fixdate, RFC 850, asctime).
#include <tether/core/timestamp.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tether::http {

/// @brief The longest wait a Retry-After may ask for; a longer one is cut to it,
/// so a misconfigured server cannot park a client for days.
inline constexpr std::chrono::milliseconds max_retry_after{std::chrono::hours{24}};

namespace detail {

/// `s` without leading and trailing spaces and tabs.
constexpr std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

/// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's algorithm).
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

/// True for a Gregorian leap year.
constexpr bool leap(std::int64_t y) noexcept { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/// The days in month `m` (1-12) of year `y`.
constexpr unsigned days_in_month(std::int64_t y, unsigned m) noexcept {
    constexpr std::array<unsigned, 12> days{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : days[m - 1];
}

/// A cursor over the header text; each reader consumes what it reads or fails.
struct scanner {
    std::string_view s;  ///< what is left to read
    bool ok = true;      ///< false once anything failed

    /// True when everything was read.
    constexpr bool done() const noexcept { return s.empty(); }
    /// Exactly `lit`.
    constexpr void literal(std::string_view lit) noexcept {
        if (ok && s.substr(0, lit.size()) == lit) s.remove_prefix(lit.size());
        else ok = false;
    }
    /// Exactly `width` digits (`width` 0: one or more).
    constexpr std::int64_t number(std::size_t width) noexcept {
        std::int64_t v = 0;
        std::size_t n = 0;
        while (ok && !s.empty() && s.front() >= '0' && s.front() <= '9' && (width == 0 || n < width) && n < 12) {
            v = v * 10 + (s.front() - '0');
            s.remove_prefix(1);
            ++n;
        }
        if (n == 0 || (width != 0 && n != width)) ok = false;
        return v;
    }
    /// One of `names` (case-sensitive, as the RFC spells them); its index, 1-based.
    template <std::size_t N>
    constexpr unsigned name(const std::array<std::string_view, N>& names) noexcept {
        for (std::size_t i = 0; ok && i < N; ++i) {
            if (s.substr(0, names[i].size()) == names[i]) {
                s.remove_prefix(names[i].size());
                return static_cast<unsigned>(i + 1);
            }
        }
        ok = false;
        return 0;
    }
};

/// Month names, as HTTP-dates spell them.
inline constexpr std::array<std::string_view, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
/// Weekday names of IMF-fixdate and asctime.
inline constexpr std::array<std::string_view, 7> short_days{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
/// Weekday names of RFC 850 dates.
inline constexpr std::array<std::string_view, 7> long_days{"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                            "Friday", "Saturday", "Sunday"};

/// The time of a checked calendar date and clock time (UTC); a leap second counts as :59.
constexpr std::optional<timestamp> make_time(std::int64_t y, std::int64_t mo, std::int64_t d, std::int64_t h,
                                             std::int64_t mi, std::int64_t s) noexcept {
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 60) return std::nullopt;
    if (d > days_in_month(y, static_cast<unsigned>(mo))) return std::nullopt;
    const std::int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
    const std::int64_t secs = days * 86400 + h * 3600 + mi * 60 + (s == 60 ? 59 : s);
    return timestamp{std::chrono::milliseconds{secs * 1000}};
}

/// Reads `hh:mm:ss`.
constexpr void clock_time(scanner& sc, std::int64_t& h, std::int64_t& m, std::int64_t& s) noexcept {
    h = sc.number(2);
    sc.literal(":");
    m = sc.number(2);
    sc.literal(":");
    s = sc.number(2);
}

}  // namespace detail

/// @brief Parses an HTTP-date: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
/// RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`; a two-digit year is taken in the
/// century that puts it no more than 50 years after `now`) or asctime
/// (`Sun Nov  6 08:49:37 1994`). The weekday must be a weekday name; it is not
/// checked against the date. Anything else is `std::nullopt`.
[[nodiscard]] constexpr std::optional<timestamp> parse_http_date(std::string_view text, timestamp now) noexcept {
    using namespace detail;
    text = trim(text);
    std::int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    {  // IMF-fixdate
        scanner sc{text};
        sc.name(short_days);
        sc.literal(", ");
        d = sc.number(2);
        sc.literal(" ");
        mo = sc.name(months);
        sc.literal(" ");
        y = sc.number(4);
        sc.literal(" ");
        clock_time(sc, h, mi, s);
        sc.literal(" GMT");
        if (sc.ok && sc.done()) return make_time(y, mo, d, h, mi, s);
    }
    {  // RFC 850
        scanner sc{text};
        sc.name(long_days);
        sc.literal(", ");
        d = sc.number(2);
        sc.literal("-");
        mo = sc.name(months);
        sc.literal("-");
        y = sc.number(2);
        sc.literal(" ");
        clock_time(sc, h, mi, s);
        sc.literal(" GMT");
        if (sc.ok && sc.done()) {
            // The year in (this year - 50, this year + 50] with these two digits
            // (RFC 9110 §5.6.7: more than 50 years ahead means the century before).
            const std::chrono::year_month_day today{std::chrono::floor<std::chrono::days>(now)};
            const std::int64_t this_year = static_cast<int>(today.year());
            std::int64_t full = this_year - this_year % 100 + y;
            if (full > this_year + 50) full -= 100;
            else if (full <= this_year - 50) full += 100;
            return make_time(full, mo, d, h, mi, s);
        }
    }
    {  // asctime: the day is two characters, a space-padded digit or two digits
        scanner sc{text};
        sc.name(short_days);
        sc.literal(" ");
        mo = sc.name(months);
        sc.literal(" ");
        if (sc.ok && !sc.s.empty() && sc.s.front() == ' ') {
            sc.literal(" ");
            d = sc.number(1);
        } else {
            d = sc.number(2);
        }
        sc.literal(" ");
        clock_time(sc, h, mi, s);
        sc.literal(" ");
        y = sc.number(4);
        if (sc.ok && sc.done()) return make_time(y, mo, d, h, mi, s);
    }
    return std::nullopt;
}

/// @brief The wait a Retry-After header value asks for, measured from `now`:
/// delay-seconds (digits only) or an HTTP-date (a date already past is 0). The
/// wait is cut to `max_retry_after`. An empty, negative, fractional or
/// otherwise malformed value is `std::nullopt` (the header is ignored).
///
/// @code
/// auto wait = tether::http::parse_retry_after("120", now);                           // 120 s
/// auto when = tether::http::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now);  // until then
/// @endcode
[[nodiscard]] constexpr std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                                                   timestamp now) noexcept {
    value = detail::trim(value);
    if (value.empty()) return std::nullopt;
    if (value.front() >= '0' && value.front() <= '9') {
        std::int64_t secs = 0;
        for (const char c : value) {
            if (c < '0' || c > '9') return std::nullopt;
            if (secs < max_retry_after.count()) secs = secs * 10 + (c - '0');
        }
        const std::chrono::milliseconds wait{secs >= max_retry_after.count() / 1000 ? max_retry_after.count()
                                                                                    : secs * 1000};
        return wait;
    }
    const auto at = parse_http_date(value, now);
    if (!at) return std::nullopt;
    if (*at <= now) return std::chrono::milliseconds{0};
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(*at - now);
    return wait > max_retry_after ? max_retry_after : wait;
}

}  // namespace tether::http
