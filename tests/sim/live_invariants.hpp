#pragma once

// The live modes' invariants (numbered after those of invariants.hpp):
// 14. no live event is applied at or below the local version: a change the
//     live pass makes ("live", "live: ...") raises the record's version
//     (watch, every event);
// 15. at most one fetch per missing record per burst: one `apply_live()`
//     fetches a record at most once, and only a record an event of the feed
//     named (the probe transport, every live pass);
// 16. appended text (live_append.hpp): an `appended` event that extends
//     the device's text as it stands is applied in place, with no fetch
//     (every live pass); after quiet every device holds the server's text of
//     every record appended to, and a chain of appends that is the field's
//     latest acknowledged write ends as the server's text.
// Convergence after quiet and no lost acknowledged write are 1, 3 and 8 of
// invariants.hpp, checked as in the classic mode.
#include "invariants.hpp"

#include <tether/tether.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace tether_sim {

/// What the probe transport saw of one device's feed and fetches.
struct live_log {
    std::set<std::string> named;        ///< server ids the feed's events named since the device followed
    std::vector<std::string> fetched;   ///< server ids fetched since the current live pass began
    std::vector<tether::live_event> delivered;  ///< events the feed delivered since the last live pass
    std::size_t left_queued = 0;        ///< events the last live pass left queued (its check then skips the next)
    bool in_pass = false;               ///< inside `apply_live()`
};

/// A `loopback_transport` that tells the sim what the feed delivered and what
/// the engine fetched (it changes nothing of either).
class probe_transport {
public:
    using policy_kind = tether::transport_tag;  ///< a transport policy
    /// As the loopback transport: a push sends appended text as an append op.
    static constexpr bool carries_append_ops = true;

    explicit probe_transport(tether::loopback_transport inner)
        : inner_(std::move(inner)), log_(std::make_shared<live_log>()) {}

    /// What this transport (and its copies) saw.
    [[nodiscard]] live_log& log() const noexcept { return *log_; }

    tether::result<std::vector<tether::push_outcome>> push(std::string_view c, std::span<const tether::push_op> ops) {
        return inner_.push(c, ops);
    }
    tether::result<tether::pull_page> pull(std::string_view c, std::string_view cursor, std::size_t limit) {
        return inner_.pull(c, cursor, limit);
    }
    tether::result<tether::server_record> fetch(std::string_view c, std::string_view sid) {
        if (log_->in_pass) log_->fetched.emplace_back(sid);
        return inner_.fetch(c, sid);
    }
    tether::result<tether::live_subscription> subscribe(const tether::live_request& req, tether::live_handler h) {
        tether::live_handler probe{[log = log_, f = std::move(h.on_event)](tether::live_event e) {
                                       log->named.insert(e.record.server_id);
                                       log->delivered.push_back(e);
                                       if (f) f(std::move(e));
                                   },
                                   std::move(h.on_end)};
        return inner_.subscribe(req, std::move(probe));
    }
    [[nodiscard]] std::size_t max_batch() const { return inner_.max_batch(); }
    [[nodiscard]] bool has_change_feed() const { return inner_.has_change_feed(); }

private:
    tether::loopback_transport inner_;
    std::shared_ptr<live_log> log_;
};
static_assert(tether::live_transport<probe_transport>);

/// The live modes' engine options: as the workload draws them, and for a
/// quarter of the engines (drawn from the id seed) a live inbox of 1 to 8
/// events, so that its overflow's catch-up pull runs under every fault.
struct live_options : tether::engine_options {
    live_options(const tether::engine_options& o) : tether::engine_options(o) {  // the workload's options convert
        const auto s = o.id_seed.value_or(0);
        if (s % 4 == 0) live_inbox_limit = 1 + static_cast<std::size_t>((s >> 8) % 8);
    }
};

/// The live modes' engine: memory storage, the default `server_wins`, the probe transport.
using live_engine = tether::sync_engine<Job, tether::memory_storage, probe_transport, tether::manual_clock,
                                        tether::exponential_backoff, live_options>;
struct live_types : sim_types<Job, live_engine> {
    /// A device's transport (workload.hpp's make_engine asks for it).
    template <class W>
    static probe_transport transport(W& w) {
        return probe_transport{tether::loopback_transport{w.server, "alice", w.max_batch}};
    }
};

/// 14, from a device's second watcher: `version` holds the version each of
/// its records had before this change.
template <class M>
void check_live_change(world<M>& w, int c, std::map<local_id, std::uint64_t>& version,
                       const tether::change<typename M::entity>& ch) {
    const bool live = ch.cause == "live" || ch.cause.starts_with("live: ");
    auto held = version.find(ch.id);
    if (live && held != version.end() && ch.current && ch.current->version <= held->second) {
        w.fail(14, "c" + std::to_string(c) + " " + w.name(ch.id) + ": a live event applied at v" +
                       std::to_string(ch.current->version) + ", the local version was v" +
                       std::to_string(held->second) + " (" + ch.cause + ")");
    }
    if (ch.current) version[ch.id] = ch.current->version;
    else version.erase(ch.id);
}

/// 15, after one live pass of device `c`.
template <class M>
void check_live_fetches(world<M>& w, int c, const live_log& log) {
    std::set<std::string> seen;
    for (const auto& sid : log.fetched) {
        if (!seen.insert(sid).second) {
            w.fail(15, "c" + std::to_string(c) + " fetched " + sid + " twice in one live pass");
        }
        if (!log.named.contains(sid)) {
            w.fail(15, "c" + std::to_string(c) + " fetched " + sid + ", which no event of its feed named");
        }
    }
    w.st.live_fetches += log.fetched.size();
}

}  // namespace tether_sim
