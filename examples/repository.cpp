// An app's repository class that owns its engine, with two policies written by
// the app: a transport that wraps another one (logging and counting every call)
// and a fixed backoff. Run as a test: exits 0 only if every step did what the
// comments say.
#include <tether/tether.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

/// Forwards every call to `Inner` and logs it; counts what went through.
/// Copies share their counters (the engine copies its policies).
template <tether::transport_policy Inner>
struct logging_transport {
    using policy_kind = tether::transport_tag;

    struct counters {
        std::uint64_t pushes = 0, ops = 0, pulls = 0, failures = 0;
    };

    Inner inner;
    std::shared_ptr<counters> seen = std::make_shared<counters>();

    tether::result<std::vector<tether::push_outcome>> push(std::string_view collection,
                                                           std::span<const tether::push_op> ops) {
        ++seen->pushes;
        seen->ops += ops.size();
        auto r = inner.push(collection, ops);
        report("push", collection, r);
        return r;
    }
    tether::result<tether::pull_page> pull(std::string_view collection, std::string_view cursor, std::size_t limit) {
        ++seen->pulls;
        auto r = inner.pull(collection, cursor, limit);
        report("pull", collection, r);
        return r;
    }
    tether::result<tether::server_record> fetch(std::string_view collection, std::string_view server_id) {
        auto r = inner.fetch(collection, server_id);
        report("fetch", collection, r);
        return r;
    }
    [[nodiscard]] std::size_t max_batch() const { return inner.max_batch(); }
    [[nodiscard]] bool has_change_feed() const { return inner.has_change_feed(); }

private:
    template <class R>
    void report(std::string_view what, std::string_view collection, const R& r) {
        if (r) return;
        ++seen->failures;
        std::cout << what << ' ' << collection << " failed: " << r.error().message << '\n';
    }
};

/// The same wait after every failure, and a give-up after `max_attempts`.
struct fixed_backoff {
    using policy_kind = tether::backoff_tag;
    std::chrono::milliseconds delay{std::chrono::seconds{30}};
    std::uint32_t max_attempts = 3;

    std::optional<std::chrono::milliseconds> next_delay(std::uint32_t failed_attempts, const tether::error&) {
        if (failed_attempts >= max_attempts) return std::nullopt;
        return delay;
    }
};
static_assert(tether::backoff_policy<fixed_backoff>);

/// The app's repository: one engine, built once, kept in place. An engine is
/// neither copied nor moved (watchers, hooks and a running sync point into it),
/// so the repository is not either; an app that must move it holds the engine
/// through a `std::unique_ptr` instead.
class job_repository {
public:
    /// The composed engine type, named once.
    using engine_type = tether::sync_engine<Job, tether::memory_storage, logging_transport<tether::loopback_transport>,
                                            fixed_backoff, tether::manual_clock>;

    job_repository(tether::loopback_server server, tether::manual_clock clock)
        : engine_(tether::memory_storage{}, logging_transport<tether::loopback_transport>{{server, "alice"}},
                  fixed_backoff{.delay = std::chrono::seconds{10}, .max_attempts = 2}, clock) {}

    tether::result<tether::record<Job>> add(std::string title) { return engine_.create(Job{std::move(title), 0}); }
    tether::result<tether::sync_report> sync() { return engine_.sync(); }
    [[nodiscard]] engine_type& engine() { return engine_; }

private:
    engine_type engine_;
};

int main() {
    tether::manual_clock clock;
    tether::loopback_server server{[clock] { return clock.now(); }};
    job_repository jobs{server, clock};
    auto seen = jobs.engine().transport().seen;  // a copy of the handle: the same counters
    bool ok = true;
    auto expect = [&](bool what, std::string_view step) {
        std::cout << (what ? "ok   " : "FAIL ") << step << '\n';
        ok = ok && what;
    };

    auto memo = jobs.add("Standup memo");
    expect(memo.has_value(), "a local write needs no network");

    server.fail_next(1, tether::loopback_server::transient_error());  // the next request fails (503)
    auto first = jobs.sync();
    expect(first && first->retrying == 1, "a failed push leaves the record to retry");
    expect(seen->failures == 1, "the wrapper saw the failure");
    const auto due = jobs.engine().get(memo->id)->next_attempt_at;
    expect(due && *due == clock.now() + std::chrono::seconds{10}, "the fixed backoff waits 10 s");

    clock.advance(std::chrono::seconds{10});
    auto second = jobs.sync();
    expect(second && second->pushed == 1, "after the wait, the push goes through");
    expect(jobs.engine().get(memo->id)->status == tether::sync_status::synced, "the record is synced");
    expect(seen->pushes == 2 && seen->ops == 2 && seen->pulls >= 1, "the wrapper counted every call");
    return ok ? 0 : 1;
}
