// Every C++ sample of docs/policies.md, compiled and run (the `docs.samples`
// test checks that the page's samples are in this file as they are written there).
#include "support/entities.hpp"

#include <tether/testing/storage_conformance.hpp>
#include <tether/testing/transport_conformance.hpp>
#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace policies_doc {

using tether_test::Job;

/// The page's stand-ins: a storage and a transport of the app's own.
using my_storage = tether::memory_storage;
struct my_transport : tether::loopback_transport {
    my_transport(std::string_view /*base url*/, std::string token)
        : tether::loopback_transport{server(), std::move(token)} {}
    static tether::loopback_server& server() {
        static tether::loopback_server s;
        return s;
    }
};

// ---- custom policies ----------------------------------------------------------

class rest_transport {
public:
    using policy_kind = tether::transport_tag;

    struct response {
        int status = 0;                                        // 0: no answer (network failure)
        std::string body;
        std::optional<std::chrono::milliseconds> retry_after;  // the Retry-After header, if any
    };
    using client_fn = std::function<response(std::string_view method, const std::string& path, const std::string& body)>;

    explicit rest_transport(client_fn client, std::size_t max_batch = 100)
        : client_(std::move(client)), max_batch_(max_batch == 0 ? 1 : max_batch) {}

    tether::result<std::vector<tether::push_outcome>> push(std::string_view collection,
                                                           std::span<const tether::push_op> ops) {
        if (ops.size() > max_batch_)
            return tether::unexpected{tether::error{tether::errc::too_large, "batch too large", 413, {}}};
        nlohmann::json body = nlohmann::json::array();
        for (const auto& op : ops)
            body.push_back({{"op", tether::to_string(op.kind)}, {"local_id", op.id.to_string()},
                            {"server_id", op.server_id ? nlohmann::json(*op.server_id) : nlohmann::json()},
                            {"base_version", op.base_version}, {"value", op.value}});
        return call("POST", "/" + std::string{collection} + "/push", body.dump()).and_then([&](const nlohmann::json& j) {
            return parse([&] {
                std::vector<tether::push_outcome> out;
                for (const auto& o : j.at("outcomes")) out.push_back(outcome(o));
                if (out.size() != ops.size()) throw std::runtime_error("one outcome per op expected");  // errc::protocol
                return out;
            });
        });
    }

    tether::result<tether::pull_page> pull(std::string_view collection, std::string_view cursor, std::size_t limit) {
        const auto path = "/" + std::string{collection} + "/pull?cursor=" + std::string{cursor} + "&limit=" +
                          std::to_string(limit);
        return call("GET", path, {}).and_then([](const nlohmann::json& j) {
            return parse([&] {
                tether::pull_page p;
                for (const auto& r : j.at("records")) p.records.push_back(record(r));
                for (const auto& t : j.at("tombstones"))
                    p.tombstones.push_back({t.at("server_id").get<std::string>(), std::nullopt,
                                            t.at("version").get<std::uint64_t>()});
                p.next_cursor = j.at("next_cursor").get<std::string>();
                p.has_more = j.at("has_more").get<bool>();
                return p;
            });
        });
    }

    tether::result<tether::server_record> fetch(std::string_view collection, std::string_view server_id) {
        return call("GET", "/" + std::string{collection} + "/" + std::string{server_id}, {})
            .and_then([](const nlohmann::json& j) { return parse([&] { return record(j); }); });
    }

