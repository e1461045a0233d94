#include <tether/core/result.hpp>

#include <catch2/catch.hpp>

#include <concepts>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using tether::errc;
using tether::error;
using tether::make_error;
using tether::result;
using tether::unexpect;
using tether::unexpected;

namespace {

result<int> parse_digit(char c) {
    if (c < '0' || c > '9') return unexpected(make_error(errc::invalid_argument, "not a digit"));
    return c - '0';
}

result<int> reciprocal_percent(int x) {
    if (x == 0) return unexpected(make_error(errc::invalid_state, "division by zero"));
    return 100 / x;
}

struct no_default {
    explicit no_default(int v) : v_(v) {}
    int v_;
};

struct not_comparable {};

}  // namespace

TEST_CASE("result holds a value", "[result]") {
    result<std::string> r = std::string("hello");
    REQUIRE(r.has_value());
    REQUIRE(static_cast<bool>(r));
    CHECK(*r == "hello");
    CHECK(r.value() == "hello");
    CHECK(r->size() == 5);

    result<std::vector<int>> v(std::in_place, 3u, 7);
    REQUIRE(v.has_value());
    CHECK(*v == std::vector<int>{7, 7, 7});

    result<int> d;  // value-initialised
    REQUIRE(d.has_value());
    CHECK(*d == 0);
}

TEST_CASE("result holds an error", "[result]") {
    result<int> a = unexpected(make_error(errc::not_found, "no such job"));
    REQUIRE_FALSE(a.has_value());
    REQUIRE_FALSE(static_cast<bool>(a));
    CHECK(a.error().code == errc::not_found);
    CHECK(a.error().message == "no such job");

    result<std::string> b(unexpect, make_error(errc::offline, "airplane mode"));
    REQUIRE_FALSE(b.has_value());
    CHECK(b.error().code == errc::offline);
    CHECK(b.error().message == "airplane mode");
    CHECK(b.error_or(error{}) == b.error());

    result<std::string> c = std::string("x");
    CHECK(c.error_or(make_error(errc::busy)).code == errc::busy);
}

TEST_CASE("result with the same value and error type keeps the sides apart", "[result]") {
    result<std::string, std::string> ok("value");
    result<std::string, std::string> bad(unexpect, "error");
    REQUIRE(ok.has_value());
    CHECK(*ok == "value");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error() == "error");
    CHECK_FALSE(ok == bad);
    CHECK(bad == unexpected(std::string("error")));
    CHECK_FALSE(bad == std::string("error"));
}

TEST_CASE("value() on an error throws bad_result_access holding the error", "[result]") {
    result<int> r = unexpected(make_error(errc::conflict, "stale version"));
    try {
        (void)r.value();
        FAIL("value() did not throw");
    } catch (const tether::bad_result_access<error>& e) {
        CHECK(e.error().code == errc::conflict);
        CHECK(e.error().message == "stale version");
        CHECK(std::string(e.what()) == "bad tether::result access");
    }
    REQUIRE_THROWS_AS(r.value(), tether::bad_result_access<void>);
    REQUIRE_THROWS_AS(std::as_const(r).value(), std::exception);
    // The lvalue overload copies: the result still holds its error.
    CHECK(r.error().message == "stale version");

    // The rvalue overload moves the error into the exception (works for move-only errors).
    result<int, std::unique_ptr<int>> m(unexpect, std::make_unique<int>(42));
    try {
        (void)std::move(m).value();
        FAIL("value() did not throw");
    } catch (tether::bad_result_access<std::unique_ptr<int>>& e) {
        REQUIRE(e.error() != nullptr);
        CHECK(*e.error() == 42);
    }

    result<int> good = 5;
    CHECK_NOTHROW((void)good.value());
}

TEST_CASE("value_or picks the value or the fallback", "[result]") {
    result<int> ok = 3;
    result<int> bad = unexpected(make_error(errc::transient));
    CHECK(ok.value_or(9) == 3);
    CHECK(bad.value_or(9) == 9);

    result<std::unique_ptr<int>> p(std::make_unique<int>(1));
    auto taken = std::move(p).value_or(nullptr);
    REQUIRE(taken != nullptr);
    CHECK(*taken == 1);

    result<std::unique_ptr<int>> none(unexpect, make_error(errc::storage));
    CHECK(std::move(none).value_or(nullptr) == nullptr);
}

