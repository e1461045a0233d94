#pragma once

// The real tether-server binary as a child process of a test: fork/exec with
// stdout and stderr on pipes, the readiness line `listening on HOST:PORT` read
// within a deadline, stopped by SIGTERM (the exit status returned) or SIGKILL.
//
// Never sleeps: a reader thread poll()s both pipes (keeping everything the
// server writes, for the test to search), readiness is a condition variable
// waited on with a deadline, and the wait for the exit is a poll() on a pidfd
// with a deadline. Only for tests on Linux.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace tether_test {

class server_process {
public:
    /// Starts `binary` with `args` and waits (at most `ready_within`) for its
    /// readiness line; throws std::runtime_error if it exits or stays silent.
    server_process(std::string binary, std::vector<std::string> args,
                   std::chrono::milliseconds ready_within = std::chrono::seconds{30}) {
        int out[2];
        int err[2];
        if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("server_process: pipe failed");
        if (::pipe2(err, O_CLOEXEC) != 0) {
            ::close(out[0]);
            ::close(out[1]);
            throw std::runtime_error("server_process: pipe failed");
        }
        // Everything the child needs is built before fork: after it, only async-signal-safe calls.
        std::vector<std::string> argv_text;
        argv_text.push_back(binary);
        for (auto& a : args) argv_text.push_back(std::move(a));
        std::vector<char*> argv;
        for (auto& a : argv_text) argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("server_process: fork failed");
        if (pid_ == 0) {
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            ::dup2(out[1], STDOUT_FILENO);
            ::dup2(err[1], STDERR_FILENO);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(out[1]);
        ::close(err[1]);
        pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
        reader_ = std::thread{[this, o = out[0], e = err[0]] { read_(o, e); }};
        std::unique_lock lock{mutex_};
        const bool ready = cv_.wait_for(lock, ready_within, [&] { return port_ > 0 || closed_; });
        if (!ready || port_ <= 0) {
            const std::string why = "tether-server did not get ready; stderr: " + err_;
            lock.unlock();
            kill();
            throw std::runtime_error(why);
        }
    }

    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;

    ~server_process() {
        if (pid_ > 0 && !exit_status_) kill();
        if (reader_.joinable()) reader_.join();
        if (pidfd_ >= 0) ::close(pidfd_);
    }

    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    [[nodiscard]] pid_t pid() const { return pid_; }

    /// SIGTERM, then the exit status (128 + n for death by signal n, -1 if it
    /// did not exit within `within`, after which it is killed).
    int stop(std::chrono::milliseconds within = std::chrono::seconds{30}) {
        if (exit_status_) return *exit_status_;
        ::kill(pid_, SIGTERM);
        if (auto s = wait_(within)) return *s;
        kill();
        return -1;
    }

    /// SIGKILL, and reaps it.
    void kill() {
        if (exit_status_) return;
        ::kill(pid_, SIGKILL);
        wait_(std::chrono::seconds{60});
    }

    /// Sends SIGKILL without waiting (safe from any thread; `kill()` reaps it later).
    void kill_async() const noexcept { ::kill(pid_, SIGKILL); }

    /// What it wrote to stdout and stderr so far (all of it once it has exited).
    [[nodiscard]] std::string out() const {
        std::lock_guard lock{mutex_};
        return out_;
    }
    [[nodiscard]] std::string err() const {
        std::lock_guard lock{mutex_};
        return err_;
    }

private:
    std::optional<int> wait_(std::chrono::milliseconds within) {
        if (exit_status_) return exit_status_;
        if (pidfd_ >= 0) {
            pollfd p{pidfd_, POLLIN, 0};
            const int r = ::poll(&p, 1, static_cast<int>(within.count()));
            if (r <= 0) return std::nullopt;
        }
        int status = 0;
        if (::waitpid(pid_, &status, 0) != pid_) return std::nullopt;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (reader_.joinable()) reader_.join();  // the pipes are at their end: the output is whole
        return exit_status_;
    }

    void read_(int out, int err) {
        pollfd fds[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
        int open = 2;
        char buf[4096];
        while (open > 0) {
            if (::poll(fds, 2, -1) < 0) {
                if (errno == EINTR) continue;
                break;
            }
            for (auto& f : fds) {
                if (f.fd < 0 || (f.revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
                const ssize_t n = ::read(f.fd, buf, sizeof buf);
                if (n <= 0) {
                    ::close(f.fd);
                    f.fd = -1;
                    --open;
                    continue;
                }
                std::lock_guard lock{mutex_};
                (f.fd == out ? out_ : err_).append(buf, static_cast<std::size_t>(n));
                if (port_ <= 0 && f.fd == out) parse_ready_();
                cv_.notify_all();
            }
        }
        std::lock_guard lock{mutex_};
        closed_ = true;
        cv_.notify_all();
    }

    void parse_ready_() {
        constexpr std::string_view mark = "listening on ";
        const auto at = out_.find(mark);
        if (at == std::string::npos) return;
        const auto eol = out_.find('\n', at);
        if (eol == std::string::npos) return;
        const std::string line = out_.substr(at + mark.size(), eol - at - mark.size());
        const auto colon = line.rfind(':');
        if (colon == std::string::npos) return;
        port_ = std::stoi(line.substr(colon + 1));
    }

    pid_t pid_ = -1;
    int pidfd_ = -1;
    std::thread reader_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::string out_;
    std::string err_;
    int port_ = 0;
    bool closed_ = false;
    std::optional<int> exit_status_;
};

}  // namespace tether_test
