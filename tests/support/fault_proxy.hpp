#pragma once

// A TCP proxy on 127.0.0.1 that breaks HTTP/1.1 exchanges on purpose, seeded.
//
// It sits between an HTTP client and a server (both on 127.0.0.1), reads each
// request on a connection (headers, then a Content-Length body; keep-alive
// connections carry many), and draws one fault per request:
// - drop_request:   the request is never forwarded; the client's connection is closed;
// - drop_response:  the request is forwarded and answered, the answer is thrown
//                   away and the client's connection closed (the server applied it);
// - truncate:       the answer is forwarded only in part (cut inside its body,
//                   or inside its headers for an answer without one), then closed;
// - stall:          the answer is held back; the proxy waits until the client
//                   gives up and closes (its read timeout), then closes too;
// - none:           forwarded both ways.
// A request on which no fault fired is forwarded byte for byte. The draw is
// made under a lock from one splitmix64 sequence, so a run with one client
// thread is reproducible; with several, the rates and counts still hold.
//
// Never sleeps: every wait is a poll() on sockets, woken by stop(). Only for
// tests: it trusts its own server's framing (Content-Length or chunked answers)
// and answers nothing itself.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <memory>
#include <vector>

namespace tether_test {

/// Per-request probabilities of the proxy's faults (their sum at most 1).
struct proxy_rates {
    double drop_request = 0;
    double drop_response = 0;
    double truncate = 0;
    double stall = 0;
};

/// How many of each fault fired, and how many requests went through whole.
struct proxy_counts {
    std::uint64_t forwarded = 0;
    std::uint64_t dropped_requests = 0;
    std::uint64_t dropped_responses = 0;
    std::uint64_t truncated = 0;
    std::uint64_t stalled = 0;
};

class fault_proxy {
public:
    enum class fault { none, drop_request, drop_response, truncate, stall };

    /// Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:`target_port`.
    fault_proxy(std::uint16_t target_port, proxy_rates rates, std::uint64_t seed)
        : target_(target_port), rates_(rates), rng_(seed) {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (listener_ < 0) throw std::runtime_error("fault_proxy: socket failed");
        int one = 1;
        ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a = loopback_(0);
        if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener_, 64) != 0) {
            ::close(listener_);
            throw std::runtime_error("fault_proxy: cannot listen on 127.0.0.1");
        }
        socklen_t len = sizeof a;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        if (::pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("fault_proxy: pipe failed");
        acceptor_ = std::thread{[this] { accept_loop_(); }};
    }

    fault_proxy(const fault_proxy&) = delete;
    fault_proxy& operator=(const fault_proxy&) = delete;
    ~fault_proxy() { stop(); }

    /// The port clients connect to.
    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

    /// New rates from now on (e.g. all zero for a quiet phase).
    void set_rates(proxy_rates r) {
        std::lock_guard lock{mutex_};
        rates_ = r;
    }

    /// The faults fired so far.
    [[nodiscard]] proxy_counts counts() const {
        std::lock_guard lock{mutex_};
        return counts_;
    }

