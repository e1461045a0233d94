// expect: entity_member_does_not_convert<Slot, tether::detail::member_name<[0-9]+>\{"room"\}, const char\*>
// The member that does not convert is inside a nested struct (held in an
// optional): the diagnostic names the inner struct and its member.
#include <tether/tether.hpp>

#include <optional>
#include <string>
#include <string_view>

struct Slot {
    BOOST_HANA_DEFINE_STRUCT(Slot, (std::string, day), (const char*, room));
};

struct Booking {
    BOOST_HANA_DEFINE_STRUCT(Booking, (std::string, who), (std::optional<Slot>, slot));
    static constexpr std::string_view collection = "bookings";
};

void build() {
    auto e = tether::make_engine<Booking>(tether::memory_storage{});
    (void)e.list();
}
