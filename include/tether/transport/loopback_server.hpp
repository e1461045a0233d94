#pragma once

/// @file
/// @brief Forwards to `<tether/testing/loopback_server.hpp>`, where the in-process
/// server now lives (a face of `tether::server::sync_service`), so that existing
/// includes keep working.
#include <tether/testing/loopback_server.hpp>  // IWYU pragma: export
