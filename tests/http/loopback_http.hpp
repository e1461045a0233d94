#pragma once

// A loopback_server behind wire protocol v1 on 127.0.0.1: the protocol's codec
// on the server side (decode requests, encode answers), so the HTTP transport
// can be checked end to end by the transport conformance suite and an engine.
#include "http/scripted_server.hpp"

#include <tether/protocol/json.hpp>
#include <tether/transport/loopback_server.hpp>

#include <httplib.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace tether_test {

class loopback_http {
public:
    loopback_http() : http_{[this](const httplib::Request& req, httplib::Response& res) { serve_(req, res); }} {}

    /// The server behind (a handle: inject faults, read records).
    tether::loopback_server& server() { return server_; }
    /// Options for a transport of the user `token`.
    [[nodiscard]] tether::http_options options(std::string token) const { return http_.options(std::move(token)); }
    [[nodiscard]] std::size_t requests() const { return http_.requests(); }
    [[nodiscard]] int port() const { return http_.port(); }

private:
    static void error_answer(httplib::Response& res, const tether::error& e) {
        res.status = e.http_status.value_or(tether::protocol::http_status_for(e.code));
        if (e.retry_after) res.set_header("Retry-After", std::to_string((e.retry_after->count() + 999) / 1000));
        res.set_content(tether::protocol::encode_error_body(e).value(), "application/json");
    }

    template <class T, class Encode>
    static void answer(httplib::Response& res, const tether::result<T>& r, Encode encode) {
        if (!r) return error_answer(res, r.error());
        res.status = 200;
        res.set_content(encode(*r).value(), "application/json");
    }

    void serve_(const httplib::Request& req, httplib::Response& res) {
        namespace protocol = tether::protocol;
        const std::string auth = req.get_header_value("Authorization");
        const std::string token = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : std::string{};
        if (req.method == "GET" && req.path == "/v1/info")
            return answer(res, tether::result<protocol::server_info>{protocol::server_info{}},
                          [](const auto& i) { return protocol::encode_info(i); });
        // /v1/{collection}/{rest}, split on the raw target so that an encoded '/' stays in its segment.
        std::string_view target = req.target;
        target = target.substr(0, target.find('?'));
        if (target.substr(0, 4) != "/v1/") return error_answer(res, tether::make_error(tether::errc::not_found, "no route"));
        target.remove_prefix(4);
        const auto slash = target.find('/');
        const std::string collection{target.substr(0, slash)};
        const std::string_view rest = slash == std::string_view::npos ? std::string_view{} : target.substr(slash + 1);
        if (!protocol::valid_collection(collection))
            return error_answer(res, tether::make_error(tether::errc::protocol, "bad collection name"));
        if (req.method == "POST" && rest == "push") {
            auto decoded = protocol::decode_push_request(req.body);
            if (!decoded) return error_answer(res, decoded.error());
            return answer(res, server_.push(token, collection, decoded->ops),
                          [](const auto& o) { return protocol::encode_push_answer(o); });
        }
        if (req.method == "GET" && rest == "changes") {
            std::size_t limit = 100;
            if (req.has_param("limit")) limit = std::stoul(req.get_param_value("limit"));
            return answer(res, server_.pull(token, collection, req.get_param_value("cursor"), limit),
                          [](const auto& p) { return protocol::encode_page(p); });
        }
        if (req.method == "GET" && rest.substr(0, 8) == "records/") {
            auto sid = protocol::percent_decode(rest.substr(8));
            if (!sid) return error_answer(res, tether::make_error(tether::errc::protocol, "bad server id"));
            return answer(res, server_.fetch(token, collection, *sid),
                          [](const auto& r) { return protocol::encode_record(r); });
        }
        error_answer(res, tether::make_error(tether::errc::not_found, "no route"));
    }

    tether::loopback_server server_;
    scripted_server http_;
};

}  // namespace tether_test
