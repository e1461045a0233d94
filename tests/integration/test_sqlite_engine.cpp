// Engines over sqlite_storage writing in one shared transaction (sqlite_database::transact).
#include "support/entities.hpp"
#include "support/temp_dir.hpp"

#include <tether/tether.hpp>
#include <tether/storage/sqlite.hpp>

#include <catch2/catch.hpp>

#include <limits>
#include <string>
#include <vector>

using tether_test::Job;
using tether_test::Note;
using tether_test::temp_dir;

TEST_CASE("sqlite engine: writes of two engines in one transaction commit together", "[sqlite][engine]") {
    temp_dir dir;
    auto db = tether::sqlite_database::open(dir.file("app.db")).value();
    tether::manual_clock clock;
    auto jobs = tether::make_engine<Job>(tether::sqlite_storage{db}, clock);
    auto notes = tether::make_engine<Note>(tether::sqlite_storage{db}, clock);
    auto memo = jobs.create(Job{"memo", 0, "/a"}).value();

    SECTION("a write that fails without writing (not_found) does not stop the batch") {
        const auto unknown = tether::local_id_generator{7}(clock.now());
        REQUIRE(db.transact([&]() -> tether::result<void> {
            for (int p = 1; p <= 3; ++p) {
                if (auto u = jobs.update(memo.id, [p](Job& j) { j.progress = p; }); !u) return tether::unexpected{u.error()};
            }
            auto missing = jobs.update(unknown, Job{"x", 1, ""});
            CHECK(missing.error().code == tether::errc::not_found);
            if (auto n = notes.create(Note{"hello", 5}); !n) return tether::unexpected{n.error()};
            return {};
        }));
        auto stored = jobs.get(memo.id).value();
        CHECK(stored.value.progress == 3);
        CHECK(stored.local_rev == 4);
        CHECK(stored.dirty == tether::field_set{"progress"});
        CHECK(notes.list().value().size() == 1);
    }
    SECTION("an error from the transaction's body undoes every engine's writes") {
        auto r = db.transact([&]() -> tether::result<void> {
            if (auto u = jobs.update(memo.id, [](Job& j) { j.progress = 50; }); !u) return tether::unexpected{u.error()};
            if (auto n = notes.create(Note{"hello", 5}); !n) return tether::unexpected{n.error()};
            return tether::unexpected{tether::make_error(tether::errc::conflict, "changed my mind")};
        });
        REQUIRE_FALSE(r);
        CHECK((jobs.get(memo.id).value() == memo));
        CHECK(notes.list().value().empty());
    }
}

// The store keeps the records it wrote or read inside transactions, so that an
// update need not read its row again. These cases would lose a change if that
// cache were trusted when it should not be.
TEST_CASE("sqlite engine: an update starts from the row as it is, not a stale copy", "[sqlite][engine][cache]") {
    temp_dir dir;
    const auto path = dir.file("app.db");
    auto db = tether::sqlite_database::open(path).value();
    tether::manual_clock clock;
    auto jobs = tether::make_engine<Job>(tether::sqlite_storage{db}, clock);
    auto memo = jobs.create(Job{"memo", 0, "/a"}).value();
    REQUIRE(jobs.update(memo.id, [](Job& j) { j.progress = 1; }));  // cached now

    SECTION("another connection's commit is seen") {
        auto other_db = tether::sqlite_database::open(path).value();
        auto other = tether::make_engine<Job>(tether::sqlite_storage{other_db}, clock);
        REQUIRE(other.update(memo.id, [](Job& j) { j.title = "renamed elsewhere"; }));
        auto mine = jobs.update(memo.id, [](Job& j) { j.progress = 2; });
        REQUIRE(mine);
        CHECK(mine->value.title == "renamed elsewhere");
        CHECK(mine->value.progress == 2);
        CHECK(mine->local_rev == 4);
        CHECK((jobs.get(memo.id).value() == *mine));
    }
    SECTION("a second engine on the same database and table is seen") {
        auto twin = tether::make_engine<Job>(tether::sqlite_storage{db}, clock);
        REQUIRE(twin.update(memo.id, [](Job& j) { j.title = "renamed by twin"; }));
        auto mine = jobs.update(memo.id, [](Job& j) { j.progress = 2; });
        REQUIRE(mine);
        CHECK(mine->value.title == "renamed by twin");
        CHECK(mine->local_rev == 4);
    }
    SECTION("a write undone by a rolled-back transaction is forgotten") {
        auto r = db.transact([&]() -> tether::result<void> {
            if (auto u = jobs.update(memo.id, [](Job& j) { j.progress = 50; }); !u) return tether::unexpected{u.error()};
            return tether::unexpected{tether::make_error(tether::errc::conflict, "undo")};
        });
        REQUIRE_FALSE(r);
        auto mine = jobs.update(memo.id, [](Job& j) { j.title = "after the rollback"; });
        REQUIRE(mine);
        CHECK(mine->value.progress == 1);
        CHECK(mine->local_rev == 3);
        CHECK((jobs.get(memo.id).value() == *mine));
    }
    SECTION("a record removed by another connection is gone") {
        auto other_db = tether::sqlite_database::open(path).value();
        auto other = tether::make_engine<Job>(tether::sqlite_storage{other_db}, clock);
        REQUIRE(other.remove(memo.id));  // never synced: deleted at once
        auto mine = jobs.update(memo.id, [](Job& j) { j.progress = 2; });
        REQUIRE_FALSE(mine);
        CHECK(mine.error().code == tether::errc::not_found);
    }
}

