// Fuzz targets for the wire protocol's decoders: what a client reads from a
// server (push answer, changes page, record, info, error body, Retry-After)
// and what a server reads from a client (push request, cursor, path segments).
#include "fuzz.hpp"

#include <tether/protocol/json.hpp>
#include <tether/server/cursor.hpp>
#include <tether/transport/http/retry_after.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tether_fuzz {
namespace {

namespace protocol = tether::protocol;
using tether::errc;

// ---- shared checks --------------------------------------------------------

/// The depth of `text` as the bounded parser counts it.
std::size_t depth_of(std::string_view text) { return protocol::nesting_depth(text, 1u << 20); }

/// Bounds just under what `text` needs, one per way of being over a limit:
/// its size, then its depth (when it has any).
std::vector<protocol::parse_limits> tight_bounds(std::string_view text) {
    std::vector<protocol::parse_limits> out;
    if (!text.empty()) out.push_back({text.size() - 1, protocol::answer_parse_limits.max_depth});
    if (const auto d = depth_of(text); d > 0) out.push_back({text.size(), d - 1});
    return out;
}

/// An answer decoder's result: never a value from text over `bounds`, and any
/// error is `errc::protocol` (a client never blames itself for an answer).
template <class R>
void check_answer_error(const char* name, const R& r) {
    if (!r) TETHER_FUZZ_CHECK(name, r.error().code == errc::protocol);
}

/// The common shape of an answer target: decode (with the default bounds and
/// with bounds just too tight, which must refuse), then encode what decoded,
/// decode that and encode again: both encodings are the same text.
template <class Decode, class Encode>
void answer_roundtrip(const char* name, std::string_view input, Decode decode, Encode encode) {
    auto first = decode(input, protocol::answer_parse_limits);
    check_answer_error(name, first);
    for (const auto& b : tight_bounds(input)) {
        auto refused = decode(input, b);
        TETHER_FUZZ_CHECK(name, !refused);
        TETHER_FUZZ_CHECK(name, refused.error().code == errc::protocol);
    }
    if (!first) return;
    auto text = encode(*first);
    TETHER_FUZZ_CHECK(name, text.has_value());  // decoded text was UTF-8: it encodes
    auto second = decode(*text, protocol::answer_parse_limits);
    TETHER_FUZZ_CHECK(name, second.has_value());
    auto again = encode(*second);
    TETHER_FUZZ_CHECK(name, again.has_value());
    TETHER_FUZZ_CHECK(name, *again == *text);
}

// ---- client side: answers -------------------------------------------------

/// The items of the array `key` of the page object in `input` (0 if none).
std::size_t items_in(std::string_view input, const char* key) {
    auto doc = protocol::parse_json(input, protocol::answer_parse_limits);
    if (!doc || !doc->is_object()) return 0;
    auto it = doc->find(key);
    return it != doc->end() && it->is_array() ? it->size() : 0;
}

/// A changes page: never a crash; a page that decodes holds every item of the
/// input either in its records or tombstones or in `refused` (once each, at
/// an index of its array), and encodes and decodes again to the same text.
void page_target(std::string_view input) {
    auto decoded = protocol::decode_page(input);
    if (decoded) {
        const std::size_t records = items_in(input, "records"), tombstones = items_in(input, "tombstones");
        std::vector<bool> refused_r(records, false), refused_t(tombstones, false);
        std::size_t refused_records = 0;
        for (const auto& x : decoded->refused) {
            auto& seen = x.tombstone ? refused_t : refused_r;
            TETHER_FUZZ_CHECK("page", x.index < seen.size() && !seen[x.index]);
            seen[x.index] = true;
            refused_records += x.tombstone ? 0 : 1;
            TETHER_FUZZ_CHECK("page", !x.why.empty() && x.server_id.size() <= protocol::max_server_id_bytes);
        }
        TETHER_FUZZ_CHECK("page", decoded->records.size() + refused_records == records);
        TETHER_FUZZ_CHECK("page", decoded->tombstones.size() + decoded->refused.size() - refused_records == tombstones);
    }
    answer_roundtrip(
        "page", input, [](std::string_view t, const protocol::parse_limits& b) { return protocol::decode_page(t, b); },
        [](const tether::pull_page& p) {
            for (const auto& r : p.records) TETHER_FUZZ_CHECK("page", r.server_id.size() <= protocol::max_server_id_bytes);
            TETHER_FUZZ_CHECK("page", p.next_cursor.size() <= protocol::max_cursor_bytes);
            return protocol::encode_page(p);
        });
}

void record_target(std::string_view input) {
    answer_roundtrip(
        "record", input,
        [](std::string_view t, const protocol::parse_limits& b) { return protocol::decode_record(t, b); },
        [](const tether::server_record& r) {
            TETHER_FUZZ_CHECK("record", !r.server_id.empty());
            TETHER_FUZZ_CHECK("record", r.server_id.size() <= protocol::max_server_id_bytes);
            TETHER_FUZZ_CHECK("record", r.origin.size() <= protocol::max_origin_bytes);
            return protocol::encode_record(r);
        });
}

void info_target(std::string_view input) {
    std::optional<protocol::server_info> seen;
    answer_roundtrip(
        "info", input, [](std::string_view t, const protocol::parse_limits& b) { return protocol::decode_info(t, b); },
        [&](const protocol::server_info& i) {
            if (seen) TETHER_FUZZ_CHECK("info", *seen == i);
            seen = i;
            TETHER_FUZZ_CHECK("info", i.protocol_version > 0);
            return protocol::encode_info(i);
        });
}

void error_body_target(std::string_view input) {
    std::optional<tether::error> seen;
    answer_roundtrip(
        "error_body", input,
        [](std::string_view t, const protocol::parse_limits& b) { return protocol::decode_error_body(t, b); },
        [&](const tether::error& e) {
            if (seen) {
                TETHER_FUZZ_CHECK("error_body", seen->code == e.code);
                TETHER_FUZZ_CHECK("error_body", seen->message == e.message);
                TETHER_FUZZ_CHECK("error_body", seen->retry_after == e.retry_after);
            }
            seen = e;
            TETHER_FUZZ_CHECK("error_body", !e.retry_after || e.retry_after->count() >= 0);
            return protocol::encode_error_body(e);
        });
}

/// A server answers every refused request with an error body whose message
/// may quote what it was sent (a cursor, a field's name): any bytes. Encoding
/// it never fails, and the body decodes to the same code and a message within
/// the limit.
void error_encode_target(std::string_view input) {
    const auto code = static_cast<tether::errc>(input.empty() ? 0 : static_cast<std::uint8_t>(input.front()) % 14);
    const tether::error e{code, std::string{input}, std::nullopt, std::nullopt};
    auto body = protocol::encode_error_body(e);
    TETHER_FUZZ_CHECK("error_encode", body.has_value());
    auto back = protocol::decode_error_body(*body);
    TETHER_FUZZ_CHECK("error_encode", back.has_value());
    TETHER_FUZZ_CHECK("error_encode", back->code == code);
    TETHER_FUZZ_CHECK("error_encode", back->message.size() <= protocol::max_error_message_bytes);
    TETHER_FUZZ_CHECK("error_encode", protocol::valid_utf8(back->message));
    if (protocol::valid_utf8(input) && input.size() <= protocol::max_error_message_bytes)
        TETHER_FUZZ_CHECK("error_encode", back->message == input);
    auto again = protocol::encode_error_body(*back);
    TETHER_FUZZ_CHECK("error_encode", again.has_value() && *again == *body);
}

/// The ops a push answer answers: as many as it has outcomes (so that the
/// outcomes are read), of kinds that vary with the input.
std::vector<tether::push_op> sent_for(std::string_view input) {
    std::size_t n = 0;
    if (auto doc = protocol::parse_json(input, protocol::answer_parse_limits); doc && doc->is_object()) {
        if (auto it = doc->find("outcomes"); it != doc->end() && it->is_array()) n = it->size();
    }
    std::vector<tether::push_op> ops(n);
    for (std::size_t i = 0; i < n; ++i)
        ops[i].kind = static_cast<tether::op_kind>((i + input.size()) % 3);  // create, update, remove
    return ops;
}

void push_answer_target(std::string_view input) {
    const auto sent = sent_for(input);
    answer_roundtrip(
        "push_answer", input,
        [&](std::string_view t, const protocol::parse_limits& b) { return protocol::decode_push_answer(t, sent, b); },
        [&](const std::vector<tether::push_outcome>& out) {
            TETHER_FUZZ_CHECK("push_answer", out.size() == sent.size());
            return protocol::encode_push_answer(out);
        });
    // One op more than there are outcomes: refused, never read past the end.
    auto more = sent;
    more.emplace_back();
    auto r = protocol::decode_push_answer(input, more);
    TETHER_FUZZ_CHECK("push_answer", !r);
    TETHER_FUZZ_CHECK("push_answer", r.error().code == errc::protocol);
}

// ---- Retry-After ----------------------------------------------------------

/// y-m-d of a day count since 1970-01-01 (H. Hinnant's civil_from_days).
void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
}