    [[nodiscard]] std::size_t max_batch() const noexcept { return max_batch_; }
    [[nodiscard]] bool has_change_feed() const noexcept { return true; }

private:
    // One request; the HTTP status becomes one of tether's error categories.
    tether::result<nlohmann::json> call(std::string_view method, const std::string& path,
                                        const std::string& body) const {
        const response r = client_(method, path, body);
        auto fail = [&](tether::errc code) {
            return tether::result<nlohmann::json>{
                tether::unexpect, tether::error{code, r.body, r.status ? std::optional<int>{r.status} : std::nullopt,
                                                r.retry_after}};
        };
        if (r.status == 0 || r.status >= 500) return fail(tether::errc::transient);
        if (r.status == 401) return fail(tether::errc::unauthorized);
        if (r.status == 404) return fail(tether::errc::not_found);
        if (r.status == 413) return fail(tether::errc::too_large);  // the engine splits the batch
        if (r.status == 429) return fail(tether::errc::rate_limited);
        if (r.status >= 400) return fail(tether::errc::rejected);
        auto j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded()) return fail(tether::errc::protocol);
        return j;
    }

    // A JSON shape the decoder does not expect is a protocol error, never an exception.
    template <class F>
    static auto parse(F f) -> tether::result<decltype(f())> {
        try {
            return f();
        } catch (const std::exception& e) {
            return tether::unexpected{tether::make_error(tether::errc::protocol, e.what())};
        }
    }
    static tether::server_record record(const nlohmann::json& j) {
        tether::server_record r{j.at("server_id").get<std::string>(), std::nullopt,
                                j.at("version").get<std::uint64_t>(), j.at("value"), std::nullopt};
        if (j.contains("local_id")) r.id = tether::local_id::parse(j["local_id"].get<std::string>()).value();
        return r;
    }
    static tether::push_outcome outcome(const nlohmann::json& o) {
        const auto kind = o.at("outcome").get<std::string>();
        if (kind == "applied") return {tether::push_outcome::kind::applied, record(o.at("record")), {}};
        if (kind == "conflict") return {tether::push_outcome::kind::conflict, record(o.at("record")), {}};
        const auto code = tether::errc_from_string(o.value("code", "")).value_or(tether::errc::rejected);
        return {tether::push_outcome::kind::rejected, {}, tether::make_error(code, o.value("message", ""))};
    }

    client_fn client_;
    std::size_t max_batch_;
};
static_assert(tether::transport_policy<rest_transport>);

/// 30 s, 60 s, 90 s, ... up to 10 min; gives up after 10 failures.
struct linear_backoff {
    using policy_kind = tether::backoff_tag;
    std::chrono::milliseconds step{std::chrono::seconds{30}};
    std::chrono::milliseconds cap{std::chrono::minutes{10}};
    std::uint32_t max_attempts = 10;

    std::optional<std::chrono::milliseconds> next_delay(std::uint32_t failed, const tether::error& e) {
        if (failed >= max_attempts) return std::nullopt;
        auto d = std::min(step * failed, cap);
        if (e.retry_after && *e.retry_after > d) d = std::min(*e.retry_after, cap);  // Retry-After: a lower bound
        return d;
    }
};
static_assert(tether::backoff_policy<linear_backoff>);

/// The furthest progress wins, every other field comes from the server; a local delete wins too.
struct furthest_progress {
    using policy_kind = tether::conflict_tag;

    tether::resolution<Job> resolve(const tether::conflict<Job>& c) const {
        if (c.local.deleted) return tether::resolution<Job>::keep_local();
        if (c.local.value.progress <= c.server_value.progress) return tether::resolution<Job>::take_server();
        Job merged = c.server_value;
        merged.progress = c.local.value.progress;
        return tether::resolution<Job>::merged(std::move(merged));
    }
};
static_assert(tether::conflict_policy<furthest_progress, Job>);

/// Device time corrected by an offset the app learns from its server.
class corrected_clock {
public:
    using policy_kind = tether::clock_tag;

    [[nodiscard]] tether::timestamp now() const noexcept {
        return base_.now() + std::chrono::milliseconds{offset_->load(std::memory_order_relaxed)};
    }
    /// Every copy (the engine holds one) sees the new offset.
    void set_offset(std::chrono::milliseconds d) noexcept { offset_->store(d.count(), std::memory_order_relaxed); }

private:
    tether::system_clock base_;
    std::shared_ptr<std::atomic<std::int64_t>> offset_ = std::make_shared<std::atomic<std::int64_t>>(0);
};
static_assert(tether::clock_policy<corrected_clock>);

