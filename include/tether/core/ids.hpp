#pragma once

#include <tether/core/timestamp.hpp>
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>

namespace tether {

/// @brief A record's client-side identity: a UUID v7 (RFC 9562), time-ordered.
///
/// Generated on the device when a record is created and never changed; local
/// references and the server's idempotency key for creates use it. The nil UUID
/// (all zero) is the default value and never names a record.
///
/// @code
/// auto id = tether::local_id::parse("01890a5d-ac96-774b-bcce-b302099a8057");
/// if (id) std::cout << id->to_string();
/// @endcode
class local_id {
public:
    /// @brief The 16 bytes of the UUID, most significant first.
    using bytes_type = std::array<std::uint8_t, 16>;

    /// @brief The nil UUID.
    constexpr local_id() noexcept = default;

    /// @brief The id with these bytes (no validation: any 128 bits are kept as given).
    constexpr explicit local_id(const bytes_type& bytes) noexcept : bytes_(bytes) {}

    /// @brief Builds a UUID v7 from a millisecond timestamp and 74 random bits.
    ///
    /// `rand_a` supplies the 12 bits after the version, `rand_b` the 62 bits after
    /// the variant; higher bits of each are ignored.
    [[nodiscard]] static constexpr local_id from_parts(timestamp t, std::uint16_t rand_a,
                                                       std::uint64_t rand_b) noexcept {
        const auto ms = static_cast<std::uint64_t>(t.time_since_epoch().count()) & 0xFFFF'FFFF'FFFFull;
        bytes_type b{};
        for (int i = 0; i < 6; ++i) b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
        b[6] = static_cast<std::uint8_t>(0x70 | ((rand_a >> 8) & 0x0F));
        b[7] = static_cast<std::uint8_t>(rand_a & 0xFF);
        b[8] = static_cast<std::uint8_t>(0x80 | ((rand_b >> 56) & 0x3F));
        for (int i = 9; i < 16; ++i) b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(rand_b >> (8 * (15 - i)));
        return local_id{b};
    }

    /// @brief Parses the canonical 36-character form (`8-4-4-4-12` hex digits,
    /// either case). Anything else is an `errc::invalid_argument` error.
    [[nodiscard]] static result<local_id> parse(std::string_view text) {
        auto bad = [&] {
            return result<local_id>{unexpect, make_error(errc::invalid_argument,
                "not a UUID in 8-4-4-4-12 form: '" + std::string{text.substr(0, 64)} + "'")};
        };
        if (text.size() != 36) return bad();
        bytes_type b{};
        std::size_t out = 0;
        for (std::size_t i = 0; i < 36;) {
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                if (text[i] != '-') return bad();
                ++i;
                continue;
            }
            const int hi = hex_value(text[i]);
            const int lo = hex_value(text[i + 1]);
            if (hi < 0 || lo < 0 || i + 1 == 8 || i + 1 == 13 || i + 1 == 18 || i + 1 == 23) return bad();
            b[out++] = static_cast<std::uint8_t>((hi << 4) | lo);
            i += 2;
        }
        return local_id{b};
    }

    /// @brief The canonical lower-case 36-character form.
    [[nodiscard]] std::string to_string() const {
        static constexpr char digits[] = "0123456789abcdef";
        std::string s;
        s.reserve(36);
        for (std::size_t i = 0; i < 16; ++i) {
            if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
            s.push_back(digits[bytes_[i] >> 4]);
            s.push_back(digits[bytes_[i] & 0x0F]);
        }
        return s;
    }

    /// @brief The raw bytes.
    [[nodiscard]] constexpr const bytes_type& bytes() const noexcept { return bytes_; }
    /// @brief True for the nil UUID (the default value).
    [[nodiscard]] constexpr bool is_nil() const noexcept { return bytes_ == bytes_type{}; }
    /// @brief The UUID version nibble (7 for generated ids).
    [[nodiscard]] constexpr int version() const noexcept { return bytes_[6] >> 4; }
    /// @brief The millisecond timestamp a v7 id carries.
    [[nodiscard]] constexpr timestamp time() const noexcept {
        std::uint64_t ms = 0;
        for (std::size_t i = 0; i < 6; ++i) ms = (ms << 8) | bytes_[i];
        return timestamp{std::chrono::milliseconds{static_cast<std::int64_t>(ms)}};
    }

    /// @brief Ids order by their bytes: for v7 ids, by creation time first.
    friend constexpr auto operator<=>(const local_id&, const local_id&) noexcept = default;

    friend std::ostream& operator<<(std::ostream& os, const local_id& id) { return os << id.to_string(); }

private:
    static constexpr int hex_value(char c) noexcept {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    bytes_type bytes_{};
};

/// @brief Makes strictly increasing UUID v7 ids from one source of time.
///
/// Within one millisecond the 12 `rand_a` bits act as a counter (RFC 9562,
/// method 1), so ids from one generator sort in the order they were made even
/// when the clock stands still or steps back. A seed makes the sequence
/// reproducible (the simulator relies on this); without one it is seeded from
/// `std::random_device`. Not thread-safe: the engine calls it under its lock.
class local_id_generator {
public:
    /// @brief A generator seeded from `std::random_device`.
    local_id_generator() : rng_(std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32)) {}
    /// @brief A generator whose ids depend only on `seed` and the times passed in.
    explicit local_id_generator(std::uint64_t seed) : rng_(seed) {}

    /// @brief The next id for a record created at `now`.
    [[nodiscard]] local_id operator()(timestamp now) {
        const auto ms = now.time_since_epoch().count();
        if (ms > last_ms_) {
            last_ms_ = ms;
            counter_ = static_cast<std::uint16_t>(rng_() & 0x3FF);  // leave room to count up
        } else if (++counter_ > 0xFFF) {
            ++last_ms_;
            counter_ = 0;
        }
        return local_id::from_parts(timestamp{std::chrono::milliseconds{last_ms_}}, counter_, rng_());
    }

private:
    std::mt19937_64 rng_;
    std::int64_t last_ms_ = -1;
    std::uint16_t counter_ = 0;
};

}  // namespace tether

/// @brief Hashes a `tether::local_id` (for unordered containers).
template <>
struct std::hash<tether::local_id> {
    std::size_t operator()(const tether::local_id& id) const noexcept {
        // Both 64-bit halves, mixed (the low half of a v7 id is random; the high
        // half is time and counter): two multiplies instead of a byte loop.
        std::uint64_t hi = 0;
        std::uint64_t lo = 0;
        for (std::size_t i = 0; i < 8; ++i) {
            hi = (hi << 8) | id.bytes()[i];
            lo = (lo << 8) | id.bytes()[i + 8];
        }
        std::uint64_t h = (hi ^ (lo * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
        return static_cast<std::size_t>(h ^ (h >> 31));
    }
};