/// `t` in the three HTTP-date forms: IMF-fixdate, RFC 850, asctime.
std::array<std::string, 3> http_dates(tether::timestamp t) {
    static constexpr std::array<const char*, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static constexpr std::array<const char*, 7> short_days{"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static constexpr std::array<const char*, 7> long_days{"Thursday", "Friday",  "Saturday", "Sunday",
                                                          "Monday",   "Tuesday", "Wednesday"};
    const std::int64_t secs = std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
    const std::int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    const std::int64_t rem = secs - days * 86400;
    std::int64_t y = 0;
    unsigned m = 0, d = 0;
    civil_from_days(days, y, m, d);
    const auto wd = static_cast<std::size_t>(((days % 7) + 7) % 7);
    char imf[64], rfc850[64], asc[64];
    const int hh = static_cast<int>(rem / 3600), mm = static_cast<int>(rem / 60 % 60), ss = static_cast<int>(rem % 60);
    std::snprintf(imf, sizeof imf, "%s, %02u %s %04lld %02d:%02d:%02d GMT", short_days[wd], d, months[m - 1],
                  static_cast<long long>(y), hh, mm, ss);
    std::snprintf(rfc850, sizeof rfc850, "%s, %02u-%s-%02lld %02d:%02d:%02d GMT", long_days[wd], d, months[m - 1],
                  static_cast<long long>(y % 100), hh, mm, ss);
    std::snprintf(asc, sizeof asc, "%s %s %2u %02d:%02d:%02d %04lld", short_days[wd], months[m - 1], d, hh, mm, ss,
                  static_cast<long long>(y));
    return {imf, rfc850, asc};
}

