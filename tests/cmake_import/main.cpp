// Built against an installed tether found with find_package(tether CONFIG).
#include <tether/tether.hpp>

#include <iostream>
#include <string>

struct Task {
    BOOST_HANA_DEFINE_STRUCT(Task, (std::string, title), (bool, done));
    static constexpr std::string_view collection = "tasks";
};

int main() {
    tether::loopback_server server;
    auto engine = tether::make_engine<Task>(tether::loopback_transport{server, "alice"}, tether::manual_clock{});
    auto created = engine.create(Task{"install tether", false});
    if (!created) return 1;
    if (!engine.update(created->id, [](Task& t) { t.done = true; })) return 2;
    auto report = engine.sync();
    if (!report || report->pushed != 1) return 3;
    if (server.records("alice", "tasks").size() != 1) return 4;
    std::cout << "import_check: " << engine.get(created->id)->status << '\n';
    return engine.get(created->id)->status == tether::sync_status::synced ? 0 : 5;
}
