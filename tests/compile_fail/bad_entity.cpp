// expect: Entity must be
// A Hana struct with no collection name (no member, no entity_traits) is not an entity.
#include <tether/tether.hpp>

#include <string>

struct Nameless {
    BOOST_HANA_DEFINE_STRUCT(Nameless, (std::string, title), (int, progress));
};

void build() {
    auto e = tether::make_engine<Nameless>(tether::memory_storage{});
    (void)e.list();
}
