#pragma once

// The fuzz targets: one function per decoder of untrusted input, each checking
// a property beyond "does not crash" (whatever decodes re-encodes and decodes
// to the same value; what is over a limit is refused with an error). Built
// twice: under libFuzzer (fuzz_main.cpp, the `fuzz` preset) and as a plain
// program that replays the committed corpus (replay_main.cpp, a CTest).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

namespace tether_fuzz {

/// One target: its name (also its corpus directory, tests/fuzz/corpus/<name>/)
/// and the function libFuzzer calls with each input.
struct target {
    std::string_view name;
    void (*run)(std::string_view input);
};

/// Every target, protocol and entity ones alike.
std::span<const target> targets();

/// The protocol's targets (protocol_targets.cpp) and the entity's (entity_target.cpp).
std::span<const target> protocol_targets();
std::span<const target> entity_targets();
/// The HTTP face's request parts (server_targets.cpp): route, bearer token, page limit, token file.
std::span<const target> server_targets();
/// rest_transport's decoders (rest_targets.cpp): a list page and a record through mappings, its cursor.
std::span<const target> rest_targets();

/// The target named `name`, or null.
const target* find_target(std::string_view name);

/// Stops the process with a message when a property does not hold: libFuzzer
/// reports it as a crash and keeps the input, the replay fails its test.
[[noreturn]] inline void fail(const char* target, const char* what, int line) {
    std::fprintf(stderr, "tether_fuzz: %s: property violated (line %d): %s\n", target, line, what);
    std::abort();
}

}  // namespace tether_fuzz

#define TETHER_FUZZ_CHECK(target, cond)                                               \
    do {                                                                              \
        if (!(cond)) ::tether_fuzz::fail(target, #cond, __LINE__);                    \
    } while (false)
