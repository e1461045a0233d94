// Bearer tokens from the app's own auth service: JWTs, checked by tether-server.
//
//   tether_example_jwt_auth PATH-TO-TETHER-SERVER
//
// tether issues no tokens. Here a small auth service (the app's, not tether's)
// mints HS256 JWTs with libjwt for a signed-in user: `sub` is the user, `iss`
// the service, `exp` an hour on. The example starts a tether-server that takes
// tokens signed with the service's secret (--jwt-hs256-secret-file), and two
// devices of alice sync through it, each asking the auth service for a token
// through its transport's token provider. The laptop first offers a token it
// kept from yesterday: the server answers 401 "token expired", the transport
// asks the provider once for a fresh token and sends again. Exits 0 if both
// devices agree.
#include <tether/tether.hpp>
#include <tether/transport/http.hpp>

#include <jwt.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

/// A recorded job of the dictation app.
struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

namespace {

/// The app's auth service, in miniature: after it has checked who the user is
/// (a password, a passkey, an SSO round trip), it signs a short-lived JWT.
class auth_service {
public:
    auth_service(std::string secret, std::string issuer) : secret_(std::move(secret)), issuer_(std::move(issuer)) {}

    /// A token for `user`, valid from `now + offset` for an hour.
    tether::result<std::string> issue(const std::string& user, std::chrono::seconds offset = {}) const {
        jwt_t* token = nullptr;
        if (jwt_new(&token) != 0) return tether::unexpected{tether::make_error(tether::errc::transient, "jwt_new")};
        const long now = static_cast<long>(std::time(nullptr) + offset.count());
        bool ok = jwt_add_grant(token, "sub", user.c_str()) == 0 && jwt_add_grant(token, "iss", issuer_.c_str()) == 0 &&
                  jwt_add_grant_int(token, "iat", now) == 0 && jwt_add_grant_int(token, "exp", now + 3600) == 0 &&
                  jwt_set_alg(token, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret_.data()),
                              static_cast<int>(secret_.size())) == 0;
        char* text = ok ? jwt_encode_str(token) : nullptr;
        jwt_free(token);
        if (text == nullptr) return tether::unexpected{tether::make_error(tether::errc::transient, "cannot sign")};
        std::string out{text};
        std::free(text);
        return out;
    }

private:
    std::string secret_;
    std::string issuer_;
};

/// tether-server as a child process; `url()` once it printed `listening on HOST:PORT`.
class server_child {
public:
    server_child(const std::string& binary, const std::vector<std::string>& args) {
        int out[2];
        if (::pipe(out) != 0) throw std::runtime_error("pipe");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&actions, out[0]);
        std::vector<char*> argv{const_cast<char*>(binary.c_str())};
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        const int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(out[1]);
        if (rc != 0) throw std::runtime_error("cannot start " + binary);
        // The readiness line; an end of file first means it stopped (its stderr says why).
        std::string line;
        char c = 0;
        while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
        out_ = out[0];  // kept open: the server may write more
        const std::string ready = "listening on ";
        if (line.rfind(ready, 0) != 0) throw std::runtime_error("tether-server did not start");
        url_ = "http://" + line.substr(ready.size());
    }

    ~server_child() {
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        ::close(out_);
    }

    server_child(const server_child&) = delete;
    server_child& operator=(const server_child&) = delete;

    [[nodiscard]] const std::string& url() const { return url_; }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    std::string url_;
};

std::string random_secret() {
    std::random_device rd;
    std::string s;
    for (int i = 0; i < 48; ++i) s += "0123456789abcdef"[rd() % 16];
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: tether_example_jwt_auth PATH-TO-TETHER-SERVER\n";
        return 2;
    }
    try {
        // The secret the auth service signs with and tether-server checks with.
        char dir_template[] = "/tmp/tether-jwt-example-XXXXXX";
        const char* dir = ::mkdtemp(dir_template);
        if (dir == nullptr) throw std::runtime_error("mkdtemp");
        const std::string secret_path = std::string{dir} + "/jwt-secret";
        const std::string secret = random_secret();
        std::ofstream{secret_path} << secret << '\n';
        const std::string issuer = "https://auth.example.com";
        const auth_service auth{secret, issuer};

        server_child server{argv[1], {"--listen", "127.0.0.1:0", "--db", ":memory:", "--jwt-hs256-secret-file",
                                      secret_path, "--jwt-issuer", issuer, "--keep-alive", "1"}};
        std::cout << "tether-server on " << server.url() << ", taking HS256 tokens from " << issuer << "\n";

        auto device = [&](tether::http::token_provider provider) {
            tether::http_options o;
            o.base_url = server.url();
            o.token_provider = std::move(provider);
            return tether::make_engine<Job>(tether::memory_storage{}, tether::http_transport{o});
        };
        int phone_asked = 0;
        auto phone = device([&] {
            ++phone_asked;
            return auth.issue("alice");
        });
        int laptop_asked = 0;
        auto laptop = device([&] {  // yesterday's token first, as a device back from a long sleep has
            return auth.issue("alice", ++laptop_asked == 1 ? std::chrono::hours{-25} : std::chrono::hours{0});
        });

        auto job = phone.create(Job{"Standup memo", 0});
        if (!job) throw std::runtime_error(job.error().message);
        auto up = phone.sync();
        if (!up || up->failure) throw std::runtime_error("the phone's sync failed");
        std::cout << "phone: pushed " << up->pushed << " (asked the auth service " << phone_asked << " time)\n";

        auto down = laptop.sync();
        if (!down || down->failure) throw std::runtime_error("the laptop's sync failed");
        std::cout << "laptop: pulled " << down->pulled << " (asked the auth service " << laptop_asked
                  << " times: its kept token had expired, the server said 401, the fresh one passed)\n";

        auto there = laptop.get(job->id);
        const bool agree = there && there->value.title == "Standup memo" && laptop_asked == 2 && phone_asked == 1;
        std::cout << (agree ? "both devices agree" : "the devices disagree") << "\n";
        std::remove(secret_path.c_str());
        ::rmdir(dir);
        return agree ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "tether_example_jwt_auth: " << e.what() << "\n";
        return 1;
    }
}