TEST_CASE("and_then chains and short-circuits on the first error", "[result]") {
    auto chained = parse_digit('4').and_then(reciprocal_percent);
    REQUIRE(chained.has_value());
    CHECK(*chained == 25);

    auto second_fails = parse_digit('0').and_then(reciprocal_percent);
    REQUIRE_FALSE(second_fails.has_value());
    CHECK(second_fails.error().code == errc::invalid_state);

    int calls = 0;
    auto first_fails = parse_digit('x').and_then([&](int v) {
        ++calls;
        return reciprocal_percent(v);
    });
    CHECK(calls == 0);
    REQUIRE_FALSE(first_fails.has_value());
    CHECK(first_fails.error().code == errc::invalid_argument);
    CHECK(first_fails.error().message == "not a digit");

    // The callback may change the value type.
    auto as_text = parse_digit('7').and_then([](int v) -> result<std::string> { return std::to_string(v * 2); });
    STATIC_REQUIRE(std::is_same_v<decltype(as_text), result<std::string>>);
    CHECK(as_text == std::string("14"));
}

TEST_CASE("transform maps the value and passes errors through", "[result]") {
    auto len = result<std::string>(std::string("abcd")).transform([](const std::string& s) { return s.size(); });
    STATIC_REQUIRE(std::is_same_v<decltype(len), result<std::size_t>>);
    REQUIRE(len.has_value());
    CHECK(*len == 4);

    int calls = 0;
    result<std::string> bad(unexpect, make_error(errc::protocol, "garbled"));
    auto mapped = bad.transform([&](const std::string& s) {
        ++calls;
        return s.size();
    });
    CHECK(calls == 0);
    REQUIRE_FALSE(mapped.has_value());
    CHECK(mapped.error().message == "garbled");

    int seen = 0;
    auto to_void = result<int>(8).transform([&](int v) { seen = v; });
    STATIC_REQUIRE(std::is_same_v<decltype(to_void), result<void>>);
    CHECK(to_void.has_value());
    CHECK(seen == 8);
}

TEST_CASE("or_else recovers from an error and leaves values alone", "[result]") {
    auto recovered = parse_digit('?').or_else([](const error& e) -> result<int> {
        if (e.code == errc::invalid_argument) return -1;
        return unexpected(e);
    });
    REQUIRE(recovered.has_value());
    CHECK(*recovered == -1);

    auto still_bad = parse_digit('?').or_else([](const error&) -> result<int> {
        return unexpected(make_error(errc::rejected, "replaced"));
    });
    REQUIRE_FALSE(still_bad.has_value());
    CHECK(still_bad.error().code == errc::rejected);

    int calls = 0;
    auto untouched = parse_digit('5').or_else([&](const error&) -> result<int> {
        ++calls;
        return 0;
    });
    CHECK(calls == 0);
    CHECK(untouched == 5);

    // or_else may change the error type.
    auto as_string_error = parse_digit('?').or_else(
        [](const error& e) -> result<int, std::string> { return unexpected(e.message); });
    REQUIRE_FALSE(as_string_error.has_value());
    CHECK(as_string_error.error() == "not a digit");
}

TEST_CASE("transform_error maps the error and passes values through", "[result]") {
    auto code_only = parse_digit('z').transform_error([](const error& e) { return e.code; });
    STATIC_REQUIRE(std::is_same_v<decltype(code_only), result<int, errc>>);
    REQUIRE_FALSE(code_only.has_value());
    CHECK(code_only.error() == errc::invalid_argument);

    int calls = 0;
    auto value_kept = parse_digit('2').transform_error([&](const error& e) {
        ++calls;
        return e.code;
    });
    CHECK(calls == 0);
    CHECK(value_kept == 2);
}

TEST_CASE("fold collapses either side to one value", "[result]") {
    auto describe = [](const result<int>& r) {
        return r.fold([](const error& e) { return "error: " + e.message; },
                      [](int v) { return "value: " + std::to_string(v); });
    };
    CHECK(describe(parse_digit('6')) == "value: 6");
    CHECK(describe(parse_digit('-')) == "error: not a digit");

    // The two callbacks may return different types with a common type.
    auto mixed = parse_digit('-').fold([](const error&) { return "fallback"; },
                                       [](int v) { return std::to_string(v); });
    STATIC_REQUIRE(std::is_same_v<decltype(mixed), std::string>);
    CHECK(mixed == "fallback");

    // fold on an rvalue hands over ownership.
    result<std::unique_ptr<int>> p(std::make_unique<int>(11));
    int out = std::move(p).fold([](error&&) { return -1; }, [](std::unique_ptr<int>&& q) { return *q; });
    CHECK(out == 11);
}

