#pragma once

/// @file
/// @brief The fault vocabulary of `tether::loopback_server`: the rates of its
/// random faults, the malformed page items it can send, and its fault counters.
#include <chrono>
#include <cstdint>
#include <string_view>

namespace tether {

/// @brief Per-request probabilities of the random faults of a `loopback_server`.
///
/// Each request (push, pull or fetch) draws one number `u` in [0, 1) and meets
/// the first fault whose cumulative rate exceeds it, in this order:
/// `drop_request`, `transient`, `rate_limited`, `unauthorized`, `drop_response`.
/// Keep their sum at most 1 (beyond 1 the later kinds lose probability).
/// `reject_op` is drawn separately for each op of a push that got through;
/// `omit_local_id` for each item of an answered pull page, and `bad_page_item`
/// once per answered pull page. A rate of 0 draws nothing, so turning a kind on
/// changes the draws of the others only from then on.
struct fault_rates {
    double drop_request = 0;    ///< the request is lost before it applies (`errc::transient`)
    double drop_response = 0;   ///< the request applies, then its response is lost (`errc::transient`)
    double transient = 0;       ///< the request fails with `errc::transient` (HTTP 503), nothing applied
    double rate_limited = 0;    ///< the request fails with `errc::rate_limited` (HTTP 429), nothing applied
    double unauthorized = 0;    ///< this one request fails with `errc::unauthorized` (HTTP 401); the token stays valid
    double reject_op = 0;       ///< per op of a push: the op is `rejected` with `errc::rejected` (HTTP 400)
    double omit_local_id = 0;   ///< per record or tombstone of a pull page: sent without its local id
    double bad_page_item = 0;   ///< per answered pull page: one bad item added (kind drawn uniformly, see `bad_item`)
    /// Per answered pull page: one record or tombstone of it taken out into
    /// `pull_page::refused`, with its server id, as a decoder refuses an item it
    /// cannot read (the engine must fetch it later; a tombstone's fetch answers
    /// `not_found`, which is how its deletion arrives).
    double refused_page_item = 0;
    std::chrono::milliseconds retry_after{1000};  ///< the Retry-After of a random `rate_limited` fault
};

/// @brief A malformed item a `loopback_server` can slip into a pull page
/// (`loopback_server::bad_next_pages`, `fault_rates::bad_page_item`).
///
/// Each is built from a *source*: a record of the page (for the tombstone kind,
/// any live record of the collection that has a local id). A page without a
/// source gets no bad item (nothing is counted; a scripted one waits for the
/// next page). A correct client skips every one of them and applies the rest
/// of the page.
enum class bad_item : std::uint8_t {
    nil_local_id,               ///< a copy of the source whose `id` is the nil local id, just before the source
    empty_server_id,            ///< a copy of the source's value and version with an empty server id and no local id
    empty_server_id_tombstone,  ///< a tombstone with an empty server id and the source's local id
    duplicate_server_id,        ///< after the source: its server id and version again, with a local id nobody
                                ///< uses and a decoy value (every string member gets `"~dup"` appended)
};

/// @brief The canonical name of a bad item kind (`"nil_local_id"`, ...).
[[nodiscard]] constexpr std::string_view to_string(bad_item k) noexcept {
    switch (k) {
        case bad_item::nil_local_id: return "nil_local_id";
        case bad_item::empty_server_id: return "empty_server_id";
        case bad_item::empty_server_id_tombstone: return "empty_server_id_tombstone";
        case bad_item::duplicate_server_id: return "duplicate_server_id";
    }
    return "unknown";
}

/// @brief How many faults a `loopback_server` has injected, by kind (scripted and random alike).
///
/// Besides faults proper it counts the server's hostile-but-legal behaviours
/// (replayed creates, filled creates, omitted local ids, restores), so a test
/// can tell they happened.
struct fault_counts {
    std::uint64_t failed_injected = 0;    ///< requests failed by `fail_next`
    std::uint64_t dropped_requests = 0;   ///< requests lost before applying (`drop_next_requests`, random)
    std::uint64_t dropped_responses = 0;  ///< responses lost after applying (`drop_next_responses`, random)
    std::uint64_t transient = 0;          ///< random `transient` failures
    std::uint64_t rate_limited = 0;       ///< random `rate_limited` failures
    std::uint64_t unauthorized = 0;       ///< random `unauthorized` failures
    std::uint64_t rejected_ops = 0;       ///< ops rejected by `poison` or random `reject_op`
    std::uint64_t replayed_creates = 0;   ///< creates answered with a record already held (`push_outcome::replayed`)
    std::uint64_t filled_creates = 0;     ///< creates whose stored value the create filler changed
    std::uint64_t omitted_local_ids = 0;  ///< pull page items sent without their local id
    std::uint64_t bad_page_items = 0;     ///< bad items added to pull pages (scripted and random)
    std::uint64_t refused_page_items = 0; ///< page items taken out into `pull_page::refused` (`refused_page_item`)
    std::uint64_t too_large = 0;          ///< pushes refused whole: an op's value over the value limit
    std::uint64_t restores = 0;           ///< `restore` calls
    std::uint64_t expired_cursors = 0;    ///< pulls answered `errc::cursor_expired`

    /// @brief Field-wise equality.
    friend bool operator==(const fault_counts&, const fault_counts&) = default;
};

namespace detail {

/// @brief One splitmix64 step: advances `state` and returns the next 64 random bits.
inline std::uint64_t loopback_splitmix64(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/// @brief The next number in [0, 1) from a splitmix64 `state` (53 random bits).
inline double loopback_unit(std::uint64_t& state) noexcept {
    return static_cast<double>(loopback_splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace detail

}  // namespace tether
