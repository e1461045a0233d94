// expect: entity_member_does_not_convert<Meeting, tether::detail::member_name<[0-9]+>\{"length"\}.*tether: an entity member does not convert
// A Hana struct whose member has no JSON form (a duration: in which unit?) is
// refused at the struct, naming the member, not deep inside the conversion.
#include <tether/tether.hpp>

#include <chrono>
#include <string>
#include <string_view>

struct Meeting {
    BOOST_HANA_DEFINE_STRUCT(Meeting, (std::string, title), (std::chrono::seconds, length));
    static constexpr std::string_view collection = "meetings";
};

static_assert(tether::entity<Meeting>);
