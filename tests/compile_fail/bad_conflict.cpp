// expect: conflict policy must satisfy
// Declares itself a conflict policy, but resolve takes the local record instead
// of a tether::conflict<Job> and returns a bool.
#include <tether/tether.hpp>

#include <string>
#include <string_view>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

struct bad_conflict {
    using policy_kind = tether::conflict_tag;
    bool resolve(const tether::record<Job>&) const { return true; }
};

void build() {
    auto e = tether::make_engine<Job>(bad_conflict{});
    (void)e.list();
}
