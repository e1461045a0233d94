#pragma once

/// @file
/// @brief `tether::server::change_journal`: the changes one write transaction
/// of a `sync_service` commits, told to its observer as `live_event`s.
#include <tether/server/cursor.hpp>
#include <tether/server/store.hpp>
#include <tether/transport/live.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::server {

/// @brief The changes one write transaction makes, in order, for the
/// service's observer (see `sync_service::set_observer`).
struct change_journal {
    /// @brief One change: the record as stored, the version it replaced (0:
    /// none) and, for an applied append, what it appended.
    struct entry {
        stored_record rec;                  ///< the record after the change
        std::uint64_t replaced = 0;         ///< the version before it (0 for a record new to the store)
        std::optional<live_append> append;  ///< set for an append: the event is `live_kind::appended`
    };
    std::vector<entry> entries;     ///< the changes, in the order they took their change numbers
    std::uint64_t epoch = 0;        ///< the collection's epoch, for the cursors

    /// @brief Notes a change the transaction stored (`append`: the chunk an append op added).
    void note(const stored_record& r, std::uint64_t replaced, std::optional<live_append> append = std::nullopt) {
        entries.push_back({r, replaced, std::move(append)});
    }

    /// @brief Tells `observer(user, event)` of each change of scope `s`, in
    /// order (the entries are moved out). A change numbered `n` steps the
    /// collection's cursor from `n - 1` to `n` (change numbers of a collection
    /// are consecutive); the first change of epoch 0 steps from the empty cursor.
    /// An append's event is `live_kind::appended` with its `live_append`, and
    /// carries the whole record after it too (a face may send less).
    template <class Observer>
    void publish(scope s, const Observer& observer) {
        for (auto& e : entries) {
            live_event ev;
            ev.kind = e.rec.deleted     ? live_kind::deleted
                      : e.replaced == 0 ? live_kind::created
                      : e.append        ? live_kind::appended
                                        : live_kind::updated;
            ev.append = std::move(e.append);
            ev.collection = std::string{s.collection};
            ev.version = e.rec.record.version;
            ev.replaces = e.replaced;
            ev.cursor = format_cursor({ev.version, epoch});
            if (ev.version > 1 || epoch != 0) ev.previous_cursor = format_cursor({ev.version - 1, epoch});
            ev.record = std::move(e.rec.record);
            observer(s.user, ev);
        }
        entries.clear();
    }
};

}  // namespace tether::server
