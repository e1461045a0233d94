#pragma once

// Two REST APIs that know nothing of tether, on 127.0.0.1 with cpp-httplib,
// in the two common styles rest_transport is proven against:
// (a) minimal_api: POST/PATCH/DELETE/GET list, integer ids chosen by the
//     server (a `clientId` field and filter when asked) or string ids chosen
//     by the client (a duplicate answered 500 or 409), no versions, no change
//     feed, optionally paged by offset;
// (b) versioned_api: `updatedAt` (ISO 8601, ms), `version` with `If-Match`
//     and 412 with the current copy, ETag, soft delete (`deletedAt`) listed
//     with `includeDeleted=true`, `Idempotency-Key`, a delta query by
//     `updatedSince` (inclusive), sorted by (updatedAt, id), paged by cursor
//     or not, with an `afterId` tie-breaker; its clock is the test's. Or
//     with opaque ETags (in the header, the body or neither), the version
//     checked in a PATCH's body, `updatedAt` in unix ms or seconds.
// (Free of Catch, so a benchmark can serve them too.)
// Both can lose the answer of the next write (applied, then the connection
// closes mid-answer) and change records behind every client's back.
#include <tether/transport/rest/fields.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tether_test {

/// A cpp-httplib server on a free port of 127.0.0.1, run on its own thread.
class rest_server_base {
public:
    rest_server_base() = default;
    rest_server_base(const rest_server_base&) = delete;
    rest_server_base& operator=(const rest_server_base&) = delete;
    virtual ~rest_server_base() { stop(); }

    [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    /// Requests served (every method).
    [[nodiscard]] std::size_t requests() const {
        std::lock_guard lock{mutex_};
        return requests_;
    }
    /// The answer of a coming write (POST, PUT, PATCH, DELETE; the next after
    /// `skip` others) is lost: the write is applied, then the connection closes
    /// mid-answer.
    void lose_next_answer(std::size_t skip = 0) {
        std::lock_guard lock{mutex_};
        lose_next_ = true;
        lose_skip_ = skip;
    }

protected:
    using handler = std::function<void(const httplib::Request&, httplib::Response&)>;

    void start(handler h) {
        auto wrapped = [this, h](const httplib::Request& req, httplib::Response& res) {
            bool lose = false;
            {
                std::lock_guard lock{mutex_};
                ++requests_;
                if (req.method != "GET" && lose_next_) {
                    if (lose_skip_ == 0) lose = std::exchange(lose_next_, false);
                    else --lose_skip_;
                }
            }
            h(req, res);
            if (lose) {  // applied; the answer never arrives whole
                const std::size_t n = res.body.size() + 64;
                res.body.clear();
                res.set_content_provider(n, "application/json",
                                         [](std::size_t, std::size_t, httplib::DataSink&) { return false; });
            }
        };
        server_.Get(".*", wrapped);
        server_.Post(".*", wrapped);
        server_.Put(".*", wrapped);
        server_.Patch(".*", wrapped);
        server_.Delete(".*", wrapped);
        server_.set_tcp_nodelay(true);  // no Nagle delay on small answers (a request per op)
        port_ = server_.bind_to_any_port("127.0.0.1");
        if (port_ <= 0) throw std::runtime_error{"the REST server cannot bind 127.0.0.1"};
        thread_ = std::thread{[this] { server_.listen_after_bind(); }};
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};  // bounded poll
        while (!server_.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        if (!server_.is_running()) {
            server_.stop();
            thread_.join();
            throw std::runtime_error{"the REST server did not start within 10 s"};
        }
        // Warm-up on a closing connection (see scripted_server.hpp: TSan and Debian's httplib).
        httplib::Client c{"127.0.0.1", port_};
        c.set_keep_alive(false);
        (void)c.Get("/__warm_up");
    }

    void stop() {
        if (!thread_.joinable()) return;
        server_.stop();
        thread_.join();
    }

    static void answer(httplib::Response& res, int status, const nlohmann::json& body) {
        res.status = status;
        if (!body.is_null()) res.set_content(body.dump(), "application/json");
    }

    static nlohmann::json body_of(const httplib::Request& req) {
        return nlohmann::json::parse(req.body, nullptr, false);
    }

    mutable std::mutex mutex_;  // guards the store of the derived server too

private:
    httplib::Server server_;
    std::thread thread_;
    int port_ = -1;
    std::size_t requests_ = 0;
    bool lose_next_ = false;
    std::size_t lose_skip_ = 0;
};

/// How a minimal_api behaves.
struct minimal_options {
    bool client_ids = false;         // string ids chosen by the client (else integers chosen here)
    int duplicate_status = 500;      // a POST of an id held already
    bool store_client_id = false;    // integer ids: keep `clientId` and filter by `?clientId=`
    bool paged = false;              // `?limit=&offset=` (else the whole list)
};

/// Style (a): `/api/jobs`, `/api/jobs/{id}`; no versions, no change feed.
class minimal_api : public rest_server_base {
public:
    using options = minimal_options;

