#pragma once

// Appended text, three ways: the local write (`sync_engine::append`), the
// push that sends the accumulated chunk instead of the whole text (an
// `op_kind::append`), and the live `appended` event that extends the local
// text. Read after push.hpp and live.hpp. Not a public entry point.
//
// The acknowledged length. The store keeps no server copy of a record, so
// `append` notes one fact about it in the store's metadata (key
// `append_base:<local id>`) when it writes to a record that is `synced`: at
// its version, the member's server text was this many bytes long, with this
// hash (FNV-1a, 64 bits) — a synced record's text is the server's. The note
// is a fact about that version and stays true; the push sends an append only
// while the record is still at that version, its one dirty field is that
// member, and its text still begins with the noted text (same length, same
// hash). Anything else — an edit of another field, the text shortened or
// rewritten, a pull of a newer version, a conflict — sends the ordinary
// update. A note left behind (the record deleted) is a few bytes of metadata.
#include <tether/core/entity.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/core/status.hpp>
#include <tether/engine/detail/effects.hpp>
#include <tether/engine/detail/pull.hpp>
#include <tether/engine/detail/pull_run.hpp>
#include <tether/protocol/append.hpp>
#include <tether/protocol/utf8.hpp>
#include <tether/transport/live.hpp>
#include <tether/transport/transport.hpp>

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_set>
#include <utility>

namespace tether::detail {

/// The metadata key of record `id`'s append base.
[[nodiscard]] inline std::string append_base_key(const local_id& id) { return "append_base:" + id.to_string(); }

/// FNV-1a (64 bits) of `s`: a text's fingerprint in an append base.
[[nodiscard]] constexpr std::uint64_t text_hash(std::string_view s) noexcept {
    std::uint64_t h = 14695981039346656037ull;
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ull;
    }
    return h;
}

/// What the server's copy of a record held, at `version`: `member`'s text was
/// `length` bytes long, with fingerprint `hash`. Stored as
/// "<version> <length> <hash> <member>".
struct append_base {
    std::uint64_t version = 0;
    std::uint64_t length = 0;
    std::uint64_t hash = 0;
    std::string member;
};

[[nodiscard]] inline std::string format_append_base(const append_base& b) {
    return std::to_string(b.version) + ' ' + std::to_string(b.length) + ' ' + std::to_string(b.hash) + ' ' + b.member;
}

/// The base `text` holds; none if it does not parse (a note of another form).
[[nodiscard]] inline std::optional<append_base> parse_append_base(std::string_view text) {
    append_base b;
    const char* p = text.data();
    const char* end = text.data() + text.size();
    for (std::uint64_t* n : {&b.version, &b.length, &b.hash}) {
        auto [next, ec] = std::from_chars(p, end, *n);
        if (ec != std::errc{} || next == end || *next != ' ') return std::nullopt;
        p = next + 1;
    }
    b.member.assign(p, end);
    if (b.member.empty()) return std::nullopt;
    return b;
}

/// The text of `value`'s string member `member`; none if it has no such member
/// or it is not a string.
template <class E>
[[nodiscard]] std::optional<std::string> member_text(const E& value, std::string_view member) {
    auto j = entity_ops<E>::to_json(value);
    const auto it = j.find(member);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return std::move(it->template get_ref<std::string&>());
}

/// `value` with `chunk` appended to its string member `member`.
template <class E>
[[nodiscard]] result<E> with_appended(const E& value, std::string_view member, std::string_view chunk) {
    auto j = entity_ops<E>::to_json(value);
    const auto it = j.find(member);
    if (it == j.end() || !it->is_string())
        return unexpected{make_error(errc::invalid_argument, "append: '" + std::string{member} + "' is not a string member")};
    it->template get_ref<std::string&>() += chunk;
    return entity_ops<E>::from_json(j);
}

