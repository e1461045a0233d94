// The classic and hostile modes (one engine type: memory storage, server_wins).
#include "workload.hpp"

namespace tether_sim {

seed_result run_classic(std::uint64_t seed, const config& cfg, mode m) { return run_seed<classic_types>(seed, cfg, m); }

}  // namespace tether_sim
