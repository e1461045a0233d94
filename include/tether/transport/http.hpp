#pragma once

// tether::http_transport: the transport policy over wire protocol v1
// (docs/protocol.md) with cpp-httplib. Part of the tether::http target.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/changes.hpp>
#include <tether/protocol/info.hpp>
#include <tether/protocol/limits.hpp>
#include <tether/protocol/paths.hpp>
#include <tether/protocol/push.hpp>
#include <tether/protocol/utf8.hpp>
#include <tether/transport/http/errors.hpp>
#include <tether/transport/http/live.hpp>
#include <tether/transport/http/options.hpp>
#include <tether/transport/http/session.hpp>
#include <tether/transport/live.hpp>
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

/// @brief A transport to a server that speaks wire protocol v1 over HTTP(S).
///
/// A copyable handle: copies share one pool of keep-alive connections (up to
/// `http_options::pool_size`, so that many pushes, pulls and fetches run at
/// once from any threads) and one token cache. No member throws; every failure
/// is a `tether::error` classified by `http::error_table`, with `http_status`
/// and `retry_after` when the server sent them. The token never appears in an
/// error message. Options that do not make sense (a malformed base URL, both a
/// token and a provider, `max_batch` 0) make every call fail with
/// `errc::invalid_argument`; `make` reports them up front.
///
/// It has a live feed (`live_transport`): `subscribe` opens a Server-Sent
/// Events stream on a thread and a connection of its own (`http/live.hpp`).
///
/// @code
/// tether::http_options o;
/// o.base_url = "http://127.0.0.1:8080";
/// o.token = "alice-token";
/// auto jobs = tether::make_engine<Job>(tether::http_transport{o});
/// @endcode
class http_transport {
public:
    using policy_kind = transport_tag;  ///< a transport policy
    /// @brief It sends append ops (`op_kind::append`, `sync_engine::append`): tether-server applies them.
    static constexpr bool carries_append_ops = true;

    /// @brief A transport configured by `options` (see the class comment for bad options).
    explicit http_transport(const http_options& options) {
        auto s = http::session::make(options);
        if (s) session_ = std::move(*s);
        else config_error_ = std::make_shared<const error>(std::move(s).error());
        max_batch_ = options.max_batch == 0 ? 1 : options.max_batch;
        change_feed_ = options.has_change_feed;
        answer_limits_ = protocol::parse_limits{options.max_answer_bytes, options.max_answer_depth};
        max_request_bytes_ = options.max_request_bytes;
    }

    /// @brief A transport configured by `options`, or the first bad option
    /// (`errc::invalid_argument`).
    [[nodiscard]] static result<http_transport> make(const http_options& options) {
        http_transport t{options};
        if (t.config_error_) return unexpected{*t.config_error_};
        return t;
    }

    /// @brief Sends a batch (`POST /v1/{collection}/push`): one outcome per op,
    /// in order. More than `max_batch()` ops, or a body over
    /// `max_request_bytes`, is `errc::too_large` without a request (the engine
    /// splits the batch). An op whose value cannot be encoded (a string that is
    /// not UTF-8) is answered `rejected` with `errc::invalid_argument` here,
    /// alone, and the others are sent.
    [[nodiscard]] result<std::vector<push_outcome>> push(std::string_view collection, std::span<const push_op> ops) {
        if (auto bad = check_(collection)) return unexpected{std::move(*bad)};
        if (ops.size() > max_batch_)
            return unexpected{error{errc::too_large,
                                    "batch of " + std::to_string(ops.size()) + " ops exceeds max_batch " +
                                        std::to_string(max_batch_),
                                    413, std::nullopt}};
        try {
            std::vector<push_op> sendable;
            std::vector<std::optional<push_outcome>> local(ops.size());
            bool all = true;
            for (std::size_t i = 0; i < ops.size(); ++i) {
                if (protocol::encodable(ops[i].value)) continue;
                all = false;
                local[i] = push_outcome{push_outcome::kind::rejected, {},
                                        make_error(errc::invalid_argument, "a string in the value is not UTF-8"),
                                        false};
            }
            if (!all) {
                for (std::size_t i = 0; i < ops.size(); ++i)
                    if (!local[i]) sendable.push_back(ops[i]);
            }
            const std::span<const push_op> sent = all ? ops : std::span<const push_op>{sendable};
            std::vector<push_outcome> answered;
            if (!sent.empty()) {
                auto got = push_sent_(collection, sent);
                if (!got) return unexpected{std::move(got).error()};
                answered = std::move(*got);
            }
            if (all) return answered;
            std::vector<push_outcome> out;
            out.reserve(ops.size());
            std::size_t next = 0;
            for (auto& l : local) out.push_back(l ? std::move(*l) : std::move(answered[next++]));
            return out;
        } catch (const std::exception&) {
            return unexpected{make_error(errc::transient, "push: internal failure")};
        }
    }

    /// @brief The page of changes after `cursor` (`GET /v1/{collection}/changes`);
    /// 410 is `errc::cursor_expired` (the engine pulls everything again).
    [[nodiscard]] result<pull_page> pull(std::string_view collection, std::string_view cursor, std::size_t limit) {
        if (auto bad = check_(collection)) return unexpected{std::move(*bad)};
        if (cursor.size() > protocol::max_cursor_bytes)
            return unexpected{make_error(errc::invalid_argument, "changes: the cursor is too long")};
        try {
            auto got = session_->send(http::request_kind::changes, "GET", protocol::changes_path(collection, cursor, limit),
                                      {}, "changes " + std::string{collection});
            if (!got) return unexpected{std::move(got).error()};
            auto page = protocol::decode_page(got->body, answer_limits_);
            if (!page) return unexpected{answer_error_(std::move(page).error(), got->status, "changes", collection)};
            return page;
        } catch (const std::exception&) {
            return unexpected{make_error(errc::transient, "changes: internal failure")};
        }
    }

