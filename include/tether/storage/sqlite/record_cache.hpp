#pragma once

/// @file
/// @brief The record cache of a `sqlite_store<E>` table (not a public entry point).

#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>

namespace tether::detail {

/// The records a table's stores read inside transactions, kept current by
/// their writes, so that an update does not read and decode its row again.
/// Trusted only while the connection's epoch stays the same (no other
/// connection committed, no scope rolled back): `at(epoch)` drops the records
/// of an older one. Used only inside transactions, where the write lock keeps
/// other connections out. Shared by every store of the table on the
/// connection (`sqlite_connection::table_cache`), guarded by its mutex.
///
/// It also keeps the table's rows known not to decode (`unreadable`, see
/// `sqlite_store::unreadable()`), which outlive epochs: they are facts about
/// rows, corrected by the next read, put or erase of each.
///
/// Beside each record it keeps the value column's text, so that a write that
/// leaves the value as it was (a status, a version, an attempt) binds that
/// text again instead of serializing the entity.
template <class E>
class sqlite_record_cache {
public:
    /// Records held at most; the cache is emptied when a new one would exceed it.
    static constexpr std::size_t capacity = 4096;

    /// The rows known not to decode, each with the error reading it gave.
    std::map<local_id, error> unreadable;

    /// The cache as of the connection's epoch `epoch`.
    sqlite_record_cache& at(std::uint64_t epoch) {
        if (epoch_ != epoch) {
            records_.clear();
            value_texts_.clear();
            epoch_ = epoch;
        }
        return *this;
    }

    /// Holds `r`, whose value column's text is `value_text`.
    template <class R>
    void put(R&& r, std::string value_text) {
        if (records_.size() >= capacity && !records_.contains(r.id)) {
            records_.clear();
            value_texts_.clear();
        }
        const auto id = r.id;
        records_.insert_or_assign(id, std::forward<R>(r));
        value_texts_.insert_or_assign(id, std::move(value_text));
    }

    /// After a write of `r`, if the cache holds it: `value_text` is its value's
    /// new text (null: the value and its cached text are as they were).
    template <class R>
    void refresh(R&& r, std::string* value_text) {
        if (auto it = records_.find(r.id); it != records_.end()) {
            it->second = std::forward<R>(r);
            if (value_text != nullptr) value_texts_.insert_or_assign(it->first, std::move(*value_text));
        }
    }

    /// The record `id` (null if not held).
    [[nodiscard]] const record<E>* find(const local_id& id) const {
        auto it = records_.find(id);
        return it == records_.end() ? nullptr : &it->second;
    }

    /// The record `id` (null if not held) and its value's stored text (null if unknown).
    [[nodiscard]] std::pair<const record<E>*, const std::string*> find_with_text(const local_id& id) const {
        const auto* r = find(id);
        if (r == nullptr) return {nullptr, nullptr};
        auto text = value_texts_.find(id);
        return {r, text == value_texts_.end() ? nullptr : &text->second};
    }

    /// Forgets the record `id` (its row was erased).
    void erase(const local_id& id) {
        records_.erase(id);
        value_texts_.erase(id);
    }

private:
    std::uint64_t epoch_ = 0;
    std::unordered_map<local_id, record<E>> records_;
    std::unordered_map<local_id, std::string> value_texts_;  // of `records_`' values, as stored
};

}  // namespace tether::detail
