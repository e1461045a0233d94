// Fuzz targets for the live feed's decoders (what a client reads from a
// server's event stream): the Server-Sent Events frame reader and the live
// event's JSON.
#include "fuzz.hpp"

#include <tether/protocol/live.hpp>
#include <tether/protocol/sse.hpp>

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace tether_fuzz {
namespace {

namespace protocol = tether::protocol;
using tether::errc;

// A live event: any error is errc::protocol; bounds one byte too tight
// refuse; what decodes re-encodes to text that decodes to the same encoding.
void live_event_target(std::string_view input) {
    constexpr const char* name = "live_event";
    auto first = protocol::decode_live_event(input, protocol::answer_parse_limits);
    if (!first) TETHER_FUZZ_CHECK(name, first.error().code == errc::protocol);
    if (!input.empty()) {
        auto tight = protocol::decode_live_event(input, {input.size() - 1, protocol::answer_parse_limits.max_depth});
        TETHER_FUZZ_CHECK(name, !tight && tight.error().code == errc::protocol);
    }
    if (!first) return;
    auto text = protocol::encode_live_event(*first);
    TETHER_FUZZ_CHECK(name, text.has_value());
    TETHER_FUZZ_CHECK(name, text->find('\n') == std::string::npos);  // one line: it fits a data field
    auto second = protocol::decode_live_event(*text, protocol::answer_parse_limits);
    TETHER_FUZZ_CHECK(name, second.has_value());
    TETHER_FUZZ_CHECK(name, protocol::encode_live_event(*second).value() == *text);
}

struct sse_run {
    std::vector<protocol::sse_frame> frames;
    bool ok = true;
};

sse_run read_stream(std::string_view input, std::size_t split, protocol::sse_limits limits) {
    protocol::sse_decoder d{limits};
    sse_run r;
    auto keep = [&](protocol::sse_frame&& f) { r.frames.push_back(std::move(f)); };
    r.ok = d.feed(input.substr(0, split), keep).has_value() && d.feed(input.substr(split), keep).has_value();
    return r;
}

bool same(const protocol::sse_frame& a, const protocol::sse_frame& b) {
    return a.id == b.id && a.event == b.event && a.data == b.data && a.has_id == b.has_id;
}

// The frame reader: the same frames and verdict however the bytes are
// chunked; no frame over its bound; a frame written again reads back the
// same; a frame's data given to the live event decoder never crashes it.
void sse_target(std::string_view input) {
    constexpr const char* name = "sse";
    const protocol::sse_limits limits{256, 512};
    const auto whole = read_stream(input, input.size(), limits);
    const auto split = read_stream(input, input.size() / 2, limits);
    TETHER_FUZZ_CHECK(name, whole.ok == split.ok);
    TETHER_FUZZ_CHECK(name, whole.frames.size() == split.frames.size());
    for (std::size_t i = 0; i < whole.frames.size(); ++i) {
        const auto& f = whole.frames[i];
        TETHER_FUZZ_CHECK(name, same(f, split.frames[i]));
        TETHER_FUZZ_CHECK(name, f.id.size() + f.event.size() + f.data.size() <= limits.max_event_bytes);
        (void)protocol::decode_live_event(f.data, protocol::answer_parse_limits);
        const bool one_line = f.data.find('\n') == std::string::npos && !f.event.empty();
        if (!one_line || (f.has_id && f.id.empty())) continue;
        auto again = read_stream(protocol::sse_event_text(f.id, f.event, f.data), 0, {1u << 20, 1u << 20});
        TETHER_FUZZ_CHECK(name, again.ok && again.frames.size() == 1);
        TETHER_FUZZ_CHECK(name, again.frames[0].data == f.data && again.frames[0].event == f.event);
        TETHER_FUZZ_CHECK(name, again.frames[0].id == f.id);
    }
}

}  // namespace

std::span<const target> live_targets() {
    static const std::array<target, 2> all{{{"live_event", live_event_target}, {"sse", sse_target}}};
    return all;
}

}  // namespace tether_fuzz
