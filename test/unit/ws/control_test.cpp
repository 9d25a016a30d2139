#include "gripd/ws/control.hpp"

#include <catch2/catch.hpp>

using namespace gripd::ws;
using gripd::pubsub::WsType;

TEST_CASE("control: subscribe and unsubscribe", "[ws][control]") {
    std::string err;
    auto m = parse_control_message(R"({"type":"subscribe","channel":"c","filters":["skip-self"]})", &err);
    REQUIRE(m);
    CHECK(m->type == ControlMessage::Type::Subscribe);
    CHECK(m->channel == "c");
    REQUIRE(m->filters.size() == 1);
    CHECK(m->filters[0] == "skip-self");
    m = parse_control_message(R"({"type":"unsubscribe","channel":"c"})", &err);
    REQUIRE(m);
    CHECK(m->type == ControlMessage::Type::Unsubscribe);
    CHECK_FALSE(parse_control_message(R"({"type":"subscribe"})", &err));
    CHECK_FALSE(parse_control_message(R"({"type":"subscribe","channel":""})", &err));
    CHECK_FALSE(parse_control_message(R"({"type":"subscribe","channel":"c","filters":[1]})", &err));
}

TEST_CASE("control: keep-alive", "[ws][control]") {
    std::string err;
    auto m =
        parse_control_message(R"({"type":"keep-alive","content":"ka","timeout":30,"mode":"interval"})", &err);
    REQUIRE(m);
    CHECK(m->type == ControlMessage::Type::KeepAlive);
    CHECK(m->content == "ka");
    CHECK(m->timeout == 30);
    CHECK(m->interval);
    CHECK(m->message_type == WsType::Text);
    m = parse_control_message(R"({"type":"keep-alive","content-bin":"AAE=","message-type":"ping"})", &err);
    REQUIRE(m);
    CHECK(m->content == std::string("\x00\x01", 2));
    CHECK(m->message_type == WsType::Ping);
    CHECK(m->timeout == -1);
    CHECK_FALSE(m->interval);
    // content-bin without message-type is text, as Pushpin sends it
    m = parse_control_message(R"({"type":"keep-alive","content-bin":"aGk="})", &err);
    REQUIRE(m);
    CHECK(m->content == "hi");
    CHECK(m->message_type == WsType::Text);
    m = parse_control_message(R"({"type":"keep-alive"})", &err);
    REQUIRE(m);
    CHECK_FALSE(m->content);
    CHECK_FALSE(parse_control_message(R"({"type":"keep-alive","content":"x","timeout":-1})", &err));
    CHECK_FALSE(parse_control_message(R"({"type":"keep-alive","content":"x","message-type":"close"})", &err));
}

TEST_CASE("control: set-meta, detach, others", "[ws][control]") {
    std::string err;
    auto m = parse_control_message(R"({"type":"set-meta","name":"user","value":"alice"})", &err);
    REQUIRE(m);
    CHECK(m->name == "user");
    CHECK(m->value == "alice");
    m = parse_control_message(R"({"type":"set-meta","name":"user"})", &err);
    REQUIRE(m);
    CHECK_FALSE(m->value);
    CHECK(parse_control_message(R"({"type":"detach"})", &err)->type == ControlMessage::Type::Detach);
    CHECK(parse_control_message(R"({"type":"session","id":"s"})", &err)->value == "s");
    CHECK_FALSE(parse_control_message(R"({"type":"close"})", &err));
    CHECK(err.find("unknown value") != std::string::npos);
    CHECK_FALSE(parse_control_message("[1]", &err));
    CHECK_FALSE(parse_control_message("{", &err));
}

TEST_CASE("control: send-delayed and flush-delayed", "[ws][control]") {
    std::string err;
    auto m = parse_control_message(R"({"type":"send-delayed","content":"later","timeout":5})", &err);
    REQUIRE(m);
    CHECK(m->type == ControlMessage::Type::SendDelayed);
    CHECK(m->content == "later");
    CHECK(m->timeout == 5);
    CHECK(m->message_type == WsType::Text);
    m = parse_control_message(R"({"type":"send-delayed","content-bin":"AP8=","message-type":"binary"})",
                              &err);
    REQUIRE(m);
    CHECK(m->content == std::string("\x00\xff", 2));
    CHECK(m->message_type == WsType::Binary);
    CHECK(m->timeout == -1); // the session uses kDefaultSendDelayedTimeout
    m = parse_control_message(R"({"type":"send-delayed"})", &err);
    REQUIRE(m);
    CHECK_FALSE(m->content); // the session sends an empty message, as Pushpin
    CHECK_FALSE(parse_control_message(R"({"type":"send-delayed","content":"x","timeout":-2})", &err));
    CHECK_FALSE(parse_control_message(R"({"type":"send-delayed","content":1})", &err));
    CHECK(parse_control_message(R"({"type":"flush-delayed"})", &err)->type ==
          ControlMessage::Type::FlushDelayed);
}

TEST_CASE("control: subscribe with gripd's last-id", "[ws][control]") {
    std::string err;
    auto m = parse_control_message(R"({"type":"subscribe","channel":"c","last-id":"41"})", &err);
    REQUIRE(m);
    REQUIRE(m->last_id);
    CHECK(*m->last_id == "41");
    m = parse_control_message(R"({"type":"subscribe","channel":"c"})", &err);
    REQUIRE(m);
    CHECK_FALSE(m->last_id);
    CHECK_FALSE(parse_control_message(R"({"type":"subscribe","channel":"c","last-id":5})", &err));
}

TEST_CASE("control: subscribe with gripd's ids", "[ws][control]") {
    std::string err;
    auto m = parse_control_message(R"({"type":"subscribe","channel":"c","ids":true,"last-id":"4"})", &err);
    REQUIRE(m);
    CHECK(m->ids == true);
    m = parse_control_message(R"({"type":"subscribe","channel":"c","ids":false})", &err);
    REQUIRE(m);
    CHECK(m->ids == false);
    m = parse_control_message(R"({"type":"subscribe","channel":"c"})", &err);
    REQUIRE(m);
    CHECK_FALSE(m->ids);
    CHECK_FALSE(parse_control_message(R"({"type":"subscribe","channel":"c","ids":"yes"})", &err));
    CHECK(err == "invalid 'ids'");
    CHECK_FALSE(parse_control_message(R"({"type":"subscribe","channel":"c","ids":1})", &err));
    // unsubscribe does not read it
    CHECK(parse_control_message(R"({"type":"unsubscribe","channel":"c","ids":1})", &err));
}