    explicit minimal_api(options o = {}) : o_(o) {
        start([this](const httplib::Request& req, httplib::Response& res) { serve(req, res); });
    }
    ~minimal_api() override { stop(); }

    /// The records held, by id.
    std::map<std::string, nlohmann::json> records() const {
        std::lock_guard lock{mutex_};
        return rows_;
    }
    /// A change by another writer (an admin, another client), behind tether's back.
    void edit(const std::string& id, const std::string& field, nlohmann::json v) {
        std::lock_guard lock{mutex_};
        rows_.at(id)[field] = std::move(v);
    }
    /// A deletion by another writer.
    void erase(const std::string& id) {
        std::lock_guard lock{mutex_};
        rows_.erase(id);
    }
    /// Inserts a record made elsewhere; its id.
    std::string insert(nlohmann::json row) {
        std::lock_guard lock{mutex_};
        const auto id = o_.client_ids ? row.at("id").get<std::string>() : std::to_string(next_id_++);
        row["id"] = o_.client_ids ? nlohmann::json(id) : nlohmann::json(std::stoll(id));
        rows_[id] = std::move(row);
        return id;
    }

private:
    void serve(const httplib::Request& req, httplib::Response& res) {
        std::lock_guard lock{mutex_};
        const std::string base = "/api/jobs";
        if (req.path == base && req.method == "GET") return list(req, res);
        if (req.path == base && req.method == "POST") return create(req, res);
        if (req.path.rfind(base + "/", 0) != 0) return answer(res, 404, {{"error", "no route"}});
        const auto id = req.path.substr(base.size() + 1);
        auto it = rows_.find(id);
        if (req.method == "PUT") {  // create at a client-chosen id, or replace the whole record
            auto b = body_of(req);
            if (!b.is_object() || !b.contains("title")) return answer(res, 422, {{"error", "title is required"}});
            if (it != rows_.end() && req.get_header_value("If-None-Match") == "*")
                return answer(res, 412, {{"error", "exists"}});
            b["id"] = o_.client_ids ? nlohmann::json(id) : it == rows_.end() ? nlohmann::json(id) : it->second["id"];
            const bool made = it == rows_.end();
            rows_[id] = b;
            return answer(res, made ? 201 : 200, b);
        }
        if (it == rows_.end()) return answer(res, 404, {{"error", "not found"}});
        if (req.method == "GET") return answer(res, 200, it->second);
        if (req.method == "DELETE") {
            rows_.erase(it);
            return answer(res, 204, nullptr);
        }
        if (req.method == "PATCH") {
            auto b = body_of(req);
            if (!b.is_object()) return answer(res, 400, {{"error", "bad json"}});
            for (auto f = b.begin(); f != b.end(); ++f)
                if (f.key() != "id") it->second[f.key()] = *f;
            return answer(res, 200, it->second);
        }
        answer(res, 405, {{"error", "method"}});
    }

    void create(const httplib::Request& req, httplib::Response& res) {
        auto b = body_of(req);
        if (!b.is_object() || !b.contains("title")) return answer(res, 422, {{"error", "title is required"}});
        if (!o_.store_client_id) b.erase("clientId");
        if (o_.client_ids) {
            if (!b.contains("id") || !b["id"].is_string()) return answer(res, 400, {{"error", "id required"}});
            const auto id = b["id"].get<std::string>();
            if (rows_.contains(id)) return answer(res, o_.duplicate_status, {{"error", "duplicate key"}});
            rows_[id] = b;
        } else {
            const auto id = next_id_++;
            b["id"] = id;
            rows_[std::to_string(id)] = b;
        }
        answer(res, 201, b);
    }