void retry_after_target(std::string_view input) {
    using namespace std::chrono;
    namespace http = tether::http;
    // The clock: 2026-12-02 plus up to ~70 years, chosen by the first byte.
    const std::uint8_t pick = input.empty() ? 0 : static_cast<std::uint8_t>(input.front());
    const tether::timestamp now{milliseconds{1'796'256'000'000LL} + hours{24 * 100} * pick};
    const auto text = input.empty() ? input : input.substr(1);

    const auto wait = http::parse_retry_after(text, now);
    if (wait) TETHER_FUZZ_CHECK("retry_after", *wait >= milliseconds{0} && *wait <= http::max_retry_after);

    const auto trimmed = http::detail::trim(text);
    const bool digits = !trimmed.empty() && trimmed.find_first_not_of("0123456789") == std::string_view::npos;
    if (digits) {
        // delay-seconds: the number of seconds, cut to the maximum.
        std::uint64_t secs = 0;
        for (const char c : trimmed) secs = secs > 100'000'000 ? secs : secs * 10 + static_cast<unsigned>(c - '0');
        const auto expected = secs >= 86'400 ? http::max_retry_after : milliseconds{secs * 1000};
        TETHER_FUZZ_CHECK("retry_after", wait.has_value() && *wait == expected);
        return;
    }
    const auto at = http::parse_http_date(text, now);
    TETHER_FUZZ_CHECK("retry_after", at.has_value() == wait.has_value());
    if (!at) return;
    TETHER_FUZZ_CHECK("retry_after", at->time_since_epoch().count() % 1000 == 0);
    const auto expected = *at <= now ? milliseconds{0} : std::min<milliseconds>(*at - now, http::max_retry_after);
    TETHER_FUZZ_CHECK("retry_after", *wait == expected);
    // The date, written again in each form, reads back as the same time
    // (RFC 850's two-digit year only inside its window around `now`).
    const auto forms = http_dates(*at);
    TETHER_FUZZ_CHECK("retry_after", http::parse_http_date(forms[0], now) == at);
    TETHER_FUZZ_CHECK("retry_after", http::parse_http_date(forms[2], now) == at);
    const auto years_ahead = duration_cast<hours>(*at - now).count() / (24 * 366);
    if (years_ahead >= 0 && years_ahead < 49) TETHER_FUZZ_CHECK("retry_after", http::parse_http_date(forms[1], now) == at);
}

