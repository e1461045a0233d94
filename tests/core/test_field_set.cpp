// tether::field_set: a set of field names whose copies share their names.
#include <tether/core/field_set.hpp>

#include <catch2/catch.hpp>

#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using tether::field_set;

namespace {
std::vector<std::string> names_of(const field_set& s) { return {s.begin(), s.end()}; }
}  // namespace

TEST_CASE("field_set keeps each name once, in order", "[core][field_set]") {
    field_set s{"title", "progress", "title"};
    CHECK(s.size() == 2);
    CHECK(names_of(s) == std::vector<std::string>{"progress", "title"});
    CHECK(s.contains("title"));
    CHECK(s.count("progress") == 1);
    CHECK_FALSE(s.contains("audio_path"));
    CHECK(s.insert("audio_path"));
    CHECK_FALSE(s.insert("audio_path"));  // already there
    CHECK(names_of(s) == std::vector<std::string>{"audio_path", "progress", "title"});
    CHECK(s.erase("progress") == 1);
    CHECK(s.erase("progress") == 0);
    CHECK(names_of(s) == std::vector<std::string>{"audio_path", "title"});
    std::ostringstream os;
    os << s;
    CHECK(os.str() == "{audio_path, title}");
}

TEST_CASE("an empty field_set has nothing to iterate", "[core][field_set]") {
    field_set s;
    CHECK(s.empty());
    CHECK(s.size() == 0);
    CHECK(s.begin() == s.end());
    CHECK_FALSE(s.contains(""));
    CHECK(s.erase("x") == 0);
    s.insert("x");
    CHECK_FALSE(s.empty());
    CHECK(s.erase("x") == 1);
    CHECK(s.empty());
    CHECK(s == field_set{});
    s.insert("y");
    s.clear();
    CHECK(s.empty());
}

TEST_CASE("field_set copies do not see each other's changes", "[core][field_set]") {
    field_set a{"title"};
    field_set b = a;
    CHECK(a == b);
    b.insert("progress");
    CHECK(names_of(a) == std::vector<std::string>{"title"});
    CHECK(names_of(b) == std::vector<std::string>{"progress", "title"});
    CHECK(a != b);
    field_set c = b;
    c.erase("title");
    CHECK(names_of(b) == std::vector<std::string>{"progress", "title"});
    CHECK(names_of(c) == std::vector<std::string>{"progress"});
}

TEST_CASE("field_set is built from any range of names", "[core][field_set]") {
    const std::vector<std::string> names{"stars", "body", "stars"};
    const field_set s(names.begin(), names.end());
    CHECK(s == field_set{"body", "stars"});
}

TEST_CASE("field_set copies may be used and changed from several threads", "[core][field_set][threads]") {
    const field_set shared{"a", "b"};
    std::vector<std::thread> threads;
    std::vector<std::size_t> sizes(4);
    for (std::size_t t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 1000; ++i) {
                field_set mine = shared;
                mine.insert("t" + std::to_string(t));
                mine.erase("a");
                sizes[t] = mine.size();
            }
        });
    }
    for (auto& th : threads) th.join();
    for (auto n : sizes) CHECK(n == 2);
    CHECK(shared == field_set{"a", "b"});
}
