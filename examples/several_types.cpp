// Several entity types synced as one (tether::coordinator): a field-service
// app with projects (rarely changed, pulled at most every 15 minutes) and
// comments (pulled at every pass). A critical comment goes up before a
// medium-priority project edit, whatever the order the engines were given in;
// one status indicator and one health line cover both types.
#include <tether/engine/coordinator.hpp>
#include <tether/tether.hpp>

#include <boost/hana/define_struct.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

using namespace std::chrono_literals;

struct Project {
    BOOST_HANA_DEFINE_STRUCT(Project, (std::string, name), (std::string, site));
    static constexpr std::string_view collection = "projects";
    friend bool operator==(const Project&, const Project&) = default;
};

struct Comment {
    BOOST_HANA_DEFINE_STRUCT(Comment, (std::string, project), (std::string, text));
    static constexpr std::string_view collection = "comments";
    friend bool operator==(const Comment&, const Comment&) = default;
};

namespace {

int fail(std::string_view what) {
    std::cerr << "several_types: " << what << '\n';
    return EXIT_FAILURE;
}

}  // namespace

int main() {
    tether::manual_clock clock;  // an app uses the system clock; the example runs instantly
    tether::loopback_server server{[clock] { return clock.now(); }};
    auto projects = tether::make_engine<Project>(tether::memory_storage{}, tether::loopback_transport{server, "ana"}, clock);
    auto comments = tether::make_engine<Comment>(tether::memory_storage{}, tether::loopback_transport{server, "ana"}, clock);

    tether::coordinator app{tether::coordinate(projects, {.min_pull_interval = 15min}), tether::coordinate(comments)};
    auto indicator = app.watch_state([](tether::engine_state s) { std::cout << "  [status: " << s << "]\n"; });

    if (!projects.create(Project{"Pump station", "North"})) return fail("create project");
    if (!comments.create(Comment{"Pump station", "Valve 3 leaks: shut it before work"}, tether::priority::critical))
        return fail("create comment");

    auto h = app.health();
    if (!h) return fail(h.error().message);
    std::cout << "before: " << h->total.pending << " pending (" << h->types[0].health.pending << " projects, "
              << h->types[1].health.pending << " comments)\n";

    auto pass = app.run();  // the critical comment goes up first, then the project; both types pull
    if (!pass || pass->total.failure) return fail("first pass");
    std::cout << "first pass: " << pass->total.pushed << " pushed\n";

    clock.advance(1min);
    pass = app.run();  // projects pulled a minute ago: only comments pull
    if (!pass) return fail("second pass");
    std::cout << "a minute later: projects " << (pass->types[0].pulled ? "pulled" : "held back")
              << ", comments " << (pass->types[1].pulled ? "pulled" : "held back") << '\n';

    h = app.health();
    if (!h || h->total.pending != 0 || h->total.synced != 2) return fail("not everything synced");
    if (pass->types[0].pulled || !pass->types[1].pulled) return fail("pull intervals not kept");
    std::cout << "after: " << h->total.synced << " synced, state " << h->total.state << '\n';
    return EXIT_SUCCESS;
}
