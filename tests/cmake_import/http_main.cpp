// Built against an installed tether::http found with find_package(tether CONFIG
// COMPONENTS http): cpp-httplib came with it. Nothing listens on port 1 of
// 127.0.0.1, so a push is refused before it leaves: errc::offline.
#include <tether/transport/http.hpp>

#include <iostream>
#include <vector>

int main() {
    tether::http_options o;
    o.base_url = "http://127.0.0.1:1";
    o.token = "import-check";
    auto transport = tether::http_transport::make(o);
    if (!transport) return 1;
    std::vector<tether::push_op> none;
    auto pushed = transport->push("tasks", none);  // an empty batch sends nothing
    if (!pushed || !pushed->empty()) return 2;
    auto pulled = transport->pull("tasks", "", 10);
    if (pulled || pulled.error().code != tether::errc::offline) return 3;
    std::cout << "import_http_check: " << pulled.error() << '\n';
    return 0;
}
