// The classic, hostile and threaded modes (one engine type: memory storage, server_wins).
#include "threaded.hpp"
#include "workload.hpp"

namespace tether_sim {

seed_result run_classic(std::uint64_t seed, const config& cfg, mode m) { return run_seed<classic_types>(seed, cfg, m); }

seed_result run_threaded(std::uint64_t seed, const config& cfg) { return run_threaded_seed(seed, cfg); }

}  // namespace tether_sim
