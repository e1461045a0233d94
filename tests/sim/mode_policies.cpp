// The policies mode (one engine type for every conflict policy).
#include "workload.hpp"

namespace tether_sim {

seed_result run_policies(std::uint64_t seed, const config& cfg) {
    return run_seed<policies_types>(seed, cfg, mode::policies);
}

}  // namespace tether_sim
