// expect: transport policy must satisfy
// Declares itself a transport policy and has push, pull, fetch and max_batch,
// but no has_change_feed.
#include <tether/tether.hpp>

#include <string>
#include <string_view>

struct Job {
    BOOST_HANA_DEFINE_STRUCT(Job, (std::string, title), (int, progress));
    static constexpr std::string_view collection = "jobs";
};

#include <cstddef>
#include <span>
#include <vector>

struct bad_transport {
    using policy_kind = tether::transport_tag;
    tether::result<std::vector<tether::push_outcome>> push(std::string_view, std::span<const tether::push_op>) {
        return tether::unexpected{tether::make_error(tether::errc::offline)};
    }
    tether::result<tether::pull_page> pull(std::string_view, std::string_view, std::size_t) {
        return tether::unexpected{tether::make_error(tether::errc::offline)};
    }
    tether::result<tether::server_record> fetch(std::string_view, std::string_view) {
        return tether::unexpected{tether::make_error(tether::errc::offline)};
    }
    std::size_t max_batch() const { return 100; }
};

void build() {
    auto e = tether::make_engine<Job>(bad_transport{});
    (void)e.list();
}
