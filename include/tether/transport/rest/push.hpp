#pragma once

// tether::rest: one push op as one request (or a few: a lookup before a resent
// create, a fetch of the server's copy) to a REST API. An op answered by the
// server ends in an outcome; a request that got no answer (or a 401 or 429)
// is an error, which stops the batch. Not a public entry point.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/transport/rest/client.hpp>
#include <tether/transport/rest/codec.hpp>
#include <tether/transport/transport.hpp>

#include <optional>
#include <string>
#include <utility>

namespace tether::rest {

/// @brief True for an error after which the rest of a batch is not sent: no
/// answer came, or the server refuses every request for now (401, 429).
[[nodiscard]] inline bool stops_batch(const error& e) {
    if (e.code == errc::invalid_argument) return false;  // this op's value, never sent
    return !e.http_status || e.code == errc::unauthorized || e.code == errc::rate_limited;
}

namespace detail {

inline push_outcome rejected(error e) { return push_outcome{push_outcome::kind::rejected, {}, std::move(e), false}; }
inline push_outcome applied(server_record r, bool replayed = false) {
    return push_outcome{push_outcome::kind::applied, std::move(r), {}, replayed};
}
inline push_outcome conflict(server_record r) {
    return push_outcome{push_outcome::kind::conflict, std::move(r), make_error(errc::conflict, "the server's copy changed"),
                        false};
}

/// The server's copy by its id: the record, nullopt if it is gone (404, 410 or
/// soft-deleted), an outcome-worthy error for another status.
inline result<std::optional<api_record>> get_item(const client& c, const std::string& sid) {
    auto got = c.send("GET", c.item(sid), nullptr, {}, "fetch");
    if (!got) return unexpected{std::move(got).error()};
    if (!http::is_success(got->status)) {
        if (c.meaning(got->status) == rest_meaning::gone) return std::optional<api_record>{};
        return unexpected{c.status_error(*got, http::request_kind::fetch, "fetch")};
    }
    auto rec = c.record(*got, "fetch");
    if (!rec) return unexpected{std::move(rec).error()};
    if (rec->record.server_id != sid) return unexpected{c.malformed(*got, "fetch", "the answer is another record")};
    if (rec->deleted) return std::optional<api_record>{};
    return std::optional<api_record>{std::move(*rec)};
}

/// The record a create of `op` may have made already: by the client-chosen id,
/// or by the client-id field and its lookup parameter; nullopt when it is not
/// there or the API offers no way to look.
inline result<std::optional<api_record>> find_create(const client& c, const push_op& op) {
    const auto& m = c.mapping();
    if (m.create != rest_create::post_server_id) return get_item(c, op.id.to_string());
    if (m.client_id_field.empty() || m.lookup_param.empty()) return std::optional<api_record>{};
    auto got = c.send("GET", client::with_query(m.collection_url, {{m.lookup_param, op.id.to_string()}}), nullptr, {},
                      "lookup");
    if (!got) return unexpected{std::move(got).error()};
    if (!http::is_success(got->status)) return unexpected{c.status_error(*got, http::request_kind::any, "lookup")};
    auto listed = c.list(*got, "lookup");
    if (!listed) return unexpected{std::move(listed).error()};
    // A record that does not read may be the create: sending it again could make it twice.
    if (!listed->refused.empty()) return unexpected{c.malformed(*got, "lookup", listed->refused.front().why)};
    for (auto& r : listed->records)
        if (r.record.id == op.id && !r.deleted) return std::optional<api_record>{std::move(r)};
    return std::optional<api_record>{};
}

/// A create found on the server: the one sent (applied, replayed) if it holds
/// every field sent, else changed since by another writer (a conflict).
inline push_outcome found_create(const push_op& op, api_record found) {
    found.record.id = op.id;
    if (holds_all(found.record.value, op.value)) return applied(std::move(found.record), true);
    return conflict(std::move(found.record));
}

/// The record a 2xx answer to a write names: its body, else a fetch of `sid`
/// (an empty body or a 204), or of the id in `Location`.
inline result<push_outcome> written(const client& c, const push_op& op, const http::full_answer& a, std::string sid,
                                    std::string_view what) {
    const auto& m = c.mapping();
    if (!a.body.empty() && a.body.find_first_not_of(" \t\r\n") != std::string::npos) {
        auto rec = c.record(a, what);
        if (rec) {
            if (rec->record.id && *rec->record.id != op.id)
                return rejected(c.malformed(a, what, "the answer is another record"));
            rec->record.id = op.id;
            return applied(std::move(rec->record));
        }
        if (!m.id_from_location) return rejected(std::move(rec).error());
    }
    if (sid.empty() && m.id_from_location) {
        const auto loc = a.header("Location");
        const auto slash = loc.find_last_of('/');
        sid = slash == std::string::npos ? loc : loc.substr(slash + 1);
        auto decoded = protocol::percent_decode(sid);
        sid = decoded ? *decoded : std::string{};
    }
    if (sid.empty()) return rejected(c.malformed(a, what, "no record and no id in the answer"));
    auto got = get_item(c, sid);
    if (!got) return stops_batch(got.error()) ? result<push_outcome>{unexpect, got.error()} : rejected(got.error());
    if (!*got) return rejected(c.malformed(a, what, "the record written is not there"));
    (*got)->record.id = op.id;
    return applied(std::move((*got)->record));
}

/// A non-2xx answer to an op: an outcome, or an error that stops the batch.
inline result<push_outcome> refused(const client& c, const http::full_answer& a, std::string_view what) {
    auto e = c.status_error(a, http::request_kind::push, what);
    if (stops_batch(e)) return unexpected{std::move(e)};
    return rejected(std::move(e));
}

/// The headers of a conditional write on `base` (versions the API gave: If-Match).
inline httplib::Headers conditional(const rest_mapping& m, std::uint64_t base) {
    httplib::Headers h;
    const bool real = !m.version_field.empty() || m.version_from_etag;
    if (real && base != 0 && m.send_version != rest_version_send::none)
        h.emplace("If-Match", "\"" + std::to_string(base) + "\"");
    return h;
}

/// An error that came before the op's own write: it stops the batch, or is the op's outcome.
inline result<push_outcome> failed(error e) {
    if (stops_batch(e)) return unexpected{std::move(e)};
    return rejected(std::move(e));
}

/// What a conditional write of `op` to `sid` sends, or what settles the op
/// unsent: with opaque ETags, a tag forgotten is fetched again, and a record
/// changed since the base version (a conflict) or gone is not written.
struct precondition {
    httplib::Headers headers;             ///< `If-Match`, where the API has versions
    std::optional<push_outcome> settled;  ///< a conflict found before the write
    bool gone = false;                    ///< the record is not on the server
};

/// The precondition of a write of `op` to `sid` on its base version.
inline result<precondition> precondition_of(const client& c, const push_op& op, const std::string& sid) {
    const auto& m = c.mapping();
    precondition p;
    if (!m.opaque_etag) {
        p.headers = conditional(m, op.base_version);
        return p;
    }
    if (m.send_version == rest_version_send::none || op.base_version == 0) return p;
    if (auto tag = c.known_etag(sid, op.base_version)) {
        p.headers.emplace("If-Match", std::move(*tag));
        return p;
    }
    auto cur = get_item(c, sid);  // keeps its tag
    if (!cur) return unexpected{std::move(cur).error()};
    if (!*cur) {
        p.gone = true;
    } else if ((*cur)->record.version != op.base_version) {
        if (!(*cur)->record.id) (*cur)->record.id = op.id;
        p.settled = conflict(std::move((*cur)->record));
    } else {
        p.headers.emplace("If-Match", std::move((*cur)->etag));
    }
    return p;
}

/// The server id an update or remove goes to: known, the client-chosen id,
/// or found by the client-id field; nullopt if the record is not on the server.
inline result<std::optional<std::string>> target_of(const client& c, const push_op& op) {
    if (op.server_id) return std::optional<std::string>{*op.server_id};
    if (c.mapping().create != rest_create::post_server_id) return std::optional<std::string>{op.id.to_string()};
    auto found = find_create(c, op);
    if (!found) return unexpected{std::move(found).error()};
    if (!*found) return std::optional<std::string>{};
    return std::optional<std::string>{(*found)->record.server_id};
}

/// A 409 or 412: the server's copy from the body when it is one, else fetched.
inline result<push_outcome> conflicted(const client& c, const http::full_answer& a, const std::string& sid,
                                       const push_op& op) {
    if (auto rec = c.record(a, "conflict"); rec && rec->record.server_id == sid && !rec->deleted) {
        if (!rec->record.id) rec->record.id = op.id;
        return conflict(std::move(rec->record));
    }
    auto got = get_item(c, sid);
    if (!got) return stops_batch(got.error()) ? result<push_outcome>{unexpect, got.error()} : rejected(got.error());
    if (!*got) return rejected(make_error(errc::not_found, "the record is gone from the server"));
    if (!(*got)->record.id) (*got)->record.id = op.id;
    return conflict(std::move((*got)->record));
}

}  // namespace detail

/// @brief A create: looked up first when it was sent before (its answer may
/// have been lost); a refusal with a client-chosen id (409, 412, 5xx) is
/// settled by fetching that id.
inline result<push_outcome> push_create(const client& c, const push_op& op) {
    const auto& m = c.mapping();
    if (op.resent) {
        auto found = detail::find_create(c, op);
        if (!found) return stops_batch(found.error()) ? result<push_outcome>{unexpect, found.error()}
                                                      : detail::rejected(found.error());
        if (*found) return detail::found_create(op, std::move(**found));
    }
    httplib::Headers h;
    if (m.idempotency_key) h.emplace("Idempotency-Key", op.id.to_string());
    const bool put = m.create == rest_create::put_client_id;
    if (put) h.emplace("If-None-Match", "*");
    const std::string sid = m.create == rest_create::post_server_id ? std::string{} : op.id.to_string();
    auto got = c.send(put ? "PUT" : "POST", put ? c.item(sid) : m.collection_url, create_body(op, m), h, "create");
    if (!got) return unexpected{std::move(got).error()};
    if (http::is_success(got->status)) return detail::written(c, op, *got, sid, "create");
    const bool maybe_there = got->status >= 500 || c.meaning(got->status) == rest_meaning::conflict;
    if (maybe_there && (m.create != rest_create::post_server_id || !m.lookup_param.empty())) {
        auto found = detail::find_create(c, op);
        if (found && *found) return detail::found_create(op, std::move(**found));
    }
    return detail::refused(c, *got, "create");
}

/// @brief An update: PATCH of the changed fields, or PUT of the server's copy
/// with them over it; conditional on the base version where the API has one.
inline result<push_outcome> push_update(const client& c, const push_op& op) {
    const auto& m = c.mapping();
    auto sid = detail::target_of(c, op);
    if (!sid) return stops_batch(sid.error()) ? result<push_outcome>{unexpect, sid.error()} : detail::rejected(sid.error());
    if (!*sid) return detail::rejected(make_error(errc::not_found, "update: the record is not on the server"));
    nlohmann::json body = encode_value(op.value, m);
    if (m.update == rest_update::put_whole) {
        auto cur = detail::get_item(c, **sid);
        if (!cur) return stops_batch(cur.error()) ? result<push_outcome>{unexpect, cur.error()}
                                                  : detail::rejected(cur.error());
        if (!*cur) return detail::rejected(make_error(errc::not_found, "update: the record is not on the server"));
        auto whole = encode_value((*cur)->record.value, m);
        for (auto it = body.begin(); it != body.end(); ++it) whole[it.key()] = *it;
        body = std::move(whole);
        erase_path(body, m.id_field);
    }
    if (m.send_version == rest_version_send::body_field && !m.version_field.empty())
        set_path(body, m.version_field, op.base_version);
    auto pre = detail::precondition_of(c, op, **sid);
    if (!pre) return detail::failed(std::move(pre).error());
    if (pre->gone) return detail::rejected(make_error(errc::not_found, "update: the record is not on the server"));
    if (pre->settled) return std::move(*pre->settled);
    auto h = m.send_version == rest_version_send::if_match ? std::move(pre->headers) : httplib::Headers{};
    const char* method = m.update == rest_update::put_whole ? "PUT" : "PATCH";
    auto got = c.send(method, c.item(**sid), body, h, "update");
    if (!got) return unexpected{std::move(got).error()};
    if (http::is_success(got->status)) return detail::written(c, op, *got, **sid, "update");
    if (c.meaning(got->status) == rest_meaning::conflict) return detail::conflicted(c, *got, **sid, op);
    return detail::refused(c, *got, "update");
}

/// @brief A delete (a 404 or 410: already gone, applied), conditional on the
/// base version where the API has one.
inline result<push_outcome> push_remove(const client& c, const push_op& op) {
    auto sid = detail::target_of(c, op);
    if (!sid) return detail::failed(std::move(sid).error());
    server_record last{sid->value_or(std::string{}), op.id, op.base_version, nullptr, std::nullopt, {}};
    if (!*sid) return detail::applied(std::move(last));
    auto pre = detail::precondition_of(c, op, **sid);
    if (!pre) return detail::failed(std::move(pre).error());
    if (pre->gone) return detail::applied(std::move(last));
    if (pre->settled) return std::move(*pre->settled);
    auto got = c.send("DELETE", c.item(**sid), nullptr, pre->headers, "remove");
    if (!got) return unexpected{std::move(got).error()};
    if (http::is_success(got->status) || c.meaning(got->status) == rest_meaning::gone)
        return detail::applied(std::move(last));
    if (c.meaning(got->status) == rest_meaning::conflict) return detail::conflicted(c, *got, **sid, op);
    return detail::refused(c, *got, "remove");
}

}  // namespace tether::rest
