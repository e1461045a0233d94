#pragma once

/// @file
/// @brief The storage conformance rules about transactions: rollback, own
/// writes, read-modify-write, copies of the policy, entity types apart and
/// concurrent transactions (see `tether::testing::check_storage`).
#include <tether/testing/detail/storage_run.hpp>

namespace tether::testing::detail {

/// Runs the transaction rules through `rule` (as `check_storage` defines it).
template <class P, class S, class Rule>
void storage_transaction_rules(storage_run& run, Rule& rule, const storage_conformance_options& options) {

    // Committed state for the rollback rules, and the writes a transaction then undoes.
    auto r1 = make_record(1);
    r1.server_id = "s1";
    r1.value.title = "v1";
    const auto r2 = make_record(2);
    auto r3 = make_record(3);
    r3.server_id = "s1";
    auto setup = [&](S& store) {
        return run.ok(put_all(store, std::vector{r1, r2}), "put") &&
               run.ok(store.transact([](auto& tx) { return tx.set_meta("cursor", "c1"); }), "set_meta");
    };
    auto changes = [&](auto& tx) -> result<void> {
        auto r1b = r1;
        r1b.value.title = "v2";
        r1b.server_id = "s2";
        if (auto r = tx.put(r1b); !r) return r;
        if (auto r = tx.put(r3); !r) return r;  // takes over "s1"
        if (auto r = tx.erase(r2.id); !r) return r;
        if (auto r = tx.set_meta("cursor", "c2"); !r) return r;
        return tx.set_meta("new", "x");
    };
    auto check_untouched = [&](S& store) {
        auto l = store.list();
        if (run.ok(l, "list") && run.same_ids({r1.id, r2.id}, ids_of(*l), "list after the rollback")) {
            run.same(r1, l->at(0), "list after the rollback");
            run.same(r2, l->at(1), "list after the rollback");
        }
        if (auto s1 = run.present(store.find_by_server_id("s1"), "find_by_server_id(\"s1\") after the rollback")) {
            run.expect(s1->id == r1.id, "after the rollback server id s1 names " + detail::label(s1->id) + ", not #1");
        }
        auto s2 = store.find_by_server_id("s2");
        if (run.ok(s2, "find_by_server_id")) run.expect(!s2->has_value(), "after the rollback server id s2 still names a record");
        auto cursor = store.get_meta("cursor");
        if (run.ok(cursor, "get_meta")) {
            run.expect(*cursor == std::optional<std::string>{"c1"}, "after the rollback metadata 'cursor' changed");
        }
        auto fresh = store.get_meta("new");
        if (run.ok(fresh, "get_meta")) run.expect(!fresh->has_value(), "after the rollback metadata 'new' is set");
    };

    rule("rollback on error", [&](P&, S& store) {
        if (!setup(store)) return;
        auto res = store.transact([&](auto& tx) -> result<void> {
            if (auto r = changes(tx); !r) {
                run.fail("a write of the transaction failed: " + r.error().message);
                return r;
            }
            return unexpected{make_error(errc::conflict, "boom")};
        });
        if (run.expect(!res, "a transaction whose function returned an error succeeded")) {
            run.expect(res.error().code == errc::conflict && res.error().message == "boom",
                       "transact returned another error than its function's: " + res.error().message);
        }
        check_untouched(store);
    });

    rule("rollback on exception", [&](P&, S& store) {
        if (!setup(store)) return;
        struct kaboom : std::runtime_error {
            kaboom() : std::runtime_error{"kaboom"} {}
        };
        try {
            auto res = store.transact([&](auto& tx) -> result<void> {
                if (auto r = changes(tx); !r) {
                    run.fail("a write of the transaction failed: " + r.error().message);
                    return r;
                }
                throw kaboom{};
            });
            run.fail(res ? std::string{"transact swallowed the exception and succeeded"}
                         : "transact turned the exception into an error: " + res.error().message);
        } catch (const kaboom&) {
            // rethrown, as it must be
        }
        check_untouched(store);
        // The store is usable after the exception.
        if (run.ok(put_all(store, std::vector{make_record(4)}), "a put after the exception")) {
            auto l = store.list();
            if (run.ok(l, "list")) run.same_ids({r1.id, r2.id, id_n(4)}, ids_of(*l), "list after a put after the exception");
        }
    });

    rule("own writes visible", [&](P&, S& store) {
        if (!run.ok(put_all(store, std::vector{r2}), "put")) return;
        run.ok(store.transact([&](auto& tx) -> result<void> {
            if (auto r = tx.put(r1); !r) return r;
            if (auto g = run.present(tx.get(r1.id), "tx.get after tx.put")) run.same(r1, *g, "tx.get after tx.put");
            if (auto f = run.present(tx.find_by_server_id("s1"), "tx.find_by_server_id after tx.put")) {
                run.expect(f->id == r1.id, "tx.find_by_server_id after tx.put found " + detail::label(f->id));
            }
            if (auto r = tx.erase(r2.id); !r) return r;
            auto gone = tx.get(r2.id);
            if (run.ok(gone, "tx.get after tx.erase")) run.expect(!gone->has_value(), "tx.get after tx.erase still finds it");
            if (auto r = tx.set_meta("k", "v"); !r) return r;
            auto m = tx.get_meta("k");
            if (run.ok(m, "tx.get_meta after tx.set_meta")) {
                run.expect(*m == std::optional<std::string>{"v"}, "tx.get_meta does not see the transaction's set_meta");
            }
            return {};
        }),
               "a transaction of put, erase and set_meta");
        auto l = store.list();
        if (run.ok(l, "list")) run.same_ids({r1.id}, ids_of(*l), "list after the transaction");
    });

    rule("read-modify-write", [&](P&, S& store) {
        if (!run.ok(put_all(store, std::vector{r1}), "put")) return;
        for (int i = 0; i < 3; ++i) {
            auto res = store.transact([&](auto& tx) -> result<void> {
                auto g = tx.get(r1.id);
                if (!g) return unexpected{g.error()};
                if (!g->has_value()) return unexpected{make_error(errc::not_found, "tx.get lost the record")};
                auto r = **g;
                ++r.value.count;
                ++r.local_rev;
                return tx.put(r);
            });
            if (!run.ok(res, "a read-modify-write transaction")) return;
        }
        if (auto g = run.present(store.get(r1.id), "get")) {
            run.expect(g->value.count == r1.value.count + 3 && g->local_rev == 3,
                       "three read-modify-write transactions left local_rev " + std::to_string(g->local_rev) +
                           ", expected 3");
        }
    });

    if (options.copies_share) {
        rule("copies share", [&](P& policy, S& store) {
            if (!setup(store)) return;
            P copy = policy;
            S other{copy};
            if (auto g = run.present(other.get(r1.id), "get through a copy of the policy")) {
                run.same(r1, *g, "get through a copy of the policy");
            }
            auto m = other.get_meta("cursor");
            if (run.ok(m, "get_meta through a copy of the policy")) {
                run.expect(*m == std::optional<std::string>{"c1"}, "a copy of the policy does not see the metadata");
            }
            if (!run.ok(put_all(other, std::vector{make_record(4)}), "put through a copy of the policy")) return;
            auto l = store.list();
            if (run.ok(l, "list")) {
                run.same_ids({r1.id, r2.id, id_n(4)}, ids_of(*l), "list after a put through a copy of the policy");
            }
        });
    }

    rule("entity types apart", [&](P& policy, S& store) {
        store_for_t<P, conformance_note> notes{policy};
        auto n = make_record<conformance_note>(1);  // same local_id as r1
        n.value.text = "a note";
        n.server_id = "s1";
        if (!run.ok(put_all(store, std::vector{r1}), "put of an item")) return;
        if (!run.ok(store.transact([](auto& tx) { return tx.set_meta("cursor", "items"); }), "set_meta of items")) return;
        if (!run.ok(put_all(notes, std::vector{n}), "put of a note with an item's id and server id")) return;
        if (!run.ok(notes.transact([](auto& tx) { return tx.set_meta("cursor", "notes"); }), "set_meta of notes")) return;
        auto mi = store.get_meta("cursor");
        if (run.ok(mi, "get_meta")) run.expect(*mi == std::optional<std::string>{"items"}, "the items' metadata was overwritten by the notes'");
        auto mn = notes.get_meta("cursor");
        if (run.ok(mn, "get_meta")) run.expect(*mn == std::optional<std::string>{"notes"}, "the notes' metadata is not theirs");
        if (auto g = run.present(store.get(r1.id), "get of the item")) run.same(r1, *g, "get of the item");
        if (auto g = run.present(notes.get(n.id), "get of the note")) run.same(n, *g, "get of the note");
        if (auto f = run.present(notes.find_by_server_id("s1"), "find_by_server_id of the note")) {
            run.expect(f->value.text == "a note", "find_by_server_id of the note found another record");
        }
        auto ci = store.counts();
        if (run.ok(ci, "counts")) run.expect(ci->pending == 1, "the items' counts include the notes");
        auto cn = notes.counts();
        if (run.ok(cn, "counts")) run.expect(cn->pending == 1, "the notes' counts include the items");
        if (!run.ok(notes.transact([&](auto& tx) { return tx.erase(n.id); }), "erase of the note")) return;
        auto g = store.get(r1.id);
        if (run.ok(g, "get")) run.expect(g->has_value(), "erasing the note erased the item with the same id");
    });

    if (options.threads > 0) {
        rule("concurrent transactions", [&](P&, S& store) {
            const int threads = options.threads;
            const int per_thread = options.transactions_per_thread;
            if (!run.ok(store.transact([](auto& tx) { return tx.set_meta("counter", "0"); }), "set_meta")) return;
            std::atomic<int> failed{0};
            std::atomic<int> threw{0};
            std::vector<std::thread> pool;
            pool.reserve(static_cast<std::size_t>(threads));
            for (int t = 0; t < threads; ++t) {
                pool.emplace_back([&, t] {
                    try {
                        for (int i = 0; i < per_thread; ++i) {
                            auto res = store.transact([&](auto& tx) -> result<void> {
                                auto m = tx.get_meta("counter");
                                if (!m) return unexpected{m.error()};
                                if (!m->has_value()) return unexpected{make_error(errc::storage, "no counter")};
                                if (auto r = tx.set_meta("counter", std::to_string(std::stoll(**m) + 1)); !r) return r;
                                return tx.put(make_record(static_cast<std::uint64_t>(1000 + t * per_thread + i)));
                            });
                            if (!res) ++failed;
                            if (!store.counts()) ++failed;
                        }
                    } catch (...) {
                        ++threw;
                    }
                });
            }
            for (auto& th : pool) th.join();
            run.expect(failed == 0, std::to_string(failed.load()) + " transactions or reads beside them failed");
            run.expect(threw == 0, std::to_string(threw.load()) + " threads met an exception");
            const auto total = static_cast<std::size_t>(threads) * static_cast<std::size_t>(per_thread);
            auto m = store.get_meta("counter");
            if (run.ok(m, "get_meta")) {
                run.expect(*m == std::optional<std::string>{std::to_string(total)},
                           "the counter reads " + m->value_or("nothing") + " after " + std::to_string(total) +
                               " increments: transactions were not serialised");
            }
            auto l = store.list();
            if (run.ok(l, "list")) {
                run.expect(l->size() == total, std::to_string(l->size()) + " records after " + std::to_string(total) +
                                                   " transactions that put one each");
            }
        });
    }
}

}  // namespace tether::testing::detail
