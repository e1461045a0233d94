// expect: and_then: F must return a tether::result
// result::and_then with a callback returning a plain int (transform's job).
#include <tether/tether.hpp>

int build() {
    tether::result<int> r{1};
    auto next = r.and_then([](int v) { return v + 1; });
    return next.value();
}
