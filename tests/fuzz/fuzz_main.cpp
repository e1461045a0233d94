// libFuzzer's entry points. The target is chosen with `--target=<name>`
// (libFuzzer ignores flags that start with `--`) or TETHER_FUZZ_TARGET;
// `--list` prints the names.
#include "fuzz.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string_view>

namespace {
const tether_fuzz::target* chosen = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
    std::string_view name;
    if (const char* env = std::getenv("TETHER_FUZZ_TARGET")) name = env;
    for (int i = 1; i < *argc; ++i) {
        const std::string_view arg = (*argv)[i];
        if (arg == "--list") {
            for (const auto& t : tether_fuzz::targets()) std::printf("%.*s\n", static_cast<int>(t.name.size()), t.name.data());
            std::exit(0);
        }
        if (arg.substr(0, 9) == "--target=") name = arg.substr(9);
    }
    chosen = tether_fuzz::find_target(name);
    if (chosen == nullptr) {
        std::fprintf(stderr, "tether_fuzz: name a target with --target=<name> (--list shows them)\n");
        std::exit(2);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        chosen->run(std::string_view{reinterpret_cast<const char*>(data), size});
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tether_fuzz: an exception escaped: %s\n", e.what());
        std::abort();
    }
    return 0;
}
