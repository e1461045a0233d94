#pragma once

/// @file
/// @brief `tether::server::token_table`: which user a bearer token belongs to,
/// read from a file of `token user` lines (target `tether::server_http`).
#include <tether/core/error.hpp>
#include <tether/server/http/auth.hpp>
#include <tether/core/result.hpp>
#include <tether/transport/http/token.hpp>

#include <cstddef>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace tether::server {

/// @brief Bearer tokens and the users they stand for: a `token_verifier` (a user
/// is never read from a path, a query or a body).
///
/// The text form is one `token user` pair per line: the token (visible ASCII,
/// as `http::valid_token` says), one or more spaces or tabs, the user (one word
/// of visible ASCII). Blank lines and lines starting with `#` are skipped. A
/// line of any other shape, or a token given twice, is an error naming the
/// line number, never the line's text, so no token reaches a log through it.
///
/// @code
/// auto tokens = tether::server::token_table::parse("s3cret-a alice\ns3cret-b bob\n").value();
/// auto who = tokens.user_for("s3cret-a");   // "alice"
/// @endcode
class token_table {
public:
    /// @brief An empty table: every token is refused.
    token_table() = default;

    /// @brief The table in `text` (see the class), or `errc::invalid_argument`
    /// naming the first bad line.
    [[nodiscard]] static result<token_table> parse(std::string_view text) {
        token_table t;
        std::size_t line_no = 0;
        while (!text.empty()) {
            ++line_no;
            const auto eol = text.find('\n');
            std::string_view line = text.substr(0, eol);
            text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            const std::string_view trimmed = trim_(line);
            if (trimmed.empty() || trimmed.front() == '#') continue;
            const auto gap = trimmed.find_first_of(" \t");
            if (gap == std::string_view::npos) return bad_(line_no, "expected `token user`, found one word");
            const std::string_view token = trimmed.substr(0, gap);
            const std::string_view user = trim_(trimmed.substr(gap));
            if (!http::valid_token(token)) return bad_(line_no, "the token is not visible ASCII");
            if (user.find_first_of(" \t") != std::string_view::npos)
                return bad_(line_no, "expected `token user`, found more than two words");
            if (!http::valid_token(user)) return bad_(line_no, "the user is not visible ASCII");
            if (!t.users_.emplace(std::string{token}, std::string{user}).second)
                return bad_(line_no, "the token is given twice");
        }
        return t;
    }

    /// @brief The table in the file `path` (see `parse`); a file that cannot be
    /// read is `errc::invalid_argument` naming the path.
    [[nodiscard]] static result<token_table> load(const std::string& path) {
        std::ifstream in{path, std::ios::binary};
        if (!in) return unexpected{make_error(errc::invalid_argument, "token file '" + path + "' cannot be read")};
        std::ostringstream text;
        text << in.rdbuf();
        if (in.bad()) return unexpected{make_error(errc::invalid_argument, "token file '" + path + "' cannot be read")};
        auto t = parse(text.str());
        if (!t) {
            auto e = std::move(t).error();
            e.message = "token file '" + path + "': " + e.message;
            return unexpected{std::move(e)};
        }
        return t;
    }

    /// @brief Adds (or replaces) one token; false if `token` or `user` is not
    /// visible ASCII.
    bool add(std::string token, std::string user) {
        if (!http::valid_token(token) || !http::valid_token(user)) return false;
        users_[std::move(token)] = std::move(user);
        return true;
    }

    /// @brief The user `token` stands for, if any.
    [[nodiscard]] std::optional<std::string> user_for(std::string_view token) const {
        auto it = users_.find(std::string{token});
        if (it == users_.end()) return std::nullopt;
        return it->second;
    }

    /// @brief The user `token` stands for, or a 401 "unknown or revoked token"
    /// (the `token_verifier` face of `user_for`).
    [[nodiscard]] result<std::string> verify(std::string_view token) const {
        auto user = user_for(token);
        if (!user) return unexpected{token_refused("unknown or revoked token")};
        return std::move(*user);
    }

    /// @brief How many tokens the table holds.
    [[nodiscard]] std::size_t size() const noexcept { return users_.size(); }

private:
    static std::string_view trim_(std::string_view s) noexcept {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
        return s;
    }

    static unexpected<error> bad_(std::size_t line_no, std::string_view why) {
        return unexpected{make_error(errc::invalid_argument, "line " + std::to_string(line_no) + ": " + std::string{why})};
    }

    std::unordered_map<std::string, std::string> users_;
};

static_assert(token_verifier<token_table>);

}  // namespace tether::server
