// The push exchange's JSON: requests (decoded by a server) and answers (decoded
// by a client), every shape, every refusal.
#include <tether/protocol/push.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using tether::errc;
using tether::op_kind;
using tether::push_op;
using tether::push_outcome;
namespace protocol = tether::protocol;

namespace {

const auto id1 = tether::local_id::parse("01890a5d-ac96-774b-bcce-b302099a8057").value();
const auto id2 = tether::local_id::parse("01890a5d-ac96-774b-bcce-b302099a8058").value();

std::vector<push_op> sample_ops() {
    return {push_op{op_kind::create, id1, std::nullopt, 0, {{"title", "memo"}, {"progress", 0}}, "dev-1"},
            push_op{op_kind::update, id2, "s-2", 3, {{"progress", 50}}, "dev-1"},
            push_op{op_kind::remove, id2, "s-2", 4, nullptr, "dev-1"}};
}

tether::error decode_request_error(const std::string& body, const protocol::limits& lim = {}) {
    auto r = protocol::decode_push_request(body, lim);
    REQUIRE_FALSE(r);
    return r.error();
}

std::string op_json(const std::string& fields) {
    return R"({"origin":"d","ops":[{)" + fields + "}]}";
}

}  // namespace

TEST_CASE("push request: the documented shape", "[protocol]") {
    auto ops = sample_ops();
    auto body = protocol::encode_push_request(ops);
    REQUIRE(body);
    const auto j = nlohmann::json::parse(*body);
    CHECK(j == nlohmann::json::parse(R"({"origin":"dev-1","ops":[
        {"kind":"create","id":"01890a5d-ac96-774b-bcce-b302099a8057","base_version":0,
         "value":{"title":"memo","progress":0}},
        {"kind":"update","id":"01890a5d-ac96-774b-bcce-b302099a8058","server_id":"s-2","base_version":3,
         "value":{"progress":50}},
        {"kind":"remove","id":"01890a5d-ac96-774b-bcce-b302099a8058","server_id":"s-2","base_version":4}]})"));
}

TEST_CASE("push request: decodes what was encoded, an op's own origin wins over the batch's", "[protocol]") {
    auto ops = sample_ops();
    ops[1].origin = "dev-2";
    auto req = protocol::decode_push_request(protocol::encode_push_request(ops).value());
    REQUIRE(req);
    CHECK(req->origin == "dev-1");
    REQUIRE(req->ops.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(req->ops[i].kind == ops[i].kind);
        CHECK(req->ops[i].id == ops[i].id);
        CHECK(req->ops[i].server_id == ops[i].server_id);
        CHECK(req->ops[i].base_version == ops[i].base_version);
        CHECK(req->ops[i].value == ops[i].value);
        CHECK(req->ops[i].origin == ops[i].origin);
    }
}

TEST_CASE("push request: an empty batch encodes and decodes", "[protocol]") {
    auto body = protocol::encode_push_request({});
    REQUIRE(body);
    CHECK(*body == R"({"ops":[],"origin":""})");
    auto req = protocol::decode_push_request(*body);
    REQUIRE(req);
    CHECK(req->ops.empty());
}

