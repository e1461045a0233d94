#pragma once

// A fleet of real tether-server --postgres processes over one database, and
// the transport that sends each request of a device to one of them at random.
//
// - `fleet`: N processes on fixed ports (the first start picks free ones, a
//   restart takes the same port again), one tokens file with a token per user,
//   `kill(i)` (SIGKILL, reaped) and `restart(i)` (a bounded wait for the
//   readiness line, as server_process does).
// - `fleet_routes`: what the devices' transports share: which process is up,
//   how many requests started and are in flight at each, the fault counts;
//   a waiter (the chaos thread) blocks until a number of requests started.
// - `fleet_transport`: a transport policy over one http_transport per process;
//   each request goes to a process picked by the device's seeded generator.
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

#include <tether/transport/http.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef TETHER_SERVER_BINARY
#error "TETHER_SERVER_BINARY must name the tether-server executable"
#endif

namespace tether_test {

/// The token of fleet user `u` (its user name is `"user" + u`).
inline std::string fleet_token(std::size_t u) { return "token-" + std::to_string(u); }

/// `size` tether-server --postgres processes over the schema `conninfo` names.
class fleet {
public:
    /// Starts them one after another; the tokens file knows users 0..users-1.
    fleet(const temp_dir& dir, std::string conninfo, std::size_t size, std::size_t users)
        : conninfo_(std::move(conninfo)), tokens_(dir.file("fleet-tokens.txt")), procs_(size), ports_(size, 0) {
        {
            std::ofstream out{tokens_};
            for (std::size_t u = 0; u < users; ++u) out << fleet_token(u) << " user" << u << "\n";
        }
        for (std::size_t i = 0; i < size; ++i) {
            procs_[i] = start_(0);
            ports_[i] = procs_[i]->port();
        }
    }

    /// How many processes the fleet has.
    [[nodiscard]] std::size_t size() const noexcept { return procs_.size(); }
    /// The port process `i` listens on (the same after every restart).
    [[nodiscard]] int port(std::size_t i) const { return ports_[i]; }
    /// False between `kill(i)` and `restart(i)`.
    [[nodiscard]] bool up(std::size_t i) const { return procs_[i] != nullptr; }

    /// True if process `i` was started and has not exited (by itself or killed).
    [[nodiscard]] bool alive(std::size_t i) const {
        if (!procs_[i]) return false;
        std::ifstream stat{"/proc/" + std::to_string(procs_[i]->pid()) + "/stat"};
        std::string pid, name, state;
        if (!(stat >> pid >> name >> state)) return false;
        return state != "Z" && state != "X";  // a zombie has exited and waits to be reaped
    }

    /// Every process that exited without being killed here: reaped, its stderr
    /// returned (one entry per process), and started again.
    std::vector<std::string> restart_exited() {
        std::vector<std::string> why;
        for (std::size_t i = 0; i < procs_.size(); ++i) {
            if (!procs_[i] || alive(i)) continue;
            procs_[i]->kill();  // reaps it
            why.push_back("process " + std::to_string(i) + " exited by itself; stderr: " + procs_[i]->err());
            procs_[i].reset();
            restart(i);
        }
        return why;
    }

    /// SIGKILL to process `i`, reaped before this returns.
    void kill(std::size_t i) {
        if (!procs_[i]) return;
        procs_[i]->kill();
        procs_[i].reset();
    }

    /// Starts process `i` again on its port; throws (from server_process) if it
    /// does not get ready within the bound.
    void restart(std::size_t i) {
        if (!procs_[i]) procs_[i] = start_(ports_[i]);
    }

    /// SIGTERM to every process that is up; true if all exited 0.
    bool stop_all() {
        bool ok = true;
        for (auto& p : procs_)
            if (p) ok = p->stop() == 0 && ok;
        return ok;
    }

private:
    std::unique_ptr<server_process> start_(int port) const {
        return std::make_unique<server_process>(
            TETHER_SERVER_BINARY,
            std::vector<std::string>{"--listen", "127.0.0.1:" + std::to_string(port), "--postgres", conninfo_,
                                     "--tokens", tokens_, "--keep-alive", "1"});
    }

    std::string conninfo_;
    std::string tokens_;
    std::vector<std::unique_ptr<server_process>> procs_;
    std::vector<int> ports_;
};

/// How often each fault and its effects happened.
struct fleet_counts {
    std::uint64_t kills_in_flight = 0;  ///< SIGKILLs while a request to that process was in flight
    std::uint64_t kills_in_push = 0;    ///< of those, SIGKILLs while a push to it was in flight
    std::uint64_t kills_idle = 0;       ///< SIGKILLs with no request in flight to it
    std::uint64_t restarts = 0;         ///< processes started again on their port
    std::uint64_t failed = 0;           ///< requests that failed as a whole (a dead or dying process)
    std::uint64_t lost_answers = 0;     ///< push answers dropped on the way back (the push was applied)
    std::uint64_t replayed = 0;         ///< creates answered as replays (their first answer was lost)
    std::uint64_t requests = 0;         ///< requests sent in all
};

/// What the transports of one seed share with the chaos thread.
class fleet_routes {
public:
    /// The most processes a fleet may have.
    static constexpr std::size_t max_processes = 8;

