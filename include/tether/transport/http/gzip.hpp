#pragma once

// tether::http: gzip for request bodies, by cpp-httplib's own compressor (the
// one its server and client use), so no second zlib binding is needed. Shared
// by every HTTP transport.
#include <httplib.h>

#include <optional>
#include <string>
#include <string_view>

namespace tether::http {

/// @brief True if this build of cpp-httplib has zlib: request bodies can be
/// gzipped and gzipped answers are read.
inline constexpr bool gzip_available =
#ifdef CPPHTTPLIB_ZLIB_SUPPORT
    true;
#else
    false;
#endif

/// @brief `body` gzipped, or `std::nullopt` if compression is not available or failed.
[[nodiscard]] inline std::optional<std::string> gzip(std::string_view body) {
#ifdef CPPHTTPLIB_ZLIB_SUPPORT
    std::string out;
    httplib::detail::gzip_compressor compressor;
    const bool ok = compressor.compress(body.data(), body.size(), true, [&](const char* data, std::size_t n) {
        out.append(data, n);
        return true;
    });
    if (!ok) return std::nullopt;
    return out;
#else
    (void)body;
    return std::nullopt;
#endif
}

}  // namespace tether::http
