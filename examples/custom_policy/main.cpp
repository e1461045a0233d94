// A storage and a transport of one's own (map_storage.hpp, dict_transport.hpp),
// written from tether's concept headers alone, composed into engines for two
// devices that sync through one server. Exits 0 only if both devices agree.
#include "dict_transport.hpp"
#include "map_storage.hpp"

#include <tether/tether.hpp>

#include <iostream>
#include <string>

struct Note {
    BOOST_HANA_DEFINE_STRUCT(Note, (std::string, text), (int, stars));
    static constexpr std::string_view collection = "notes";
};

int main() {
    custom::dict_transport server;  // copies share the server: one per device below
    tether::manual_clock clock;
    auto phone = tether::make_engine<Note>(custom::map_storage{}, server, clock);
    auto laptop = tether::make_engine<Note>(custom::map_storage{}, server, clock);

    auto note = phone.create(Note{"buy milk", 1}).value();
    if (!phone.sync() || !laptop.sync()) return 1;
    auto seen = laptop.get(note.id);  // the server keeps local ids, so both devices share them
    if (!seen || seen->value.text != "buy milk") return 1;
    if (!laptop.update(note.id, [](Note& n) { n.stars = 5; })) return 1;
    if (!laptop.sync() || !phone.sync()) return 1;

    auto mine = phone.get(note.id);
    std::cout << "phone sees \"" << mine->value.text << "\" with " << mine->value.stars << " stars ("
              << mine->status << ")\n";
    return mine->value.stars == 5 && mine->status == tether::sync_status::synced ? 0 : 1;
}
