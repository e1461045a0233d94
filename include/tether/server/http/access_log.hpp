#pragma once

/// @file
/// @brief The access log of an HTTP face: one entry per request (method, path,
/// status, duration, user; never a token), the line it is written as, and
/// sinks (target `tether::server_http`).
#include <tether/core/timestamp.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace tether::server {

/// @brief What the access log records of one request.
struct access_entry {
    timestamp at;                        ///< when the request was answered (the face's clock)
    std::string method;                  ///< `GET`, `POST`, ...
    std::string path;                    ///< the path, without the query
    int status = 0;                      ///< the HTTP status answered
    std::chrono::microseconds duration{}; ///< from the request's headers read to its answer written
    std::string user;                    ///< the user its token stood for; empty: none (no or bad token)
};

/// @brief Where access entries go: called once per request, from the thread
/// that served it (so it must be thread-safe). It never sees a token.
using access_sink = std::function<void(const access_entry&)>;

/// @brief `s` made safe for a log line: bytes outside visible ASCII, and `"`
/// and `\`, as `\xHH`, so a request cannot forge a line or split one.
[[nodiscard]] inline std::string log_escape(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x21 || c > 0x7E || c == '"' || c == '\\') {
            out += "\\x";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0x0F]);
        } else {
            out.push_back(ch);
        }
    }
    return out;
}

/// @brief The line an entry is written as, without a newline:
/// `2026-12-02T13:40:00.123Z POST /v1/jobs/push 200 1.234ms user=alice`
/// (`user=-` when there was none). Method, path and user pass `log_escape`.
[[nodiscard]] inline std::string format_access_line(const access_entry& e) {
    const auto ms = e.at.time_since_epoch().count();
    const std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    const int frac = static_cast<int>(ms - static_cast<long long>(secs) * 1000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char when[96];
    std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    const auto us = e.duration.count() < 0 ? 0 : e.duration.count();
    char took[64];
    std::snprintf(took, sizeof took, "%lld.%03lldms", static_cast<long long>(us / 1000),
                  static_cast<long long>(us % 1000));
    std::string line = when;
    line += ' ';
    line += log_escape(e.method);
    line += ' ';
    line += log_escape(e.path);
    line += ' ';
    line += std::to_string(e.status);
    line += ' ';
    line += took;
    line += " user=";
    line += e.user.empty() ? std::string{"-"} : log_escape(e.user);
    return line;
}

/// @brief A sink writing each entry's line to `out`, one line per entry,
/// flushed, under a lock of its own (the stream must outlive the sink).
[[nodiscard]] inline access_sink stream_sink(std::ostream& out) {
    auto lock = std::make_shared<std::mutex>();
    return [&out, lock](const access_entry& e) {
        const std::string line = format_access_line(e) + '\n';
        std::lock_guard guard{*lock};
        out << line;
        out.flush();
    };
}

}  // namespace tether::server