// ---- server side: requests ------------------------------------------------

/// An op as canonical text, to compare two decodings.
std::string op_text(const tether::push_op& op) {
    auto t = protocol::dump_json(protocol::to_json(op, ""));
    TETHER_FUZZ_CHECK("push_request", t.has_value());
    return *t;
}

void check_request_error(const tether::error& e) {
    TETHER_FUZZ_CHECK("push_request", e.code == errc::protocol || e.code == errc::too_large);
    TETHER_FUZZ_CHECK("push_request", e.http_status == (e.code == errc::too_large ? 413 : 400));
}

void push_request_target(std::string_view input) {
    const protocol::limits lim{};
    auto req = protocol::decode_push_request(input, lim);
    if (!req) {
        check_request_error(req.error());
    }
    // Over each limit by one: refused whole with too_large (413).
    std::vector<protocol::limits> tight;
    if (!input.empty()) tight.push_back({input.size() - 1, lim.max_ops, lim.max_depth, lim.max_value_bytes});
    if (const auto d = depth_of(input); d > 0) tight.push_back({lim.max_body_bytes, lim.max_ops, d - 1, lim.max_value_bytes});
    if (req && !req->ops.empty())
        tight.push_back({lim.max_body_bytes, req->ops.size() - 1, lim.max_depth, lim.max_value_bytes});
    for (const auto& l : tight) {
        auto r = protocol::decode_push_request(input, l);
        TETHER_FUZZ_CHECK("push_request", !r);  // each is over one limit (or the text is malformed)
        check_request_error(r.error());
        if (req) TETHER_FUZZ_CHECK("push_request", r.error().code == errc::too_large);
    }
    if (!req) return;
    for (const auto& op : req->ops) {
        TETHER_FUZZ_CHECK("push_request", !op.id.is_nil());
        TETHER_FUZZ_CHECK("push_request", !op.server_id || (!op.server_id->empty() && op.server_id->size() <= protocol::max_server_id_bytes));
        TETHER_FUZZ_CHECK("push_request", op.kind == tether::op_kind::remove ? op.value.is_null() : op.value.is_object());
        auto size = protocol::check_value_size(op, protocol::limits{1, 1, 1, 8});
        if (!size) TETHER_FUZZ_CHECK("push_request", size.error().code == errc::too_large);
    }
    // What decoded encodes (the client's encoder) and decodes to the same ops.
    auto body = protocol::encode_push_request(req->ops);
    TETHER_FUZZ_CHECK("push_request", body.has_value());
    auto again = protocol::decode_push_request(*body, lim);
    TETHER_FUZZ_CHECK("push_request", again.has_value());
    TETHER_FUZZ_CHECK("push_request", again->ops.size() == req->ops.size());
    for (std::size_t i = 0; i < req->ops.size(); ++i) {
        TETHER_FUZZ_CHECK("push_request", again->ops[i].origin == req->ops[i].origin);
        TETHER_FUZZ_CHECK("push_request", op_text(again->ops[i]) == op_text(req->ops[i]));
    }
    if (!req->ops.empty()) TETHER_FUZZ_CHECK("push_request", again->origin == req->ops.front().origin);
}