    void list(const httplib::Request& req, httplib::Response& res) {
        nlohmann::json out = nlohmann::json::array();
        std::vector<const nlohmann::json*> rows;
        for (const auto& [id, r] : rows_) rows.push_back(&r);
        if (!o_.client_ids) {  // by integer id
            std::sort(rows.begin(), rows.end(),
                      [](const nlohmann::json* a, const nlohmann::json* b) { return (*a)["id"] < (*b)["id"]; });
        }
        const auto want = req.get_param_value("clientId");
        std::size_t offset = 0, limit = rows.size();
        if (o_.paged && req.has_param("limit")) {
            limit = std::stoul(req.get_param_value("limit"));
            offset = req.has_param("offset") ? std::stoul(req.get_param_value("offset")) : 0;
        }
        for (std::size_t i = offset; i < rows.size() && i < offset + limit; ++i) {
            if (!want.empty() && rows[i]->value("clientId", "") != want) continue;
            out.push_back(*rows[i]);
        }
        answer(res, 200, out);
    }

    options o_;
    std::map<std::string, nlohmann::json> rows_;
    std::int64_t next_id_ = 1;
};

/// How a versioned_api behaves.
struct versioned_options {
    bool cursor_paging = true;     // `nextCursor` in the answer (else only `limit`, and `afterId`)
    bool require_if_match = true;  // a write without If-Match is 428 (else it skips the check)
    bool next_links = false;       // with cursor paging: `links.next`, an absolute URL, instead of `nextCursor`
    bool tick = false;             // the clock moves 1 ms at every write (else only when the test moves it)
    bool opaque_etags = false;     // ETags are opaque text (`W/"t000001-9e3779b1"`), not the version
    bool etag_header = true;       // answers of one record carry the ETag header (else none: a broken server)
    bool etag_in_body = false;     // every record shown holds its ETag in `etag` too (lists included)
    bool version_in_body = false;  // a PATCH is conditional on the `version` in its body (else If-Match)
    tether::rest_time_format time_format = tether::rest_time_format::iso8601;  // of updatedAt and updatedSince
};

/// Style (b): `/v2/tasks`, `/v2/tasks/{id}`; versions, `updatedAt`, soft deletes, a delta query.
class versioned_api : public rest_server_base {
public:
    using options = versioned_options;

    explicit versioned_api(options o = {}) : o_(o) {
        start([this](const httplib::Request& req, httplib::Response& res) { serve(req, res); });
    }
    ~versioned_api() override { stop(); }