    /// Called by a transport before a request to process `i` (a push or not).
    void begin(std::size_t i, bool push) {
        inflight_[i].fetch_add(1);
        if (push) pushes_[i].fetch_add(1);
        std::lock_guard lock{mutex_};
        ++started_;
        last_ = i;
        cv_.notify_all();
    }
    /// Called after it, with whether it failed as a whole and how many creates were replays.
    void end(std::size_t i, bool push, bool failed, std::uint64_t replays) {
        inflight_[i].fetch_sub(1);
        if (push) pushes_[i].fetch_sub(1);
        failed_.fetch_add(failed ? 1 : 0);
        replayed_.fetch_add(replays);
    }
    /// A push answer dropped by a transport.
    void lost_answer() { lost_.fetch_add(1); }
    /// No more requests will come from the writers: wakes the waiter.
    void finish() {
        std::lock_guard lock{mutex_};
        finished_ = true;
        cv_.notify_all();
    }
    /// Blocks until `n` more requests started than now (or the writers
    /// finished: then nullopt); answers the process the last one went to.
    std::optional<std::size_t> wait_requests(std::uint64_t n) {
        std::unique_lock lock{mutex_};
        const auto target = started_ + n;
        cv_.wait(lock, [&] { return started_ >= target || finished_; });
        if (started_ < target) return std::nullopt;
        return last_;
    }
    /// True while a request to process `i` is in flight.
    [[nodiscard]] bool in_flight(std::size_t i) const { return inflight_[i].load() > 0; }
    /// True while a push to process `i` is in flight.
    [[nodiscard]] bool push_in_flight(std::size_t i) const { return pushes_[i].load() > 0; }
    /// The counts of the transports (failed, replayed, requests).
    void add_to(fleet_counts& c) const {
        std::lock_guard lock{mutex_};
        c.failed += failed_.load();
        c.replayed += replayed_.load();
        c.lost_answers += lost_.load();
        c.requests += started_;
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::uint64_t started_ = 0;
    std::size_t last_ = 0;
    bool finished_ = false;
    std::array<std::atomic<int>, max_processes> inflight_{};
    std::array<std::atomic<int>, max_processes> pushes_{};
    std::atomic<std::uint64_t> lost_{0};
    std::atomic<std::uint64_t> failed_{0};
    std::atomic<std::uint64_t> replayed_{0};
};

/// A transport policy sending each request to a random process of a fleet;
/// it also drops the answer of an applied push with probability
/// `lose_answer_percent`/100 (the device sees `errc::transient` and sends the
/// push again, most likely to another process).
class fleet_transport {
public:
    using policy_kind = tether::transport_tag;  ///< a transport policy

    /// One http_transport per port, as `base` says otherwise; requests routed
    /// by a generator seeded with `seed`.
    fleet_transport(const std::vector<int>& ports, tether::http_options base, std::uint64_t seed,
                    std::shared_ptr<fleet_routes> routes, unsigned lose_answer_percent = 0)
        : s_(std::make_shared<shared>()) {
        if (ports.empty() || ports.size() > fleet_routes::max_processes)
            throw std::invalid_argument{"fleet_transport: 1 to fleet_routes::max_processes ports"};
        s_->lose = lose_answer_percent;
        for (int p : ports) {
            base.base_url = "http://127.0.0.1:" + std::to_string(p);
            s_->to.emplace_back(base);
        }
        s_->rng.seed(seed);
        s_->routes = std::move(routes);
        max_batch_ = base.max_batch;
    }

    /// A push through a random process; its answer lost now and then (see the class).
    tether::result<std::vector<tether::push_outcome>> push(std::string_view c, std::span<const tether::push_op> ops) {
        const auto i = pick_(true);
        auto r = s_->to[i].push(c, ops);
        std::uint64_t replays = 0;
        if (r)
            for (const auto& o : *r) replays += o.replayed ? 1 : 0;
        s_->routes->end(i, true, !r, replays);
        if (r && roll_() < s_->lose) {
            s_->routes->lost_answer();
            return tether::unexpected{tether::make_error(tether::errc::transient, "fleet: the answer was lost")};
        }
        return r;
    }
    /// A pull through a random process.
    tether::result<tether::pull_page> pull(std::string_view c, std::string_view cursor, std::size_t limit) {
        const auto i = pick_(false);
        auto r = s_->to[i].pull(c, cursor, limit);
        s_->routes->end(i, false, !r, 0);
        return r;
    }
    /// A fetch through a random process.
    tether::result<tether::server_record> fetch(std::string_view c, std::string_view sid) {
        const auto i = pick_(false);
        auto r = s_->to[i].fetch(c, sid);
        // not_found is an answer, not a failure of the process
        s_->routes->end(i, false, !r && r.error().code != tether::errc::not_found, 0);
        return r;
    }
    /// The options' `max_batch`.
    [[nodiscard]] std::size_t max_batch() const noexcept { return max_batch_; }
    /// tether-server has a change feed.
    [[nodiscard]] bool has_change_feed() const noexcept { return true; }

private:
    struct shared {
        std::vector<tether::http_transport> to;
        std::mutex mutex;
        std::mt19937_64 rng;
        std::shared_ptr<fleet_routes> routes;
        unsigned lose = 0;
    };

    std::size_t pick_(bool push) {
        std::size_t i = 0;
        {
            std::lock_guard lock{s_->mutex};
            i = static_cast<std::size_t>(s_->rng() % s_->to.size());
        }
        s_->routes->begin(i, push);
        return i;
    }
    unsigned roll_() {
        std::lock_guard lock{s_->mutex};
        return static_cast<unsigned>(s_->rng() % 100);
    }

    std::shared_ptr<shared> s_;
    std::size_t max_batch_ = 1;
};

}  // namespace tether_test
