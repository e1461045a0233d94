// The fuzz target of the JWT verifier (needs libjwt: built where
// tether::server_http has it): any input as a bearer token, against a
// verifier holding two HS256 keys with ids and one without, on a manual
// clock. The header and claims decoders and the key selection by kid run on
// whatever the input holds.
#include "fuzz.hpp"

#include <tether/clock/manual.hpp>
#include <tether/core/error.hpp>
#include <tether/server/http/jwt.hpp>
#include <tether/transport/http/token.hpp>

#include <array>
#include <chrono>
#include <string>
#include <string_view>

namespace tether_fuzz {
namespace {

namespace server = tether::server;

// The seeds in corpus/jwt/ are signed with these, valid at this time.
constexpr std::int64_t now_s = 1'800'000'000;
const std::string key_a = "fuzz-jwt-key-a-of-at-least-32-bytes!!";
const std::string key_b = "fuzz-jwt-key-b-of-at-least-32-bytes!!";
const std::string key_default = "fuzz-jwt-default-key-of-32-bytes-or-so";

const server::jwt_verifier<tether::manual_clock>& verifier() {
    static const auto v = [] {
        server::jwt_options o;
        auto a = server::jwt_key::hs256(key_a).value();
        a.id = "a";
        auto b = server::jwt_key::hs256(key_b).value();
        b.id = "b";
        o.keys = {a, b, server::jwt_key::hs256(key_default).value()};
        return server::jwt_verifier<tether::manual_clock>::make(
                   o, tether::manual_clock{tether::timestamp{std::chrono::seconds{now_s}}})
            .value();
    }();
    return v;
}

void jwt_target(std::string_view input) {
    // The parts' decoders: a part decodes to a JSON object or to nothing.
    for (std::size_t start = 0, n = 0; n < 3; ++n) {
        const auto dot = input.find('.', start);
        const std::string_view part = input.substr(start, dot == std::string_view::npos ? dot : dot - start);
        if (const auto bytes = server::detail::base64url_decode(part))
            TETHER_FUZZ_CHECK("jwt", bytes->size() == part.size() * 6 / 8);
        if (const auto j = server::detail::decode_jwt_part(part)) TETHER_FUZZ_CHECK("jwt", j->is_object());
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    const auto user = verifier().verify(input);
    if (user) {
        // Only a signed token passes: its subject is a user the face can take.
        TETHER_FUZZ_CHECK("jwt", !user->empty() && user->size() <= server::max_jwt_subject_bytes &&
                                     tether::http::valid_token(*user));
        TETHER_FUZZ_CHECK("jwt", input.size() <= verifier().options().max_token_bytes);
        return;
    }
    const auto& e = user.error();
    TETHER_FUZZ_CHECK("jwt", e.code == tether::errc::unauthorized && e.http_status == 401);
    TETHER_FUZZ_CHECK("jwt", e.message.rfind("token ", 0) == 0);
    // A refusal never quotes a token. A short input, or one with a space (no
    // token has one), may match a message's own words by chance.
    if (input.size() >= 24 && input.find(' ') == std::string_view::npos) TETHER_FUZZ_CHECK("jwt", e.message.find(input) == std::string::npos);
}

constexpr std::array<target, 1> all{{{"jwt", jwt_target}}};

}  // namespace

std::span<const target> jwt_targets() { return all; }

}  // namespace tether_fuzz