    /// @brief One record (`GET /v1/{collection}/records/{server_id}`); 404 is
    /// `errc::not_found`. An answer naming another server id is `errc::protocol`.
    [[nodiscard]] result<server_record> fetch(std::string_view collection, std::string_view server_id) {
        if (auto bad = check_(collection)) return unexpected{std::move(*bad)};
        if (server_id.empty() || server_id.size() > protocol::max_server_id_bytes)
            return unexpected{make_error(errc::invalid_argument, "fetch: the server id is empty or too long")};
        try {
            auto got = session_->send(http::request_kind::fetch, "GET", protocol::record_path(collection, server_id), {},
                                      "fetch " + std::string{collection});
            if (!got) return unexpected{std::move(got).error()};
            auto rec = protocol::decode_record(got->body, answer_limits_);
            if (!rec) return unexpected{answer_error_(std::move(rec).error(), got->status, "fetch", collection)};
            if (rec->server_id != server_id)
                return unexpected{error{errc::protocol, "fetch " + std::string{collection} + ": the answer is another record",
                                        got->status, std::nullopt}};
            return rec;
        } catch (const std::exception&) {
            return unexpected{make_error(errc::transient, "fetch: internal failure")};
        }
    }

    /// @brief What the server says of itself (`GET /v1/info`): its protocol
    /// version, limits and whether it has a change feed.
    [[nodiscard]] result<protocol::server_info> info() {
        if (config_error_) return unexpected{*config_error_};
        try {
            auto got = session_->send(http::request_kind::info, "GET", protocol::info_path, {}, "info");
            if (!got) return unexpected{std::move(got).error()};
            auto i = protocol::decode_info(got->body, answer_limits_);
            if (!i) return unexpected{answer_error_(std::move(i).error(), got->status, "info", {})};
            return i;
        } catch (const std::exception&) {
            return unexpected{make_error(errc::transient, "info: internal failure")};
        }
    }

    /// @brief Follows `req.collection` (`GET /v1/{collection}/events`): the
    /// user's changes from `req.cursor`, without those `req.device` pushed,
    /// to `handler`, on a thread of the subscription's own (`http::live_feed`:
    /// `errc::cursor_expired` ends it when the server can no longer resume
    /// from the cursor, `errc::protocol` on a frame that does not decode,
    /// `errc::transient` when the stream drops). An error (offline,
    /// unauthorized, 503 with `retry_after` when the server has as many
    /// streams as it allows) means no subscription.
    [[nodiscard]] result<live_subscription> subscribe(const live_request& req, live_handler handler) {
        if (auto bad = check_(req.collection)) return unexpected{std::move(*bad)};
        if (req.cursor.size() > protocol::max_cursor_bytes || req.device.size() > protocol::max_origin_bytes)
            return unexpected{make_error(errc::invalid_argument, "events: the cursor or device id is too long")};
        return http::live_feed::open(session_, req, std::move(handler), answer_limits_);
    }

    /// @brief The largest batch `push` sends (`http_options::max_batch`, at least 1).
    [[nodiscard]] std::size_t max_batch() const noexcept { return max_batch_; }

    /// @brief `http_options::has_change_feed`.
    [[nodiscard]] bool has_change_feed() const noexcept { return change_feed_; }

    /// @brief How many keep-alive connections are open or leased now (0 for bad options).
    [[nodiscard]] std::size_t connections() const { return session_ ? session_->connections() : 0; }

private:
    std::optional<error> check_(std::string_view collection) const {
        if (config_error_) return *config_error_;
        if (!protocol::valid_collection(collection))
            return make_error(errc::invalid_argument, "not a valid collection name (1-64 of A-Z a-z 0-9 _ . -)");
        return std::nullopt;
    }

    result<std::vector<push_outcome>> push_sent_(std::string_view collection, std::span<const push_op> ops) {
        auto body = protocol::encode_push_request(ops);
        if (!body) return unexpected{std::move(body).error()};
        if (body->size() > max_request_bytes_)
            return unexpected{error{errc::too_large,
                                    "push " + std::string{collection} + ": body of " + std::to_string(body->size()) +
                                        " bytes is over max_request_bytes " + std::to_string(max_request_bytes_),
                                    413, std::nullopt}};
        auto got = session_->send(http::request_kind::push, "POST", protocol::push_path(collection), *body,
                                  "push " + std::string{collection});
        if (!got) return unexpected{std::move(got).error()};
        auto outcomes = protocol::decode_push_answer(got->body, ops, answer_limits_);
        if (!outcomes) return unexpected{answer_error_(std::move(outcomes).error(), got->status, "push", collection)};
        for (auto& o : *outcomes) o.failure.message = session_->scrub(std::move(o.failure.message));
        return outcomes;
    }

    /// An answer that does not decode: `errc::protocol` with the status seen, the token redacted.
    error answer_error_(error e, int status, std::string_view what, std::string_view collection) const {
        e.code = errc::protocol;
        e.http_status = status;
        std::string label{what};
        if (!collection.empty()) label += " " + std::string{collection};
        e.message = session_->scrub(label + ": malformed answer: " + e.message);
        return e;
    }

    std::shared_ptr<http::session> session_;
    std::shared_ptr<const error> config_error_;
    std::size_t max_batch_ = 100;
    bool change_feed_ = true;
    protocol::parse_limits answer_limits_;
    std::size_t max_request_bytes_ = 8u * 1024u * 1024u;
};

static_assert(transport_policy<http_transport>);
static_assert(live_transport<http_transport>);

}  // namespace tether
