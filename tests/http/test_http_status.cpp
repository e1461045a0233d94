// Each row of the error table, live: a scripted server answers every status
// class, and real sockets fail in each way that can be staged on 127.0.0.1.
#include "http/scripted_server.hpp"

#include <tether/transport/http.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using tether::errc;
using tether_test::json_answer;
using tether_test::scripted_server;
using namespace std::chrono_literals;

namespace {

const auto id1 = tether::local_id::parse("01890a5d-ac96-774b-bcce-b302099a8057").value();

std::vector<tether::push_op> one_create() {
    return {tether::push_op{tether::op_kind::create, id1, std::nullopt, 0, {{"title", "memo"}}, "dev-1"}};
}

/// A TCP port on 127.0.0.1 with nothing listening: bound, then closed.
int closed_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    ::close(fd);
    return ntohs(addr.sin_port);
}

/// Accepts connections on 127.0.0.1 and resets each one at once (SO_LINGER 0),
/// before any answer: the request may or may not have been read.
class resetting_listener {
public:
    resetting_listener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(fd_, 8) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread{[this] {
            for (;;) {
                const int c = ::accept(fd_, nullptr, nullptr);
                if (c < 0) return;  // the listening socket was shut down
                if (stop_) {
                    ::close(c);
                    return;
                }
                char buf[4096];
                (void)::recv(c, buf, sizeof buf, 0);  // the request line and headers
                linger l{1, 0};
                ::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
                ::close(c);
            }
        }};
    }
    ~resetting_listener() {
        stop_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    [[nodiscard]] int port() const { return port_; }

private:
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

tether::http_options options_for(const std::string& url) {
    tether::http_options o;
    o.base_url = url;
    o.token = "status-token";
    o.timeouts.connect = 5s;
    o.timeouts.read = 5s;
    o.timeouts.write = 5s;
    return o;
}

}  // namespace

TEST_CASE("every status class answers its errc and http_status, on each request it concerns", "[http][status]") {
    scripted_server server;
    tether::http_transport t{server.options()};
    auto ops = one_create();
    struct row {
        int status;
        errc push, changes, fetch;
    };
    for (auto [status, on_push, on_changes, on_fetch] : std::vector<row>{
             {301, errc::protocol, errc::protocol, errc::protocol},
             {304, errc::protocol, errc::protocol, errc::protocol},
             {400, errc::protocol, errc::protocol, errc::protocol},
             {401, errc::unauthorized, errc::unauthorized, errc::unauthorized},
             {403, errc::rejected, errc::rejected, errc::rejected},
             {404, errc::rejected, errc::rejected, errc::not_found},
             {405, errc::rejected, errc::rejected, errc::rejected},
             {408, errc::transient, errc::transient, errc::transient},
             {409, errc::rejected, errc::rejected, errc::rejected},
             {410, errc::rejected, errc::cursor_expired, errc::not_found},
             {413, errc::too_large, errc::too_large, errc::too_large},
             {418, errc::rejected, errc::rejected, errc::rejected},
             {425, errc::transient, errc::transient, errc::transient},
             {429, errc::rate_limited, errc::rate_limited, errc::rate_limited},
             {500, errc::transient, errc::transient, errc::transient},
             {502, errc::transient, errc::transient, errc::transient},
             {503, errc::transient, errc::transient, errc::transient},
             {504, errc::transient, errc::transient, errc::transient},
             {507, errc::transient, errc::transient, errc::transient},
         }) {
        INFO("HTTP " << status);
        server.script([status = status](const httplib::Request&, httplib::Response& res) {
            json_answer(res, status, R"({"error":{"code":"whatever","message":"scripted"}})");
        });
        auto p = t.push("jobs", ops);
        REQUIRE_FALSE(p);
        CHECK(p.error().code == on_push);
        CHECK(p.error().http_status == status);
        auto c = t.pull("jobs", "12", 10);
        REQUIRE_FALSE(c);
        CHECK(c.error().code == on_changes);
        CHECK(c.error().http_status == status);
        auto f = t.fetch("jobs", "s-1");
        REQUIRE_FALSE(f);
        CHECK(f.error().code == on_fetch);
        CHECK(f.error().http_status == status);
    }
}

TEST_CASE("an error answer's own message is in the error, its code is not trusted over the status", "[http][status]") {
    scripted_server server{[](const httplib::Request&, httplib::Response& res) {
        json_answer(res, 413, R"({"error":{"code":"too_large","message":"body over 8388608 bytes"}})");
    }};
    tether::http_transport t{server.options()};
    auto p = t.push("jobs", one_create());
    REQUIRE_FALSE(p);
    CHECK(p.error().code == errc::too_large);
    CHECK_THAT(p.error().message, Catch::Contains("body over 8388608 bytes"));
    CHECK_THAT(p.error().message, Catch::Contains("push jobs"));
    server.script([](const httplib::Request&, httplib::Response& res) {
        res.status = 500;
        res.set_content("<html>oops</html>", "text/html");  // not the protocol's error body: still transient
    });
    auto q = t.push("jobs", one_create());
    REQUIRE_FALSE(q);
    CHECK(q.error().code == errc::transient);
    CHECK(q.error().http_status == 500);
}