    /// The server's clock, in milliseconds (the test moves it; frozen, many records share one time).
    void set_time(std::int64_t ms) {
        std::lock_guard lock{mutex_};
        now_ms_ = ms;
    }
    void advance(std::int64_t ms) {
        std::lock_guard lock{mutex_};
        now_ms_ += ms;
    }
    std::map<std::string, nlohmann::json> records() const {
        std::lock_guard lock{mutex_};
        return rows_;
    }
    /// Live (not soft-deleted) records.
    std::size_t live() const {
        std::lock_guard lock{mutex_};
        std::size_t n = 0;
        for (const auto& [id, r] : rows_) n += r["deletedAt"].is_null() ? 1 : 0;
        return n;
    }
    /// A change by another writer: a new version and time.
    void edit(const std::string& id, const std::string& field, nlohmann::json v) {
        std::lock_guard lock{mutex_};
        auto& r = rows_.at(id);
        r[field] = std::move(v);
        touch(r);
    }
    /// The ETag a record has now, as the server writes it.
    std::string etag(const std::string& id) const {
        std::lock_guard lock{mutex_};
        return tag_of(rows_.at(id));
    }
    /// A soft delete by another writer.
    void erase(const std::string& id) {
        std::lock_guard lock{mutex_};
        auto& r = rows_.at(id);
        r["deletedAt"] = iso(now_ms_);
        touch(r);
    }
    /// A record made elsewhere; its id.
    std::string insert(nlohmann::json row) {
        std::lock_guard lock{mutex_};
        return add(std::move(row));
    }
    /// Answers (lists and fetches) show `field` of the record as `shown`, a
    /// value of the wrong shape: a broken row, as a bad migration leaves one.
    /// The row itself keeps its order in the list.
    void show_broken(const std::string& id, const std::string& field, nlohmann::json shown) {
        std::lock_guard lock{mutex_};
        broken_[id] = {field, std::move(shown)};
    }
    /// The record is shown as it is again (the row was repaired).
    void repair(const std::string& id) {
        std::lock_guard lock{mutex_};
        broken_.erase(id);
    }

private:
    static std::string iso(std::int64_t ms) {
        const std::time_t secs = static_cast<std::time_t>(ms / 1000);
        std::tm tm{};
        gmtime_r(&secs, &tm);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
        return buf;
    }
    /// The time as this server writes it (its format).
    nlohmann::json stamp(std::int64_t ms) const {
        if (o_.time_format == tether::rest_time_format::unix_ms) return ms;
        if (o_.time_format == tether::rest_time_format::unix_s) return static_cast<double>(ms) / 1000.0;
        return iso(ms);
    }
    std::int64_t time_of(const nlohmann::json& t) const { return tether::rest::parse_time(t, o_.time_format)->ns; }
    std::string tag_of(const nlohmann::json& r) const {
        const auto v = r["version"].get<std::uint64_t>();
        if (!o_.opaque_etags) return "\"" + std::to_string(v) + "\"";
        char h[16];
        std::snprintf(h, sizeof h, "%08x", static_cast<unsigned>((v * 2654435761u) & 0xffffffffu));
        return "W/\"" + r["id"].get<std::string>() + "-" + h + "\"";
    }
    /// A record as answers show it.
    nlohmann::json shown(const nlohmann::json& r) const {
        auto out = r;
        if (auto b = broken_.find(r["id"].get<std::string>()); b != broken_.end()) out[b->second.first] = b->second.second;
        if (o_.etag_in_body) out["etag"] = tag_of(r);
        return out;
    }
    void tick() {
        if (o_.tick) ++now_ms_;
    }
    void touch(nlohmann::json& r) {
        tick();
        r["version"] = r["version"].get<std::uint64_t>() + 1;
        r["updatedAt"] = stamp(now_ms_);
    }
    std::string add(nlohmann::json row) {
        tick();
        char id[32];
        std::snprintf(id, sizeof id, "t%06d", next_id_++);
        row["id"] = id;
        row["version"] = 1;
        row["updatedAt"] = stamp(now_ms_);
        row["createdAt"] = iso(now_ms_);
        row["deletedAt"] = nullptr;
        if (!row.contains("title") || row["title"] == "") row["title"] = "untitled";  // a default the server fills in
        rows_[id] = row;
        return id;
    }
    void with_etag(httplib::Response& res, const nlohmann::json& r, int status = 200) const {
        if (o_.etag_header) res.set_header("ETag", tag_of(r));
        answer(res, status, shown(r));
    }

