#pragma once

// tether::protocol: bounded JSON parsing. The size and the nesting depth of a
// document are checked before nlohmann's parser sees it, so a hostile body can
// neither exhaust memory by depth nor reach the parser past the size limit.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/limits.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <exception>
#include <new>
#include <string>
#include <string_view>

namespace tether::protocol {

/// @brief The nesting depth of the JSON text `text`, counting arrays and objects
/// (`1` and `"x"` are 0, `{}` and `[1]` are 1, `{"a":[{}]}` is 3), scanning no
/// further once it passes `stop_above` (then it returns `stop_above + 1`).
///
/// Brackets inside strings (escapes included) do not count. The text is not
/// otherwise validated: unbalanced or malformed text is the parser's to refuse.
[[nodiscard]] constexpr std::size_t nesting_depth(std::string_view text, std::size_t stop_above) noexcept {
    std::size_t depth = 0;
    std::size_t deepest = 0;
    bool in_string = false;
    bool escaped = false;
    for (const char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
            continue;
        }
        switch (c) {
            case '"': in_string = true; break;
            case '[':
            case '{':
                if (++depth > deepest) {
                    deepest = depth;
                    if (deepest > stop_above) return deepest;
                }
                break;
            case ']':
            case '}':
                if (depth > 0) --depth;
                break;
            default: break;
        }
    }
    return deepest;
}

/// @brief Parses one JSON document within `bounds`.
///
/// Text longer than `bounds.max_bytes` or nested deeper than `bounds.max_depth`
/// is an `over_limit` error (a server passes `errc::too_large`, a client keeps
/// the default `errc::protocol`); malformed JSON (invalid UTF-8 included) is an
/// `errc::protocol` error naming the byte offset. Never throws. No message
/// quotes the text, so nothing secret it may hold leaks into a log.
[[nodiscard]] inline result<nlohmann::json> parse_json(std::string_view text, const parse_limits& bounds,
                                                       errc over_limit = errc::protocol) {
    auto fail = [](errc code, std::string message) {
        return result<nlohmann::json>{unexpect, error{code, std::move(message), std::nullopt, std::nullopt}};
    };
    try {
        if (text.size() > bounds.max_bytes)
            return fail(over_limit, "JSON body of " + std::to_string(text.size()) + " bytes is over the limit of " +
                                        std::to_string(bounds.max_bytes));
        if (nesting_depth(text, bounds.max_depth) > bounds.max_depth)
            return fail(over_limit, "JSON nested deeper than " + std::to_string(bounds.max_depth) + " levels");
        return nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::parse_error& e) {
        return fail(errc::protocol, "malformed JSON near byte " + std::to_string(e.byte));
    } catch (const std::bad_alloc&) {
        return fail(over_limit, "JSON body too large to parse in memory");
    } catch (const std::exception&) {
        return fail(errc::protocol, "malformed JSON");
    }
}

/// @brief Serialises `j` compactly. Strings that are not valid UTF-8 cannot be
/// sent as JSON: they are an `errc::invalid_argument` error. Never throws.
[[nodiscard]] inline result<std::string> dump_json(const nlohmann::json& j) {
    try {
        return j.dump();
    } catch (const nlohmann::json::type_error&) {
        return result<std::string>{unexpect, make_error(errc::invalid_argument, "a string is not valid UTF-8")};
    } catch (const std::exception&) {
        return result<std::string>{unexpect, make_error(errc::invalid_argument, "cannot serialise the JSON value")};
    }
}

}  // namespace tether::protocol
