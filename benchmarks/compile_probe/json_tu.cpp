// Compile-time probe, baseline: one TU that only includes nlohmann_json and
// uses it (parse + dump), the cost every JSON-speaking TU pays anyway.
// Compiled (never run) by ../compile_probe.sh.
#include <nlohmann/json.hpp>

#include <iostream>

int main() {
    auto j = nlohmann::json::parse(R"({"title": "memo.m4a", "progress": 50, "tags": ["a", "b"]})");
    j["progress"] = j["progress"].get<int>() + 1;
    std::cout << j.dump(2) << '\n';
    return 0;
}