TEST_CASE("sqlite engine: watchers hear of writes in a shared transaction only once it commits",
          "[sqlite][engine][watch]") {
    temp_dir dir;
    auto db = tether::sqlite_database::open(dir.file("app.db")).value();
    tether::manual_clock clock;
    auto jobs = tether::make_engine<Job>(tether::sqlite_storage{db}, clock);
    auto memo = jobs.create(Job{"memo", 0, "/a"}).value();
    std::vector<tether::change_kind> heard;
    int transitions = 0;
    auto sub = jobs.watch([&](const tether::change<Job>& c) { heard.push_back(c.kind); });
    jobs.on_transition([&](const tether::transition&) { ++transitions; });

    SECTION("on commit, after the transaction") {
        REQUIRE(db.transact([&]() -> tether::result<void> {
            if (auto u = jobs.update(memo.id, [](Job& j) { j.progress = 5; }); !u) return tether::unexpected{u.error()};
            if (auto c = jobs.create(Job{"second", 0, "/b"}); !c) return tether::unexpected{c.error()};
            CHECK(heard.empty());  // not committed yet
            return {};
        }));
        CHECK(heard == std::vector{tether::change_kind::updated, tether::change_kind::created});
        CHECK(transitions == 1);  // the create's nothing -> pending
    }
    SECTION("never, if it rolls back") {
        auto r = db.transact([&]() -> tether::result<void> {
            if (auto u = jobs.update(memo.id, [](Job& j) { j.progress = 5; }); !u) return tether::unexpected{u.error()};
            if (auto c = jobs.create(Job{"second", 0, "/b"}); !c) return tether::unexpected{c.error()};
            return tether::unexpected{tether::make_error(tether::errc::conflict, "undo")};
        });
        REQUIRE_FALSE(r);
        CHECK(heard.empty());
        CHECK(transitions == 0);
        CHECK(jobs.list().value().size() == 1);
    }
    SECTION("only for the part a nested transaction kept") {
        REQUIRE(db.transact([&]() -> tether::result<void> {
            if (auto u = jobs.update(memo.id, [](Job& j) { j.progress = 5; }); !u) return tether::unexpected{u.error()};
            auto inner = db.transact([&]() -> tether::result<void> {
                if (auto c = jobs.create(Job{"second", 0, "/b"}); !c) return tether::unexpected{c.error()};
                return tether::unexpected{tether::make_error(tether::errc::conflict, "undo the inner part")};
            });
            CHECK_FALSE(inner);
            return {};
        }));
        CHECK(heard == std::vector{tether::change_kind::updated});
        CHECK(jobs.list().value().size() == 1);
    }
    SECTION("a write outside any transaction is heard at once") {
        REQUIRE(jobs.update(memo.id, [](Job& j) { j.progress = 9; }));
        CHECK(heard == std::vector{tether::change_kind::updated});
    }
}

TEST_CASE("sqlite engine: each write stores its own dirty fields", "[sqlite][engine]") {
    temp_dir dir;
    const auto path = dir.file("app.db");
    auto db = tether::sqlite_database::open(path).value();
    tether::manual_clock clock;
    auto jobs = tether::make_engine<Job>(tether::sqlite_storage{db}, clock);
    auto a = jobs.create(Job{"a", 0, "/a"}).value();
    auto b = jobs.create(Job{"b", 0, "/b"}).value();
    REQUIRE(db.transact([&]() -> tether::result<void> {
        if (auto u = jobs.update(a.id, [](Job& j) { j.progress = 1; }); !u) return tether::unexpected{u.error()};
        if (auto u = jobs.update(b.id, [](Job& j) { j.progress = 1; }); !u) return tether::unexpected{u.error()};
        if (auto u = jobs.update(b.id, [](Job& j) { j.title = "b2"; }); !u) return tether::unexpected{u.error()};
        return {};
    }));
    // Read back through another connection: what the file holds, not a cache.
    auto other_db = tether::sqlite_database::open(path).value();
    auto other = tether::make_engine<Job>(tether::sqlite_storage{other_db}, clock);
    CHECK(other.get(a.id).value().dirty == tether::field_set{"progress"});
    CHECK(other.get(b.id).value().dirty == tether::field_set{"progress", "title"});
    CHECK(other.get(a.id).value().value.progress == 1);
    CHECK(other.get(b.id).value().value.title == "b2");
}

