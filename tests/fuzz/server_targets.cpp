// Fuzz targets for what the HTTP face reads of a request besides its body: the
// route (method and raw target), the bearer token, the page limit, and the
// token file tether-server loads.
#include "fuzz.hpp"

#include <tether/protocol/limits.hpp>
#include <tether/protocol/paths.hpp>
#include <tether/server/http/request_parts.hpp>
#include <tether/server/http/routes.hpp>
#include <tether/server/http/tokens.hpp>

#include <array>
#include <string>
#include <string_view>

namespace tether_fuzz {
namespace {

namespace server = tether::server;
namespace protocol = tether::protocol;

void route_target(std::string_view input) {
    // First byte picks the method; the rest is the raw target.
    constexpr std::array<std::string_view, 4> methods{"GET", "POST", "PUT", "DELETE"};
    const std::string_view method = input.empty() ? "GET" : methods[static_cast<unsigned char>(input[0]) % 4];
    const std::string_view target = input.empty() ? input : input.substr(1);
    const auto r = server::route_request(method, target);
    TETHER_FUZZ_CHECK("route", r.to.has_value() != r.refusal.has_value());
    if (!r.to) {
        const int status = r.refusal->http_status.value_or(0);
        TETHER_FUZZ_CHECK("route", status == 400 || status == 404 || status == 405);
        return;
    }
    using server::endpoint;
    if (*r.to == endpoint::push || *r.to == endpoint::changes || *r.to == endpoint::record)
        TETHER_FUZZ_CHECK("route", protocol::valid_collection(r.collection));
    if (*r.to == endpoint::record) {
        TETHER_FUZZ_CHECK("route", !r.server_id.empty() && r.server_id.size() <= protocol::max_server_id_bytes);
        // The path the client builds for that record routes to the same record.
        const auto again = server::route_request("GET", protocol::record_path(r.collection, r.server_id));
        TETHER_FUZZ_CHECK("route", again.to == endpoint::record && again.server_id == r.server_id &&
                                       again.collection == r.collection);
    }
}

void bearer_target(std::string_view input) {
    const auto token = server::bearer_token(input);
    if (!token) {
        TETHER_FUZZ_CHECK("bearer", token.error().code == tether::errc::unauthorized);
        return;
    }
    TETHER_FUZZ_CHECK("bearer", !token->empty() && tether::http::valid_token(*token));
    const std::string header = "Bearer " + std::string{*token};
    const auto again = server::bearer_token(header);
    TETHER_FUZZ_CHECK("bearer", again && *again == *token);
}

void limit_target(std::string_view input) {
    const auto n = server::page_limit(input);
    if (!n) {
        TETHER_FUZZ_CHECK("limit", n.error().code == tether::errc::protocol && n.error().http_status == 400);
        return;
    }
    TETHER_FUZZ_CHECK("limit", *n >= 1 && *n <= 999'999'999);
    TETHER_FUZZ_CHECK("limit", server::page_limit(std::to_string(*n)) == n);
}

void tokens_target(std::string_view input) {
    const auto table = server::token_table::parse(input);
    if (!table) {
        TETHER_FUZZ_CHECK("tokens", table.error().code == tether::errc::invalid_argument ||
                                        table.error().code == tether::errc::protocol);
        return;
    }
    // Every line that names a token maps it to a user made of visible ASCII.
    std::size_t start = 0;
    while (start <= input.size()) {
        const auto end = input.find('\n', start);
        std::string_view line = input.substr(start, end == std::string_view::npos ? end : end - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
        const auto word_end = line.find_first_of(" \t");
        const std::string_view first = line.substr(0, word_end);
        if (!first.empty() && first[0] != '#' && word_end != std::string_view::npos) {
            const auto user = table->user_for(first);
            TETHER_FUZZ_CHECK("tokens", user.has_value() && tether::http::valid_token(*user));
        }
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
}

constexpr std::array<target, 4> all{{
    {"route", route_target},
    {"bearer", bearer_target},
    {"limit", limit_target},
    {"tokens", tokens_target},
}};

}  // namespace

std::span<const target> server_targets() { return all; }

}  // namespace tether_fuzz
