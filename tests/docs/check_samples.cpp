// Checks that the C++ samples of a documentation page are compiled code.
//
// Usage: check_samples <source dir> <page.md>...
//
// Every ```cpp block of a page must be preceded (on the line before its fence)
// by `<!-- sample: <path> -->`, a file of the source tree that is built by the
// test suite, and its lines must appear in that file in order and contiguous,
// compared without leading and trailing blanks and without empty lines. So a
// sample cannot drift from the code that is compiled and run. Prints each
// offending block and exits 1 if there is one.
#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return {};
    const auto e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

std::vector<std::string> significant_lines(std::istream& in) {
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
        auto t = trim(line);
        if (!t.empty()) out.push_back(std::move(t));
    }
    return out;
}

bool contains_run(const std::vector<std::string>& hay, const std::vector<std::string>& needle) {
    if (needle.empty()) return true;
    return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: check_samples <source dir> <page.md>...\n";
        return 2;
    }
    const std::filesystem::path root{argv[1]};
    int bad = 0;
    int checked = 0;
    const std::string marker = "<!-- sample: ";
    for (int a = 2; a < argc; ++a) {
        const std::filesystem::path page = root / argv[a];
        std::ifstream in{page};
        if (!in) {
            std::cerr << page << ": cannot read\n";
            return 2;
        }
        std::string previous;
        std::string line;
        std::size_t number = 0;
        while (std::getline(in, line)) {
            ++number;
            if (trim(line) != "```cpp") {
                previous = line;
                continue;
            }
            const std::size_t start = number;
            std::ostringstream block;
            while (std::getline(in, line) && trim(line) != "```") {
                ++number;
                block << line << '\n';
            }
            ++number;
            ++checked;
            const auto where = std::string{argv[a]} + ":" + std::to_string(start);
            const auto p = trim(previous);
            previous.clear();
            if (p.rfind(marker, 0) != 0 || p.size() < marker.size() + 4 || p.substr(p.size() - 4) != " -->") {
                std::cerr << where << ": a ```cpp block without `<!-- sample: <file> -->` on the line before it\n";
                ++bad;
                continue;
            }
            const auto file = root / p.substr(marker.size(), p.size() - marker.size() - 4);
            std::ifstream src{file};
            if (!src) {
                std::cerr << where << ": the sample's file " << file << " does not exist\n";
                ++bad;
                continue;
            }
            std::istringstream text{block.str()};
            if (!contains_run(significant_lines(src), significant_lines(text))) {
                std::cerr << where << ": the sample is not in " << file << " as it is written here\n";
                ++bad;
            }
        }
    }
    std::cout << checked << " samples checked, " << bad << " not compiled code" << std::endl;
    return bad == 0 ? 0 : 1;
}
