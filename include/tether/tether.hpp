#pragma once

/// @file
/// @brief The umbrella header of tether's core: the engine, its vocabulary and
/// every stock policy that needs no extra library. The SQLite storage
/// (`<tether/storage/sqlite.hpp>`, target `tether::sqlite`) is included separately.

#include <tether/backoff/backoff.hpp>
#include <tether/backoff/exponential.hpp>
#include <tether/clock/clock.hpp>
#include <tether/clock/manual.hpp>
#include <tether/clock/system.hpp>
#include <tether/conflict/callback.hpp>
#include <tether/conflict/client_wins.hpp>
#include <tether/conflict/conflict.hpp>
#include <tether/conflict/field_merge.hpp>
#include <tether/conflict/last_writer_wins.hpp>
#include <tether/conflict/server_wins.hpp>
#include <tether/core/entity.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/core/status.hpp>
#include <tether/engine/change.hpp>
#include <tether/engine/log.hpp>
#include <tether/engine/options.hpp>
#include <tether/engine/report.hpp>
#include <tether/engine/scheduler.hpp>
#include <tether/engine/state.hpp>
#include <tether/engine/subscription.hpp>
#include <tether/engine/sync_target.hpp>
#include <tether/engine/sync_engine.hpp>
#include <tether/storage/memory.hpp>
#include <tether/storage/storage.hpp>
#include <tether/transport/loopback.hpp>
#include <tether/transport/transport.hpp>
