// The rich mode (two engine types: Survey through Hana, Reading with its own JSON).
#include "workload.hpp"

namespace tether_sim {

seed_result run_rich(std::uint64_t seed, const config& cfg, std::size_t entity) {
    return entity == 0 ? run_seed<survey_types>(seed, cfg, mode::rich) : run_seed<reading_types>(seed, cfg, mode::rich);
}

}  // namespace tether_sim