TEST_CASE("result<void> carries success or an error", "[result]") {
    result<void> ok;
    REQUIRE(ok.has_value());
    CHECK_NOTHROW(ok.value());

    result<void> bad = unexpected(make_error(errc::storage, "disk full"));
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message == "disk full");
    try {
        bad.value();
        FAIL("value() did not throw");
    } catch (const tether::bad_result_access<error>& e) {
        CHECK(e.error().code == errc::storage);
    }

    int calls = 0;
    auto next = ok.and_then([&]() -> result<int> {
        ++calls;
        return 10;
    });
    CHECK(calls == 1);
    CHECK(next == 10);
    auto skipped = bad.and_then([&]() -> result<int> {
        ++calls;
        return 10;
    });
    CHECK(calls == 1);
    REQUIRE_FALSE(skipped.has_value());
    CHECK(skipped.error().code == errc::storage);

    auto produced = ok.transform([] { return std::string("made"); });
    STATIC_REQUIRE(std::is_same_v<decltype(produced), result<std::string>>);
    CHECK(produced == std::string("made"));

    auto recovered = bad.or_else([](const error&) -> result<void> { return {}; });
    CHECK(recovered.has_value());

    auto coded = bad.transform_error([](const error& e) { return e.code; });
    STATIC_REQUIRE(std::is_same_v<decltype(coded), result<void, errc>>);
    CHECK(coded == unexpected(errc::storage));

    auto text = [](const result<void>& r) {
        return r.fold([](const error& e) { return e.message; }, [] { return std::string("saved"); });
    };
    CHECK(text(ok) == "saved");
    CHECK(text(bad) == "disk full");

    CHECK(ok == result<void>{});
    CHECK_FALSE(ok == bad);
    CHECK(bad == result<void>(unexpect, make_error(errc::storage, "disk full")));
    CHECK(bad == unexpected(make_error(errc::storage, "disk full")));

    bad.emplace();
    CHECK(bad.has_value());
    bad = unexpected(make_error(errc::busy));
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == errc::busy);
    bad = unexpected(make_error(errc::unauthorized));  // error over error
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == errc::unauthorized);
    REQUIRE_THROWS_AS(std::move(bad).value(), tether::bad_result_access<error>);
    CHECK_NOTHROW(std::move(ok).value());
}

TEST_CASE("result works with move-only values", "[result]") {
    result<std::unique_ptr<int>> r(std::make_unique<int>(5));
    result<std::unique_ptr<int>> moved = std::move(r);
    REQUIRE(moved.has_value());
    REQUIRE(*moved != nullptr);
    CHECK(**moved == 5);

    auto doubled = std::move(moved).transform([](std::unique_ptr<int> p) {
        *p *= 2;
        return p;
    });
    REQUIRE(doubled.has_value());
    CHECK(**doubled == 10);

    auto owned = std::move(doubled).and_then([](std::unique_ptr<int>&& p) -> result<std::unique_ptr<int>> {
        return std::move(p);
    });
    REQUIRE(owned.has_value());
    CHECK(**owned == 10);

    std::unique_ptr<int> out = std::move(owned).value();
    REQUIRE(out != nullptr);
    CHECK(*out == 10);
}

TEST_CASE("result assignment switches sides", "[result]") {
    result<std::string> r = std::string("first");
    r = unexpected(make_error(errc::transient, "blip"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "blip");

    const auto replacement = unexpected(make_error(errc::rejected, "again"));
    r = replacement;  // error over error
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "again");

    r = std::string("second");
    REQUIRE(r.has_value());
    CHECK(*r == "second");

    r = result<std::string>(unexpect, make_error(errc::busy));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::busy);

    CHECK(r.emplace(3u, 'z') == "zzz");
    CHECK(r == std::string("zzz"));

    result<std::string> other(unexpect, make_error(errc::offline));
    swap(r, other);
    CHECK(other == std::string("zzz"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::offline);
}

TEST_CASE("result equality compares the held side", "[result]") {
    result<int> three = 3;
    result<int> four = 4;
    result<int> err = unexpected(make_error(errc::not_found, "a"));
    result<int> other_err = unexpected(make_error(errc::not_found, "b"));

    CHECK(three == result<int>(3));
    CHECK(three != four);
    CHECK(err == result<int>(unexpect, make_error(errc::not_found, "a")));
    CHECK(err != other_err);
    CHECK(three != err);
    CHECK(err != three);

    CHECK(three == 3);
    CHECK(3 == three);
    CHECK(three != 4);
    CHECK(err != 3);

    CHECK(err == unexpected(make_error(errc::not_found, "a")));
    CHECK(err != unexpected(make_error(errc::not_found, "b")));
    CHECK(three != unexpected(make_error(errc::not_found, "a")));

    CHECK(three == result<long>(3L));  // different value types compare through ==
    CHECK(unexpected(1) == unexpected(1L));
    CHECK(unexpected(1) != unexpected(2));
}

