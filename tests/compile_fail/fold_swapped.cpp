// expect: fold\(on_error, on_value\): on_error, the first argument, must be callable with the error
// result::fold with on_value first: the library's own check names the mistake.
#include <tether/tether.hpp>

#include <string>

std::string build() {
    tether::result<int> r{1};
    return r.fold([](int v) { return std::to_string(v); },
                  [](const tether::error& e) { return e.message; });
}
