#pragma once

// What the end-to-end tests share: a real tether-server (the binary built with
// them, TETHER_SERVER_BINARY) on a temporary SQLite file and token file,
// started on port 0, and transports and raw clients pointed at it.
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

#include <tether/transport/http.hpp>

#include <httplib.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#ifndef TETHER_SERVER_BINARY
#error "TETHER_SERVER_BINARY must name the tether-server executable"
#endif

namespace tether_test {

/// The whole of a file's bytes ("" if it does not exist).
inline std::string slurp(const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    return std::string{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

/// A tether-server over `db` in a temporary directory; `start` and `restart`
/// run it again on the same files (a new port each time).
class e2e_server {
public:
    explicit e2e_server(std::vector<std::string> flags = {},
                        std::string tokens = "alice-token alice\nbob-token bob\n")
        : flags_(std::move(flags)) {
        std::ofstream{tokens_path()} << tokens;
        start();
    }

    /// Starts a server process (there must be none running).
    void start() {
        std::vector<std::string> args{"--listen", "127.0.0.1:0",         "--db",         db_path(),
                                      "--tokens", tokens_path(),         "--access-log", access_log_path(),
                                      "--keep-alive", "1"};
        args.insert(args.end(), flags_.begin(), flags_.end());
        proc_ = std::make_unique<server_process>(TETHER_SERVER_BINARY, std::move(args));
    }

    /// SIGTERM; the exit status.
    int stop() { return proc_->stop(); }
    /// SIGKILL, reaped.
    void kill() { proc_->kill(); }
    /// SIGKILL (if still running), then a new process on the same files.
    void restart() {
        proc_->kill();
        keep_output_();
        start();
    }

    [[nodiscard]] server_process& process() { return *proc_; }
    [[nodiscard]] std::string url() const { return proc_->url(); }
    [[nodiscard]] int port() const { return proc_->port(); }

    [[nodiscard]] std::string db_path() const { return dir_.file("server.db"); }
    [[nodiscard]] std::string tokens_path() const { return dir_.file("tokens.txt"); }
    [[nodiscard]] std::string access_log_path() const { return dir_.file("access.log"); }
    [[nodiscard]] std::string file(const std::string& name) const { return dir_.file(name); }

    /// Everything every process so far wrote to stdout and stderr.
    [[nodiscard]] std::string output() const { return earlier_ + proc_->out() + proc_->err(); }

    /// Options of a transport with `token`.
    [[nodiscard]] tether::http_options options(std::string token = "alice-token") const {
        tether::http_options o;
        o.base_url = url();
        o.token = std::move(token);
        o.timeouts.connect = std::chrono::seconds{5};
        o.timeouts.read = std::chrono::seconds{30};
        o.timeouts.write = std::chrono::seconds{30};
        return o;
    }

    /// A raw client, for requests no transport would send.
    [[nodiscard]] std::unique_ptr<httplib::Client> client() const {
        auto c = std::make_unique<httplib::Client>("127.0.0.1", port());
        c->set_tcp_nodelay(true);
        c->set_read_timeout(std::chrono::seconds{30});
        return c;
    }

private:
    void keep_output_() { earlier_ += proc_->out() + proc_->err(); }

    temp_dir dir_{"tether-e2e"};
    std::vector<std::string> flags_;
    std::unique_ptr<server_process> proc_;
    std::string earlier_;
};

/// `Authorization: Bearer <token>`.
inline httplib::Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

}  // namespace tether_test