namespace {
struct Sampled {
    BOOST_HANA_DEFINE_STRUCT(Sampled, (std::string, name), (std::vector<double>, samples));
    static constexpr std::string_view collection = "samples";
};
}  // namespace

TEST_CASE("sqlite engine: one undecodable row affects only itself, NaN is refused at the door", "[sqlite][engine]") {
    temp_dir dir;
    auto db = tether::sqlite_database::open(dir.file("app.db")).value();
    tether::manual_clock clock;
    tether::loopback_server server{[c = clock] { return c.now(); }};
    auto dev = tether::make_engine<Sampled>(tether::sqlite_storage{db}, tether::loopback_transport{server, "alice"},
                                            clock);
    std::vector<std::string> warnings;
    dev.on_log([&](tether::log_level l, std::string_view m) {
        if (l >= tether::log_level::warning) warnings.emplace_back(m);
    });
    const double nan = std::numeric_limits<double>::quiet_NaN();

    // The engine refuses NaN and infinities on create and update: JSON cannot carry them.
    auto refused = dev.create(Sampled{"bad", {1.0, nan}});
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == tether::errc::invalid_argument);
    auto good = dev.create(Sampled{"good", {1.0}}).value();
    auto inf = dev.update(good.id, [](Sampled& s) { s.samples.push_back(std::numeric_limits<double>::infinity()); });
    REQUIRE_FALSE(inf);
    CHECK(inf.error().code == tether::errc::invalid_argument);
    CHECK(dev.get(good.id)->value.samples == std::vector<double>{1.0});

    // A row that does not decode (written past the engine, or by an older app).
    auto poison = good;
    poison.id = tether::local_id_generator{99}(clock.now());
    poison.value = Sampled{"poison", {2.0, nan}};
    {
        tether::sqlite_storage::rebind<Sampled> raw{tether::sqlite_storage{db}};
        REQUIRE(raw.transact([&](auto& tx) { return tx.put(poison); }));
    }
    auto other = dev.create(Sampled{"other", {3.0}}).value();
    CHECK(dev.list()->size() == 2);
    auto got = dev.get(poison.id);
    REQUIRE_FALSE(got);
    CHECK(got.error().code == tether::errc::storage);
    auto rep = dev.sync();  // the good records sync all the same
    REQUIRE(rep);
    CHECK_FALSE(rep->failure);
    CHECK(rep->pushed == 2);
    CHECK(dev.get(good.id)->status == tether::sync_status::synced);
    CHECK(dev.get(other.id)->status == tether::sync_status::synced);
    CHECK(dev.health()->unreadable == 1);
    bool logged = false;
    for (const auto& w : warnings) logged = logged || w.find(poison.id.to_string()) != std::string::npos;
    CHECK(logged);
    // remove works on it without decoding it.
    REQUIRE(dev.remove(poison.id));
    CHECK(dev.get(poison.id).error().code == tether::errc::not_found);
    CHECK(dev.health()->unreadable == 0);
}

TEST_CASE("sqlite engine: a first write inside a shared transaction that rolls back does not lose the table",
          "[sqlite][engine]") {
    // The store makes its table at its first call; made inside a transaction
    // that rolls back, the table goes with it, and the store must make it again
    // at the next call rather than believe it is there.
    temp_dir dir;
    auto db = tether::sqlite_database::open(dir.file("app.db")).value();
    tether::manual_clock clock;
    auto jobs = tether::make_engine<Job>(tether::sqlite_storage{db}, clock);
    auto r = db.transact([&]() -> tether::result<void> {
        if (auto c = jobs.create(Job{"first", 0, "/a"}); !c) return tether::unexpected{c.error()};
        return tether::unexpected{tether::make_error(tether::errc::conflict, "undo")};
    });
    REQUIRE_FALSE(r);
    auto all = jobs.list();
    REQUIRE(all);
    CHECK(all->empty());
    REQUIRE(jobs.create(Job{"second", 0, "/b"}));
    REQUIRE(db.transact([&]() -> tether::result<void> {
        if (auto c = jobs.create(Job{"third", 0, "/c"}); !c) return tether::unexpected{c.error()};
        return {};
    }));
    CHECK(jobs.list().value().size() == 2);
    CHECK(jobs.health().value().pending == 2);
}
