#pragma once

// The deterministic simulator's world: three devices of one user (each an
// engine over its own memory_storage) against one loopback server, one manual
// clock, one seeded random stream, and the model the invariants are checked
// against. Single-threaded: every run of a seed is the same run.
#include "policies.hpp"
#include "storage.hpp"
#include "support/entities.hpp"
#include "support/temp_dir.hpp"

#include <tether/tether.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace tether_sim {

using tether_test::Job;
using tether::local_id;
using ms = std::chrono::milliseconds;

inline constexpr int client_count = 3;

/// What a simulated entity needs beyond tether's own traits: how the workload
/// makes and edits values (every written field value unique in the run), and
/// how a value prints in traces. Specialised per entity.
template <class E>
struct sim_entity;

template <>
struct sim_entity<Job> {
    static Job make(std::uint64_t v) { return Job{"t" + std::to_string(v), static_cast<int>(v), "/a/" + std::to_string(v)}; }
    /// Sets the fields of `mask` (bit 0 title, 1 progress, 2 audio_path) to values made of `v`.
    static void edit(Job& j, std::uint64_t mask, std::uint64_t v) {
        if (mask & 1) j.title = "t" + std::to_string(v);
        if (mask & 2) j.progress = static_cast<int>(v);
        if (mask & 4) j.audio_path = "/a/" + std::to_string(v);
    }
    static constexpr std::uint64_t all_fields = 7;
    /// The field a hostile server fills on create (a string; updates of the
    /// hostile mode leave it alone), and its bit in `edit`'s mask.
    static constexpr std::string_view server_field = "audio_path";
    static constexpr std::uint64_t server_field_bit = 4;
    /// A value over `bytes` bytes of JSON in one field (bit 0), for the value limit.
    static void make_big(Job& j, std::size_t bytes) { j.title += std::string(bytes, 'x'); }
    static constexpr std::uint64_t big_field_bit = 1;
    static void poison(Job&) {}  // no floating-point member
    static std::string describe(const Job& j) {
        const auto title = j.title.size() > 24 ? j.title.substr(0, 12) + "...(" + std::to_string(j.title.size()) + ")"
                                               : j.title;
        return "{" + title + "," + std::to_string(j.progress) + "," + j.audio_path + "}";
    }
};

}  // namespace tether_sim

#include "rich.hpp"