TEST_CASE("Retry-After on 429 and 503, in both forms", "[http][status][retry-after]") {
    scripted_server server;
    tether::http_transport t{server.options()};
    server.script([](const httplib::Request&, httplib::Response& res) {
        res.set_header("Retry-After", "7");
        json_answer(res, 429, R"({"error":{"code":"rate_limited","message":"slow down"}})");
    });
    auto a = t.pull("jobs", "", 10);
    REQUIRE_FALSE(a);
    CHECK(a.error().code == errc::rate_limited);
    CHECK(a.error().retry_after == 7000ms);

    // An HTTP-date 30 s from now (whole seconds: the date has no finer grain).
    const auto at = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + 30s;
    const auto tt = std::chrono::system_clock::to_time_t(at);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char date[64];
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    server.script([d = std::string{date}](const httplib::Request&, httplib::Response& res) {
        res.set_header("Retry-After", d);
        json_answer(res, 503, R"({"error":{"code":"transient","message":"maintenance"}})");
    });
    auto b = t.push("jobs", one_create());
    REQUIRE_FALSE(b);
    CHECK(b.error().code == errc::transient);
    REQUIRE(b.error().retry_after);
    CHECK(*b.error().retry_after > 25s);
    CHECK(*b.error().retry_after <= 30s);

    server.script([](const httplib::Request&, httplib::Response& res) {
        res.set_header("Retry-After", "whenever");
        json_answer(res, 503, "{}");
    });
    auto c = t.fetch("jobs", "s-1");
    REQUIRE_FALSE(c);
    CHECK_FALSE(c.error().retry_after);  // a malformed header is ignored
}

TEST_CASE("socket failure rows, live", "[http][status][socket]") {
    SECTION("connection refused: offline (the request never left)") {
        tether::http_transport t{options_for("http://127.0.0.1:" + std::to_string(closed_port()))};
        auto p = t.push("jobs", one_create());
        REQUIRE_FALSE(p);
        CHECK(p.error().code == errc::offline);
        CHECK_FALSE(p.error().http_status);
        CHECK(t.pull("jobs", "", 10).error().code == errc::offline);
        CHECK(t.fetch("jobs", "s").error().code == errc::offline);
    }
    SECTION("a name that does not resolve: offline") {
        tether::http_transport t{options_for("http://tether-test.invalid:8080")};
        CHECK(t.pull("jobs", "", 10).error().code == errc::offline);
    }
    SECTION("connection reset before the answer: transient (it may have been applied)") {
        resetting_listener reset;
        tether::http_transport t{options_for("http://127.0.0.1:" + std::to_string(reset.port()))};
        auto p = t.push("jobs", one_create());
        REQUIRE_FALSE(p);
        CHECK(p.error().code == errc::transient);
    }
    SECTION("no answer within the read timeout: transient") {
        std::mutex m;
        std::condition_variable cv;
        bool release = false;
        scripted_server server{[&](const httplib::Request&, httplib::Response& res) {
            std::unique_lock lock{m};
            cv.wait_for(lock, 10s, [&] { return release; });  // held until the client gave up
            json_answer(res, 200, "{}");
        }};
        auto o = server.options();
        o.timeouts.read = 200ms;
        tether::http_transport t{o};
        auto p = t.pull("jobs", "", 10);
        {
            std::lock_guard lock{m};
            release = true;
        }
        cv.notify_all();
        REQUIRE_FALSE(p);
        CHECK(p.error().code == errc::transient);
        CHECK_THAT(p.error().message, Catch::Contains("timed out"));
    }
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    SECTION("https to a plain HTTP server: the TLS handshake fails, transient") {
        scripted_server server;
        auto o = server.options();
        o.base_url = "https://127.0.0.1:" + std::to_string(server.port());
        tether::http_transport t{o};
        auto p = t.pull("jobs", "", 10);
        REQUIRE_FALSE(p);
        CHECK(p.error().code == errc::transient);
        CHECK_THAT(p.error().message, Catch::Contains("TLS"));
    }
    SECTION("https with a CA file that cannot be loaded: invalid_argument") {
        scripted_server server;
        auto o = server.options();
        o.base_url = "https://127.0.0.1:" + std::to_string(server.port());
        o.ca_cert_path = "/nonexistent/tether-test-ca.pem";
        tether::http_transport t{o};
        auto p = t.pull("jobs", "", 10);
        REQUIRE_FALSE(p);
        CHECK(p.error().code == errc::invalid_argument);
        CHECK_THAT(p.error().message, Catch::Contains("CA"));
    }
#endif
}
