// Replays inputs through the fuzz targets without libFuzzer, so that the
// targets' properties are checked by every build's tests.
//   tether_fuzz_replay <corpus root>           every <root>/<target>/* file
//   tether_fuzz_replay <target> <file>...      those files through one target
#include "fuzz.hpp"

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in{p, std::ios::binary};
    return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

bool replay(const tether_fuzz::target& t, const std::filesystem::path& file) {
    try {
        t.run(slurp(file));
        return true;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: an exception escaped: %s\n", file.string().c_str(), e.what());
        return false;
    }
}

}  // namespace

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s <corpus root> | <target> <file>...\n", argv[0]);
        return 2;
    }
    int failed = 0;
    std::size_t inputs = 0;
    if (argc == 2 && fs::is_directory(argv[1])) {
        const fs::path root{argv[1]};
        for (const auto& t : tether_fuzz::targets()) {
            const fs::path dir = root / std::string{t.name};
            if (!fs::is_directory(dir)) {
                std::fprintf(stderr, "no corpus for target %s in %s\n", std::string{t.name}.c_str(), root.c_str());
                ++failed;
                continue;
            }
            std::vector<fs::path> files;
            for (const auto& e : fs::directory_iterator{dir})
                if (e.is_regular_file()) files.push_back(e.path());
            for (const auto& f : files) {
                ++inputs;
                if (!replay(t, f)) ++failed;
            }
            std::printf("%-16s %zu inputs\n", std::string{t.name}.c_str(), files.size());
        }
    } else {
        const auto* t = tether_fuzz::find_target(argv[1]);
        if (t == nullptr) {
            std::fprintf(stderr, "no target named %s\n", argv[1]);
            return 2;
        }
        for (int i = 2; i < argc; ++i) {
            ++inputs;
            if (!replay(*t, argv[i])) ++failed;
        }
    }
    std::printf("%zu inputs, %d failed\n", inputs, failed);
    return failed == 0 ? 0 : 1;
}
