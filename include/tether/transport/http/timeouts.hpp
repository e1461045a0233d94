#pragma once

// tether::http: the three timeouts of an HTTP exchange, and how they are set on
// a cpp-httplib client. Shared by every HTTP transport.
#include <httplib.h>

#include <chrono>

namespace tether::http {

/// @brief How long an exchange may wait at each stage before it fails
/// (`errc::transient`: see `error_table`).
struct timeouts {
    std::chrono::milliseconds connect{std::chrono::seconds{10}};  ///< to open the TCP connection (and TLS)
    std::chrono::milliseconds read{std::chrono::seconds{30}};     ///< between bytes of the answer
    std::chrono::milliseconds write{std::chrono::seconds{30}};    ///< between bytes of the request

    friend bool operator==(const timeouts&, const timeouts&) = default;
};

/// @brief Sets `t` on `client` (a zero or negative timeout counts as 1 ms).
inline void apply(httplib::Client& client, const timeouts& t) {
    auto at_least_1ms = [](std::chrono::milliseconds d) { return d.count() < 1 ? std::chrono::milliseconds{1} : d; };
    client.set_connection_timeout(at_least_1ms(t.connect));
    client.set_read_timeout(at_least_1ms(t.read));
    client.set_write_timeout(at_least_1ms(t.write));
}

}  // namespace tether::http
