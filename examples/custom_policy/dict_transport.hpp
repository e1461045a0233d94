#pragma once

// A minimal transport, written from <tether/transport/transport.hpp> alone,
// with the smallest server that keeps the protocol's rules behind it: records
// in a map per collection, one change counter as the cursor, creates
// idempotent on the local id, versions checked, tombstones kept, the pushing
// device's origin kept with each change. A real transport talks to a server
// over a network; this one calls it in-process, which is all a test of the
// rules needs.
#include <tether/transport/transport.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace custom {

/// The server: shared by every transport made from it.
class dict_server {
public:
    std::vector<tether::push_outcome> push(std::string_view collection, std::span<const tether::push_op> ops) {
        std::lock_guard lock{mutex_};
        auto& c = collections_[std::string{collection}];
        std::vector<tether::push_outcome> out;
        for (const auto& op : ops) out.push_back(apply(c, op));
        return out;
    }

    tether::pull_page pull(std::string_view collection, std::string_view cursor, std::size_t limit) {
        std::lock_guard lock{mutex_};
        auto& c = collections_[std::string{collection}];
        const std::uint64_t after = cursor.empty() ? 0 : std::stoull(std::string{cursor});
        tether::pull_page page;
        page.next_cursor = std::string{cursor};
        auto it = c.changes.upper_bound(after);
        for (std::size_t n = 0; it != c.changes.end() && n < std::max<std::size_t>(limit, 1); ++it, ++n) {
            const auto& e = c.records.at(it->second);
            if (e.deleted) page.tombstones.push_back({e.rec.server_id, e.rec.id, e.rec.version});
            else page.records.push_back(e.rec);
            page.next_cursor = std::to_string(it->first);
        }
        page.has_more = it != c.changes.end();
        return page;
    }

    tether::result<tether::server_record> fetch(std::string_view collection, std::string_view server_id) {
        std::lock_guard lock{mutex_};
        auto& c = collections_[std::string{collection}];
        auto it = c.records.find(std::string{server_id});
        if (it == c.records.end() || it->second.deleted) {
            return tether::unexpected{tether::make_error(tether::errc::not_found, "no record")};
        }
        return it->second.rec;
    }

private:
    struct entry {
        tether::server_record rec;
        bool deleted = false;
        std::uint64_t created_version = 0;
    };
    struct collection {
        std::uint64_t seq = 0;
        std::map<std::string, entry> records;               // by server id
        std::map<tether::local_id, std::string> by_local;   // local id -> server id
        std::map<std::uint64_t, std::string> changes;       // version -> server id
    };

    static void bump(collection& c, entry& e) {
        c.changes.erase(e.rec.version);
        e.rec.version = ++c.seq;
        c.changes.emplace(e.rec.version, e.rec.server_id);
    }
    static tether::push_outcome conflict(const entry& e) { return {tether::push_outcome::kind::conflict, e.rec, {}}; }
    static tether::push_outcome not_found() {
        return {tether::push_outcome::kind::rejected, {}, tether::make_error(tether::errc::not_found, "no record")};
    }

    tether::push_outcome apply(collection& c, const tether::push_op& op) {
        entry* e = nullptr;
        if (op.server_id) {
            if (auto it = c.records.find(*op.server_id); it != c.records.end()) e = &it->second;
        } else if (auto l = c.by_local.find(op.id); l != c.by_local.end()) {
            e = &c.records.at(l->second);
        }
        const bool version_ok = e && (op.base_version == e->rec.version || (op.base_version == 0 && !op.server_id));
        switch (op.kind) {
            case tether::op_kind::create: {
                if (e) {  // a replay: the record held since the first create
                    if (e->deleted) return not_found();
                    tether::push_outcome o = e->rec.version == e->created_version
                                                 ? tether::push_outcome{tether::push_outcome::kind::applied, e->rec, {}}
                                                 : conflict(*e);
                    o.replayed = true;
                    return o;
                }
                const std::string sid = "d" + std::to_string(++next_id_);
                entry fresh{{sid, op.id, 0, op.value, std::nullopt, op.origin}, false, 0};
                auto& n = c.records.emplace(sid, std::move(fresh)).first->second;
                c.by_local.emplace(op.id, sid);
                bump(c, n);
                n.created_version = n.rec.version;
                return {tether::push_outcome::kind::applied, n.rec, {}};
            }
            case tether::op_kind::update:
                if (!e || e->deleted) return not_found();
                if (!version_ok) return conflict(*e);
                for (const auto& [k, v] : op.value.items()) e->rec.value[k] = v;
                e->rec.origin = op.origin;
                bump(c, *e);
                return {tether::push_outcome::kind::applied, e->rec, {}};
            case tether::op_kind::remove:
                if (!e || e->deleted) return {tether::push_outcome::kind::applied, e ? e->rec : tether::server_record{}, {}};
                if (!version_ok) return conflict(*e);
                e->deleted = true;
                e->rec.origin = op.origin;
                bump(c, *e);
                return {tether::push_outcome::kind::applied, e->rec, {}};
            case tether::op_kind::append: break;  // never sent: this transport has no `carries_append_ops`
        }
        return not_found();
    }

    std::mutex mutex_;
    std::map<std::string, collection, std::less<>> collections_;
    std::uint64_t next_id_ = 0;
};

/// The transport policy: a handle to a server (copies share it).
struct dict_transport {
    using policy_kind = tether::transport_tag;
    std::shared_ptr<dict_server> server = std::make_shared<dict_server>();

    tether::result<std::vector<tether::push_outcome>> push(std::string_view collection,
                                                           std::span<const tether::push_op> ops) {
        if (ops.size() > max_batch()) {
            return tether::unexpected{tether::error{tether::errc::too_large, "batch too large", 413, std::nullopt}};
        }
        return server->push(collection, ops);
    }
    tether::result<tether::pull_page> pull(std::string_view collection, std::string_view cursor, std::size_t limit) {
        return server->pull(collection, cursor, limit);
    }
    tether::result<tether::server_record> fetch(std::string_view collection, std::string_view server_id) {
        return server->fetch(collection, server_id);
    }
    [[nodiscard]] std::size_t max_batch() const { return 50; }
    [[nodiscard]] bool has_change_feed() const { return true; }
};

}  // namespace custom
