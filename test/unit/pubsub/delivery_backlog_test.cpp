// DeliveryBacklog: per-channel FIFO, channels served round-robin one message at a time.
#include "gripd/pubsub/delivery_backlog.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using gripd::pubsub::DeliveryBacklog;
using gripd::pubsub::Message;
using gripd::pubsub::MessageRef;
using gripd::pubsub::PublishItem;

namespace {

MessageRef msg(const std::string& channel, const std::string& id) {
    PublishItem item;
    item.channel = channel;
    item.id = id;
    return Message::create(std::move(item));
}

// Drains the backlog: "channel/id" in delivery order.
std::vector<std::string> drain(DeliveryBacklog& b) {
    std::vector<std::string> out;
    while (!b.empty()) {
        out.push_back(b.front()->channel() + "/" + *b.front()->id());
        b.pop_front();
    }
    return out;
}

} // namespace

TEST_CASE("one channel: its messages in order", "[delivery_backlog]") {
    DeliveryBacklog b;
    for (int i = 0; i < 5; ++i)
        b.push_back(msg("a", std::to_string(i)));
    CHECK(b.size() == 5);
    CHECK(b.channels() == 1);
    CHECK(drain(b) == std::vector<std::string>{"a/0", "a/1", "a/2", "a/3", "a/4"});
    CHECK(b.size() == 0);
}

TEST_CASE("a flood on one channel delays another channel's message by one message", "[delivery_backlog]") {
    DeliveryBacklog b;
    for (int i = 0; i < 1000; ++i)
        b.push_back(msg("flood", std::to_string(i)));
    b.push_back(msg("probe", "p"));
    auto order = drain(b);
    REQUIRE(order.size() == 1001);
    CHECK(order[0] == "flood/0");
    CHECK(order[1] == "probe/p");
    for (size_t i = 2; i < order.size(); ++i)
        CHECK(order[i] == "flood/" + std::to_string(i - 1));
}

TEST_CASE("channels take turns, each in its own order, also while queued during delivery",
          "[delivery_backlog]") {
    DeliveryBacklog b;
    b.push_back(msg("a", "1"));
    b.push_back(msg("a", "2"));
    b.push_back(msg("b", "1"));
    std::vector<std::string> out;
    out.push_back(b.front()->channel() + "/" + *b.front()->id());
    b.pop_front(); // a/1 out; a goes behind b
    b.push_back(msg("c", "1"));
    b.push_back(msg("b", "2"));
    auto rest = drain(b);
    out.insert(out.end(), rest.begin(), rest.end());
    CHECK(out == std::vector<std::string>{"a/1", "b/1", "a/2", "c/1", "b/2"});
    CHECK(b.channels() == 0);
}
