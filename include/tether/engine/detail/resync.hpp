#pragma once

// Full resyncs of the pull pass: begun when the server no longer knows the
// cursor or went back in time, finished when the last page is in. Read with
// pull.hpp. Not a public entry point.
#include <tether/core/cause.hpp>
#include <tether/core/result.hpp>
#include <tether/core/status.hpp>
#include <tether/core/transitions.hpp>
#include <tether/engine/detail/context.hpp>
#include <tether/engine/detail/effects.hpp>
#include <tether/engine/detail/pull_run.hpp>

#include <string>
#include <utility>
#include <vector>

namespace tether::detail {

/// Drops the cursor and keeps a flag in the store's metadata (a restart
/// carries on), so everything is pulled again from the start.
template <class Ctx>
void begin_resync(Ctx& ctx, pull_run& run, const std::string& why) {
    ctx.shell.log(log_level::warning, why + "; pulling everything again (local unsynced changes are kept)");
    ctx.counters.resyncs.fetch_add(1, std::memory_order_relaxed);
    run.resync = true;
    run.back_in_time = false;
    run.seen.clear();
    auto saved = ctx.store.transact([&](auto& tx) -> result<void> {
        if (auto m = tx.set_meta(resync_key, "1"); !m) return m;
        return tx.set_meta(pull_cursor_key, "");
    });
    if (!saved) ctx.shell.log(log_level::error, "could not record the resync: " + saved.error().message);
}

/// Every live record and tombstone came again. A record this device holds
/// under a server id the server no longer knows was lost by the server (it
/// was restored from a backup older than the record). The server is the
/// truth for what was synced: a `synced` record goes here too. One with local
/// changes keeps them and goes up again whole under its server id, which the
/// server re-creates (`transitions::forget_server_copy`), so no unsynced write
/// is lost and every device sends it under one id; a local delete of one
/// still goes up (the server keeps its tombstone, so a device that still
/// holds an edit of it learns of the delete). Server ids to fetch again that
/// no page named leave that list.
template <class Ctx>
result<void> finish_resync(Ctx& ctx, pull_run& run, pass_result& out) {
    using record_type = typename Ctx::record_type;
    std::vector<record_type> lost;
    if (run.feed) {
        auto all = ctx.store.list();
        if (!all) return unexpected{std::move(all).error()};
        for (auto& r : *all)
            if (r.server_id && !run.seen.contains(*r.server_id) && !is_in_flight(ctx, r.id)) lost.push_back(std::move(r));
        // Ids to fetch again that the server no longer holds would only answer `not_found`,
        // taking the places of those it holds (a fetch-again pass takes a few of them).
        std::vector<std::string> gone;
        for (const auto& sid : run.refetch)
            if (!run.seen.contains(sid)) gone.push_back(sid);
        for (const auto& sid : gone) run.drop_refetch(sid);
    }
    const auto now = ctx.clock.now();
    auto fx = ctx.shell.make_effects();
    auto done = ctx.store.transact([&](auto& tx) -> result<void> {
        for (const auto& r : lost) {
            auto cur = tx.get(r.id);
            if (!cur) return unexpected{std::move(cur).error()};
            if (!*cur || (*cur)->server_id != r.server_id) continue;
            if ((*cur)->deleted) continue;  // the remove goes up as it is
            if ((*cur)->status == sync_status::synced) {
                ++out.report.removed;
                if (auto e = erase_record(tx, fx, **cur, now, to_string(cause::resync_lost_synced)); !e) return e;
                continue;
            }
            record_type after = **cur;
            const auto why = transitions::forget_server_copy(after, now);
            out.rerun = true;  // it goes up again in the next round of this sync
            if (auto w = write_record(tx, fx, *cur, std::move(after), now, to_string(why)); !w) return w;
        }
        return tx.set_meta(resync_key, "");
    });
    ctx.shell.deliver(fx, done.has_value());
    if (!lost.empty()) {
        ctx.shell.log(log_level::warning,
                      std::to_string(lost.size()) + " records were unknown to the server after a resync");
    }
    return done;
}

}  // namespace tether::detail
