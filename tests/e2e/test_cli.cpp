// tether-server's command line, on the real binary: what it refuses to start
// with, and that the refusal says why without quoting a token.
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef TETHER_SERVER_BINARY
#error "TETHER_SERVER_BINARY must name the tether-server executable"
#endif

namespace {

// The stderr of a server that must not start (server_process throws with it).
std::string refusal(const std::vector<std::string>& args) {
    try {
        tether_test::server_process p{TETHER_SERVER_BINARY, args};
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    FAIL("tether-server started with arguments it should refuse");
    return {};
}

}  // namespace

TEST_CASE("tether-server refuses a non-loopback address without --allow-remote, and bad token files",
          "[e2e][cli]") {
    tether_test::temp_dir dir{"tether-e2e-cli"};
    const std::string good = dir.file("good.txt");
    const std::string bad = dir.file("bad.txt");
    std::ofstream{good} << "alice-token alice\n";
    std::ofstream{bad} << "# tokens\nalice-token alice\nlonely-s3cr3t\n";
    const std::string db = dir.file("server.db");

    auto remote = refusal({"--listen", "0.0.0.0:0", "--db", db, "--tokens", good});
    CHECK(remote.find("not a loopback address") != std::string::npos);
    CHECK(remote.find("--allow-remote") != std::string::npos);

    auto tokens = refusal({"--listen", "127.0.0.1:0", "--db", db, "--tokens", bad});
    CHECK(tokens.find("line 3") != std::string::npos);
    CHECK(tokens.find("s3cr3t") == std::string::npos);
    CHECK(tokens.find("alice-token") == std::string::npos);

    auto missing = refusal({"--listen", "127.0.0.1:0", "--db", db, "--tokens", dir.file("none.txt")});
    CHECK(missing.find("none.txt") != std::string::npos);

    auto listen = refusal({"--listen", "127.0.0.1", "--db", db, "--tokens", good});
    CHECK(listen.find("--listen") != std::string::npos);

    // The same files with a loopback address start, and stop with 0.
    tether_test::server_process ok{TETHER_SERVER_BINARY, {"--listen", "127.0.0.1:0", "--db", db, "--tokens", good}};
    CHECK(ok.port() > 0);
    CHECK(ok.stop() == 0);
    CHECK(ok.out() == "listening on 127.0.0.1:" + std::to_string(ok.port()) + "\n");  // exactly one line
}
