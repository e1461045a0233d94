#pragma once

// The severities of the engine's log hook.
#include <cstdint>

namespace tether {

/// @brief Severity of a message from the engine's log hook.
enum class log_level : std::uint8_t { debug, info, warning, error };

}  // namespace tether
