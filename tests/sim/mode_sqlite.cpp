// The sqlite mode (one engine type over memory or SQLite stores).
#include "workload.hpp"

namespace tether_sim {

seed_result run_sqlite(std::uint64_t seed, const config& cfg) { return run_seed<sqlite_types>(seed, cfg, mode::sqlite); }

}  // namespace tether_sim