void cursor_target(std::string_view input) {
    namespace server = tether::server;
    if (auto c = server::parse_cursor(input)) {
        const auto text = server::format_cursor(*c);
        TETHER_FUZZ_CHECK("cursor", server::parse_cursor(text) == c);
        TETHER_FUZZ_CHECK("cursor", server::format_cursor(*server::parse_cursor(text)) == text);
    }
    // The cursor as a query value: the client writes it percent-encoded into
    // the changes path; the server's query value, percent-decoded, is it again.
    const std::string path = protocol::changes_path("jobs", input, 7);
    const auto q = path.find('?');
    TETHER_FUZZ_CHECK("cursor", q != std::string::npos);
    if (input.empty()) {
        TETHER_FUZZ_CHECK("cursor", path.substr(q) == "?limit=7");
        return;
    }
    std::string_view query{path};
    query.remove_prefix(q + 1);
    TETHER_FUZZ_CHECK("cursor", query.substr(0, 7) == "cursor=");
    const auto amp = query.find('&');
    TETHER_FUZZ_CHECK("cursor", amp != std::string_view::npos && query.substr(amp) == "&limit=7");
    const auto value = protocol::percent_decode(query.substr(7, amp - 7));
    TETHER_FUZZ_CHECK("cursor", value.has_value() && *value == input);
}

bool unreserved_or_escape(std::string_view s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                           c == '.' || c == '_' || c == '~';
        if (plain) continue;
        if (c != '%' || i + 2 >= s.size()) return false;
        i += 2;
    }
    return true;
}

void path_target(std::string_view input) {
    // A collection segment: a valid name is its own encoding, never . or ..
    if (protocol::valid_collection(input)) {
        TETHER_FUZZ_CHECK("path", protocol::percent_encode(input) == input);
        TETHER_FUZZ_CHECK("path", input != "." && input != "..");
        TETHER_FUZZ_CHECK("path", input.size() <= 64);
    }
    // A server id segment, as a server reads it: percent-decoded; encoding that
    // again gives text of only unreserved bytes and escapes, decoding to it.
    if (auto decoded = protocol::percent_decode(input)) {
        TETHER_FUZZ_CHECK("path", decoded->size() <= input.size());
        const auto encoded = protocol::percent_encode(*decoded);
        TETHER_FUZZ_CHECK("path", unreserved_or_escape(encoded));
        TETHER_FUZZ_CHECK("path", protocol::percent_decode(encoded) == decoded);
    }
    // The record path the client builds: its last segment decodes to the id.
    const std::string p = protocol::record_path("jobs", input);
    const std::string_view head = "/v1/jobs/records/";
    TETHER_FUZZ_CHECK("path", std::string_view{p}.substr(0, head.size()) == head);
    const auto segment = std::string_view{p}.substr(head.size());
    TETHER_FUZZ_CHECK("path", segment.find('/') == std::string_view::npos);
    TETHER_FUZZ_CHECK("path", protocol::percent_decode(segment) == std::string{input});
}

constexpr std::array<target, 10> all{{
    {"push_answer", push_answer_target},
    {"page", page_target},
    {"record", record_target},
    {"info", info_target},
    {"error_body", error_body_target},
    {"error_encode", error_encode_target},
    {"retry_after", retry_after_target},
    {"push_request", push_request_target},
    {"cursor", cursor_target},
    {"path", path_target},
}};

}  // namespace

std::span<const target> protocol_targets() { return all; }

}  // namespace tether_fuzz
