#pragma once

/// @file
/// @brief The live feed: the events a server pushes when records change, and
/// `tether::live_transport`, the optional part of a transport that delivers them.
///
/// A transport without a live feed keeps working by polling (`pull`): nothing
/// of `transport_policy` changes. One with it lets the engine follow a
/// collection (`sync_engine::follow`) and apply the changes other devices make
/// as they happen.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/transport/transport.hpp>

#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tether {

/// @brief What happened to a record, as a live event tells it.
enum class live_kind : std::uint8_t {
    created,   ///< a new record (it replaces no version): `live_event::record` is all of it
    updated,   ///< a changed record (or a deleted one a server-side edit brought back): the whole record after it
    deleted,   ///< a deleted record: `live_event::record` holds its server id, local id and the deletion's version
    appended,  ///< a chunk appended to a string member (an `op_kind::append`): `live_event::append` says what
};

/// @brief The canonical name of a live event kind (`"created"`, `"updated"`, ...).
[[nodiscard]] constexpr std::string_view to_string(live_kind k) noexcept {
    switch (k) {
        case live_kind::created: return "created";
        case live_kind::updated: return "updated";
        case live_kind::deleted: return "deleted";
        case live_kind::appended: return "appended";
    }
    return "unknown";
}

/// @brief What a `live_kind::appended` event appended: a chunk of a string member.
///
/// The lengths are the member's length in UTF-8 bytes before and after the
/// chunk (`length_after == length_before + chunk.size()`), so a receiver whose
/// local text is not `length_before` long knows it missed a chunk and fetches
/// the record instead. `server::sync_service` sends it for every applied
/// append op (its observer; the loopback feed relays it).
struct live_append {
    std::string member;              ///< the string member's name
    std::string chunk;               ///< the appended text (UTF-8)
    std::uint64_t length_before = 0; ///< the member's length in bytes before the chunk
    std::uint64_t length_after = 0;  ///< ...and after it
};

/// @brief One committed change of one record, as the server pushes it.
///
/// Versions are the collection's change numbers, not consecutive per record,
/// so the event names the version it replaces: a receiver holding
/// `replaces` applies it; one holding less has missed a change (a gap) and
/// fetches the record; one holding `version` or more has it already (a duplicate).
///
/// **Contiguous.** The feed is ordered by the collection's change numbers.
/// `cursor` is the pull cursor just after this change and `previous_cursor`
/// the one just before it (the cursor a pull hands out after the collection's
/// previous change; empty for the first change of a collection). An event is
/// *contiguous* with a cursor when its `previous_cursor` equals it: then every
/// change up to `cursor` has been seen, and the cursor may move there. Both are
/// opaque text, compared as text.
struct live_event {
    live_kind kind = live_kind::updated;  ///< what happened
    std::string collection;               ///< the collection
    /// The server's record after the change (created, updated). For deleted:
    /// its server id, local id (if known) and the deletion's version, the
    /// value being the last one or empty.
    server_record record;
    std::uint64_t version = 0;            ///< the record's new version (== `record.version`)
    std::uint64_t replaces = 0;           ///< the version this change replaces; 0 for a create
    std::string cursor;                   ///< the pull cursor just after this change
    std::string previous_cursor;          ///< the pull cursor just before it (see the struct)
    /// For `live_kind::appended` only: the chunk. `record` then holds the
    /// record after it (its ids, version and origin; a feed may leave its
    /// value out: a receiver extends its own text, see `live_append`).
    std::optional<live_append> append;

    /// @brief The deletion as a pull would carry it (meaningful for `deleted`).
    [[nodiscard]] tombstone as_tombstone() const { return tombstone{record.server_id, record.id, version}; }
};

/// @brief What a subscriber is called with: each event, and the end of the subscription.
///
/// Called on the transport's delivery thread; a handler should be short (the
/// engine's queues the event and returns). After `on_end` nothing more comes:
/// subscribe again (from the pull cursor) to follow the feed again.
struct live_handler {
    std::function<void(live_event)> on_event;  ///< one event, in the order the feed sends them
    std::function<void(error)> on_end;         ///< the feed ended this subscription, and why
};

/// @brief What a subscription asks for: a collection's changes, from a cursor, for a device.
struct live_request {
    std::string_view collection;  ///< the collection to follow
    std::string_view cursor{};    ///< the subscriber's pull cursor (where it has seen changes up to)
    /// The subscribing device's id (its push `origin`): the feed never sends a
    /// device the changes it made itself.
    std::string_view device{};
};

/// @brief A subscription's handle: delivery stops when it is reset or destroyed.
///
/// Move-only. After `reset()` (or the destructor) returns, the handler is not
/// called again and no call of it is still running on another thread (a call
/// from inside the handler itself is allowed and takes effect when it returns).
class live_subscription {
public:
    /// @brief An empty handle (no subscription).
    live_subscription() = default;
    /// @brief A handle whose `cancel()` stops delivery.
    explicit live_subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
    live_subscription(const live_subscription&) = delete;             ///< @brief Not copyable.
    live_subscription& operator=(const live_subscription&) = delete;  ///< @brief Not copyable.
    /// @brief Takes over `other`'s subscription.
    live_subscription(live_subscription&& other) noexcept : cancel_(std::exchange(other.cancel_, {})) {}
    /// @brief Stops this one's delivery, then takes over `other`'s.
    live_subscription& operator=(live_subscription&& other) noexcept {
        if (this != &other) {
            reset();
            cancel_ = std::exchange(other.cancel_, {});
        }
        return *this;
    }
    /// @brief Stops delivery.
    ~live_subscription() { reset(); }

    /// @brief Stops delivery now (nothing if empty).
    void reset() noexcept {
        if (auto c = std::exchange(cancel_, {})) c();
    }
    /// @brief True while it holds a subscription (even one the feed has ended).
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(cancel_); }

private:
    std::function<void()> cancel_;
};

/// @brief A transport with a live feed.
///
/// Requirements on a type `T`, beyond `transport_policy<T>`:
/// `t.subscribe(request, handler)` starts delivering the changes of
/// `request.collection` committed by the user's other devices (or server-side
/// edits) to `handler`, and returns the subscription's handle; an error result
/// (offline, unauthorized, ...) means no subscription was made. A feed may
/// duplicate, reorder, delay or lose events, and may end a subscription
/// (`live_handler::on_end`): the receiver repairs what it sees (see
/// `live_event`), and the pull remains the authority. Must not throw; may be
/// called from any thread.
///
/// @code
/// static_assert(tether::live_transport<tether::loopback_transport>);
/// static_assert(tether::live_transport<tether::http_transport>);  // Server-Sent Events
/// @endcode
template <class T>
concept live_transport = transport_policy<T> && requires(T& t, const live_request& req, live_handler h) {
    { t.subscribe(req, std::move(h)) } -> std::same_as<result<live_subscription>>;
};

}  // namespace tether
