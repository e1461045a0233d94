#pragma once

/// @file
/// @brief What the storage conformance suite's rules share: records made to
/// order, comparison and the run that collects broken rules.
#include <tether/clock/clock.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/core/status.hpp>
#include <tether/storage/storage.hpp>
#include <tether/testing/transport_conformance.hpp>

#include <boost/hana/define_struct.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>
#include <tether/testing/conformance_items.hpp>

namespace tether::testing {

namespace detail {

/// A timestamp `ms` milliseconds after the epoch.
inline timestamp at_ms(std::int64_t ms) { return timestamp{std::chrono::milliseconds{ms}}; }

/// The time field of the ids `id_n` makes: 1'700'000'000'000 + n.
inline constexpr std::int64_t id_epoch_ms = 1'700'000'000'000;

/// Ids that sort by `n` (UUID v7 with `n` in the time field) and differ in their random bits.
inline local_id id_n(std::uint64_t n) {
    return local_id::from_parts(at_ms(id_epoch_ms + static_cast<std::int64_t>(n)), static_cast<std::uint16_t>(n * 7),
                                n * 0x9E37'79B9'7F4A'7C15ull);
}

/// `#n` for an id made by `id_n(n)`, else its canonical form.
inline std::string label(const local_id& id) {
    const auto n = id.time().time_since_epoch().count() - id_epoch_ms;
    if (n >= 0 && n < (std::int64_t{1} << 32) && id_n(static_cast<std::uint64_t>(n)) == id) {
        return "#" + std::to_string(n);
    }
    return id.is_nil() ? std::string{"the nil id"} : id.to_string();
}

inline std::string labels(const std::vector<local_id>& ids) {
    std::string out = "[";
    for (const auto& id : ids) {
        if (out.size() > 1) out += ", ";
        out += label(id);
    }
    return out + "]";
}

/// A minimal record: `pending`, medium priority, created and updated at `updated`.
template <class E = conformance_item>
record<E> make_record(std::uint64_t n, sync_status s = sync_status::pending, std::int64_t updated = 1000,
                      tether::priority p = tether::priority::medium) {
    record<E> r;
    r.id = id_n(n);
    if constexpr (std::is_same_v<E, conformance_item>) {
        r.value = conformance_item{"item " + std::to_string(n), static_cast<std::int64_t>(n), {}};
    } else {
        r.value = E{};
    }
    r.status = s;
    r.priority = p;
    r.created_at = at_ms(updated);
    r.updated_at = at_ms(updated);
    return r;
}

/// A record with every field set to something unusual.
inline record<conformance_item> full_record(std::uint64_t n) {
    record<conformance_item> r;
    r.id = id_n(n);
    r.server_id = "srv-\"" + std::to_string(n) + "'; --";
    r.value = conformance_item{"Title \"quoted\" \xC3\xBCn\xC3\xAF\x63\xC3\xB8\x64\xC3\xA9 \n\t\\", -42, {"a", "", "c d"}};
    r.status = sync_status::error;
    r.deleted = true;
    r.version = 0x8000'0000'0000'0005ull;  // above INT64_MAX
    r.local_rev = 0xFFFF'FFFF'FFFF'FFFFull;
    r.dirty = {"title", "count"};
    r.attempts = 3;
    r.last_attempt_at = at_ms(1'700'000'000'123);
    r.next_attempt_at = at_ms(1'700'000'060'123);
    r.last_error = error{errc::rate_limited, "slow down", 429, std::chrono::milliseconds{30'000}};
    r.priority = tether::priority::critical;
    r.created_at = at_ms(-5);  // before the epoch
    r.updated_at = at_ms(1'700'000'000'000);
    return r;
}

/// Puts every record in one transaction.
template <class S, class E>
result<void> put_all(S& store, const std::vector<record<E>>& recs) {
    return store.transact([&](auto& tx) -> result<void> {
        for (const auto& r : recs) {
            if (auto x = tx.put(r); !x) return x;
        }
        return {};
    });
}

template <class E>
std::vector<local_id> ids_of(const std::vector<record<E>>& recs) {
    std::vector<local_id> out;
    out.reserve(recs.size());
    for (const auto& r : recs) out.push_back(r.id);
    return out;
}

/// The first member in which `got` differs from `want` (empty if none).
template <class E>
std::string record_difference(const record<E>& want, const record<E>& got) {
    if (got.id != want.id) return "id";
    if (got.server_id != want.server_id) return "server_id";
    if (!(got.value == want.value)) return "value";
    if (got.status != want.status) return "status";
    if (got.deleted != want.deleted) return "deleted";
    if (got.version != want.version) return "version";
    if (got.local_rev != want.local_rev) return "local_rev";
    if (got.dirty != want.dirty) return "dirty";
    if (got.attempts != want.attempts) return "attempts";
    if (got.last_attempt_at != want.last_attempt_at) return "last_attempt_at";
    if (got.next_attempt_at != want.next_attempt_at) return "next_attempt_at";
    if (got.last_error != want.last_error) return "last_error";
    if (got.priority != want.priority) return "priority";
    if (got.created_at != want.created_at) return "created_at";
    if (got.updated_at != want.updated_at) return "updated_at";
    return {};
}

/// The failures of one `check_storage` run, and the rule being checked.
class storage_run : public rule_run {
public:
    /// True if `got` is `want`, field for field; else a failure naming the first difference.
    template <class E>
    bool same(const record<E>& want, const record<E>& got, std::string_view doing) {
        const auto d = record_difference(want, got);
        if (d.empty()) return true;
        fail(std::string{doing} + " returned " + label(got.id) + " with another " + d + " than was put");
        return false;
    }

    /// True if `got` lists `want` in that order; else a failure showing both.
    bool same_ids(const std::vector<local_id>& want, const std::vector<local_id>& got, std::string_view doing) {
        if (want == got) return true;
        fail(std::string{doing} + " returned " + labels(got) + ", expected " + labels(want));
        return false;
    }
};

/// Runs `body(policy, store)` on a store from a fresh policy as rule `name`;
/// an exception out of it (or out of the factory) is a failure of the rule.
template <class S, class MakePolicy, class Body>
void run_rule(storage_run& run, std::string name, MakePolicy& make_policy, Body&& body) {
    run.rule = std::move(name);
    try {
        auto policy = make_policy();
        S store{policy};
        std::forward<Body>(body)(policy, store);
    } catch (const std::exception& e) {
        run.fail(std::string{"threw: "} + e.what());
    } catch (...) {
        run.fail("threw an exception not derived from std::exception");
    }
}

/// The records `due()` and `counts()` are checked on, at `now` = 10'000.
inline std::vector<record<conformance_item>> due_population() {
    using st = sync_status;
    using tether::priority;
    std::vector<record<conformance_item>> v;
    v.push_back(make_record(1, st::pending, 100));                         // due
    v.push_back(make_record(2, st::synced, 2));                            // never due
    v.push_back(make_record(3, st::failed, 1));                            // never due
    v.push_back(make_record(4, st::error, 100));                           // due later
    v.back().next_attempt_at = at_ms(20'000);
    v.push_back(make_record(5, st::error, 300));                           // due exactly now
    v.back().next_attempt_at = at_ms(10'000);
    v.push_back(make_record(6, st::error, 200, priority::high));           // due since 5'000
    v.back().next_attempt_at = at_ms(5'000);
    v.push_back(make_record(7, st::pending_deletion, 50, priority::low));  // due
    v.push_back(make_record(8, st::pending, 900, priority::critical));     // due, first
    v.push_back(make_record(9, st::pending, 100));                         // due, after #1 (same time)
    v.push_back(make_record(10, st::error, 400));                          // due: no next attempt
    v.push_back(make_record(11, st::pending, 60));                         // held back until 15'000
    v.back().next_attempt_at = at_ms(15'000);
    return v;
}

/// What `due(t, unlimited)` must return for `v`: the contract, written plainly.
inline std::vector<local_id> reference_due(std::vector<record<conformance_item>> v, std::int64_t t) {
    std::erase_if(v, [&](const auto& r) { return !is_due(r, at_ms(t)); });
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
        if (a.priority != b.priority) return a.priority > b.priority;
        if (a.updated_at != b.updated_at) return a.updated_at < b.updated_at;
        return a.id < b.id;
    });
    return ids_of(v);
}

}  // namespace detail

}  // namespace tether::testing
