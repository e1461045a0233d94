// Two devices syncing with a plain versioned REST API (docs/rest.md, style
// (b)): `updatedAt`, `version` with If-Match, a delta query by `updatedSince`.
// The API is served here on 127.0.0.1 by a few lines of cpp-httplib, as an
// existing backend would be; tether adds no endpoint to it. Exits 0 when both
// devices hold what the server holds.
#include <tether/tether.hpp>
#include <tether/transport/rest.hpp>

#include <httplib.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>

/// A recorded job, named `audio_path` here and `audioUrl` by the API.
struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress), (std::string, audio_path));
    static constexpr std::string_view collection = "jobs";
};

namespace {

/// The backend: `/v2/tasks` and `/v2/tasks/{id}`, versions and times of its own.
class task_api {
public:
    task_api() {
        server_.Post("/v2/tasks", [this](const httplib::Request& req, httplib::Response& res) {
            std::lock_guard lock{mutex_};
            auto t = nlohmann::json::parse(req.body, nullptr, false);
            if (!t.is_object()) return reply(res, 400, {{"message", "bad json"}});
            const auto id = "t" + std::to_string(++last_id_);
            t["id"] = id;
            t["version"] = 1;
            t["updatedAt"] = tick();
            rows_[id] = t;
            reply(res, 201, t);
        });
        server_.Get("/v2/tasks", [this](const httplib::Request& req, httplib::Response& res) {
            std::lock_guard lock{mutex_};
            const auto since = req.get_param_value("updatedSince");  // same-width ISO times sort as text
            nlohmann::json out = nlohmann::json::array();
            for (const auto& [id, t] : rows_)
                if (t["updatedAt"].get<std::string>() >= since) out.push_back(t);
            std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a["updatedAt"] < b["updatedAt"]; });
            reply(res, 200, out);
        });
        server_.Patch(R"(/v2/tasks/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
            std::lock_guard lock{mutex_};
            auto it = rows_.find(req.matches[1]);
            if (it == rows_.end()) return reply(res, 404, {{"message", "no such task"}});
            auto& t = it->second;
            if (req.get_header_value("If-Match") != "\"" + t["version"].dump() + "\"") return reply(res, 412, t);
            auto patch = nlohmann::json::parse(req.body, nullptr, false);
            if (!patch.is_object()) return reply(res, 400, {{"message", "bad json"}});
            t.update(patch);
            t["version"] = t["version"].get<int>() + 1;
            t["updatedAt"] = tick();
            reply(res, 200, t);
        });
        server_.Get(R"(/v2/tasks/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
            std::lock_guard lock{mutex_};
            auto it = rows_.find(req.matches[1]);
            if (it == rows_.end()) return reply(res, 404, {{"message", "no such task"}});
            reply(res, 200, it->second);
        });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread{[this] { server_.listen_after_bind(); }};
        while (!server_.is_running()) std::this_thread::yield();
    }
    ~task_api() {
        server_.stop();
        thread_.join();
    }
    [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    [[nodiscard]] std::map<std::string, nlohmann::json> rows() {
        std::lock_guard lock{mutex_};
        return rows_;
    }

private:
    static void reply(httplib::Response& res, int status, const nlohmann::json& body) {
        res.status = status;
        res.set_content(body.dump(), "application/json");
    }
    std::string tick() {  // the server's own clock: one millisecond per change
        char buf[48];
        ++ms_;
        std::snprintf(buf, sizeof buf, "2026-12-03T10:00:%02d.%03dZ", static_cast<int>(ms_ / 1000 % 60),
                      static_cast<int>(ms_ % 1000));
        return buf;
    }

    httplib::Server server_;
    std::thread thread_;
    int port_ = 0;
    std::mutex mutex_;
    std::map<std::string, nlohmann::json> rows_;
    int last_id_ = 0;
    long ms_ = 0;
};

/// How the API's tasks map onto tether's jobs.
tether::rest_mapping tasks() {
    tether::rest_mapping m;
    m.collection = "jobs";
    m.collection_url = "/v2/tasks";
    m.item_url = "/v2/tasks/{id}";
    m.version_field = "version";
    m.send_version = tether::rest_version_send::if_match;
    // An API whose ETags are opaque text instead of a version field:
    // m.opaque_etag = true (the tag goes back in If-Match; docs/rest.md, "Opaque ETags").
    m.updated_at_field = "updatedAt";
    m.renames = {{"audio_path", "audioUrl"}};
    m.listing = tether::rest_listing::delta_query;
    m.since_param = "updatedSince";
    return m;
}

}  // namespace

int main() {
    task_api api;
    tether::rest_options o;
    o.http.base_url = api.url();
    o.collections.push_back(tasks());
    auto phone = tether::make_engine<Job>(tether::rest_transport{o}, tether::manual_clock{},
                                          tether::engine_options{.id_seed = 1});
    auto laptop = tether::make_engine<Job>(tether::rest_transport{o}, tether::manual_clock{},
                                           tether::engine_options{.id_seed = 2});

    auto memo = phone.create(Job{"Standup memo", 0, "memo.m4a"}).value();
    auto up = phone.sync();
    std::cout << "phone pushed " << (up ? up->pushed : 0) << "; the API holds " << api.rows().size() << " task(s)\n";
    (void)laptop.sync();
    auto there = laptop.list().value();
    if (there.size() != 1) return 1;
    std::cout << "laptop pulled '" << there[0].value.title << "' (" << there[0].value.audio_path << ")\n";

    (void)laptop.update(there[0].id, [](Job& j) { j.progress = 100; });
    (void)laptop.sync();
    (void)phone.update(memo.id, [](Job& j) { j.title = "Standup memo (final)"; });  // based on version 1: stale
    auto conflict = phone.sync();
    std::cout << "phone: " << (conflict ? conflict->conflicts : 0) << " conflict(s), settled by the policy (server wins)\n";
    (void)laptop.sync();

    const auto a = phone.get(memo.id).value().value;
    const auto b = laptop.get(there[0].id).value().value;
    const auto row = api.rows().begin()->second;
    std::cout << "phone: '" << a.title << "' " << a.progress << "%; laptop: '" << b.title << "' " << b.progress
              << "%; API: '" << row["title"].get<std::string>() << "' " << row["progress"] << "% v" << row["version"]
              << "\n";
    const bool agree = a.title == b.title && a.progress == b.progress && row["title"] == a.title &&
                       row["progress"] == a.progress;
    return agree ? 0 : 1;
}