    void serve(const httplib::Request& req, httplib::Response& res) {
        std::lock_guard lock{mutex_};
        const std::string base = "/v2/tasks";
        if (req.path == base && req.method == "GET") return list(req, res);
        if (req.path == base && req.method == "POST") {
            auto b = body_of(req);
            if (!b.is_object()) return answer(res, 400, {{"message", "bad json"}});
            const auto key = req.get_header_value("Idempotency-Key");
            if (!key.empty()) {
                if (auto k = keys_.find(key); k != keys_.end()) return with_etag(res, rows_.at(k->second), 201);
            }
            const auto id = add(std::move(b));
            if (!key.empty()) keys_[key] = id;
            return with_etag(res, rows_.at(id), 201);
        }
        if (req.path.rfind(base + "/", 0) != 0) return answer(res, 404, {{"message", "no route"}});
        const auto id = req.path.substr(base.size() + 1);
        auto it = rows_.find(id);
        if (it == rows_.end()) return answer(res, 404, {{"message", "not found"}});
        auto& r = it->second;
        if (!r["deletedAt"].is_null()) return answer(res, 410, {{"message", "deleted"}});
        if (req.method == "GET") return with_etag(res, r);
        const auto if_match = req.get_header_value("If-Match");
        const bool by_body = o_.version_in_body && req.method == "PATCH";
        if (if_match.empty() && o_.require_if_match && !by_body)
            return answer(res, 428, {{"message", "If-Match required"}});
        if (!if_match.empty() && if_match != tag_of(r)) return with_etag(res, r, 412);  // the current copy
        if (by_body) {
            const auto b = body_of(req);
            if (!b.is_object() || !b.contains("version")) return answer(res, 428, {{"message", "version required"}});
            if (b["version"] != r["version"]) return with_etag(res, r, 412);
        }
        if (req.method == "DELETE") {
            r["deletedAt"] = iso(now_ms_);
            touch(r);
            return answer(res, 204, nullptr);
        }
        if (req.method == "PATCH") {
            auto b = body_of(req);
            if (!b.is_object()) return answer(res, 400, {{"message", "bad json"}});
            for (auto f = b.begin(); f != b.end(); ++f) {
                if (f.key() == "id" || f.key() == "version" || f.key() == "updatedAt" || f.key() == "etag") continue;
                if (f.value().is_object() && r[f.key()].is_object()) r[f.key()].update(*f);
                else r[f.key()] = *f;
            }
            touch(r);
            return with_etag(res, r);
        }
        answer(res, 405, {{"message", "method"}});
    }

    // GET /v2/tasks?updatedSince=&sort=updatedAt,id&includeDeleted=true&limit=&cursor=&afterId=
    void list(const httplib::Request& req, httplib::Response& res) {
        std::vector<std::pair<std::pair<std::int64_t, std::string>, const nlohmann::json*>> rows;
        std::int64_t since = -1;
        if (req.has_param("updatedSince")) {
            const auto text = req.get_param_value("updatedSince");
            const auto j = o_.time_format == tether::rest_time_format::iso8601 ? nlohmann::json(text)
                                                                              : nlohmann::json::parse(text, nullptr, false);
            auto t = tether::rest::parse_time(j, o_.time_format);
            if (!t) return answer(res, 400, {{"message", "bad updatedSince"}});
            since = t->ns;
        }
        const bool deleted = req.get_param_value("includeDeleted") == "true";
        const auto after = req.get_param_value("afterId");
        const auto client = req.get_param_value("clientId");  // a client-id field, when clients keep one
        auto key = [this](const nlohmann::json& r) { return time_of(r["updatedAt"]); };
        for (const auto& [id, r] : rows_) {
            if (!deleted && !r["deletedAt"].is_null()) continue;
            if (!client.empty() && r.value("clientId", "") != client) continue;
            const auto k = key(r);
            if (k < since) continue;
            if (!after.empty() && k == since && id <= after) continue;
            rows.push_back({{k, id}, &r});
        }
        std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        std::size_t limit = req.has_param("limit") ? std::stoul(req.get_param_value("limit")) : 50;
        std::size_t from = 0;
        if (o_.cursor_paging && req.has_param("cursor")) from = std::stoul(req.get_param_value("cursor"));
        nlohmann::json out{{"data", nlohmann::json::array()}, {"nextCursor", nullptr}};
        for (std::size_t i = from; i < rows.size() && i < from + limit; ++i) out["data"].push_back(shown(*rows[i].second));
        if (o_.cursor_paging && from + limit < rows.size()) {
            if (!o_.next_links) {
                out["nextCursor"] = std::to_string(from + limit);
            } else {
                std::string link = url() + "/v2/tasks?cursor=" + std::to_string(from + limit);
                for (const auto& [k, v] : req.params)
                    if (k != "cursor") link += "&" + k + "=" + httplib::detail::encode_query_param(v);
                out.erase("nextCursor");
                out["links"]["next"] = link;
            }
        }
        answer(res, 200, out);
    }

    options o_;
    std::map<std::string, nlohmann::json> rows_;
    std::map<std::string, std::string> keys_;
    std::map<std::string, std::pair<std::string, nlohmann::json>> broken_;  // id: the field shown wrong, as what
    int next_id_ = 1;
    std::int64_t now_ms_ = 1'780'000'000'000;
};

}  // namespace tether_test
