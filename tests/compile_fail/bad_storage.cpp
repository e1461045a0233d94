// expect: storage policy must satisfy
// Declares itself a storage policy but provides none of the members.
#include <tether/tether.hpp>

#include <string>
#include <string_view>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

struct bad_storage {
    using policy_kind = tether::storage_tag;
};

void build() {
    auto e = tether::make_engine<Job>(bad_storage{});
    (void)e.list();
}
