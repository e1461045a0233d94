#pragma once

// A fresh temporary directory for tests and benchmarks on real files.
#include <stdlib.h>  // mkdtemp

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace tether_test {

/// A new directory under the system's temp dir, removed with everything in it
/// when the object goes.
class temp_dir {
public:
    /// @param prefix the directory name's start (`tether-sqlite` → `/tmp/tether-sqlite-a1B2c3`).
    explicit temp_dir(std::string_view prefix = "tether") {
        std::string tmpl = (std::filesystem::temp_directory_path() / (std::string{prefix} + "-XXXXXX")).string();
        if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error{"mkdtemp failed"};
        path = tmpl;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }

    /// The path of `name` inside the directory.
    [[nodiscard]] std::string file(std::string_view name) const { return (path / name).string(); }

    std::filesystem::path path;  ///< the directory
};

}  // namespace tether_test
