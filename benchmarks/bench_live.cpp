// Event fan-out: one writer, ten devices following its collection; each
// device an engine (memory storage) that applies what its live feed brings on
// a thread of its own. Over HTTP/SSE (http_transport's feed and the HTTP face
// of an in-process sync service on 127.0.0.1), and over the loopback feed as
// the baseline, in one run.
//
// fanout_latency: the writer creates one job and syncs it; the time from
// before its sync to the job being applied on every device (counters p50_ms,
// p90_ms). fanout_throughput: the writer syncs batches of 100 creates; the
// events applied over all devices per second (counter events_per_s).
//
// Usage: tether_bench_live [Google Benchmark flags] (figures in docs/benchmarks.md).
#include "support/job.hpp"

#include <tether/server/http.hpp>
#include <tether/server/memory_store.hpp>
#include <tether/server/sync_service.hpp>
#include <tether/tether.hpp>
#include <tether/transport/http.hpp>

#include <benchmark/benchmark.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using tether_bench::Job;
using steady = std::chrono::steady_clock;
constexpr std::size_t devices = 10;

// The HTTP face of a sync service over a memory store, on 127.0.0.1.
class http_server {
public:
    using store = tether::server::memory_store;
    http_server()
        : service_{store{}},
          face_{service_,
                tether::server::authenticate_by(tether::server::token_table::parse("bench-token bench\n").value())} {
        face_.mount(http_);
        http_.new_task_queue = [] { return new httplib::ThreadPool(8 + devices); };
        port_ = http_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread{[this] { http_.listen_after_bind(); }};
        const auto deadline = steady::now() + std::chrono::seconds{10};  // a bounded wait for the accept loop
        while (!http_.is_running() && steady::now() < deadline) std::this_thread::yield();
        if (!http_.is_running()) throw std::runtime_error("the server did not start");
    }
    ~http_server() {
        face_.close_streams();
        http_.stop();
        thread_.join();
    }
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;
    [[nodiscard]] tether::http_transport transport() const {
        tether::http_options o;
        o.base_url = "http://127.0.0.1:" + std::to_string(port_);
        o.token = "bench-token";
        return tether::http_transport{o};
    }

private:
    tether::server::sync_service<store> service_;
    tether::server::http_face<store> face_;
    httplib::Server http_;
    int port_ = 0;
    std::thread thread_;
};

// What every device has applied, for the writer to wait on.
struct tally {
    std::mutex mutex;
    std::condition_variable changed;
    std::size_t applied = 0;
    void add() {
        {
            std::lock_guard lock{mutex};
            ++applied;
        }
        changed.notify_all();
    }
    void wait_for(std::size_t n) {
        std::unique_lock lock{mutex};
        if (!changed.wait_for(lock, std::chrono::seconds{30}, [&] { return applied >= n; }))
            throw std::runtime_error("the devices did not apply the events within 30 s");
    }
};

// One following device: its engine, and the thread that applies its feed.
template <class Transport>
class device {
public:
    device(Transport t, tally& all) : engine_(tether::make_engine<Job>(std::move(t))) {
        watch_ = engine_.watch([&all](const tether::change<Job>& c) {
            if (c.cause == "live") all.add();
        });
        if (!engine_.follow([this] { ring_(); })) throw std::runtime_error("follow failed");
        thread_ = std::thread{[this] { run_(); }};
    }
    ~device() {
        {
            std::lock_guard lock{mutex_};
            stop_ = true;
        }
        bell_.notify_all();
        thread_.join();
    }
    device(const device&) = delete;
    device& operator=(const device&) = delete;

private:
    void ring_() {
        {
            std::lock_guard lock{mutex_};
            pending_ = true;
        }
        bell_.notify_all();
    }
    void run_() {
        std::unique_lock lock{mutex_};
        for (;;) {
            bell_.wait(lock, [&] { return pending_ || stop_; });
            if (stop_) return;
            pending_ = false;
            lock.unlock();
            (void)engine_.apply_live();
            lock.lock();
        }
    }

    decltype(tether::make_engine<Job>(std::declval<Transport>())) engine_;
    tether::subscription watch_;
    std::mutex mutex_;
    std::condition_variable bell_;
    bool pending_ = false, stop_ = false;
    std::thread thread_;
};

// A writer and ten followers over one network (HTTP or loopback).
template <class Net>
struct fanout {
    Net net;
    tally all;
    decltype(net.writer()) writer = net.writer();
    std::vector<std::unique_ptr<device<decltype(net.follower())>>> followers;
    fanout() {
        for (std::size_t i = 0; i < devices; ++i)
            followers.push_back(std::make_unique<device<decltype(net.follower())>>(net.follower(), all));
    }
};

struct over_http {
    std::unique_ptr<http_server> server = std::make_unique<http_server>();
    auto writer() { return tether::make_engine<Job>(server->transport()); }
    auto follower() { return server->transport(); }
};

struct over_loopback {
    tether::loopback_server server;
    auto writer() { return tether::make_engine<Job>(tether::loopback_transport{server, "bench"}); }
    auto follower() { return tether::loopback_transport{server, "bench"}; }
};

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

template <class Net>
void fanout_latency(benchmark::State& state) {
    fanout<Net> f;
    std::vector<double> ms;
    std::size_t n = 0;
    for (auto _ : state) {
        (void)f.writer.create(Job{"memo-" + std::to_string(n) + ".m4a", 0, "/data/audio/memo.m4a"});
        const auto t0 = steady::now();
        if (!f.writer.sync()) throw std::runtime_error("the writer's sync failed");
        f.all.wait_for(++n * devices);
        ms.push_back(std::chrono::duration<double, std::milli>(steady::now() - t0).count());
    }
    state.counters["p50_ms"] = percentile(ms, 0.5);
    state.counters["p90_ms"] = percentile(ms, 0.9);
    state.counters["events_per_s"] = benchmark::Counter(static_cast<double>(n * devices), benchmark::Counter::kIsRate);
}

template <class Net>
void fanout_throughput(benchmark::State& state) {
    constexpr std::size_t batch = 100;
    fanout<Net> f;
    std::size_t n = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < batch; ++i) (void)f.writer.create(Job{"memo.m4a", 0, "/data/audio/memo.m4a"});
        if (!f.writer.sync()) throw std::runtime_error("the writer's sync failed");
        n += batch;
        f.all.wait_for(n * devices);
    }
    state.counters["events_per_s"] = benchmark::Counter(static_cast<double>(n * devices), benchmark::Counter::kIsRate);
}

BENCHMARK_TEMPLATE(fanout_latency, over_loopback)->Name("fanout_latency/loopback")->UseRealTime()->Iterations(200);
BENCHMARK_TEMPLATE(fanout_latency, over_http)->Name("fanout_latency/http_sse")->UseRealTime()->Iterations(200);
BENCHMARK_TEMPLATE(fanout_throughput, over_loopback)->Name("fanout_throughput/loopback")->UseRealTime()->Iterations(20);
BENCHMARK_TEMPLATE(fanout_throughput, over_http)->Name("fanout_throughput/http_sse")->UseRealTime()->Iterations(20);

}  // namespace
