#pragma once

// tether::protocol: the JSON codec of wire protocol v1 (docs/protocol.md), every
// shape in both directions. Decoders never throw and never trust their input:
// anything malformed is an `errc::protocol` result naming the field, over a
// limit `errc::too_large` (a request) or `errc::protocol` (an answer).
#include <tether/protocol/changes.hpp>     // pages and single records
#include <tether/protocol/error_body.hpp>  // error answers, status per error code
#include <tether/protocol/info.hpp>        // GET /v1/info
#include <tether/protocol/limits.hpp>      // version, limits
#include <tether/protocol/parse.hpp>       // bounded parsing
#include <tether/protocol/paths.hpp>       // endpoints, collection names, percent-encoding
#include <tether/protocol/push.hpp>        // push requests and answers
#include <tether/protocol/records.hpp>     // records, tombstones, error objects
#include <tether/protocol/utf8.hpp>        // what can be encoded
