// restore_marks_at: the epoch and the floor of change numbers and server ids
// that both SQL server stores' mark_restored use.
#include <tether/server/restore_floor.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <limits>

using tether::server::restore_marks;
using tether::server::restore_marks_at;

namespace {

tether::timestamp at_ms(std::int64_t ms) { return tether::timestamp{std::chrono::milliseconds{ms}}; }

}  // namespace

TEST_CASE("restore_marks_at: the epoch is the milliseconds, the floor 1024 times them", "[server][restore]") {
    CHECK(restore_marks_at(at_ms(1'700'000'000'000)) == restore_marks{1'700'000'000'000, 1'700'000'000'000 * 1024});
    CHECK(restore_marks_at(at_ms(1)) == restore_marks{1, 1024});
    CHECK(restore_marks_at(at_ms(0)) == restore_marks{0, 0});
    static_assert(restore_marks_at(tether::timestamp{std::chrono::milliseconds{3}}).floor == 3072);
}

TEST_CASE("restore_marks_at: a later restore never sets lower marks", "[server][restore]") {
    const auto earlier = restore_marks_at(at_ms(1'700'000'000'000));
    const auto later = restore_marks_at(at_ms(1'700'000'000'001));
    CHECK(later.epoch > earlier.epoch);
    CHECK(later.floor > earlier.floor);
    CHECK(later.floor - earlier.floor == 1024);  // room for 1024 changes a millisecond in between
}

TEST_CASE("restore_marks_at: an instant before 1970 counts as 0", "[server][restore]") {
    CHECK(restore_marks_at(at_ms(-5)) == restore_marks{0, 0});
    CHECK(restore_marks_at(at_ms(std::numeric_limits<std::int64_t>::min())) == restore_marks{0, 0});
}

TEST_CASE("restore_marks_at: a floor that would overflow is the milliseconds, never negative", "[server][restore]") {
    constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
    constexpr std::int64_t last_shiftable = max >> 10;
    CHECK(restore_marks_at(at_ms(last_shiftable)).floor == last_shiftable * 1024);
    CHECK(restore_marks_at(at_ms(last_shiftable + 1)) == restore_marks{last_shiftable + 1, last_shiftable + 1});
    CHECK(restore_marks_at(at_ms(max)) == restore_marks{max, max});
}
