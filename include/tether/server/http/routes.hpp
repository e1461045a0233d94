#pragma once

/// @file
/// @brief Which endpoint of wire protocol v1 a request is for: the route table
/// of the HTTP face, as a pure function of the method and the raw target
/// (target `tether::server_http`).
#include <tether/core/error.hpp>
#include <tether/protocol/limits.hpp>
#include <tether/protocol/paths.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace tether::server {

/// @brief The endpoints of protocol v1 (docs/protocol.md, "Endpoints").
enum class endpoint {
    health,   ///< `GET /healthz`
    info,     ///< `GET /v1/info`
    push,     ///< `POST /v1/{collection}/push`
    changes,  ///< `GET /v1/{collection}/changes`
    record,   ///< `GET /v1/{collection}/records/{server_id}`
    events,   ///< `GET /v1/{collection}/events` (Server-Sent Events)
};

/// @brief A request's place in the route table: its endpoint and path
/// parameters, or why it has none (`refusal`: 400 for a bad collection name or
/// server id, 404 for no such endpoint, 405 for the wrong method).
struct route {
    std::optional<endpoint> to;     ///< the endpoint; empty when refused
    std::string collection;         ///< push, changes, record, events
    std::string server_id;          ///< record, percent-decoded
    std::optional<error> refusal;   ///< set exactly when `to` is empty
};

/// @brief Routes `method` `target` (the raw target, query included: it is
/// split here so that an encoded `/` in a server id stays in its segment).
[[nodiscard]] inline route route_request(std::string_view method, std::string_view target) {
    auto refuse = [](errc code, int status, std::string why) {
        return route{std::nullopt, {}, {}, error{code, std::move(why), status, std::nullopt}};
    };
    auto want = [&](std::string_view m, route r) {
        if (method == m) return r;
        return refuse(errc::rejected, 405, "method not allowed here; use " + std::string{m});
    };
    std::string_view path = target.substr(0, target.find('?'));
    if (path == protocol::health_path) return want("GET", route{endpoint::health, {}, {}, {}});
    if (path == protocol::info_path) return want("GET", route{endpoint::info, {}, {}, {}});
    if (path.substr(0, 4) != "/v1/") return refuse(errc::not_found, 404, "no such endpoint");
    path.remove_prefix(4);
    const auto slash = path.find('/');
    if (slash == std::string_view::npos) return refuse(errc::not_found, 404, "no such endpoint");
    const std::string_view collection = path.substr(0, slash);
    const std::string_view rest = path.substr(slash + 1);
    const bool known = rest == "push" || rest == "changes" || rest == "events" ||
                       (rest.substr(0, 8) == "records/" && rest.size() > 8);
    if (!known) return refuse(errc::not_found, 404, "no such endpoint");
    if (!protocol::valid_collection(collection))
        return refuse(errc::protocol, 400, "bad collection name: 1 to 64 of A-Z a-z 0-9 _ . -, not starting with a dot");
    if (rest == "push") return want("POST", route{endpoint::push, std::string{collection}, {}, {}});
    if (rest == "changes") return want("GET", route{endpoint::changes, std::string{collection}, {}, {}});
    if (rest == "events") return want("GET", route{endpoint::events, std::string{collection}, {}, {}});
    const std::string_view encoded = rest.substr(8);
    if (encoded.find('/') != std::string_view::npos) return refuse(errc::not_found, 404, "no such endpoint");
    auto sid = protocol::percent_decode(encoded);
    if (!sid) return refuse(errc::protocol, 400, "bad server id: a % not followed by two hex digits");
    if (sid->empty() || sid->size() > protocol::max_server_id_bytes)
        return refuse(errc::protocol, 400, "bad server id: 1 to 256 bytes");
    return want("GET", route{endpoint::record, std::string{collection}, std::move(*sid), {}});
}

}  // namespace tether::server
