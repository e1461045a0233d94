// A scripted world for the engine's hostile tests: a loopback server behind a
// transport whose requests and answers a test may rewrite, and devices on one
// manual clock. Shared by test_engine_hostile.cpp and test_engine_restore.cpp.
#pragma once

#include "support/entities.hpp"

#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hostile_test {

using tether_test::Job;
/// A transport over a loopback server whose requests and answers a test may
/// rewrite: the shape of a real server that does not follow our model.
struct scripted_transport {
    using policy_kind = tether::transport_tag;

    struct script {
        std::function<void(std::vector<tether::push_op>&)> before_push;  // rewrite the ops the server sees
        std::function<tether::result<std::vector<tether::push_outcome>>(std::span<const tether::push_op>)> refuse;
        std::function<void(std::vector<tether::push_outcome>&)> after_push;  // rewrite its answer
        std::function<void(tether::pull_page&)> after_pull;                   // rewrite a page
        std::function<void(tether::server_record&)> after_fetch;              // rewrite a fetched record
        std::function<std::optional<tether::error>()> pull_fails;            // fail a pull
        std::size_t pushes = 0;
        std::size_t pulls = 0;
        std::size_t fetches = 0;
    };

    tether::loopback_transport inner;
    std::shared_ptr<script> s = std::make_shared<script>();

    tether::result<std::vector<tether::push_outcome>> push(std::string_view collection,
                                                           std::span<const tether::push_op> ops) {
        ++s->pushes;
        if (s->refuse) {
            if (auto r = s->refuse(ops); !r || !r->empty()) return r;
        }
        std::vector<tether::push_op> sent(ops.begin(), ops.end());
        if (s->before_push) s->before_push(sent);
        auto out = inner.push(collection, sent);
        if (out && s->after_push) s->after_push(*out);
        return out;
    }
    tether::result<tether::pull_page> pull(std::string_view collection, std::string_view cursor, std::size_t limit) {
        ++s->pulls;
        if (s->pull_fails) {
            if (auto e = s->pull_fails()) return tether::unexpected{*e};
        }
        auto page = inner.pull(collection, cursor, limit);
        if (page && s->after_pull) s->after_pull(*page);
        return page;
    }
    tether::result<tether::server_record> fetch(std::string_view collection, std::string_view server_id) {
        ++s->fetches;
        auto got = inner.fetch(collection, server_id);
        if (got && s->after_fetch) s->after_fetch(*got);
        return got;
    }
    [[nodiscard]] std::size_t max_batch() const { return inner.max_batch(); }
    [[nodiscard]] bool has_change_feed() const { return inner.has_change_feed(); }
};

struct world {
    tether::manual_clock clock;
    tether::loopback_server server{[c = clock] { return c.now(); }};

    scripted_transport transport(std::string user = "alice", std::size_t max_batch = 100) {
        return scripted_transport{tether::loopback_transport{server, std::move(user), max_batch}};
    }
    template <class... Extra>
    auto device(scripted_transport t, Extra... extra) {
        return tether::make_engine<Job>(tether::memory_storage{}, std::move(t), clock, extra...);
    }
    template <class... Extra>
    auto plain_device(Extra... extra) {
        return tether::make_engine<Job>(tether::memory_storage{}, tether::loopback_transport{server, "alice"}, clock,
                                        extra...);
    }
    std::vector<tether::server_record> on_server() const { return server.records("alice", "jobs"); }
};

template <class Engine>
tether::record<Job> reload(Engine& e, const tether::local_id& id) {
    auto r = e.get(id);
    REQUIRE(r);
    return *r;
}

template <class Engine>
std::size_t local_count(Engine& e) {
    auto all = e.list();
    REQUIRE(all);
    return all->size();
}

}  // namespace hostile_test
