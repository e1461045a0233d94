#pragma once

// tether::protocol: the push exchange, `POST /v1/{collection}/push`: the request
// (an origin and a batch of ops) and the answer (one outcome per op, in order).
// Both directions: a client encodes requests and decodes answers, a server
// decodes requests and encodes answers.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/append.hpp>
#include <tether/protocol/detail/read.hpp>
#include <tether/protocol/limits.hpp>
#include <tether/protocol/parse.hpp>
#include <tether/protocol/records.hpp>
#include <tether/transport/transport.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::protocol {

/// @brief A decoded push request: the batch's origin and its ops (each op's
/// `origin` filled in: its own if it named one, else the batch's).
struct push_request {
    std::string origin;         ///< the pushing device's id (may be empty)
    std::vector<push_op> ops;   ///< the batch, in order
};

/// @brief The op kind named `name` (`"create"`, `"update"`, `"remove"`, `"append"`), if any.
[[nodiscard]] constexpr std::optional<op_kind> op_kind_from_string(std::string_view name) noexcept {
    for (auto k : {op_kind::create, op_kind::update, op_kind::remove, op_kind::append})
        if (to_string(k) == name) return k;
    return std::nullopt;
}

/// @brief The wire name of an outcome kind (`"applied"`, `"conflict"`, `"rejected"`).
[[nodiscard]] constexpr std::string_view to_string(push_outcome::kind k) noexcept {
    switch (k) {
        case push_outcome::kind::applied: return "applied";
        case push_outcome::kind::conflict: return "conflict";
        case push_outcome::kind::rejected: return "rejected";
    }
    return "unknown";
}

/// @brief The outcome kind named `name`, if any.
[[nodiscard]] constexpr std::optional<push_outcome::kind> outcome_kind_from_string(std::string_view name) noexcept {
    for (auto k : {push_outcome::kind::applied, push_outcome::kind::conflict, push_outcome::kind::rejected})
        if (to_string(k) == name) return k;
    return std::nullopt;
}

/// @brief One op as JSON: `kind`, `id`, `server_id` (when known), `base_version`,
/// `value` (omitted for a remove), and `origin` only when it differs from
/// `batch_origin`.
[[nodiscard]] inline nlohmann::json to_json(const push_op& op, std::string_view batch_origin) {
    nlohmann::json j = nlohmann::json::object();
    j["kind"] = std::string{to_string(op.kind)};
    j["id"] = op.id.to_string();
    if (op.server_id) j["server_id"] = *op.server_id;
    j["base_version"] = op.base_version;
    if (op.kind != op_kind::remove) j["value"] = op.value;
    if (op.origin != batch_origin) j["origin"] = op.origin;
    return j;
}

/// @brief One outcome as JSON: `outcome`; `record` and `replayed` for applied
/// and conflict (a replayed create of a record changed since is a conflict);
/// `error` for rejected (its `failure`) and conflict (code `conflict`, the
/// failure's message). With `as_sent`, an applied outcome's record holds only
/// `server_id`, `version` and `updated_at`: the server stored the op's value,
/// local id and origin as they were sent (see `encode_push_answer`).
[[nodiscard]] inline nlohmann::json to_json(const push_outcome& o, bool as_sent = false) {
    nlohmann::json j = nlohmann::json::object();
    j["outcome"] = std::string{to_string(o.outcome)};
    switch (o.outcome) {
        case push_outcome::kind::applied:
            if (as_sent) {
                auto& rec = j["record"] = nlohmann::json::object();
                rec["server_id"] = o.record.server_id;
                rec["version"] = o.record.version;
                if (o.record.updated_at) rec["updated_at"] = o.record.updated_at->time_since_epoch().count();
            } else {
                j["record"] = to_json(o.record);
            }
            j["replayed"] = o.replayed;
            break;
        case push_outcome::kind::conflict: {
            j["record"] = to_json(o.record);
            j["replayed"] = o.replayed;
            error e = o.failure;
            e.code = errc::conflict;
            j["error"] = to_json(e);
            break;
        }
        case push_outcome::kind::rejected: j["error"] = to_json(o.failure); break;
    }
    return j;
}

/// @brief Reads one op. `id` must be a non-nil UUID; `server_id`, when present,
/// a non-empty string; `base_version` absent is 0; a create's, an update's or
/// an append's `value` must be an object, a remove's absent or null; `origin`
/// absent is `batch_origin`. An append's value is read further by the server
/// (`append_from_json`), which rejects a malformed one alone.
[[nodiscard]] inline result<push_op> op_from_json(nlohmann::json& j, std::string_view where,
                                                  std::string_view batch_origin) {
    if (auto ok = detail::require_object(j, where); !ok) return unexpected{std::move(ok).error()};
    auto kind_name = detail::read_string(j, "kind", where, 16, true);
    if (!kind_name) return unexpected{std::move(kind_name).error()};
    auto kind = op_kind_from_string(*kind_name);
    if (!kind) return unexpected{detail::malformed(where, "kind", "not create, update, remove or append")};
    auto id = detail::read_local_id(j, "id", where);
    if (!id) return unexpected{std::move(id).error()};
    auto sid = detail::read_opt_string(j, "server_id", where, max_server_id_bytes, true);
    if (!sid) return unexpected{std::move(sid).error()};
    auto base = detail::read_opt_uint(j, "base_version", where, 0);
    if (!base) return unexpected{std::move(base).error()};
    auto origin = detail::read_opt_string(j, "origin", where, max_origin_bytes);
    if (!origin) return unexpected{std::move(origin).error()};
    nlohmann::json value = detail::take(j, "value");
    if (*kind == op_kind::remove) {
        if (!value.is_null()) return unexpected{detail::malformed(where, "value", "a remove carries no value")};
    } else if (!value.is_object()) {
        return unexpected{detail::malformed(where, "value", "expected a JSON object")};
    }
    return push_op{*kind, *id, std::move(*sid), *base, std::move(value),
                   origin->has_value() ? std::move(**origin) : std::string{batch_origin}};
}