TEST_CASE("push request: malformed or mistyped input is protocol (400), naming the field", "[protocol]") {
    const std::string id = R"("id":"01890a5d-ac96-774b-bcce-b302099a8057")";
    struct bad_case {
        std::string body;
        std::string names;
    };
    const std::vector<bad_case> cases{
        {"not json", "malformed JSON"},
        {"[]", "push"},
        {R"({"ops":[]})", "origin"},
        {R"({"origin":7,"ops":[]})", "origin"},
        {R"({"origin":"d"})", "ops"},
        {R"({"origin":"d","ops":{}})", "ops"},
        {R"({"origin":"d","ops":[7]})", "ops[0]"},
        {op_json(R"("kind":"upsert",)" + id + R"(,"value":{})"), "ops[0].kind"},
        {op_json(R"("kind":1,)" + id + R"(,"value":{})"), "ops[0].kind"},
        {op_json(R"("kind":"create","value":{})"), "ops[0].id"},
        {op_json(R"("kind":"create","id":"","value":{})"), "ops[0].id"},
        {op_json(R"("kind":"create","id":"not-a-uuid","value":{})"), "ops[0].id"},
        {op_json(R"("kind":"create","id":"00000000-0000-0000-0000-000000000000","value":{})"), "ops[0].id"},
        {op_json(R"("kind":"update",)" + id + R"(,"server_id":"","value":{})"), "ops[0].server_id"},
        {op_json(R"("kind":"update",)" + id + R"(,"server_id":5,"value":{})"), "ops[0].server_id"},
        {op_json(R"("kind":"update",)" + id + R"(,"server_id":")" + std::string(257, 's') + R"(","value":{})"),
         "ops[0].server_id"},
        {op_json(R"("kind":"update",)" + id + R"(,"base_version":-1,"value":{})"), "ops[0].base_version"},
        {op_json(R"("kind":"update",)" + id + R"(,"base_version":1.5,"value":{})"), "ops[0].base_version"},
        {op_json(R"("kind":"update",)" + id + R"(,"base_version":"3","value":{})"), "ops[0].base_version"},
        {op_json(R"("kind":"create",)" + id), "ops[0].value"},
        {op_json(R"("kind":"create",)" + id + R"(,"value":[1])"), "ops[0].value"},
        {op_json(R"("kind":"remove",)" + id + R"(,"value":{}")"), "malformed JSON"},
        {op_json(R"("kind":"remove",)" + id + R"(,"value":{})"), "ops[0].value"},
        {op_json(R"("kind":"create",)" + id + R"(,"value":{},"origin":false)"), "ops[0].origin"},
    };
    for (const auto& c : cases) {
        INFO(c.body);
        auto e = decode_request_error(c.body);
        CHECK(e.code == errc::protocol);
        CHECK(e.http_status == 400);
        CHECK_THAT(e.message, Catch::Contains(c.names));
    }
}

TEST_CASE("push request: over a limit is too_large (413) and nothing is decoded", "[protocol]") {
    protocol::limits lim;
    lim.max_ops = 2;
    lim.max_body_bytes = 2000;
    lim.max_depth = 8;
    auto ops = sample_ops();
    auto three = protocol::encode_push_request(ops).value();
    auto e = decode_request_error(three, lim);
    CHECK(e.code == errc::too_large);
    CHECK(e.http_status == 413);
    CHECK_THAT(e.message, Catch::Contains("3 ops"));

    ops.resize(1);
    ops[0].value["big"] = std::string(3000, 'x');
    e = decode_request_error(protocol::encode_push_request(ops).value(), lim);
    CHECK(e.code == errc::too_large);
    CHECK(e.http_status == 413);

    ops[0].value = {{"a", {{"b", {{"c", {{"d", {{"e", {1}}}}}}}}}}};  // the body nests 3 + 6 = 9 deep
    e = decode_request_error(protocol::encode_push_request(ops).value(), lim);
    CHECK(e.code == errc::too_large);
    CHECK_THAT(e.message, Catch::Contains("nested"));
}

TEST_CASE("check_value_size rejects one op whose value is over max_value_bytes", "[protocol]") {
    protocol::limits lim;
    lim.max_value_bytes = 20;
    push_op small{op_kind::create, id1, std::nullopt, 0, {{"a", "12345"}}, "d"};
    push_op big{op_kind::create, id1, std::nullopt, 0, {{"a", std::string(20, 'x')}}, "d"};
    CHECK(protocol::check_value_size(small, lim));
    auto r = protocol::check_value_size(big, lim);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::too_large);
}