    /// Stops accepting, closes every connection and joins every thread (idempotent).
    void stop() {
        if (stopped_.exchange(true)) return;
        const char b = 'x';
        [[maybe_unused]] auto w = ::write(wake_[1], &b, 1);
        if (acceptor_.joinable()) acceptor_.join();
        std::vector<worker> workers;
        {
            std::lock_guard lock{mutex_};
            workers.swap(workers_);
        }
        for (auto& w : workers) w.thread.join();
        ::close(listener_);
        ::close(wake_[0]);
        ::close(wake_[1]);
    }

private:
    static sockaddr_in loopback_(std::uint16_t port) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return a;
    }

    // Waits until `fd` is readable or the proxy stops; false when stopping.
    bool wait_readable_(int fd) const {
        std::array<pollfd, 2> p{pollfd{fd, POLLIN, 0}, pollfd{wake_[0], POLLIN, 0}};
        for (;;) {
            const int n = ::poll(p.data(), p.size(), -1);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 || (p[1].revents & POLLIN) != 0) return false;
            if (p[0].revents != 0) return true;
        }
    }

    void accept_loop_() {
        while (wait_readable_(listener_)) {
            const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (client < 0) continue;
            std::lock_guard lock{mutex_};
            for (auto it = workers_.begin(); it != workers_.end();) {  // join the finished ones
                if (it->done->load()) {
                    it->thread.join();
                    it = workers_.erase(it);
                } else {
                    ++it;
                }
            }
            auto done = std::make_shared<std::atomic<bool>>(false);
            workers_.push_back(worker{std::thread{[this, client, done] {
                                          serve_(client);
                                          done->store(true);
                                      }},
                                      done});
        }
    }

    // Reads more bytes into `buf`; false on EOF, error or stop.
    bool fill_(int fd, std::string& buf) const {
        if (!wait_readable_(fd)) return false;
        char chunk[16384];
        const auto n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) return false;
        buf.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    static bool send_all_(int fd, std::string_view data) {
        while (!data.empty()) {
            const auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    static std::string lower_(std::string_view s) {
        std::string out{s};
        for (auto& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        return out;
    }

    // The value of header `name` (lower case) in a header block, if present.
    static std::optional<std::string> header_(std::string_view head, std::string_view name) {
        const std::string l = lower_(head);
        std::size_t at = 0;
        while ((at = l.find("\r\n", at)) != std::string::npos) {
            at += 2;
            if (l.compare(at, name.size(), name) == 0 && at + name.size() < l.size() && l[at + name.size()] == ':') {
                auto v = at + name.size() + 1;
                const auto end = l.find("\r\n", v);
                while (v < end && (l[v] == ' ' || l[v] == '\t')) ++v;
                return l.substr(v, end - v);
            }
        }
        return std::nullopt;
    }

    // Reads one whole message (request or answer) from `fd`, starting with what
    // `buf` holds; leaves any bytes after it in `buf`. Empty on EOF or stop.
    // An answer to a HEAD request, or a 1xx/204/304, has no body.
    std::optional<std::string> read_message_(int fd, std::string& buf, bool is_answer) const {
        std::size_t head_end;
        while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
            if (buf.size() > (1u << 20) || !fill_(fd, buf)) return std::nullopt;
        }
        head_end += 4;
        const std::string_view head{buf.data(), head_end};
        std::size_t total = head_end;
        if (auto te = header_(head, "transfer-encoding"); te && te->find("chunked") != std::string::npos) {
            std::size_t at = head_end;
            for (;;) {
                std::size_t line_end;
                while ((line_end = buf.find("\r\n", at)) == std::string::npos)
                    if (!fill_(fd, buf)) return std::nullopt;
                const auto size = std::strtoull(buf.c_str() + at, nullptr, 16);
                at = line_end + 2;
                if (size == 0) {  // the last chunk, then optional trailers and a blank line
                    std::size_t end;
                    while ((end = buf.find("\r\n", at)) == std::string::npos)
                        if (!fill_(fd, buf)) return std::nullopt;
                    while (end != at) {  // a trailer line
                        at = end + 2;
                        while ((end = buf.find("\r\n", at)) == std::string::npos)
                            if (!fill_(fd, buf)) return std::nullopt;
                    }
                    total = end + 2;
                    break;
                }
                while (buf.size() < at + size + 2)
                    if (!fill_(fd, buf)) return std::nullopt;
                at += size + 2;
            }
        } else if (auto cl = header_(head, "content-length")) {
            total += static_cast<std::size_t>(std::strtoull(cl->c_str(), nullptr, 10));
        } else if (is_answer) {
            const bool bodiless = head.substr(9, 1) == "1" || head.substr(9, 3) == "204" || head.substr(9, 3) == "304";
            if (!bodiless) {  // read until the server closes
                while (fill_(fd, buf)) {
                }
                total = buf.size();
            }
        }
        while (buf.size() < total)
            if (!fill_(fd, buf)) return std::nullopt;
        std::string message = buf.substr(0, total);
        buf.erase(0, total);
        return message;
    }

    fault draw_() {
        std::lock_guard lock{mutex_};
        std::uint64_t z = (rng_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        const double u = static_cast<double>((z ^ (z >> 31)) >> 11) * (1.0 / 9007199254740992.0);
        double edge = rates_.drop_request;
        if (u < edge) return ++counts_.dropped_requests, fault::drop_request;
        if (u < (edge += rates_.drop_response)) return ++counts_.dropped_responses, fault::drop_response;
        if (u < (edge += rates_.truncate)) return ++counts_.truncated, fault::truncate;
        if (u < (edge += rates_.stall)) return ++counts_.stalled, fault::stall;
        ++counts_.forwarded;
        return fault::none;
    }

    void serve_(int client) {
        int one = 1;
        ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int upstream = -1;
        std::string from_client;
        std::string from_server;
        for (;;) {
            auto request = read_message_(client, from_client, false);
            if (!request) break;
            const fault f = draw_();
            if (f == fault::drop_request) break;
            if (upstream < 0) {
                upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                sockaddr_in a = loopback_(target_);
                if (upstream < 0 || ::connect(upstream, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) break;
                ::setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            }
            if (!send_all_(upstream, *request)) break;
            const bool head_request = request->rfind("HEAD ", 0) == 0;
            std::optional<std::string> answer;
            if (head_request) {
                std::size_t end;
                while ((end = from_server.find("\r\n\r\n")) == std::string::npos)
                    if (!fill_(upstream, from_server)) break;
                if (end != std::string::npos) {
                    answer = from_server.substr(0, end + 4);
                    from_server.erase(0, end + 4);
                }
            } else {
                answer = read_message_(upstream, from_server, true);
            }
            if (!answer) break;
            if (f == fault::drop_response) break;
            if (f == fault::truncate) {
                const auto head_end = answer->find("\r\n\r\n");
                const auto cut = head_end + 4 < answer->size() ? head_end + 4 + (answer->size() - head_end - 4) / 2
                                                                : answer->size() / 2;
                send_all_(client, std::string_view{*answer}.substr(0, cut));
                break;
            }
            if (f == fault::stall) {  // hold the answer until the client gives up
                std::string ignored;
                while (fill_(client, ignored)) ignored.clear();
                break;
            }
            if (!send_all_(client, *answer)) break;
        }
        if (upstream >= 0) ::close(upstream);
        ::shutdown(client, SHUT_RDWR);
        ::close(client);
    }

    std::uint16_t target_;
    std::uint16_t port_ = 0;
    int listener_ = -1;
    int wake_[2] = {-1, -1};
    mutable std::mutex mutex_;
    proxy_rates rates_;
    std::uint64_t rng_;
    proxy_counts counts_;
    std::atomic<bool> stopped_{false};
    struct worker {
        std::thread thread;
        std::shared_ptr<std::atomic<bool>> done;
    };
    std::thread acceptor_;
    std::vector<worker> workers_;
};

}  // namespace tether_test