TEST_CASE("result is usable in constant expressions", "[result]") {
    constexpr result<int, int> ok(21);
    constexpr result<int, int> bad(unexpect, 7);
    STATIC_REQUIRE(ok.has_value());
    STATIC_REQUIRE(ok.value_or(0) == 21);
    STATIC_REQUIRE(!bad.has_value());
    STATIC_REQUIRE(bad.error() == 7);
    STATIC_REQUIRE(*ok.transform([](int v) { return v * 2; }) == 42);
    STATIC_REQUIRE(bad.fold([](int e) { return -e; }, [](int v) { return v; }) == -7);
}

TEST_CASE("result traits", "[result]") {
    STATIC_REQUIRE(tether::is_result_v<result<int>>);
    STATIC_REQUIRE(tether::is_result_v<result<void, int>>);
    STATIC_REQUIRE_FALSE(tether::is_result_v<int>);
    STATIC_REQUIRE_FALSE(tether::is_result_v<unexpected<error>>);

    STATIC_REQUIRE(std::is_same_v<result<int>::error_type, error>);
    STATIC_REQUIRE(std::is_same_v<result<int>::value_type, int>);
    STATIC_REQUIRE(std::is_same_v<result<int>::rebind<char>, result<char>>);
    STATIC_REQUIRE(std::is_same_v<decltype(unexpected(1)), unexpected<int>>);

    STATIC_REQUIRE(std::is_base_of_v<tether::bad_result_access<void>, tether::bad_result_access<error>>);
    STATIC_REQUIRE(std::is_base_of_v<std::exception, tether::bad_result_access<void>>);

    // Copy/move follow T and E.
    STATIC_REQUIRE(std::is_copy_constructible_v<result<std::string>>);
    STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<result<std::unique_ptr<int>>>);
    STATIC_REQUIRE(std::is_nothrow_move_constructible_v<result<std::unique_ptr<int>>>);
    STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<result<void, std::unique_ptr<int>>>);
    STATIC_REQUIRE(std::is_trivially_copyable_v<result<int, int>>);

    // Construction rules.
    STATIC_REQUIRE(std::is_default_constructible_v<result<int>>);
    STATIC_REQUIRE_FALSE(std::is_default_constructible_v<result<no_default>>);
    STATIC_REQUIRE(std::is_convertible_v<int, result<int>>);
    STATIC_REQUIRE(std::is_convertible_v<unexpected<error>, result<int>>);
    STATIC_REQUIRE_FALSE(std::is_convertible_v<int, result<no_default>>);  // explicit ctor
    STATIC_REQUIRE(std::is_constructible_v<result<no_default>, int>);
    STATIC_REQUIRE_FALSE(std::is_constructible_v<result<int>, std::string>);
    STATIC_REQUIRE_FALSE(std::is_convertible_v<result<int>, result<bool>>);
    STATIC_REQUIRE(std::is_nothrow_constructible_v<result<int>, int>);

    // Equality exists only when both sides compare.
    STATIC_REQUIRE(std::equality_comparable<result<int>>);
    STATIC_REQUIRE(std::equality_comparable<result<void>>);
    STATIC_REQUIRE_FALSE(std::equality_comparable<result<not_comparable>>);
    STATIC_REQUIRE_FALSE(std::equality_comparable_with<result<int>, std::string>);
}

TEST_CASE("value() and operator* on a temporary return by value, so range-for over them is safe", "[result]") {
    auto make = [] { return tether::result<std::vector<std::string>>{std::vector<std::string>{"a", "b"}}; };
    STATIC_REQUIRE(std::is_same_v<decltype(make().value()), std::vector<std::string>>);
    STATIC_REQUIRE(std::is_same_v<decltype(*make()), std::vector<std::string>>);
    std::string joined;
    for (const auto& s : make().value()) joined += s;  // would dangle with a T&& return
    for (const auto& s : *make()) joined += s;
    REQUIRE(joined == "abab");
    auto err = [] { return tether::result<int>{tether::unexpect, tether::make_error(tether::errc::offline, "x")}; };
    STATIC_REQUIRE(std::is_same_v<decltype(err().error()), tether::error>);
    REQUIRE(err().error().message == "x");
}
