// The real tether-server with --postgres: the transport conformance suite
// through it over HTTP, and two server processes over one database, a push
// through one pulled through the other.
#include "pg_test.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

#include <tether/testing/transport_conformance.hpp>
#include <tether/transport/http.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#ifndef TETHER_SERVER_BINARY
#error "TETHER_SERVER_BINARY must name the tether-server executable"
#endif

namespace {

/// A tether-server over the PostgreSQL schema `conninfo` names.
class pg_server {
public:
    pg_server(const tether_test::temp_dir& dir, const std::string& conninfo) {
        const auto tokens = dir.file("tokens.txt");
        std::ofstream{tokens} << "alice-token alice\n";
        proc_ = std::make_unique<tether_test::server_process>(
            TETHER_SERVER_BINARY, std::vector<std::string>{"--listen", "127.0.0.1:0", "--postgres", conninfo,
                                                           "--tokens", tokens, "--keep-alive", "1"});
    }
    [[nodiscard]] tether::http_options options() const {
        tether::http_options o;
        o.base_url = proc_->url();
        o.token = "alice-token";
        o.timeouts.connect = std::chrono::seconds{5};
        o.timeouts.read = std::chrono::seconds{30};
        o.timeouts.write = std::chrono::seconds{30};
        return o;
    }
    int stop() { return proc_->stop(); }

private:
    std::unique_ptr<tether_test::server_process> proc_;
};

}  // namespace

TEST_CASE("tether-server --postgres passes the transport conformance suite over HTTP", "[postgres][e2e]") {
    tether_test::temp_dir dir{"tether-pg-e2e"};
    pg_server server{dir, tether_test::pg_fresh_schema()};
    auto failures = tether::testing::check_transport([&] { return tether::http_transport{server.options()}; });
    std::string all;
    for (const auto& f : failures) all += f.check + ": " + f.what + "\n";
    INFO(all);
    CHECK(failures.empty());
    CHECK(server.stop() == 0);
}

TEST_CASE("two tether-server processes over one PostgreSQL database serve one set of records", "[postgres][e2e]") {
    tether_test::temp_dir dir{"tether-pg-e2e"};
    const auto conninfo = tether_test::pg_fresh_schema();
    pg_server one{dir, conninfo};
    pg_server two{dir, conninfo};
    auto a = std::make_optional<tether::http_transport>(one.options());
    auto b = std::make_optional<tether::http_transport>(two.options());
    const auto id = tether::local_id::from_parts(tether::timestamp{std::chrono::milliseconds{1'700'000'000'000}}, 1, 1);
    const std::vector ops{tether::push_op{tether::op_kind::create, id, std::nullopt, 0,
                                          nlohmann::json{{"title", "memo"}}, "phone"}};
    auto pushed = a->push("jobs", ops);
    REQUIRE(pushed.has_value());
    REQUIRE(pushed->at(0).outcome == tether::push_outcome::kind::applied);
    // The same create retried through the other server is the same record.
    auto again = b->push("jobs", ops);
    REQUIRE(again.has_value());
    CHECK(again->at(0).replayed);
    CHECK(again->at(0).record.server_id == pushed->at(0).record.server_id);
    auto page = b->pull("jobs", "", 100);
    REQUIRE(page.has_value());
    REQUIRE(page->records.size() == 1);
    CHECK(page->records[0].value == nlohmann::json{{"title", "memo"}});
    CHECK(page->records[0].server_id == pushed->at(0).record.server_id);
    // A cursor from one server goes on at the other.
    const std::vector update{tether::push_op{tether::op_kind::update, id, pushed->at(0).record.server_id,
                                             pushed->at(0).record.version, nlohmann::json{{"title", "notes"}}, "phone"}};
    REQUIRE(b->push("jobs", update).has_value());
    auto next = a->pull("jobs", page->next_cursor, 100);
    REQUIRE(next.has_value());
    REQUIRE(next->records.size() == 1);
    CHECK(next->records[0].value == nlohmann::json{{"title", "notes"}});
    a.reset();  // their keep-alive connections closed: the servers stop at once
    b.reset();
    CHECK(one.stop() == 0);
    CHECK(two.stop() == 0);
}
