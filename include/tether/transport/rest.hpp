#pragma once

// tether::rest_transport: the transport policy for plain REST APIs that know
// nothing of tether (docs/rest.md), one `rest_mapping` per collection, over
// the HTTP client pieces `http_transport` uses. Part of the tether::http target.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/limits.hpp>
#include <tether/transport/http/options.hpp>
#include <tether/transport/http/session.hpp>
#include <tether/transport/rest/client.hpp>
#include <tether/transport/rest/cursor.hpp>
#include <tether/transport/rest/etags.hpp>
#include <tether/transport/rest/mapping.hpp>
#include <tether/transport/rest/pull.hpp>
#include <tether/transport/rest/push.hpp>
#include <tether/transport/transport.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether {

/// @brief A transport to a REST API with one URL per record, mapped per
/// collection by `rest_options::collections`.
///
/// One request per op: a batch's ops are sent in order, and when a request
/// gets no answer (or a 401 or 429), the ops already answered keep their
/// outcomes and the rest are answered `rejected` with that error (the whole
/// batch is an error only when the first op got no answer); an op whose value
/// cannot be sent (a string that is not UTF-8) is answered `rejected` with
/// `errc::invalid_argument` alone, unsent. A create sent
/// before (`push_op::resent`) is looked up first, by its client-chosen id or
/// its client-id field. Nothing of tether's is written into the records
/// unless the mapping says so (`client_id_field`). `has_change_feed()` is
/// true when the mappings list by delta query, false for full lists. No
/// member throws; a copyable handle whose copies share one connection pool.
/// Bad options (a malformed base URL, a mapping without URLs, mappings that
/// list in different ways, offset paging on a delta query) make every call
/// fail with `errc::invalid_argument`; `make` reports them up front.
///
/// @code
/// tether::rest_options o;
/// o.http.base_url = "http://127.0.0.1:8080";
/// o.collections.push_back(jobs_mapping);  // see docs/rest.md
/// auto jobs = tether::make_engine<Job>(tether::rest_transport{o});
/// @endcode
class rest_transport {
public:
    using policy_kind = transport_tag;  ///< a transport policy

    /// @brief A transport configured by `options` (see the class comment for bad options).
    explicit rest_transport(const rest_options& options) {
        auto state = std::make_shared<shared>();
        state->mappings = options.collections;
        state->limits = protocol::parse_limits{options.http.max_answer_bytes, options.http.max_answer_depth};
        state->max_batch = options.http.max_batch == 0 ? 1 : options.http.max_batch;
        if (auto bad = check_(options)) {
            config_error_ = std::make_shared<const error>(std::move(*bad));
        } else if (auto s = http::session::make(options.http)) {
            state->session = std::move(*s);
        } else {
            config_error_ = std::make_shared<const error>(std::move(s).error());
        }
        state->feed = !options.collections.empty() && options.collections.front().listing == rest_listing::delta_query;
        state_ = std::move(state);
    }

    /// @brief A transport configured by `options`, or the first bad option
    /// (`errc::invalid_argument`).
    [[nodiscard]] static result<rest_transport> make(const rest_options& options) {
        rest_transport t{options};
        if (t.config_error_) return unexpected{*t.config_error_};
        return t;
    }

    /// @brief Sends the ops one request each, in order: one outcome per op
    /// (see the class comment for a batch cut short).
    [[nodiscard]] result<std::vector<push_outcome>> push(std::string_view collection, std::span<const push_op> ops) {
        auto c = client_(collection);
        if (!c) return unexpected{std::move(c).error()};
        try {
            std::vector<push_outcome> out;
            out.reserve(ops.size());
            for (const auto& op : ops) {
                auto o = op.kind == op_kind::create   ? rest::push_create(*c, op)
                         : op.kind == op_kind::update ? rest::push_update(*c, op)
                                                      : rest::push_remove(*c, op);
                if (!o && !rest::stops_batch(o.error())) {  // this op alone (a value that cannot be sent)
                    out.push_back(rest::detail::rejected(std::move(o).error()));
                    continue;
                }
                if (!o) {
                    if (out.empty()) return unexpected{std::move(o).error()};
                    while (out.size() < ops.size()) out.push_back(rest::detail::rejected(o.error()));
                    return out;
                }
                out.push_back(std::move(*o));
            }
            return out;
        } catch (const std::exception&) {
            return unexpected{make_error(errc::transient, "push: internal failure")};
        }
    }

