#pragma once

/// @file
/// @brief `tether::server::jwt_verifier`: bearer tokens that are JSON Web Tokens
/// signed with HS256 or RS256, checked with libjwt (target `tether::server_http`,
/// built when libjwt is found: `TETHER_HAS_JWT` is then 1).
///
/// tether issues no tokens: the app's own auth service signs them, and the
/// client's token provider (`http::token_provider`) fetches a fresh one after a 401.
#include <tether/clock/clock.hpp>
#include <tether/clock/system.hpp>
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/server/http/auth.hpp>
#include <tether/transport/http/token.hpp>

#include <jwt.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::server {

/// @brief The signature algorithms a `jwt_verifier` takes. Never `none`.
enum class jwt_alg : std::uint8_t {
    hs256,  ///< HMAC-SHA256 with a shared secret
    rs256,  ///< RSASSA-PKCS1-v1_5 SHA-256 with the issuer's RSA key (the verifier holds the public half)
};

/// @brief The name of `alg` in a token's header: `"HS256"` or `"RS256"`.
[[nodiscard]] constexpr std::string_view to_string(jwt_alg alg) noexcept {
    return alg == jwt_alg::hs256 ? "HS256" : "RS256";
}

/// @brief One key a `jwt_verifier` checks signatures with: its algorithm and
/// its bytes (an HS256 secret, or an RS256 public key in PEM). A key is bound
/// to its algorithm: a token whose header names another is never checked with
/// it (an HS256 token "signed" with an RS256 public key is refused). A key
/// may carry an id: a token whose header names a `kid` is checked only with
/// the key of that id (see `jwt_verifier`).
struct jwt_key {
    jwt_alg alg = jwt_alg::hs256;  ///< what the key verifies
    std::string material;          ///< the secret's bytes, or the public key's PEM text
    std::optional<std::string> id; ///< its key id, the `kid` of the tokens it signs; empty: none

    /// @brief The longest key id taken, in bytes.
    static constexpr std::size_t max_id_bytes = 128;

    /// @brief True if `kid` can be a key id: 1 to `max_id_bytes` bytes of visible ASCII.
    [[nodiscard]] static bool valid_id(std::string_view kid) noexcept {
        return !kid.empty() && kid.size() <= max_id_bytes && http::valid_token(kid);
    }

    /// @brief The shortest HS256 secret taken: 32 bytes, the hash's size (RFC 7518, 3.2).
    static constexpr std::size_t min_secret_bytes = 32;

    /// @brief An HS256 key, or `errc::invalid_argument` for a secret under `min_secret_bytes`.
    [[nodiscard]] static result<jwt_key> hs256(std::string secret) {
        if (secret.size() < min_secret_bytes)
            return unexpected{make_error(errc::invalid_argument, "an HS256 secret needs at least " +
                                                                     std::to_string(min_secret_bytes) + " bytes")};
        return jwt_key{jwt_alg::hs256, std::move(secret), std::nullopt};
    }

    /// @brief An RS256 key from a PEM public key (`BEGIN PUBLIC KEY` or `BEGIN RSA
    /// PUBLIC KEY`), or `errc::invalid_argument` for anything else, a private key included.
    [[nodiscard]] static result<jwt_key> rs256(std::string pem) {
        if (pem.find("PRIVATE KEY") != std::string::npos)
            return unexpected{make_error(errc::invalid_argument,
                                         "an RS256 key must be the public key; this is a private key")};
        const bool spki = pem.find("-----BEGIN PUBLIC KEY-----") != std::string::npos &&
                          pem.find("-----END PUBLIC KEY-----") != std::string::npos;
        const bool pkcs1 = pem.find("-----BEGIN RSA PUBLIC KEY-----") != std::string::npos &&
                           pem.find("-----END RSA PUBLIC KEY-----") != std::string::npos;
        if (!spki && !pkcs1)
            return unexpected{make_error(errc::invalid_argument, "an RS256 key must be a PEM public key")};
        return jwt_key{jwt_alg::rs256, std::move(pem), std::nullopt};
    }

    /// @brief The key in the file `path`: for HS256 its bytes less one trailing
    /// newline, for RS256 its PEM text. An unreadable file or a bad key is
    /// `errc::invalid_argument` naming the path (never the key).
    [[nodiscard]] static result<jwt_key> load(jwt_alg alg, const std::string& path) {
        return load(alg, path, std::nullopt);
    }