/// @brief Reads one outcome. `applied` and `conflict` need a `record` (with a
/// non-empty server id, except an applied remove's: a server may confirm the
/// delete of a record it never saw); `rejected` needs an `error`; `replayed`
/// (applied, conflict) absent is false. A conflict's failure is `errc::conflict` with the error
/// object's message, if any. An unknown outcome name is an error.
[[nodiscard]] inline result<push_outcome> outcome_from_json(nlohmann::json& j, std::string_view where,
                                                            std::optional<op_kind> sent = std::nullopt) {
    if (auto ok = detail::require_object(j, where); !ok) return unexpected{std::move(ok).error()};
    auto name = detail::read_string(j, "outcome", where, 16, true);
    if (!name) return unexpected{std::move(name).error()};
    auto kind = outcome_kind_from_string(*name);
    if (!kind) return unexpected{detail::malformed(where, "outcome", "not applied, conflict or rejected")};
    push_outcome o;
    o.outcome = *kind;
    if (*kind == push_outcome::kind::rejected) {
        nlohmann::json* e = detail::member(j, "error");
        if (e == nullptr) return unexpected{detail::malformed(where, "error", "missing")};
        auto failure = error_from_json(*e, std::string{where} + ".error");
        if (!failure) return unexpected{std::move(failure).error()};
        o.failure = std::move(*failure);
        return o;
    }
    nlohmann::json* rec = detail::member(j, "record");
    if (rec == nullptr) return unexpected{detail::malformed(where, "record", "missing")};
    const bool may_be_empty = *kind == push_outcome::kind::applied && sent == op_kind::remove;
    auto r = record_from_json(*rec, std::string{where} + ".record", may_be_empty);
    if (!r) return unexpected{std::move(r).error()};
    o.record = std::move(*r);
    auto replayed = detail::read_opt_bool(j, "replayed", where, false);
    if (!replayed) return unexpected{std::move(replayed).error()};
    o.replayed = *replayed;
    if (*kind == push_outcome::kind::applied) return o;
    o.failure = make_error(errc::conflict);
    if (nlohmann::json* e = detail::member(j, "error")) {
        auto failure = error_from_json(*e, std::string{where} + ".error");
        if (!failure) return unexpected{std::move(failure).error()};
        o.failure.message = std::move(failure->message);
        o.failure.retry_after = failure->retry_after;
    }
    return o;
}

/// @brief The body of a push request: `{"origin": ..., "ops": [...]}`; the
/// batch's origin is the first op's (an op with another origin names its own).
/// An op whose value holds a string that is not UTF-8 is `errc::invalid_argument`
/// (check `encodable(op.value)` first to refuse such an op alone).
[[nodiscard]] inline result<std::string> encode_push_request(std::span<const push_op> ops) {
    const std::string origin = ops.empty() ? std::string{} : ops.front().origin;
    nlohmann::json j = nlohmann::json::object();
    j["origin"] = origin;
    auto& arr = j["ops"] = nlohmann::json::array();
    for (const auto& op : ops) arr.push_back(to_json(op, origin));
    return dump_json(j);
}

/// @brief Decodes a push request body within `lim` (the server side).
///
/// Over `max_body_bytes`, nested deeper than `max_depth` or with more than
/// `max_ops` ops: `errc::too_large` (HTTP 413: nothing is applied, the client
/// splits the batch). Malformed JSON, a missing or mistyped member, an unknown
/// kind, a nil or missing id, an empty server id, a value of the wrong shape:
/// `errc::protocol` (HTTP 400), naming the op and the field. A value over
/// `max_value_bytes` is not refused here: see `check_value_size`, which
/// rejects that op alone. Never throws.
[[nodiscard]] inline result<push_request> decode_push_request(std::string_view body, const limits& lim = {}) {
    auto with_status = [](error e) {
        e.http_status = e.code == errc::too_large ? 413 : 400;
        return unexpected{std::move(e)};
    };
    try {
        auto doc = parse_json(body, request_parse_limits(lim), errc::too_large);
        if (!doc) return with_status(std::move(doc).error());
        if (auto ok = detail::require_object(*doc, "push"); !ok) return with_status(std::move(ok).error());
        auto origin = detail::read_string(*doc, "origin", "push", max_origin_bytes);
        if (!origin) return with_status(std::move(origin).error());
        auto ops = detail::take_array(*doc, "ops", "push");
        if (!ops) return with_status(std::move(ops).error());
        if (ops->size() > lim.max_ops)
            return with_status(error{errc::too_large,
                                     "batch of " + std::to_string(ops->size()) + " ops is over the limit of " +
                                         std::to_string(lim.max_ops),
                                     std::nullopt, std::nullopt});
        push_request req;
        req.ops.reserve(ops->size());
        for (std::size_t i = 0; i < ops->size(); ++i) {
            auto op = op_from_json((*ops)[i], detail::indexed("ops", i), *origin);
            if (!op) return with_status(std::move(op).error());
            req.ops.push_back(std::move(*op));
        }
        req.origin = std::move(*origin);
        return req;
    } catch (const std::exception&) {
        return with_status(make_error(errc::protocol, "push: cannot decode the request"));
    }
}

