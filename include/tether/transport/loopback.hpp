#pragma once

#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/transport/live.hpp>
#include <tether/transport/loopback_server.hpp>
#include <tether/transport/transport.hpp>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether {

/// @brief The default transport: talks to a `loopback_server` in the same process.
///
/// Each transport holds a handle to a server and the token it sends (the token
/// names the user). Copies share the server but each keeps its own token, so
/// two devices of one user are two transports with the same token, and a second
/// user is a transport with another. A push of more than `max_batch()` ops is
/// refused whole with `errc::too_large` (HTTP 413, "payload too large")
/// and never reaches the server; the server may refuse a smaller one the same
/// way for a value over its limit (`loopback_server::set_value_limit`).
///
/// @code
/// tether::loopback_server server;                     // shared by every device
/// tether::loopback_transport phone{server, "alice"};
/// tether::loopback_transport laptop{server, "alice"};
/// auto engine = tether::make_engine<Job>(phone);
/// server.fail_next(2, tether::loopback_server::transient_error());  // the next two requests fail
/// @endcode
class loopback_transport {
public:
    using policy_kind = transport_tag;
    /// @brief Its server (a `sync_service`) applies `op_kind::append` ops.
    static constexpr bool carries_append_ops = true;

    /// @brief A transport to a private server of its own, with the token `"local"`.
    loopback_transport() : loopback_transport(loopback_server{}, "local") {}

    /// @brief A transport to `server` sending `token`, with batches of at most
    /// `max_batch` ops (0 counts as 1).
    loopback_transport(loopback_server server, std::string token, std::size_t max_batch = 100)
        : server_(std::move(server)), token_(std::move(token)), max_batch_(max_batch == 0 ? 1 : max_batch) {}

    /// @brief Sends a batch; one outcome per op, in order (see `loopback_server::push`).
    [[nodiscard]] result<std::vector<push_outcome>> push(std::string_view collection,
                                                         std::span<const push_op> ops) {
        if (ops.size() > max_batch_)
            return unexpected{error{errc::too_large,
                                    "batch of " + std::to_string(ops.size()) + " ops exceeds max_batch " +
                                        std::to_string(max_batch_),
                                    413, std::nullopt}};
        return server_.push(token_, collection, ops);
    }

    /// @brief The page of changes after `cursor` (see `loopback_server::pull`).
    [[nodiscard]] result<pull_page> pull(std::string_view collection, std::string_view cursor, std::size_t limit) {
        return server_.pull(token_, collection, cursor, limit);
    }

    /// @brief One live record (see `loopback_server::fetch`).
    [[nodiscard]] result<server_record> fetch(std::string_view collection, std::string_view server_id) {
        return server_.fetch(token_, collection, server_id);
    }

    /// @brief Follows the live feed of `req.collection` (see `live_transport`,
    /// `loopback_server::subscribe`): the user's changes from other devices.
    [[nodiscard]] result<live_subscription> subscribe(const live_request& req, live_handler handler) {
        return server_.subscribe(token_, req, std::move(handler));
    }

    /// @brief The largest batch `push` accepts (>= 1).
    [[nodiscard]] std::size_t max_batch() const noexcept { return max_batch_; }

    /// @brief Whether the server has a change feed (see `loopback_server::set_change_feed`).
    [[nodiscard]] bool has_change_feed() const { return server_.has_change_feed(); }

    /// @brief Sends `token` from now on. Changes this copy only, and must not race
    /// with other calls on the same object.
    void set_token(std::string token) { token_ = std::move(token); }

    /// @brief The token this transport sends.
    [[nodiscard]] const std::string& token() const noexcept { return token_; }

    /// @brief The server (a handle: copy it to inject faults or edit records).
    [[nodiscard]] const loopback_server& server() const noexcept { return server_; }

private:
    loopback_server server_;
    std::string token_;
    std::size_t max_batch_;
};

static_assert(transport_policy<loopback_transport>);
static_assert(live_transport<loopback_transport>);

}  // namespace tether
