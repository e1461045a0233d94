#pragma once

/// @file
/// @brief The value of an `op_kind::append` push op: which string member of
/// the record grows, by what text, from what length. Both directions: the
/// engine builds it, a server reads (and checks) it.
///
/// On the wire an append is a push op like the others (docs/protocol.md):
/// `{"kind": "append", "id": ..., "server_id": ..., "base_version": ...,
///   "value": {"member": "transcript", "chunk": " and then", "length_before": 42}}`.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/utf8.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace tether::protocol {

/// @brief The longest member name an append may name, in bytes.
inline constexpr std::size_t max_member_name_bytes = 256;

/// @brief What an append op asks: `chunk` appended to the string member
/// `member`, whose text is `length_before` bytes of UTF-8 long before it.
struct append_value {
    std::string member;               ///< the string member's name
    std::string chunk;                ///< the text appended (UTF-8)
    std::uint64_t length_before = 0;  ///< the member's length in UTF-8 bytes before the chunk
};

/// @brief An append's value as JSON: `{"member", "chunk", "length_before"}`.
[[nodiscard]] inline nlohmann::json to_json(const append_value& a) {
    nlohmann::json j = nlohmann::json::object();
    j["member"] = a.member;
    j["chunk"] = a.chunk;
    j["length_before"] = a.length_before;
    return j;
}

/// @brief Reads an append op's value: an object with a non-empty `member`
/// (at most `max_member_name_bytes`), a `chunk` string of valid UTF-8 and an
/// unsigned `length_before`. Anything else is `errc::protocol` (HTTP 400),
/// naming the field: a server answers that op `rejected` and goes on with
/// the rest of its batch. Never throws.
[[nodiscard]] inline result<append_value> append_from_json(const nlohmann::json& j) {
    auto bad = [](std::string_view what) {
        return unexpected{error{errc::protocol, "append: " + std::string{what}, 400, std::nullopt}};
    };
    if (!j.is_object()) return bad("value must be an object {member, chunk, length_before}");
    const auto m = j.find("member");
    if (m == j.end() || !m->is_string()) return bad("member must be a string");
    const auto c = j.find("chunk");
    if (c == j.end() || !c->is_string()) return bad("chunk must be a string");
    const auto n = j.find("length_before");
    if (n == j.end() || !n->is_number_unsigned()) return bad("length_before must be an unsigned integer");
    append_value a{m->get<std::string>(), c->get<std::string>(), n->get<std::uint64_t>()};
    if (a.member.empty() || a.member.size() > max_member_name_bytes) return bad("member name empty or too long");
    if (!valid_utf8(a.chunk)) return bad("chunk is not UTF-8");
    return a;
}

/// @brief What a server holding `text` does with append `a`.
enum class append_fit : std::uint8_t {
    fresh,     ///< `text` is `length_before` long: append the chunk
    replayed,  ///< `text` already ends with the chunk at `length_before`: a resend, already applied
    mismatch,  ///< neither: the sender's idea of the text is not the server's (a conflict)
};

/// @brief How append `a` fits `text`, the member's text on the server (see `append_fit`).
/// An empty chunk on a text of `length_before` bytes is `fresh` (it changes nothing).
[[nodiscard]] inline append_fit fit_append(std::string_view text, const append_value& a) noexcept {
    if (text.size() == a.length_before) return append_fit::fresh;
    if (!a.chunk.empty() && a.length_before <= text.size() && text.size() - a.length_before == a.chunk.size() &&
        text.substr(static_cast<std::size_t>(a.length_before)) == a.chunk) {
        return append_fit::replayed;
    }
    return append_fit::mismatch;
}

}  // namespace tether::protocol