// ---- the conformance suites -----------------------------------------------------

TEST_CASE("my_storage keeps the storage contract") {   // Catch2; any framework will do
    auto failures = tether::testing::check_storage([] { return my_storage{}; });
    for (const auto& f : failures) FAIL_CHECK(f.check << ": " << f.what);
    CHECK(failures.empty());
}

TEST_CASE("my transport keeps the protocol rules") {
    auto failures = tether::testing::check_transport([] { return my_transport{"https://127.0.0.1:8787", "token"}; });
    for (const auto& f : failures) FAIL_CHECK(f.check << ": " << f.what);
    CHECK(failures.empty());
}

// ---- composing engines ----------------------------------------------------------

TEST_CASE("docs/policies.md: engines are composed as the page says", "[docs]") {
    tether::manual_clock clock;
    tether::loopback_server server{[clock] { return clock.now(); }};
    {
        auto jobs = tether::make_engine<Job>(tether::field_merge{}, clock, tether::loopback_transport{server, "alice"});
        // the same type as
        tether::sync_engine<Job, tether::field_merge, tether::manual_clock, tether::loopback_transport> same{
            tether::field_merge{}, clock, tether::loopback_transport{server, "alice"}};
        STATIC_REQUIRE(std::is_same_v<decltype(jobs), decltype(same)>);
    }
    {
        auto jobs = tether::make_engine<Job>(tether::engine_options{.id_seed = 42, .pull_limit = 500, .push_batch = 20});
        STATIC_REQUIRE(std::is_same_v<decltype(jobs)::options_type, tether::engine_options>);
    }
    {
        auto jobs = tether::make_engine<Job>(tether::exponential_backoff{
            .base = std::chrono::seconds{5}, .cap = std::chrono::minutes{5}, .max_attempts = 0, .jitter = tether::jitter::full});
        CHECK(jobs.backoff().base == std::chrono::seconds{5});
    }
}

TEST_CASE("docs/policies.md: the custom policies work in an engine", "[docs]") {
    tether::manual_clock clock;
    tether::loopback_server server{[clock] { return clock.now(); }};
    linear_backoff backoff;
    const tether::error e = tether::make_error(tether::errc::transient);
    CHECK(backoff.next_delay(1, e) == std::chrono::seconds{30});
    CHECK(backoff.next_delay(3, e) == std::chrono::seconds{90});
    CHECK(backoff.next_delay(10, e) == std::nullopt);

    corrected_clock corrected;
    auto before = corrected.now();
    corrected.set_offset(std::chrono::hours{1});
    CHECK(corrected.now() - before >= std::chrono::minutes{59});

    auto jobs = tether::make_engine<Job>(furthest_progress{}, linear_backoff{}, clock,
                                         tether::loopback_transport{server, "alice"});
    auto job = jobs.create(Job{"memo", 10, ""});
    REQUIRE(job);
    REQUIRE(jobs.sync());
    REQUIRE(server.put("alice", "jobs", *jobs.get(job->id)->server_id, {{"title", "memo"}, {"progress", 5}, {"audio_path", ""}}));
    REQUIRE(jobs.update(job->id, [](Job& j) { j.progress = 60; }));
    REQUIRE(jobs.sync());
    CHECK(jobs.get(job->id)->value.progress == 60);  // the furthest progress won the conflict
    REQUIRE(jobs.sync());
    CHECK(server.records("alice", "jobs").front().value.at("progress") == 60);

    // The skeleton over an app's HTTP client: a client that answers 503, then 413.
    int status = 503;
    rest_transport rest{[&](std::string_view, const std::string&, const std::string&) {
        return rest_transport::response{status, "{}", std::nullopt};
    }};
    tether::push_op op;
    op.id = *tether::local_id::parse("018f6d2e-0000-7000-8000-000000000001");
    auto r = rest.push("jobs", std::span{&op, 1});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == tether::errc::transient);
    status = 413;
    r = rest.push("jobs", std::span{&op, 1});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == tether::errc::too_large);
}

}  // namespace policies_doc
