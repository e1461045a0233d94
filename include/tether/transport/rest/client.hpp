#pragma once

// tether::rest: one collection's requests to a REST API by its mapping: URLs,
// statuses, answers read into records, malformed answers as `errc::protocol`
// with the status and an excerpt. Shared by the push and the pull of
// `rest_transport`. Not a public entry point.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/parse.hpp>
#include <tether/protocol/paths.hpp>
#include <tether/transport/http/session.hpp>
#include <tether/transport/rest/codec.hpp>
#include <tether/transport/rest/etags.hpp>
#include <tether/transport/rest/fields.hpp>
#include <tether/transport/rest/mapping.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::rest {

/// @brief Requests for one mapped collection over a shared HTTP session.
class client {
public:
    /// @brief A client of `m` over `s`, reading answers within `limits`,
    /// keeping opaque ETags in `etags` (null: a table of its own).
    client(std::shared_ptr<http::session> s, const rest_mapping* m, protocol::parse_limits limits,
           std::shared_ptr<etag_table> etags = nullptr)
        : session_(std::move(s)), m_(m), limits_(limits),
          etags_(etags ? std::move(etags) : std::make_shared<etag_table>()) {}

    /// @brief The mapping.
    [[nodiscard]] const rest_mapping& mapping() const noexcept { return *m_; }

    /// @brief The item URL of `server_id`.
    [[nodiscard]] std::string item(std::string_view server_id) const {
        std::string out = m_->item_url;
        const auto at = out.find("{id}");
        if (at != std::string::npos) out.replace(at, 4, protocol::percent_encode(server_id));
        return out;
    }

    /// @brief `path` with the non-empty query parameters `params` added.
    [[nodiscard]] static std::string with_query(std::string path,
                                                const std::vector<std::pair<std::string, std::string>>& params) {
        char sep = path.find('?') == std::string::npos ? '?' : '&';
        for (const auto& [k, v] : params) {
            if (k.empty()) continue;
            path += sep;
            path += protocol::percent_encode(k) + "=" + protocol::percent_encode(v);
            sep = '&';
        }
        return path;
    }

    /// @brief Sends one request (`body` null: none); an error only when no answer came.
    [[nodiscard]] result<http::full_answer> send(const char* method, const std::string& target,
                                                 const nlohmann::json& body, const httplib::Headers& headers,
                                                 std::string_view what) const {
        std::string text;
        if (!body.is_null()) {
            try {
                text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
            } catch (const std::exception&) {
                return unexpected{make_error(errc::invalid_argument, std::string{what} + ": a string in the value is not UTF-8")};
            }
        }
        return session_->exchange(method, target, text, headers, label_(what));
    }

    /// @brief What `status` means for a push op by the mapping (overrides
    /// first; then 409/412 conflict, 404/410 gone, 400/422 rejected), if anything.
    [[nodiscard]] std::optional<rest_meaning> meaning(int status) const {
        for (const auto& o : m_->statuses)
            if (o.status == status) return o.meaning;
        if (status == 409 || status == 412) return rest_meaning::conflict;
        if (status == 404 || status == 410) return rest_meaning::gone;
        if (status == 400 || status == 422) return rest_meaning::rejected;
        return std::nullopt;
    }

    /// @brief The error a non-2xx answer to a `what` request stands for: the
    /// mapped meaning, else the shared table's (`kind`).
    [[nodiscard]] error status_error(const http::full_answer& a, http::request_kind kind, std::string_view what) const {
        if (auto mean = meaning(a.status); mean && *mean != rest_meaning::conflict) {
            const errc code = *mean == rest_meaning::gone       ? errc::not_found
                              : *mean == rest_meaning::rejected ? errc::rejected
                                                                : errc::transient;
            return error{code, session_->scrub(label_(what) + ": HTTP " + std::to_string(a.status) + ": " + excerpt(a.body)),
                         a.status, std::nullopt};
        }
        return session_->status_error(a, kind, label_(what));
    }