    /// @brief As above, the key with id `id` (if given); a key id that is not
    /// `valid_id` is `errc::invalid_argument`.
    [[nodiscard]] static result<jwt_key> load(jwt_alg alg, const std::string& path, std::optional<std::string> id) {
        if (id && !valid_id(*id))
            return unexpected{make_error(errc::invalid_argument, "key file '" + path + "': the key id is not 1 to " +
                                                                     std::to_string(max_id_bytes) +
                                                                     " bytes of visible ASCII")};
        std::ifstream in{path, std::ios::binary};
        std::ostringstream text;
        if (in) text << in.rdbuf();
        if (!in || in.bad())
            return unexpected{make_error(errc::invalid_argument, "key file '" + path + "' cannot be read")};
        std::string bytes = std::move(text).str();
        if (alg == jwt_alg::hs256) {
            if (!bytes.empty() && bytes.back() == '\n') bytes.pop_back();
            if (!bytes.empty() && bytes.back() == '\r') bytes.pop_back();
        }
        auto key = alg == jwt_alg::hs256 ? hs256(std::move(bytes)) : rs256(std::move(bytes));
        if (!key) return unexpected{make_error(errc::invalid_argument, "key file '" + path + "': " + key.error().message)};
        key->id = std::move(id);
        return key;
    }
};

/// @brief Where a key is read from: what `load_jwt_keys` reads, at start and
/// again on each reload.
struct jwt_key_file {
    jwt_alg alg = jwt_alg::hs256;   ///< what the key verifies
    std::string path;               ///< the file (see `jwt_key::load`)
    std::optional<std::string> id;  ///< the key's id, if it has one
};

/// @brief Every key of `files`, in order; the first that cannot be loaded, a
/// key id given twice, or no files at all is `errc::invalid_argument` (naming
/// the file, never the key).
[[nodiscard]] inline result<std::vector<jwt_key>> load_jwt_keys(const std::vector<jwt_key_file>& files) {
    if (files.empty()) return unexpected{make_error(errc::invalid_argument, "no JWT key files")};
    std::vector<jwt_key> keys;
    for (const auto& f : files) {
        auto key = jwt_key::load(f.alg, f.path, f.id);
        if (!key) return unexpected{std::move(key).error()};
        for (const auto& k : keys)
            if (key->id && k.id == key->id)
                return unexpected{make_error(errc::invalid_argument, "key file '" + f.path + "': key id '" +
                                                                         *key->id + "' is given twice")};
        keys.push_back(std::move(*key));
    }
    return keys;
}

/// @brief What a `jwt_verifier` accepts.
struct jwt_options {
    /// The keys a signature may verify with (at least one; no key id twice).
    /// During a key rotation it holds the old key and the new one: a token
    /// naming a `kid` is checked with that key; one without is checked with
    /// any key of its algorithm that has no id (or with the only key, if
    /// there is just one). `jwt_verifier::replace_keys` changes them later.
    std::vector<jwt_key> keys;
    /// If set, the `iss` claim must equal it.
    std::optional<std::string> issuer;
    /// If set, the `aud` claim (a string, or an array of strings) must hold it.
    std::optional<std::string> audience;
    /// How far `exp` and `nbf` may be off the verifier's clock (clock skew
    /// between the issuer and the servers): a token is expired from `exp +
    /// leeway` on, and valid from `nbf - leeway` on.
    std::chrono::seconds leeway{30};
    /// If true (the default), a token without `exp` is refused: it would never expire.
    bool require_exp = true;
    /// The longest token taken, in bytes (a longer one is malformed).
    std::size_t max_token_bytes = 8192;
};

/// @brief The longest `sub` taken as a user, in bytes.
inline constexpr std::size_t max_jwt_subject_bytes = 256;

