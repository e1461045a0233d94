// The live modes (one engine type: memory storage, server_wins, the probe transport; see live.hpp).
#include "live.hpp"

namespace tether_sim {

seed_result run_live(std::uint64_t seed, const config& cfg, mode m) { return run_live_seed<live_types>(seed, cfg, m); }

}  // namespace tether_sim