namespace tether_sim {

/// The types a simulator mode runs: the entity and the engine over it (one
/// engine type per mode: each instantiation costs seconds of build time).
template <class Entity, class Engine, class Storage = tether::memory_storage>
struct sim_types {
    using entity = Entity;
    using engine = Engine;
    using storage_type = Storage;  ///< a device's storage (outlives its engines)
};

/// The classic mode's engine: memory storage, the default `server_wins`.
using classic_engine = tether::sync_engine<Job, tether::memory_storage, tether::loopback_transport, tether::manual_clock,
                                           tether::exponential_backoff, tether::engine_options>;
using classic_types = sim_types<Job, classic_engine>;

/// The policies mode's engine: every conflict policy behind one type (see policies.hpp).
using policies_engine = tether::sync_engine<Job, tether::memory_storage, tether::loopback_transport,
                                            tether::manual_clock, tether::exponential_backoff, sim_policy<Job>,
                                            tether::engine_options>;
struct policies_types : sim_types<Job, policies_engine> {
    using policy = sim_policy<Job>;
};

/// The sqlite mode's engine: each device on memory or SQLite (see storage.hpp).
using sqlite_engine = tether::sync_engine<Job, sim_storage, tether::loopback_transport, tether::manual_clock,
                                          tether::exponential_backoff, tether::engine_options>;
using sqlite_types = sim_types<Job, sqlite_engine, sim_storage>;

/// The rich mode's engines, one per entity (drawn per seed).
using survey_engine = tether::sync_engine<tether_test::Survey, tether::memory_storage, tether::loopback_transport,
                                          tether::manual_clock, tether::exponential_backoff, tether::engine_options>;
using reading_engine = tether::sync_engine<tether_test::Reading, tether::memory_storage, tether::loopback_transport,
                                           tether::manual_clock, tether::exponential_backoff, tether::engine_options>;
using survey_types = sim_types<tether_test::Survey, survey_engine>;
using reading_types = sim_types<tether_test::Reading, reading_engine>;

/// splitmix64's finaliser: a well-mixed function of `x` (seeds of sub-streams).
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/// The simulator's random stream (splitmix64: the same on every platform,
/// unlike the <random> distributions).
class rng {
public:
    explicit rng(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() noexcept {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    /// Uniform in [0, n) (n > 0); the modulo bias is irrelevant at these sizes.
    std::uint64_t below(std::uint64_t n) noexcept { return n == 0 ? 0 : next() % n; }
    /// Uniform in [lo, hi].
    std::int64_t range(std::int64_t lo, std::int64_t hi) noexcept {
        return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
    }
    bool chance(double p) noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

private:
    std::uint64_t state_;
};

/// FNV-1a 64 over everything a run does: the trace hash.
struct fnv1a {
    std::uint64_t h = 0xcbf29ce484222325ull;
    void byte(unsigned char b) noexcept { h = (h ^ b) * 0x100000001b3ull; }
    void add(std::string_view s) noexcept {
        for (char ch : s) byte(static_cast<unsigned char>(ch));
        byte(0xff);  // separator: "ab","c" differs from "a","bc"
    }
    void add(std::uint64_t v) noexcept {
        for (int i = 0; i < 8; ++i) byte(static_cast<unsigned char>(v >> (8 * i)));
    }
    void add(const local_id& id) noexcept {
        for (auto b : id.bytes()) byte(static_cast<unsigned char>(b));
    }
};

/// The simulator's modes (see docs/simulation.md). Each seed runs one.
enum class mode : std::uint8_t {
    classic,  ///< a polite server with network faults: the original 2,000 seeds
    hostile,  ///< plus a hostile but legal server: filled creates, omitted ids, bad pages, a value limit,
              ///< admin edits, one restore from a backup
    policies, ///< every conflict policy across seeds, each decision recorded
    sqlite,   ///< some devices on SQLite files (restarts reopen them), writes inside db.transact
    rich,     ///< richer entities: doubles, vectors, a nested struct, unicode and large strings
    threaded, ///< writer threads racing sync threads on real engines (not replayable)
    live,         ///< a scheduler per device drives every sync; a live feed with its faults (see live.hpp)
    live_nopoll,  ///< the same without periodic pulls: events and the catch-ups after reconnects and resets alone
};
inline constexpr std::size_t mode_count = 8;
inline constexpr std::array<std::string_view, mode_count> mode_names{
    "classic", "hostile", "policies", "sqlite", "rich", "threaded", "live", "live-nopoll"};

/// The hostile server's knobs (a hostile seed uses every knob of `config::knobs`).
enum knob : unsigned {
    knob_filler = 1,      ///< set_create_filler: the server fills `sim_entity<E>::server_field`
    knob_omit_ids = 2,    ///< pull pages without local ids (all of them, or at random)
    knob_bad_pages = 4,   ///< bad items in pull pages
    knob_value_limit = 8, ///< a value limit, and values over it
    knob_admin = 16,      ///< admin edits, deletes and creates through put/erase
    knob_restore = 32,    ///< one restore from a backup per seed
    knob_all = 63,
};
inline constexpr std::array<std::string_view, 6> knob_names{"filler", "omit-ids", "bad-pages",
                                                            "value-limit", "admin", "restore"};

/// The faults (and fault-like events) the run must exercise, each at least the
/// toothless threshold across the run.
enum class fault : std::uint8_t {
    drop_request,    ///< server: request lost before it applied
    drop_response,   ///< server: applied, response lost
    transient,       ///< server: 503
    rate_limited,    ///< server: 429 with Retry-After
    unauthorized,    ///< server: 401 (the sim re-authenticates later)
    reject_op,       ///< server: op rejected for good (random or poisoned record)
    restart,         ///< a new engine over the same storage (some crash mid-push)
    clock_jump,      ///< the manual clock jumps (forward; backward with --clock-back)
    edit_in_flight,  ///< a local write between a push's transport call and its outcome
    // The hostile server's kinds (hostile mode only):
    replayed_create,   ///< a create answered with a record the server already held
    filled_create,     ///< a create whose value the server filled
    omitted_local_id,  ///< a pull page item without its local id
    bad_page_item,     ///< a bad item in a pull page
    too_large,         ///< a push refused whole for a value over the limit
    admin_edit,        ///< an admin edit, delete or create on the server
    restore,           ///< the server restored from a backup
    expired_cursor,    ///< a pull answered cursor_expired
    // The sqlite mode's kinds:
    db_transact,       ///< writes inside sqlite_database::transact (committed or rolled back)
    reopen,            ///< a restart that reopens the device's SQLite file
    // The rich mode's kind:
    non_finite,        ///< a write of NaN or an infinity, which must be refused
    // The threaded mode's kind:
    racing_write,      ///< a local write while a sync of the same device ran on another thread
    // The live modes' kinds (the feed's faults, then the scheduler's runs by trigger):
    live_drop,         ///< a live event lost
    live_duplicate,    ///< a live event delivered twice
    live_reorder,      ///< a live event delivered after the one that followed it
    live_delay,        ///< a live event held for a time
    live_cut,          ///< a subscription the feed ended (followed again after the backoff)
    refollow,          ///< a follow after the first (after a cut, a failed follow or a restart)
    run_scheduled,     ///< a scheduler run: periodic (or the backoff run while down)
    run_after_write,   ///< a scheduler run: after local writes
    run_reconnect,     ///< a scheduler run: a reconnect, or the catch-up after a follow
    run_retry_due,     ///< a scheduler run: a record's retry fell due
    run_event,         ///< a scheduler run: the live pass over queued events
    append,                 ///< an append to a record's text (sync_engine::append)
    append_event_in_place,  ///< an appended event that extended the held text, applied in place (no fetch)
    append_event_gap,       ///< an appended event that did not extend the held text (a gap, a local edit, not held)
    live_overflow,          ///< a live pass that pulled instead: the device's inbox had passed its bound
    // The hostile server's kind added after the live ones:
    refused_page_item,      ///< a page item taken out into `pull_page::refused` (fetched later by the engine)
};
inline constexpr std::size_t classic_fault_kinds = 9;
inline constexpr std::size_t hostile_fault_end = 17;
inline constexpr std::size_t sqlite_fault_end = 19;
inline constexpr std::size_t rich_fault_end = 20;
inline constexpr std::size_t threaded_fault_end = 21;
inline constexpr std::size_t fault_kinds = 37;
inline constexpr std::array<std::string_view, fault_kinds> fault_names{
    "drop_request",    "drop_response", "transient",        "rate_limited",  "unauthorized", "reject_op",
    "restart",         "clock_jump",    "edit_in_flight",   "replayed_create", "filled_create",
    "omitted_local_id", "bad_page_item", "too_large",       "admin_edit",    "restore",      "expired_cursor",
    "db_transact",     "reopen",        "non_finite",       "racing_write",
    "live_drop",       "live_duplicate", "live_reorder",    "live_delay",    "live_cut",     "refollow",
    "run_scheduled",   "run_after_write", "run_reconnect",  "run_retry_due", "run_event",
    "append",          "append_event_in_place", "append_event_gap", "live_overflow",
    "refused_page_item"};

/// The invariants (0: engine contract, e.g. a local write that failed).
inline constexpr std::array<std::string_view, 17> invariant_names{
    "contract",          "no lost write",     "no duplicate create", "convergence",
    "legal transitions", "version monotonic", "backoff bounds",      "pending coalesce",
    "no lost field",     "server field kept", "no local duplicate",  "bad item harmless",
    "too large alone",   "restore keeps unsynced", "no event below local version",
    "one fetch per record per burst", "appended text"};

/// Run settings, from the command line.
struct config {
    int ops = 300;            ///< operations per client
    bool verbose = false;     ///< print every step and event
    bool clock_back = false;  ///< also jump the clock backwards
    unsigned knobs = knob_all;  ///< the hostile knobs a hostile seed uses
    bool strict_restore = false;  ///< invariant 13 (see model.hpp), off by default
    std::ostream* out = nullptr;
};

/// What one seed did (summed over the run).
struct stats {
    std::array<std::uint64_t, fault_kinds> faults{};
    std::uint64_t operations = 0;
    std::uint64_t syncs = 0;
    std::uint64_t conflicts = 0;  ///< "conflict: ..." and "deleted on server" events
    std::uint64_t crashes = 0;    ///< restarts by a crash in the middle of a push
    std::uint64_t pushed = 0;
    std::uint64_t quiet_rounds = 0;     ///< rounds the quiet phase took (max over seeds when summed)
    std::int64_t quiet_time_ms = 0;     ///< simulated time the quiet phase took (max over seeds)
    std::uint64_t failed_left = 0;      ///< failed records left at the end (seeds that keep them)
    std::array<std::uint64_t, 3> decisions{};  ///< policy decisions: take_server, keep_local, merged
    std::uint64_t sqlite_clients = 0;   ///< devices on SQLite (sqlite mode)
    std::uint64_t rollbacks = 0;        ///< db.transact batches rolled back (sqlite mode)
    std::uint64_t live_applied = 0;     ///< live events applied as they came (live modes)
    std::uint64_t live_fetches = 0;     ///< records fetched for a gap an event showed (live modes)
    std::uint64_t live_duplicates = 0;  ///< live events dropped at or below the local version (live modes)
    std::uint64_t append_chains = 0;    ///< chains of appends checked at the end (live modes; see live_append.hpp)
};

struct violation {
    int invariant = 0;
    std::string what;
};

/// A local write the engine acknowledged (its call returned success).
template <class E>
struct ack_write {
    enum class kind : std::uint8_t { create, update, remove };
    std::uint64_t seq = 0;  ///< global order of writes and reported overrides
    int client = 0;
    kind what = kind::create;
    E value{};              ///< the client's whole local value after the write (create, update)
};

/// What a client's watch stream says about one of its records.
template <class E>
struct mirror_entry {
    tether::sync_status status = tether::sync_status::pending;
    bool deleted = false;
    std::uint64_t version = 0;
    std::optional<std::string> server_id;
    E value{};  ///< the local value
};

/// One acknowledged write of one field (or a remove), for the per-field model.
struct field_write {
    std::uint64_t seq = 0;
    int device = -1;       ///< -1: the server itself (an admin edit, a filled field)
    local_id local;        ///< the record's id on that client
    nlohmann::json value;  ///< the field's value (null for a remove)
};

/// Per record (by canonical id): the latest write of each field, the latest
/// remove, and the values a conflict decision, a deletion on the server or a
/// restore may legitimately have discarded.
struct record_model {
    std::map<std::string, field_write> fields;
    std::optional<field_write> removed;
    std::map<std::string, std::set<std::string>> may_lose;  ///< field -> dumped values
    bool deleted_before_restore = false;                    ///< the server held it deleted when it was restored
    /// A device's delete of it went to a server id the server forgot in the restore
    /// (answered as deleted): if the record's creator sent it again, it lives on.
    bool removed_forgotten_copy = false;
};

/// One device: a storage that outlives its engines (restarts), and what the
/// sim knows of it.
template <class M>
struct client {
    int index = 0;
    typename M::storage_type storage;
    std::string db_path;  ///< sqlite mode: this device's database file (empty: memory)
    std::unique_ptr<typename M::engine> engine;
    tether::subscription sub;
    int restarts = 0;
    bool crash_armed = false;                          ///< the next push hook "kills the app"
    bool written_pending = false;                      ///< inside a local write call of the sim
    std::map<local_id, mirror_entry<typename M::entity>> mirror;           ///< from watch(): every record's status/version
    std::set<local_id> written;                        ///< records this device wrote (any engine)
    std::map<local_id, std::uint64_t> overridden;      ///< last seq of a reported conflict/server deletion
};

/// Everything one seed's run holds. Not movable: hooks capture its address.
template <class M>
struct world {
    using entity = typename M::entity;
    using engine = typename M::engine;
    using client_type = client<M>;
    using write_type = ack_write<entity>;

    world(std::uint64_t s, const config& c) : seed(s), cfg(c), random(mix64(s ^ 0x5EEDull)) {}
    world(const world&) = delete;
    world& operator=(const world&) = delete;

    std::uint64_t seed;
    config cfg;
    tether_sim::mode mode = tether_sim::mode::classic;
    rng random;
    tether::manual_clock clock;
    tether::loopback_server server{[c = clock] { return c.now(); }};
    std::unique_ptr<tether_test::temp_dir> dir;  ///< sqlite mode: the databases (outlives the clients)
    std::array<client_type, client_count> clients;
    tether::timestamp start = clock.now();

    // Per-seed parameters (drawn in setup()).
    ms base{1000};
    ms cap{30000};
    tether::jitter jitter = tether::jitter::none;
    std::size_t max_batch = 100;
    std::size_t pull_limit = 100;
    std::size_t push_batch = 0;
    tether::fault_rates rates;
    bool reset_failed_at_end = true;
    bool change_feed = true;  ///< false: the server lists everything (server-side deletion detection)

    // The model.
    std::uint64_t seq = 0;                  ///< global order of acknowledged writes and overrides
    std::uint64_t next_value = 0;           ///< makes every written field value unique
    std::map<local_id, write_type> latest;  ///< per record: the latest acknowledged write
    std::set<local_id> created;             ///< every record any client created
    std::set<local_id> poisoned;
    std::map<local_id, std::vector<std::string>> history;  ///< writes and overrides, for reports
    std::map<local_id, int> names;          ///< short names r1, r2, ... in order of first sight

    // The per-field model (all modes), by canonical id: a record's id on the
    // server (its create's local id), or for a record created on the server
    // without one, a synthetic id; a device that holds it under another id
    // (a pull without local ids) has that id as an alias.
    std::map<local_id, local_id> alias;         ///< a device's local id -> canonical id
    std::map<std::string, local_id> by_sid;     ///< server id -> canonical id
    std::map<local_id, std::string> sid_of;     ///< canonical id -> server id
    std::map<local_id, record_model> model;

    // The policies mode (drawn in setup()).
    policy_choice policy = policy_choice::server_wins;
    typename sim_policy<entity>::sink_type decision_sink;  ///< the policy's decisions, to on_decision()
    std::map<std::pair<int, local_id>, nlohmann::json> decided;  ///< a decision's value, until its event

    // The hostile mode (drawn in setup()).
    unsigned knobs = 0;                 ///< the hostile knobs on in this seed (0: classic)
    std::size_t value_limit = 0;        ///< bytes; 0: none
    double big_writes = 0;              ///< share of writes over the value limit
    std::size_t snapshot_step = 0;      ///< the step that takes the backup (0: none)
    std::size_t restore_step = 0;       ///< the step that restores it (0: none)
    std::optional<tether::loopback_server::backup> backup;
    bool restored = false;
    std::uint64_t restore_mark = 0;     ///< versions below it come from before the restore
    std::set<std::string> forgotten_sids;  ///< server ids the devices learnt that the restore forgot
    std::uint64_t restore_seq = 0;      ///< the model's seq at the restore
    std::uint64_t synthetic = 0;        ///< synthetic canonical ids handed out
    std::set<local_id> admin_created;   ///< canonical ids of records an admin created
    // The run.
    int pushing = -1;       ///< the client whose sync is running (for the push hook)
    int rerun_causes = 0;   ///< requests for one more sync round during the running sync
    bool chaos = true;      ///< false in the quiet phase: the hook does nothing
    std::size_t step = 0;
    std::uint64_t change_events = 0;
    fnv1a trace;
    std::string step_log;   ///< what happened inside the step (hook actions, events; verbose)
    std::vector<violation> violations;
    stats st;

    std::string name(const local_id& id) {
        auto [it, fresh] = names.emplace(id, static_cast<int>(names.size()) + 1);
        (void)fresh;
        return "r" + std::to_string(it->second);
    }

    void fail(int invariant, std::string what) {
        if (cfg.verbose && cfg.out) *cfg.out << "  VIOLATION [" << invariant << "] " << what << '\n';
        violations.push_back({invariant, std::move(what)});
    }

    std::int64_t elapsed_ms() const { return (clock.now() - start).count(); }
};

/// What one seed's run gives back.
struct seed_result {
    std::uint64_t hash = 0;
    std::vector<violation> violations;
    stats st;
    policy_choice policy = policy_choice::server_wins;  ///< the conflict policy the seed ran
};

/// One seed of each mode, each in its own translation unit (mode_*.cpp), so the
/// engine types build in parallel and a change to one mode rebuilds one file.
seed_result run_classic(std::uint64_t seed, const config& cfg, mode m);  ///< classic and hostile
seed_result run_policies(std::uint64_t seed, const config& cfg);
seed_result run_sqlite(std::uint64_t seed, const config& cfg);
seed_result run_rich(std::uint64_t seed, const config& cfg, std::size_t entity);
seed_result run_threaded(std::uint64_t seed, const config& cfg);
seed_result run_live(std::uint64_t seed, const config& cfg, mode m);  ///< live and live_nopoll

template <class E>
std::string describe(const E& v) {
    return sim_entity<E>::describe(v);
}

inline std::string describe(const tether::error& e) {
    return std::string{tether::to_string(e.code)} + "(" + e.message + ")";
}

}  // namespace tether_sim