namespace detail {

/// The bytes of base64url text without padding, or nothing if it is not that.
inline std::optional<std::string> base64url_decode(std::string_view text) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '-') return 62;
        if (c == '_') return 63;
        return -1;
    };
    if (text.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char c : text) {
        const int v = value(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    return out;
}

/// The JSON object in the base64url text `part`, or nothing.
inline std::optional<nlohmann::json> decode_jwt_part(std::string_view part) {
    auto bytes = base64url_decode(part);
    if (!bytes) return std::nullopt;
    nlohmann::json j = nlohmann::json::parse(*bytes, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    return j;
}

/// A NumericDate claim (seconds since the epoch) in milliseconds, or nothing
/// if it is not a finite number in a sane range.
inline std::optional<std::int64_t> numeric_date_ms(const nlohmann::json& v) {
    if (!v.is_number()) return std::nullopt;
    const double s = v.get<double>();
    constexpr double limit = 1e13;  // ~317,000 years: no overflow in milliseconds
    if (!std::isfinite(s) || s < -limit || s > limit) return std::nullopt;
    return static_cast<std::int64_t>(std::floor(s * 1000.0));
}

/// True if libjwt verifies `token`'s signature with `key`, as signed with `key.alg`.
inline bool signature_verifies(const std::string& token, const jwt_key& key) {
    jwt_t* decoded = nullptr;
    const int rc = jwt_decode(&decoded, token.c_str(), reinterpret_cast<const unsigned char*>(key.material.data()),
                              static_cast<int>(key.material.size()));
    const jwt_alg_t want = key.alg == jwt_alg::hs256 ? JWT_ALG_HS256 : JWT_ALG_RS256;
    const bool ok = rc == 0 && decoded != nullptr && jwt_get_alg(decoded) == want;
    if (decoded != nullptr) jwt_free(decoded);
    return ok;
}

}  // namespace detail

/// @brief A `token_verifier` of JSON Web Tokens (RFC 7519) in compact form,
/// signed with HS256 or RS256; the user is the `sub` claim.
///
/// A token passes when, in this order: it is three base64url parts whose
/// header and payload are JSON objects (else 401 "token malformed: ..."); its
/// key is found: a header `kid` names one of the keys (else "token key id
/// (kid) not known: ..."), and a token without `kid` goes to the only key if
/// there is one, else to the keys without an id (else "token names no key id
/// (kid) ..."); its header's `alg` is the algorithm of one of those keys
/// (else "token algorithm not accepted": `none` never is); its signature
/// verifies with one of them (else "token signature does not verify"); `exp` is given
/// (unless not required) and the clock is before `exp + leeway` (else "token
/// has no expiry (exp)" / "token expired"); the clock is at or after `nbf -
/// leeway` (else "token not yet valid"); `iss` and `aud` match when configured
/// ("token issuer does not match" / "token audience does not match"); and
/// `sub` is a non-empty string of visible ASCII, at most
/// `max_jwt_subject_bytes` (else "token has no subject (sub)"). Every refusal
/// is `errc::unauthorized` with HTTP 401 and never quotes the token.
///
/// Thread-safe: `verify` is const, and `replace_keys` (a reload, e.g. on
/// SIGHUP) swaps the key set at once for every copy of the verifier (copies
/// share it; options other than the keys are each copy's own). A `verify`
/// running meanwhile finishes with the keys it started with.
///
/// @code
/// tether::server::jwt_options o;
/// o.keys.push_back(tether::server::jwt_key::load(tether::server::jwt_alg::hs256, "secret").value());
/// o.issuer = "https://auth.example.com";
/// auto verifier = tether::server::jwt_verifier<>::make(std::move(o)).value();
/// tether::server::http_face face{service, tether::server::authenticate_by(verifier)};
/// @endcode
template <clock_policy Clock = system_clock>
class jwt_verifier {
public:
    /// @brief The largest leeway taken: a day.
    static constexpr std::chrono::seconds max_leeway{86400};

    /// @brief A verifier of `options` reading the time from `clock`; no keys, or
    /// a leeway below zero or over `max_leeway`, is `errc::invalid_argument`.
    [[nodiscard]] static result<jwt_verifier> make(jwt_options options, Clock clock = Clock{}) {
        if (auto bad = check_keys_(options.keys)) return unexpected{std::move(*bad)};
        if (options.leeway.count() < 0 || options.leeway > max_leeway)
            return unexpected{make_error(errc::invalid_argument, "the JWT leeway must be 0 to 86400 seconds")};
        return jwt_verifier{std::move(options), clock};
    }

    /// @brief Verifies with `keys` from now on, in every copy of this verifier;
    /// no keys or a key id given twice is `errc::invalid_argument` and keeps
    /// the keys it had.
    result<void> replace_keys(std::vector<jwt_key> keys) {
        if (auto bad = check_keys_(keys)) return unexpected{std::move(*bad)};
        auto fresh = std::make_shared<const std::vector<jwt_key>>(std::move(keys));
        std::lock_guard lock{ring_->mutex};
        ring_->keys = std::move(fresh);
        return {};
    }

    /// @brief The keys it verifies with now.
    [[nodiscard]] std::shared_ptr<const std::vector<jwt_key>> keys() const {
        std::lock_guard lock{ring_->mutex};
        return ring_->keys;
    }

    /// @brief The user `token` stands for (its `sub`), or why it is refused (see the class).
    [[nodiscard]] result<std::string> verify(std::string_view token) const {
        if (token.size() > options_.max_token_bytes)
            return refuse_("token malformed: over " + std::to_string(options_.max_token_bytes) + " bytes");
        const auto dot1 = token.find('.');
        const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
        if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
            return refuse_("token malformed: expected three parts separated by dots");
        auto header = detail::decode_jwt_part(token.substr(0, dot1));
        if (!header) return refuse_("token malformed: the header is not a base64url JSON object");
        auto claims = detail::decode_jwt_part(token.substr(dot1 + 1, dot2 - dot1 - 1));
        if (!claims) return refuse_("token malformed: the payload is not a base64url JSON object");
        const std::string_view signature = token.substr(dot2 + 1);
        if (!detail::base64url_decode(signature)) return refuse_("token malformed: the signature is not base64url");
        if (auto bad = check_header_(*header)) return refuse_(std::move(*bad));
        const auto all = keys();
        auto candidates = select_keys_(*header, *all);
        if (!candidates) return unexpected{std::move(candidates).error()};
        if (auto alg = accepted_alg_(*header, *candidates); !alg) {
            return refuse_("token algorithm not accepted: " + alg_name_(*header) + " (this server takes " +
                           accepted_names_(*candidates) + ")");
        } else if (!signed_(std::string{token}, *alg, *candidates)) {
            return refuse_("token signature does not verify");
        }
        if (auto bad = check_times_(*claims)) return refuse_(std::move(*bad));
        if (auto bad = check_audience_(*claims)) return refuse_(std::move(*bad));
        return subject_(*claims);
    }

    /// @brief The options it was made with (its keys as they were then: `keys()` are the ones it uses).
    [[nodiscard]] const jwt_options& options() const noexcept { return options_; }

private:
    // The key set every copy shares (swapped whole by replace_keys).
    struct keyring {
        mutable std::mutex mutex;
        std::shared_ptr<const std::vector<jwt_key>> keys;
    };

    jwt_verifier(jwt_options options, Clock clock)
        : options_(std::move(options)), clock_(clock), ring_(std::make_shared<keyring>()) {
        ring_->keys = std::make_shared<const std::vector<jwt_key>>(options_.keys);
    }

    static std::optional<error> check_keys_(const std::vector<jwt_key>& keys) {
        if (keys.empty()) return make_error(errc::invalid_argument, "a JWT verifier needs at least one key");
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (keys[i].id && !jwt_key::valid_id(*keys[i].id))
                return make_error(errc::invalid_argument, "a JWT key id must be 1 to 128 bytes of visible ASCII");
            for (std::size_t j = 0; j < i; ++j)
                if (keys[i].id && keys[j].id == keys[i].id)
                    return make_error(errc::invalid_argument, "the JWT key id '" + *keys[i].id + "' is given twice");
        }
        return std::nullopt;
    }

    // The keys a token with `header` may be signed with (see the class).
    static result<std::vector<const jwt_key*>> select_keys_(const nlohmann::json& header, const std::vector<jwt_key>& all) {
        std::vector<const jwt_key*> out;
        const auto kid = header.find("kid");
        if (kid != header.end()) {
            if (!kid->is_string() || !jwt_key::valid_id(kid->get_ref<const std::string&>()))
                return refuse_("token malformed: the header's kid is not 1 to 128 bytes of visible ASCII");
            const auto& id = kid->get_ref<const std::string&>();
            for (const auto& k : all)
                if (k.id == id) out.push_back(&k);
            if (out.empty()) {
                const std::string shown = id.size() <= 64 ? "'" + id + "'" : "'" + id.substr(0, 64) + "...'";
                return refuse_("token key id (kid) not known: " + shown);
            }
            return out;
        }
        if (all.size() == 1) return std::vector<const jwt_key*>{&all.front()};
        for (const auto& k : all)
            if (!k.id) out.push_back(&k);
        if (out.empty()) return refuse_("token names no key id (kid), and this server's keys all have one");
        return out;
    }

    static unexpected<error> refuse_(std::string why) { return unexpected{token_refused(std::move(why))}; }

    static std::optional<std::string> check_header_(const nlohmann::json& header) {
        const auto alg = header.find("alg");
        if (alg == header.end() || !alg->is_string()) return "token malformed: the header has no alg";
        if (const auto typ = header.find("typ"); typ != header.end()) {
            // libjwt refuses any typ but JWT; a signature check must not fail for that.
            std::string t = typ->is_string() ? typ->get<std::string>() : std::string{};
            for (char& c : t) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
            if (t != "JWT") return "token malformed: the header's typ is not JWT";
        }
        if (header.contains("crit")) return "token malformed: the header names critical extensions (crit)";
        return std::nullopt;
    }

    // The algorithm of one of `keys` the header names, if any.
    static std::optional<jwt_alg> accepted_alg_(const nlohmann::json& header, const std::vector<const jwt_key*>& keys) {
        const auto& name = header.at("alg").get_ref<const std::string&>();
        for (const auto* k : keys)
            if (name == to_string(k->alg)) return k->alg;
        return std::nullopt;
    }

    static std::string alg_name_(const nlohmann::json& header) {
        const auto& name = header.at("alg").get_ref<const std::string&>();
        const bool plain = !name.empty() && name.size() <= 16 && http::valid_token(name);
        return plain ? "'" + name + "'" : std::string{"(unreadable)"};
    }

    static std::string accepted_names_(const std::vector<const jwt_key*>& keys) {
        bool hs = false, rs = false;
        for (const auto* k : keys) (k->alg == jwt_alg::hs256 ? hs : rs) = true;
        return hs && rs ? "HS256, RS256" : hs ? "HS256" : "RS256";
    }

    static bool signed_(const std::string& token, jwt_alg alg, const std::vector<const jwt_key*>& keys) {
        for (const auto* k : keys)
            if (k->alg == alg && detail::signature_verifies(token, *k)) return true;
        return false;
    }

    std::optional<std::string> check_times_(const nlohmann::json& claims) const {
        const std::int64_t now = clock_.now().time_since_epoch().count();
        const std::int64_t leeway = std::chrono::duration_cast<std::chrono::milliseconds>(options_.leeway).count();
        const std::string lee = " (leeway " + std::to_string(options_.leeway.count()) + " s)";
        if (const auto exp = claims.find("exp"); exp != claims.end()) {
            auto at = detail::numeric_date_ms(*exp);
            if (!at) return "token malformed: exp is not a number of seconds";
            if (now >= *at + leeway)
                return "token expired: exp " + std::to_string(*at / 1000) + " is past, now " +
                       std::to_string(now / 1000) + lee;
        } else if (options_.require_exp) {
            return "token has no expiry (exp)";
        }
        if (const auto nbf = claims.find("nbf"); nbf != claims.end()) {
            auto at = detail::numeric_date_ms(*nbf);
            if (!at) return "token malformed: nbf is not a number of seconds";
            if (now < *at - leeway)
                return "token not yet valid: nbf " + std::to_string(*at / 1000) + " is ahead, now " +
                       std::to_string(now / 1000) + lee;
        }
        return std::nullopt;
    }

    std::optional<std::string> check_audience_(const nlohmann::json& claims) const {
        if (options_.issuer) {
            const auto iss = claims.find("iss");
            if (iss == claims.end() || !iss->is_string() || iss->get_ref<const std::string&>() != *options_.issuer)
                return "token issuer does not match";
        }
        if (options_.audience) {
            const auto aud = claims.find("aud");
            bool found = false;
            if (aud != claims.end() && aud->is_string()) found = aud->get_ref<const std::string&>() == *options_.audience;
            if (aud != claims.end() && aud->is_array())
                for (const auto& a : *aud)
                    if (a.is_string() && a.get_ref<const std::string&>() == *options_.audience) found = true;
            if (!found) return "token audience does not match";
        }
        return std::nullopt;
    }

    static result<std::string> subject_(const nlohmann::json& claims) {
        const auto sub = claims.find("sub");
        if (sub == claims.end() || !sub->is_string() || sub->get_ref<const std::string&>().empty())
            return refuse_("token has no subject (sub)");
        const auto& user = sub->get_ref<const std::string&>();
        if (user.size() > max_jwt_subject_bytes || !http::valid_token(user))
            return refuse_("token has no subject (sub): it is not visible ASCII of at most " +
                           std::to_string(max_jwt_subject_bytes) + " bytes");
        return user;
    }

    jwt_options options_;
    Clock clock_;
    std::shared_ptr<keyring> ring_;
};

static_assert(token_verifier<jwt_verifier<>>);

}  // namespace tether::server