/// The body of `sync_engine::append`: notes the append base of a synced
/// record (see the file), then writes the longer text as `update` does.
template <class Engine, class Store>
auto append_text(Engine& engine, Store& store, const local_id& id, std::string_view member, std::string_view chunk)
    -> result<typename Engine::record_type> {
    using entity_type = typename Engine::entity_type;
    if (!protocol::valid_utf8(chunk)) return unexpected{make_error(errc::invalid_argument, "append: chunk is not UTF-8")};
    auto cur = engine.get(id);
    if (!cur) return cur;
    auto text = member_text(cur->value, member);
    if (!text) return unexpected{make_error(errc::invalid_argument, "append: '" + std::string{member} + "' is not a string member")};
    if (cur->status == sync_status::synced && cur->server_id && cur->version > 0 && !cur->deleted) {
        const append_base base{cur->version, text->size(), text_hash(*text), std::string{member}};
        auto noted = store.transact([&](auto& tx) { return tx.set_meta(append_base_key(id), format_append_base(base)); });
        if (!noted) return unexpected{std::move(noted).error()};
    }
    std::optional<error> failed;
    auto done = engine.update(id, [&](entity_type& e) {
        auto next = with_appended(e, member, chunk);
        if (next) e = std::move(*next);
        else failed = std::move(next).error();
    });
    if (failed) return unexpected{std::move(*failed)};
    return done;
}

/// In the push's snapshot transaction: turns `op`, the update of `r`, into an
/// append of the text written since the base noted for `r` (see the file),
/// when the transport carries appends and the base still holds.
template <class Ctx, class Tx>
result<void> as_append_op(Ctx& ctx, Tx& tx, const typename Ctx::record_type& r, push_op& op) {
    (void)ctx;
    if constexpr (!carries_append_ops<std::remove_cvref_t<decltype(ctx.transport)>>) {
        return {};
    } else {
        if (op.kind != op_kind::update || r.version == 0 || r.dirty.size() != 1) return {};
        auto stored = tx.get_meta(append_base_key(r.id));
        if (!stored) return unexpected{std::move(stored).error()};
        if (!*stored) return {};
        const auto base = parse_append_base(**stored);
        if (!base || base->version != r.version || !r.dirty.contains(base->member)) return {};
        const auto it = op.value.find(base->member);
        if (it == op.value.end() || !it->is_string()) return {};
        const std::string& text = it->template get_ref<const std::string&>();
        if (text.size() < base->length) return {};
        const auto len = static_cast<std::size_t>(base->length);
        if (text_hash(std::string_view{text}.substr(0, len)) != base->hash) return {};
        protocol::append_value a{base->member, text.substr(len), base->length};
        op.kind = op_kind::append;
        op.value = protocol::to_json(a);
        return {};
    }
}

/// Whether `e`, an `appended` event past the local version, extends `cur`
/// as it stands: it replaces the local version, the record has no local
/// change, and the member's local text is `length_before` long.
template <class Record>
[[nodiscard]] bool append_fits(const Record& cur, const live_event& e, const nlohmann::json& local) {
    if (!e.append || e.replaces != cur.version || cur.status != sync_status::synced || cur.deleted) return false;
    const auto& a = *e.append;
    if (a.length_after != a.length_before + a.chunk.size()) return false;
    const auto it = local.find(a.member);
    return it != local.end() && it->is_string() && it->template get_ref<const std::string&>().size() == a.length_before;
}

/// An `appended` event past the local version (`cur` is the local record,
/// if held): applied as the server record it describes (the local text
/// extended, the event's version) when it fits (`append_fits`); else a
/// fetch (a gap, a record not held, a pending local edit: the fetched record
/// then meets the conflict rules).
template <class Ctx, class Tx>
result<bool> live_apply_append(Ctx& ctx, Tx& tx, effects<typename Ctx::entity_type>& fx, pull_run& run,
                               const std::optional<typename Ctx::record_type>& cur, const live_event& e, timestamp now,
                               pass_result& out) {
    using entity_type = typename Ctx::entity_type;
    if (!cur) return false;
    auto local = entity_ops<entity_type>::to_json(cur->value);
    if (!append_fits(*cur, e, local)) return false;
    local[e.append->member].template get_ref<std::string&>() += e.append->chunk;
    server_record s = e.record;
    s.value = std::move(local);
    s.version = e.version;
    std::unordered_set<std::string> alone;
    if (auto a = apply_server_record(ctx, tx, fx, run, alone, s, now, out); !a) return unexpected{a.error()};
    return true;
}

}  // namespace tether::detail