    /// @brief A malformed or unexpected answer: `errc::protocol` with the status and an excerpt.
    [[nodiscard]] error malformed(const http::full_answer& a, std::string_view what, std::string_view why) const {
        return error{errc::protocol,
                     session_->scrub(label_(what) + ": malformed answer (HTTP " + std::to_string(a.status) + "): " +
                                     std::string{why} + ": " + excerpt(a.body)),
                     a.status, std::nullopt};
    }

    /// @brief The answer's body as JSON, or `errc::protocol`.
    [[nodiscard]] result<nlohmann::json> json(const http::full_answer& a, std::string_view what) const {
        auto doc = protocol::parse_json(a.body, limits_);
        if (!doc) return unexpected{malformed(a, what, "not JSON")};
        return doc;
    }

    /// @brief The one record in the answer (`ETag` read when mapped, an opaque
    /// one kept), or `errc::protocol`.
    [[nodiscard]] result<api_record> record(const http::full_answer& a, std::string_view what) const {
        auto doc = json(a, what);
        if (!doc) return unexpected{std::move(doc).error()};
        auto rec = decode_item(*doc, *m_, a.header("ETag"));
        if (!rec) return unexpected{malformed(a, what, rec.error().message)};
        keep_tag_(*rec);
        return rec;
    }

    /// @brief The records of a list answer (at `items_field`, opaque ETags in
    /// `etag_field` kept), the next link or cursor (at `next_field`, empty on
    /// the last page) and the records that do not decode (`refused`, each
    /// `why` naming the request), or `errc::protocol` for a list of another shape.
    [[nodiscard]] result<api_list> list(const http::full_answer& a, std::string_view what) const {
        auto doc = json(a, what);
        if (!doc) return unexpected{std::move(doc).error()};
        auto listed = decode_list(*doc, *m_);
        if (!listed) return unexpected{malformed(a, what, listed.error().message)};
        for (const auto& r : listed->records) keep_tag_(r);
        for (auto& r : listed->refused) r.why = session_->scrub(label_(what) + ": " + r.why);
        return listed;
    }

    /// @brief The opaque ETag last seen of `server_id` at `version`, or nullopt.
    [[nodiscard]] std::optional<std::string> known_etag(std::string_view server_id, std::uint64_t version) const {
        return etags_->find(m_->collection, server_id, version);
    }

    /// @brief A next link as a target after the base URL's prefix: an absolute
    /// URL must be on the base URL's origin; nullopt for anything else.
    [[nodiscard]] std::optional<std::string> link_target(std::string_view link) const {
        const auto& u = session_->url();
        if (link.substr(0, 7) == "http://" || link.substr(0, 8) == "https://") {
            const auto origin = u.origin();
            const auto host_start = link.find("://") + 3;
            const auto path_start = link.find('/', host_start);
            const std::string_view authority = link.substr(host_start, path_start - host_start);
            const std::string_view want = std::string_view{origin}.substr(origin.find("://") + 3);
            const bool default_port = (u.scheme == "http" && u.port == 80) || (u.scheme == "https" && u.port == 443);
            if (authority != want && !(default_port && authority == u.host)) return std::nullopt;
            link = path_start == std::string_view::npos ? std::string_view{"/"} : link.substr(path_start);
        }
        if (link.empty() || link.front() != '/') return std::nullopt;
        if (!u.prefix.empty() && link.substr(0, u.prefix.size()) == u.prefix) link.remove_prefix(u.prefix.size());
        return std::string{link};
    }

private:
    std::string label_(std::string_view what) const { return std::string{what} + " " + m_->collection; }

    void keep_tag_(const api_record& r) const {
        if (m_->opaque_etag && !r.etag.empty()) etags_->keep(m_->collection, r.record.server_id, r.record.version, r.etag);
    }

    std::shared_ptr<http::session> session_;
    const rest_mapping* m_;
    protocol::parse_limits limits_;
    std::shared_ptr<etag_table> etags_;
};

}  // namespace tether::rest
