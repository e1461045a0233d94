#include "fuzz.hpp"

#include <vector>

namespace tether_fuzz {

/// The live feed's targets (live_targets.cpp): the event stream's frames and the live event.
std::span<const target> live_targets();
#if TETHER_FUZZ_JWT
std::span<const target> jwt_targets();  // jwt_target.cpp, built with libjwt
#endif

std::span<const target> targets() {
    static const std::vector<target> all = [] {
        std::vector<target> v;
        for (const auto& t : protocol_targets()) v.push_back(t);
        for (const auto& t : entity_targets()) v.push_back(t);
        for (const auto& t : server_targets()) v.push_back(t);
        for (const auto& t : rest_targets()) v.push_back(t);
        for (const auto& t : live_targets()) v.push_back(t);
#if TETHER_FUZZ_JWT
        for (const auto& t : jwt_targets()) v.push_back(t);
#endif
        return v;
    }();
    return all;
}

const target* find_target(std::string_view name) {
    for (const auto& t : targets())
        if (t.name == name) return &t;
    return nullptr;
}

}  // namespace tether_fuzz
