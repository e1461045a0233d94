// Built against an installed tether::postgres found with find_package(tether
// CONFIG COMPONENTS postgres): libpq came with it. Nothing listens on port 1
// of 127.0.0.1, so opening the store fails with a clear error, never a crash.
#include <tether/server/postgres_store.hpp>

#include <iostream>

int main() {
    auto store = tether::server::postgres_store::open("host=127.0.0.1 port=1 connect_timeout=2 dbname=none");
    if (store) return 1;
    std::cout << "import_postgres_check: " << store.error() << '\n';
    return 0;
}
