#include "gripd/pubsub/bus_stream.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace bs = gripd::pubsub::bus_stream;
using gripd::pubsub::RedisBus;
using How = RedisBus::BusItem::How;

namespace {
std::vector<std::pair<std::string, std::string>> items_of(std::string_view message) {
    std::vector<std::pair<std::string, std::string>> out;
    bool ok = bs::for_each_message_item(message, [&](std::string_view item, std::string_view id) {
        out.emplace_back(std::string(item), std::string(id));
    });
    if (!ok) out.emplace_back("<malformed>", "");
    return out;
}
} // namespace

TEST_CASE("bus stream: one call per run, cut at the byte bound and around an item too big", "[pubsub][bus]") {
    RedisBus::StreamBounds keep{10, 80, false};
    std::string small(20, 's'), big(100, 'b');
    std::vector<RedisBus::BusItem> items{{small, How::Keep, "1"},
                                         {small, How::PublishOnly, ""},
                                         {small, How::KeepAssign, ""},
                                         {big, How::Keep, "2"},
                                         {small, How::Keep, "3"}};
    std::vector<bs::Call> calls = bs::plan_calls(items, keep);
    // 80 / 8 = 10 bytes a run: one 20-byte item each; the big one is a marker call.
    REQUIRE(calls.size() == 5);
    CHECK((calls[0].how == 'r' && calls[0].items == 1 && calls[0].run == "k20:" + small));
    CHECK((calls[1].how == 'p' && calls[1].items == 0 && calls[1].run == "p20:" + small));
    CHECK((calls[2].how == 'r' && calls[2].run == "a20:" + small));
    CHECK((calls[3].how == 'g' && calls[3].id == "2" && calls[3].run == "k100:" + big));
    CHECK(calls[4].how == 'r');
    keep.bytes = 1 << 20; // all in one run, in order
    calls = bs::plan_calls(items, keep);
    REQUIRE(calls.size() == 1);
    CHECK((calls[0].how == 'r' && calls[0].records == 5 && calls[0].items == 4 && calls[0].bytes == 180));
}

TEST_CASE("bus stream: at most kMaxRunItems records a call", "[pubsub][bus]") {
    std::vector<RedisBus::BusItem> items(bs::kMaxRunItems + 1, RedisBus::BusItem{"{}", How::Keep, "x"});
    std::vector<bs::Call> calls = bs::plan_calls(items, RedisBus::StreamBounds{10, 1 << 20, false});
    REQUIRE(calls.size() == 2);
    CHECK((calls[0].records == bs::kMaxRunItems && calls[1].records == 1));
}

TEST_CASE("bus stream: messages give assigned ids by position; old formats still read", "[pubsub][bus]") {
    using P = std::pair<std::string, std::string>;
    CHECK(items_of("*5-512 k2:{}a3:{a}p1:xa1:y") ==
          std::vector<P>{{"{}", ""}, {"{a}", "5-513"}, {"x", ""}, {"y", "5-515"}});
    CHECK(items_of("* p2:{}") == std::vector<P>{{"{}", ""}});
    CHECK(items_of("{\"a\":1}") == std::vector<P>{{"{\"a\":1}", ""}});
    CHECK(items_of("#7-1 {}") == std::vector<P>{{"{}", "7-1"}});
    CHECK(items_of("*5-0 k9:{}").back().first == "<malformed>"); // shorter than it says
    CHECK(items_of("* a2:{}").back().first == "<malformed>");    // an assigned id needs the entry's
}

TEST_CASE("bus stream: an entry expands into its kept items with the ids the message gave", "[pubsub][bus]") {
    std::vector<RedisBus::StreamEntry> out;
    bs::expand_entry("5-2", "r", "k2:{}p1:xa3:{a}", &out);
    bs::expand_entry("6-0", "g", "big", &out);
    bs::expand_entry("7-0", "i", "{}", &out);
    bs::expand_entry("8-0", "n", "", &out);
    REQUIRE(out.size() == 4);
    CHECK((out[0].payload == "{}" && out[0].stream_id == "5-512" && out[0].time_ms == 5));
    CHECK((out[1].payload == "{a}" && out[1].stream_id == "5-514"));
    CHECK((out[2].marker && out[2].item_id == "big" && out[2].stream_id == "6-0"));
    CHECK((out[3].payload == "{}" && out[3].stream_id == "7-0"));
}

TEST_CASE("bus stream: without a stream, runs are only published, one item alone as its JSON",
          "[pubsub][bus]") {
    std::vector<RedisBus::BusItem> items(3, RedisBus::BusItem{"{}", How::PublishOnly, ""});
    std::vector<bs::Call> calls = bs::plan_calls(items, RedisBus::StreamBounds{});
    REQUIRE(calls.size() == 1); // no byte bound cuts it
    CHECK((calls[0].how == 'p' && calls[0].records == 3));
    CHECK(bs::publish_message(calls[0], "{}") == "* p2:{}p2:{}p2:{}");
    calls = bs::plan_calls({items[0]}, RedisBus::StreamBounds{});
    CHECK(bs::publish_message(calls.at(0), "{}") == "{}");
}

TEST_CASE(
    "bus stream: a kept run of items with their own ids skips the script; one with assigned ids does not",
    "[pubsub][bus]") {
    RedisBus::StreamBounds keep{10, 1 << 20, false};
    std::vector<RedisBus::BusItem> own{{"{}", How::Keep, "1"}, {"{}", How::PublishOnly, ""}};
    std::vector<bs::Call> calls = bs::plan_calls(own, keep);
    REQUIRE(calls.size() == 1);
    CHECK(bs::add_outside_script(calls[0], keep));
    CHECK(bs::run_value(calls[0]) == std::to_string(4 * 1024 + 1)); // 4 bytes, 1 kept
    std::vector<RedisBus::BusItem> assigned{{"{}", How::Keep, "1"}, {"{}", How::KeepAssign, ""}};
    calls = bs::plan_calls(assigned, keep);
    REQUIRE(calls.size() == 1);
    CHECK_FALSE(bs::add_outside_script(calls[0], keep)); // its message needs the entry id
    calls = bs::plan_calls({own[1]}, keep);              // only published: a plain PUBLISH
    CHECK_FALSE(bs::add_outside_script(calls.at(0), keep));
    RedisBus::StreamBounds ids_only{1, 1, true};
    calls = bs::plan_calls({assigned[1]}, ids_only);
    CHECK_FALSE(bs::add_outside_script(calls.at(0), ids_only));
    RedisBus::StreamBounds tiny{10, 1, false}; // an item over the byte bound: a marker, by the script
    calls = bs::plan_calls({own[0]}, tiny);
    REQUIRE(calls.at(0).how == 'g');
    CHECK_FALSE(bs::add_outside_script(calls[0], tiny));
}

TEST_CASE("bus stream: the trim is asked for past history_size and an eighth, or past the byte bound",
          "[pubsub][bus]") {
    RedisBus::StreamBounds keep{1000, 5000, false};
    CHECK_FALSE(bs::over_bounds(1125, 5000, keep));
    CHECK(bs::over_bounds(1126, 10, keep));
    CHECK(bs::over_bounds(1, 5001, keep));
    CHECK(bs::trim_args(keep) == std::vector<std::string>{"1000", "5000", "t", "0", "0", "", ""});
}