    /// @brief The page after `cursor`: a delta query from the watermark it
    /// holds, or the next page of the full list. A cursor this transport did
    /// not make is `errc::cursor_expired`.
    [[nodiscard]] result<pull_page> pull(std::string_view collection, std::string_view cursor, std::size_t limit) {
        auto c = client_(collection);
        if (!c) return unexpected{std::move(c).error()};
        try {
            auto from = rest::list_cursor::decode(cursor);
            if (!from) return unexpected{std::move(from).error()};
            const std::size_t n = limit == 0 ? 1 : limit;
            return c->mapping().listing == rest_listing::delta_query ? rest::pull_delta(*c, *from, n)
                                                                     : rest::pull_full(*c, *from, n);
        } catch (const std::exception&) {
            return unexpected{make_error(errc::transient, "pull: internal failure")};
        }
    }

    /// @brief One record by its server id; 404, 410 or a soft-deleted record is `errc::not_found`.
    [[nodiscard]] result<server_record> fetch(std::string_view collection, std::string_view server_id) {
        auto c = client_(collection);
        if (!c) return unexpected{std::move(c).error()};
        if (server_id.empty() || server_id.size() > protocol::max_server_id_bytes)
            return unexpected{make_error(errc::invalid_argument, "fetch: the server id is empty or too long")};
        try {
            auto got = rest::detail::get_item(*c, std::string{server_id});
            if (!got) return unexpected{std::move(got).error()};
            if (!*got) return unexpected{make_error(errc::not_found, "fetch: no such record")};
            return std::move((*got)->record);
        } catch (const std::exception&) {
            return unexpected{make_error(errc::transient, "fetch: internal failure")};
        }
    }

    /// @brief The most ops one `push` call takes (`http_options::max_batch`, at least 1).
    [[nodiscard]] std::size_t max_batch() const noexcept { return state_->max_batch; }

    /// @brief True when the collections are listed by delta query.
    [[nodiscard]] bool has_change_feed() const noexcept { return state_->feed; }

private:
    struct shared {
        std::shared_ptr<http::session> session;
        std::shared_ptr<rest::etag_table> etags = std::make_shared<rest::etag_table>();
        std::vector<rest_mapping> mappings;
        protocol::parse_limits limits;
        std::size_t max_batch = 100;
        bool feed = false;
    };

    result<rest::client> client_(std::string_view collection) const {
        if (config_error_) return unexpected{*config_error_};
        for (const auto& m : state_->mappings)
            if (m.collection == collection) return rest::client{state_->session, &m, state_->limits, state_->etags};
        return unexpected{make_error(errc::invalid_argument, "no REST mapping for collection '" + std::string{collection} + "'")};
    }

    static std::optional<error> check_(const rest_options& o) {
        auto bad = [](const rest_mapping& m, const std::string& why) {
            return make_error(errc::invalid_argument, "REST mapping '" + m.collection + "': " + why);
        };
        if (o.collections.empty()) return make_error(errc::invalid_argument, "no REST mapping");
        for (const auto& m : o.collections) {
            if (m.collection.empty()) return bad(m, "no collection name");
            if (m.collection_url.empty() || m.collection_url.front() != '/')
                return bad(m, "collection_url must be a path starting with '/'");
            if (m.item_url.empty() || m.item_url.front() != '/' || m.item_url.find("{id}") == std::string::npos)
                return bad(m, "item_url must be a path holding {id}");
            if (m.id_field.empty()) return bad(m, "no id_field");
            if (m.listing != o.collections.front().listing)
                return bad(m, "every mapping of one transport lists the same way (use one transport per way)");
            if ((m.paging == rest_paging::next_link || m.paging == rest_paging::cursor) && m.next_field.empty())
                return bad(m, "next-link or cursor paging needs next_field");
            if (m.paging == rest_paging::offset && m.limit_param.empty()) return bad(m, "offset paging needs limit_param");
            if (m.listing == rest_listing::delta_query) {
                if (m.since_param.empty() || m.updated_at_field.empty())
                    return bad(m, "a delta query needs since_param and updated_at_field");
                if (m.paging == rest_paging::offset)
                    return bad(m, "offset paging may skip records while others write: full lists only");
            }
            if (m.send_version != rest_version_send::none && m.version_field.empty() && !m.version_from_etag &&
                !m.opaque_etag)
                return bad(m, "sending a version back needs version_field, version_from_etag or opaque_etag");
            if (auto why = check_etag_(m)) return bad(m, why);
        }
        return std::nullopt;
    }

    static const char* check_etag_(const rest_mapping& m) {
        if (!m.etag_field.empty() && !m.opaque_etag) return "etag_field is for opaque_etag";
        if (!m.opaque_etag) return nullptr;
        if (m.version_from_etag) return "an opaque ETag is not a numeric version: opaque_etag or version_from_etag";
        if (m.send_version == rest_version_send::body_field) return "an opaque ETag goes back in If-Match, not a body field";
        return nullptr;
    }

    std::shared_ptr<const shared> state_;
    std::shared_ptr<const error> config_error_;
};

static_assert(transport_policy<rest_transport>);

}  // namespace tether
