// A transaction that rolls back changed nothing: no watcher, hook or cleanup
// hears of the writes it undid.
#include "support/entities.hpp"

#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

using tether_test::Job;

namespace {

/// memory_storage whose writes of a record titled "bad" fail (a full disk, say).
struct flaky_storage {
    using policy_kind = tether::storage_tag;
    tether::memory_storage inner;

    template <class E>
    class rebind {
    public:
        class transaction {
        public:
            explicit transaction(typename tether::memory_store<E>::transaction& tx) : tx_(tx) {}
            tether::result<std::optional<tether::record<E>>> get(const tether::local_id& id) const { return tx_.get(id); }
            tether::result<std::optional<tether::record<E>>> find_by_server_id(std::string_view sid) const {
                return tx_.find_by_server_id(sid);
            }
            tether::result<void> put(const tether::record<E>& r) {
                if (r.value.title == "bad") return tether::unexpected{tether::make_error(tether::errc::storage, "disk full")};
                return tx_.put(r);
            }
            tether::result<void> erase(const tether::local_id& id) { return tx_.erase(id); }
            tether::result<std::optional<std::string>> get_meta(std::string_view key) const { return tx_.get_meta(key); }
            tether::result<void> set_meta(std::string_view key, std::string value) {
                return tx_.set_meta(key, std::move(value));
            }

        private:
            typename tether::memory_store<E>::transaction& tx_;
        };

        explicit rebind(const flaky_storage& p) : store_(p.inner) {}
        template <class F>
        tether::result<void> transact(F&& f) {
            return store_.transact([&](auto& tx) {
                transaction wrapped{tx};
                return f(wrapped);
            });
        }
        auto get(const tether::local_id& id) const { return store_.get(id); }
        auto find_by_server_id(std::string_view sid) const { return store_.find_by_server_id(sid); }
        auto list() const { return store_.list(); }
        auto due(tether::timestamp now, std::size_t limit) const { return store_.due(now, limit); }
        auto counts() const { return store_.counts(); }
        auto earliest_next_attempt() const { return store_.earliest_next_attempt(); }
        auto get_meta(std::string_view key) const { return store_.get_meta(key); }

    private:
        tether::memory_store<E> store_;
    };
};

}  // namespace

TEST_CASE("a pull page that fails half-way is rolled back and nobody hears of it", "[engine][storage]") {
    tether::manual_clock clock;
    tether::loopback_server server{[clock] { return clock.now(); }};
    REQUIRE(server.put("alice", "jobs", "", {{"title", "good"}, {"progress", 1}, {"audio_path", ""}}));
    REQUIRE(server.put("alice", "jobs", "", {{"title", "bad"}, {"progress", 2}, {"audio_path", ""}}));
    auto dev = tether::make_engine<Job>(flaky_storage{}, tether::loopback_transport{server, "alice"}, clock);
    int changes = 0;
    int transitions = 0;
    auto sub = dev.watch([&](const tether::change<Job>&) { ++changes; });
    dev.on_transition([&](const tether::transition&) { ++transitions; });

    auto rep = dev.pull();
    REQUIRE_FALSE(rep);
    REQUIRE(rep.error().code == tether::errc::storage);
    REQUIRE(dev.list()->empty());      // the good record's insert was undone...
    REQUIRE(changes == 0);             // ...and no watcher saw it
    REQUIRE(transitions == 0);
    REQUIRE_FALSE(dev.store().get_meta("pull_cursor").value());  // the cursor did not move either
}

TEST_CASE("an update whose write fails leaves the record as it was", "[engine][storage]") {
    // flaky_storage has no peek/edit: the engine reads a copy and puts the result.
    auto dev = tether::make_engine<Job>(flaky_storage{}, tether::manual_clock{});
    auto job = dev.create(Job{"good", 0, "/a"}).value();
    int changes = 0;
    auto sub = dev.watch([&](const tether::change<Job>&) { ++changes; });

    auto ok = dev.update(job.id, [](Job& j) { j.progress = 5; });
    REQUIRE(ok);
    CHECK(ok->local_rev == 2);
    CHECK(ok->dirty == tether::field_set{"progress"});
    CHECK((dev.get(job.id).value() == *ok));
    CHECK(changes == 1);

    auto bad = dev.update(job.id, [](Job& j) { j.title = "bad"; });
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == tether::errc::storage);
    CHECK((dev.get(job.id).value() == *ok));
    CHECK(changes == 1);
}

TEST_CASE("an update whose function throws leaves the record as it was", "[engine][storage]") {
    // memory_storage offers edit(): the engine changes the stored record in place.
    auto dev = tether::make_engine<Job>(tether::memory_storage{}, tether::manual_clock{});
    auto job = dev.create(Job{"memo", 0, "/a"}).value();
    int changes = 0;
    auto sub = dev.watch([&](const tether::change<Job>&) { ++changes; });

    REQUIRE_THROWS_AS(dev.update(job.id,
                                 [](Job& j) {
                                     j.progress = 99;
                                     throw std::runtime_error{"app bug"};
                                 }),
                      std::runtime_error);
    CHECK((dev.get(job.id).value() == job));
    CHECK(changes == 0);

    auto ok = dev.update(job.id, [](Job& j) { j.progress = 7; });
    REQUIRE(ok);
    CHECK(ok->value.progress == 7);
    CHECK(ok->local_rev == 2);
    CHECK((dev.get(job.id).value() == *ok));
    CHECK(changes == 1);
}
