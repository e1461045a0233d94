#pragma once

// Processes for benchmarks that measure more than one process: a server
// started from its binary (its port read from its "listening on" line, its
// peak RSS from /proc), a measurement run in a child of its own (its values
// through a pipe, its peak RSS from wait4).
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace tether_bench {

/// Seconds from `t0` to now.
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

inline void write_file(const std::string& path, const std::string& text) {
    std::ofstream{path} << text;
}

/// The figure in KiB of `key` (e.g. "VmHWM:", the peak resident set, or
/// "VmRSS:") in /proc/<who>/status, 0 if unreadable.
inline long status_kb(const std::string& who, const std::string& key) {
    std::ifstream in{"/proc/" + who + "/status"};
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key, 0) == 0) return std::strtol(line.c_str() + key.size(), nullptr, 10);
    return 0;
}

/// VmHWM (peak resident set) of process `pid` in KiB, 0 if unreadable.
inline long peak_rss_kb_of(pid_t pid) { return status_kb(std::to_string(pid), "VmHWM:"); }

/// The figure `key` of this process's /proc/self/status in KiB (see `status_kb`).
inline long self_status_kb(const std::string& key) { return status_kb("self", key); }

/// The measurement child `in_child` waits for now (0: none), so that a signal
/// handler can stop it.
inline std::atomic<pid_t> running_child{0};

/// What a child measured, and its peak RSS.
struct child_result {
    std::vector<double> values;
    long max_rss_kb = 0;
};

/// Runs `f` (returning `std::vector<double>`) in a forked child and returns its
/// values and peak RSS. Call only while this process runs no other thread.
template <class F>
child_result in_child(F f) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error{"pipe failed"};
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error{"fork failed"};
    if (pid == 0) {
        ::close(fds[0]);
        running_child = 0;
        int rc = 0;
        try {
            const auto v = f();
            const auto bytes = static_cast<ssize_t>(v.size() * sizeof(double));
            if (::write(fds[1], v.data(), static_cast<std::size_t>(bytes)) != bytes) rc = 1;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "measurement failed: %s\n", e.what());
            rc = 1;
        }
        ::_exit(rc);
    }
    running_child = pid;
    ::close(fds[1]);
    child_result out;
    double d;
    while (::read(fds[0], &d, sizeof d) == static_cast<ssize_t>(sizeof d)) out.values.push_back(d);
    ::close(fds[0]);
    int status = 0;
    rusage ru{};
    ::wait4(pid, &status, 0, &ru);
    running_child = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error{"a measurement failed"};
    out.max_rss_kb = ru.ru_maxrss;
    return out;
}

/// A server started from `argv` that prints `listening on 127.0.0.1:PORT`;
/// stopped with SIGTERM.
class server_process {
public:
    explicit server_process(std::vector<std::string> argv) {
        int fds[2];
        if (::pipe(fds) != 0) throw std::runtime_error{"pipe failed"};
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error{"fork failed"};
        if (pid_ == 0) {
            ::dup2(fds[1], STDOUT_FILENO);
            ::close(fds[0]);
            ::close(fds[1]);
            std::vector<char*> args;
            for (auto& a : argv) args.push_back(a.data());
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        std::string line;
        char c;
        while (::read(fds[0], &c, 1) == 1 && c != '\n') line += c;
        out_ = fds[0];  // kept open so the server's later output never hits a closed pipe
        const std::string prefix = "listening on 127.0.0.1:";
        if (line.rfind(prefix, 0) != 0) {
            stop();
            throw std::runtime_error{"the server did not start: " + line};
        }
        port_ = std::stoi(line.substr(prefix.size()));
    }
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;
    ~server_process() { stop(); }

    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] pid_t pid() const { return pid_; }
    [[nodiscard]] long peak_rss_kb() const { return peak_rss_kb_of(pid_); }

    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = 0;
        if (out_ >= 0) ::close(out_);
        out_ = -1;
    }

private:
    pid_t pid_ = 0;
    int out_ = -1;
    int port_ = 0;
};

}  // namespace tether_bench