/// @brief `errc::too_large` if `op`'s value, serialised compactly, is over
/// `lim.max_value_bytes`: the server answers that op `rejected` with this error
/// and goes on with the rest of the batch.
[[nodiscard]] inline result<void> check_value_size(const push_op& op, const limits& lim = {}) {
    auto text = dump_json(op.value);
    if (!text) return unexpected{std::move(text).error()};
    if (text->size() > lim.max_value_bytes)
        return unexpected{make_error(errc::too_large, "value of " + std::to_string(text->size()) +
                                                          " bytes is over the limit of " +
                                                          std::to_string(lim.max_value_bytes))};
    return {};
}

/// @brief The body of a push answer: `{"outcomes": [...]}`, one per op, in order.
[[nodiscard]] inline result<std::string> encode_push_answer(std::span<const push_outcome> outcomes) {
    nlohmann::json j = nlohmann::json::object();
    auto& arr = j["outcomes"] = nlohmann::json::array();
    for (const auto& o : outcomes) arr.push_back(to_json(o));
    return dump_json(j);
}

/// @brief True if `o`, the outcome of `op` pushed with origin `origin`, is a
/// first create (applied, not replayed) whose record holds exactly the local
/// id, value and origin the op sent: its answer need not carry them back.
[[nodiscard]] inline bool stored_as_sent(const push_outcome& o, const push_op& op, std::string_view origin) {
    return o.outcome == push_outcome::kind::applied && !o.replayed && op.kind == op_kind::create &&
           o.record.id == op.id && o.record.origin == (op.origin.empty() ? origin : std::string_view{op.origin}) &&
           o.record.value == op.value;
}

/// @brief The body of a push answer to `ops`, pushed with the batch origin
/// `origin` (the server side): as above, but the record of a first create
/// stored exactly as sent (`stored_as_sent`) holds only its server id, version
/// and `updated_at`, so that the answer to a batch of creates is not the batch
/// again. `ops` must be the ops the outcomes answer, in order.
[[nodiscard]] inline result<std::string> encode_push_answer(std::span<const push_outcome> outcomes,
                                                            std::span<const push_op> ops, std::string_view origin) {
    nlohmann::json j = nlohmann::json::object();
    auto& arr = j["outcomes"] = nlohmann::json::array();
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        arr.push_back(to_json(outcomes[i], i < ops.size() && stored_as_sent(outcomes[i], ops[i], origin)));
    }
    return dump_json(j);
}

/// @brief Decodes a push answer to `sent` (the client side): exactly one
/// outcome per op sent, else `errc::protocol`. An applied create's record in
/// the short form (a create stored as sent) decodes with no local id, an empty
/// origin and a null value: they are the op's. Malformed JSON, a missing or
/// mistyped member, an unknown outcome, an applied create or update (or a
/// conflict) without a server id, text over `bounds`: `errc::protocol`.
/// Never throws.
[[nodiscard]] inline result<std::vector<push_outcome>> decode_push_answer(
    std::string_view body, std::span<const push_op> sent, const parse_limits& bounds = answer_parse_limits) {
    try {
        auto doc = parse_json(body, bounds);
        if (!doc) return unexpected{std::move(doc).error()};
        if (auto ok = detail::require_object(*doc, "push answer"); !ok) return unexpected{std::move(ok).error()};
        auto arr = detail::take_array(*doc, "outcomes", "push answer");
        if (!arr) return unexpected{std::move(arr).error()};
        if (arr->size() != sent.size())
            return unexpected{make_error(errc::protocol, "push answer: " + std::to_string(arr->size()) +
                                                             " outcomes for " + std::to_string(sent.size()) + " ops")};
        std::vector<push_outcome> out;
        out.reserve(arr->size());
        for (std::size_t i = 0; i < arr->size(); ++i) {
            auto o = outcome_from_json((*arr)[i], detail::indexed("outcomes", i), sent[i].kind);
            if (!o) return unexpected{std::move(o).error()};
            out.push_back(std::move(*o));
        }
        return out;
    } catch (const std::exception&) {
        return unexpected{make_error(errc::protocol, "push answer: cannot decode")};
    }
}

}  // namespace tether::protocol