TEST_CASE("push answer: every outcome shape", "[protocol]") {
    tether::server_record rec{"s-1", id1, 4, {{"title", "memo"}}, tether::timestamp{std::chrono::milliseconds{1700000000000}}, "dev-1"};
    std::vector<push_outcome> outs{
        push_outcome{push_outcome::kind::applied, rec, {}, true},
        push_outcome{push_outcome::kind::conflict, rec, tether::make_error(errc::conflict, "base 3, server at 4"), false},
        push_outcome{push_outcome::kind::rejected, {}, tether::make_error(errc::too_large, "value over 1048576 bytes"), false},
    };
    auto body = protocol::encode_push_answer(outs);
    REQUIRE(body);
    CHECK(nlohmann::json::parse(*body) == nlohmann::json::parse(R"({"outcomes":[
        {"outcome":"applied","replayed":true,"record":{"server_id":"s-1","id":"01890a5d-ac96-774b-bcce-b302099a8057",
         "version":4,"value":{"title":"memo"},"updated_at":1700000000000,"origin":"dev-1"}},
        {"outcome":"conflict","replayed":false,"record":{"server_id":"s-1","id":"01890a5d-ac96-774b-bcce-b302099a8057",
         "version":4,"value":{"title":"memo"},"updated_at":1700000000000,"origin":"dev-1"},
         "error":{"code":"conflict","message":"base 3, server at 4","retryable":false}},
        {"outcome":"rejected","error":{"code":"too_large","message":"value over 1048576 bytes","retryable":false}}]})"));
    auto ops = sample_ops();
    auto back = protocol::decode_push_answer(*body, ops);
    REQUIRE(back);
    REQUIRE(back->size() == 3);
    CHECK((*back)[0].outcome == push_outcome::kind::applied);
    CHECK((*back)[0].replayed);
    CHECK((*back)[0].record.server_id == "s-1");
    CHECK((*back)[0].record.id == id1);
    CHECK((*back)[0].record.updated_at == rec.updated_at);
    CHECK((*back)[0].record.origin == "dev-1");
    CHECK((*back)[1].outcome == push_outcome::kind::conflict);
    CHECK((*back)[1].failure.code == errc::conflict);
    CHECK((*back)[1].record.version == 4);
    CHECK((*back)[2].outcome == push_outcome::kind::rejected);
    CHECK((*back)[2].failure.code == errc::too_large);
    CHECK((*back)[2].failure.message == "value over 1048576 bytes");
}

TEST_CASE("push answer to ops: a first create stored as sent answers in short form", "[protocol]") {
    auto ops = sample_ops();
    const tether::timestamp at{std::chrono::milliseconds{1700000000000}};
    auto applied = [&](nlohmann::json value, bool replayed) {
        return push_outcome{push_outcome::kind::applied,
                            tether::server_record{"s-9", id1, 7, std::move(value), at, "dev-1"}, {}, replayed};
    };
    const push_outcome removed{push_outcome::kind::applied, tether::server_record{"s-2", id2, 9, nullptr, at, "dev-1"},
                               {}, false};
    const push_outcome updated{push_outcome::kind::applied,
                               tether::server_record{"s-2", id2, 8, {{"title", "t"}, {"progress", 50}}, at, "dev-1"},
                               {}, false};
    SECTION("stored as sent: only server id, version and updated_at go back") {
        std::vector<push_outcome> outs{applied(ops[0].value, false), updated, removed};
        auto body = protocol::encode_push_answer(outs, ops, "dev-1").value();
        auto j = nlohmann::json::parse(body);
        CHECK(j["outcomes"][0]["record"] ==
              nlohmann::json::parse(R"({"server_id":"s-9","version":7,"updated_at":1700000000000})"));
        CHECK(j["outcomes"][1]["record"].contains("value"));  // an update's answer is the merged record
        auto back = protocol::decode_push_answer(body, ops).value();
        CHECK(back[0].record.server_id == "s-9");
        CHECK(back[0].record.version == 7);
        CHECK_FALSE(back[0].record.id.has_value());    // the op's
        CHECK(back[0].record.origin.empty());          // the op's
        CHECK(back[0].record.value.is_null());         // the client holds it
        CHECK(back[1].record.value == updated.record.value);
    }
    SECTION("a value the server changed, a replay or another origin: the whole record") {
        nlohmann::json filled = ops[0].value;
        filled["audio_path"] = "/srv/a";
        for (const auto& o : {applied(filled, false), applied(ops[0].value, true)}) {
            std::vector<push_outcome> outs{o, updated, removed};
            auto back = protocol::decode_push_answer(protocol::encode_push_answer(outs, ops, "dev-1").value(), ops);
            REQUIRE(back);
            CHECK((*back)[0].record.value == o.record.value);
        }
        auto other = applied(ops[0].value, false);
        other.record.origin = "dev-2";
        std::vector<push_outcome> outs{other, updated, removed};
        auto back = protocol::decode_push_answer(protocol::encode_push_answer(outs, ops, "dev-1").value(), ops);
        REQUIRE(back);
        CHECK((*back)[0].record.origin == "dev-2");
        CHECK((*back)[0].record.value == ops[0].value);
    }
}

TEST_CASE("push answer: the outcome count must equal the op count", "[protocol]") {
    auto ops = sample_ops();
    const std::string one = R"({"outcomes":[{"outcome":"rejected","error":{"code":"transient","message":""}}]})";
    auto r = protocol::decode_push_answer(one, ops);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::protocol);
    CHECK_THAT(r.error().message, Catch::Contains("1 outcomes for 3 ops"));
    CHECK(protocol::decode_push_answer(R"({"outcomes":[]})", ops).error().code == errc::protocol);
    CHECK(protocol::decode_push_answer(R"({"outcomes":[]})", {}).has_value());
}

TEST_CASE("push answer: malformed outcomes are protocol", "[protocol]") {
    std::vector<push_op> create{sample_ops()[0]};
    std::vector<push_op> remove{sample_ops()[2]};
    const std::string rec = R"({"server_id":"s","version":1,"value":{}})";
    for (const std::string& bad : {
             std::string{"{}"},
             std::string{R"({"outcomes":{}})"},
             std::string{R"({"outcomes":[7]})"},
             std::string{R"({"outcomes":[{"outcome":"done","record":)"} + rec + "}]}",
             std::string{R"({"outcomes":[{"record":)"} + rec + "}]}",
             std::string{R"({"outcomes":[{"outcome":"applied"}]})"},
             std::string{R"({"outcomes":[{"outcome":"applied","record":{"server_id":"","version":1}}]})"},
             std::string{R"({"outcomes":[{"outcome":"applied","record":{"version":1}}]})"},
             std::string{R"({"outcomes":[{"outcome":"applied","record":{"server_id":"s","version":-2}}]})"},
             std::string{R"({"outcomes":[{"outcome":"applied","record":{"server_id":"s","version":1,"id":"x"}}]})"},
             std::string{R"({"outcomes":[{"outcome":"applied","record":{"server_id":"s","version":1,"updated_at":"x"}}]})"},
             std::string{R"({"outcomes":[{"outcome":"applied","replayed":"yes","record":)"} + rec + "}]}",
             std::string{R"({"outcomes":[{"outcome":"conflict"}]})"},
             std::string{R"({"outcomes":[{"outcome":"rejected"}]})"},
             std::string{R"({"outcomes":[{"outcome":"rejected","error":{"message":"x"}}]})"},
             std::string{R"({"outcomes":[{"outcome":"rejected","error":{"code":"rejected","retryable":1}}]})"},
             std::string{R"({"outcomes":[{"outcome":"rejected","error":"nope"}]})"},
         }) {
        INFO(bad);
        auto r = protocol::decode_push_answer(bad, create);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::protocol);
    }
    // An applied remove may confirm a record the server never saw: no server id.
    auto ok = protocol::decode_push_answer(R"({"outcomes":[{"outcome":"applied","record":{"server_id":"","version":0}}]})",
                                           remove);
    REQUIRE(ok);
    CHECK(ok->front().record.value.is_null());
}

TEST_CASE("push answer: an unknown error code becomes rejected or transient by its retryable flag", "[protocol]") {
    std::vector<push_op> one{sample_ops()[0]};
    auto later = protocol::decode_push_answer(
        R"({"outcomes":[{"outcome":"rejected","error":{"code":"quota","message":"full","retryable":true,"retry_after_ms":1500}}]})",
        one);
    REQUIRE(later);
    CHECK(later->front().failure.code == errc::transient);
    CHECK(later->front().failure.message == "server code 'quota': full");
    CHECK(later->front().failure.retry_after == std::chrono::milliseconds{1500});
    auto never = protocol::decode_push_answer(
        R"({"outcomes":[{"outcome":"rejected","error":{"code":"quota"}}]})", one);
    REQUIRE(never);
    CHECK(never->front().failure.code == errc::rejected);
    // A known code keeps its own retryability whatever the flag says.
    auto known = protocol::decode_push_answer(
        R"({"outcomes":[{"outcome":"rejected","error":{"code":"not_found","message":"gone","retryable":true}}]})", one);
    REQUIRE(known);
    CHECK(known->front().failure.code == errc::not_found);
}

TEST_CASE("push answer: over the parse limits is protocol", "[protocol]") {
    std::vector<push_op> one{sample_ops()[0]};
    const std::string body = R"({"outcomes":[{"outcome":"rejected","error":{"code":"transient"}}]})";
    CHECK(protocol::decode_push_answer(body, one, {body.size() - 1, 10}).error().code == errc::protocol);
    CHECK(protocol::decode_push_answer(body, one, {body.size(), 3}).error().code == errc::protocol);
    CHECK(protocol::decode_push_answer(body, one, {body.size(), 4}).has_value());
}
