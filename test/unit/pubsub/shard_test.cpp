#include "gripd/pubsub/shard.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

using namespace gripd::pubsub;

namespace {

MessageRef msg(const std::string& channel, std::optional<std::string> id = std::nullopt,
               std::optional<std::string> prev = std::nullopt, bool no_seq = false) {
    PublishItem item;
    item.channel = channel;
    item.id = std::move(id);
    item.prev_id = std::move(prev);
    item.no_seq = no_seq;
    item.http_stream.emplace();
    item.http_stream->content = "x";
    return Message::create(std::move(item));
}

std::vector<std::string> ids(const std::vector<Delivery>& ds) {
    std::vector<std::string> out;
    for (const auto& d : ds)
        out.push_back(d.message->id().value_or("-"));
    return out;
}

using V = std::vector<std::string>;

} // namespace

TEST_CASE("shard: stable shard_of", "[pubsub][shard]") {
    // FNV-1a 32-bit reference values (same as the broker's hash).
    CHECK(shard_of("", 1u << 31) == (2166136261u % (1u << 31)));
    CHECK(shard_of("a", 0xffffffffu) == 0xe40c292cu % 0xffffffffu);
    CHECK(shard_of("foobar", 0xffffffffu) == 0xbf9cf968u % 0xffffffffu);
    for (const char* c : {"a", "room-1", "user/42"}) {
        CHECK(shard_of(c, 64) < 64);
        CHECK(shard_of(c, 64) == shard_of(c, 64));
        CHECK(shard_of(c, 16) == shard_of(c, 64) % 16);
    }
    CHECK(shard_of("x", 1) == 0);
}

TEST_CASE("shard: worker subscriber counts and transitions", "[pubsub][shard]") {
    ShardDirectory d;
    CHECK(d.on_subscribe_delta("c", 3, +1) == SubscriberChange::First);
    CHECK(d.on_subscribe_delta("c", 1, +1) == SubscriberChange::None);
    CHECK(d.on_subscribe_delta("c", 3, +1) == SubscriberChange::None);
    CHECK(d.workers_of("c") == std::vector<uint32_t>{1, 3});
    CHECK(d.on_subscribe_delta("c", 3, -1) == SubscriberChange::None);
    CHECK(d.workers_of("c") == std::vector<uint32_t>{1, 3});
    CHECK(d.on_subscribe_delta("c", 3, -1) == SubscriberChange::None);
    CHECK(d.workers_of("c") == std::vector<uint32_t>{1});
    CHECK(d.on_subscribe_delta("c", 3, -1) == SubscriberChange::None); // below zero: ignored
    CHECK(d.on_subscribe_delta("other", 1, -1) == SubscriberChange::None);
    CHECK(d.on_subscribe_delta("c", 1, -1) == SubscriberChange::Last);
    CHECK_FALSE(d.has_subscribers("c"));
    CHECK(d.channel_count() == 0);
}

TEST_CASE("shard: many workers on one channel stay ordered", "[pubsub][shard]") {
    // More workers than the inline slots: the list moves to the heap and keeps its order.
    ShardDirectory d;
    for (uint32_t w : {5u, 1u, 7u, 3u, 0u, 6u})
        d.on_subscribe_delta("c", w, +1);
    CHECK(d.workers_of("c") == std::vector<uint32_t>{0, 1, 3, 5, 6, 7});
    CHECK(d.on_subscribe_delta("c", 3, -1) == SubscriberChange::None);
    CHECK(d.on_subscribe_delta("c", 0, -5) == SubscriberChange::None);
    CHECK(d.workers_of("c") == std::vector<uint32_t>{1, 5, 6, 7});
    d.on_subscribe_delta("c", 4, +2);
    CHECK(d.workers_of("c") == std::vector<uint32_t>{1, 4, 5, 6, 7});
    for (uint32_t w : {1u, 5u, 6u, 7u})
        CHECK(d.on_subscribe_delta("c", w, -1) == SubscriberChange::None);
    CHECK(d.on_subscribe_delta("c", 4, -1) == SubscriberChange::None);
    CHECK(d.on_subscribe_delta("c", 4, -1) == SubscriberChange::Last);
}

TEST_CASE("shard: deliveries go only to workers with subscribers", "[pubsub][shard]") {
    ShardDirectory d;
    CHECK(d.on_publish(msg("c", "1"), 0).empty()); // nobody listens
    CHECK(d.last_id("c") == nullptr);              // and nothing is learned
    d.on_subscribe_delta("c", 2, +1);
    d.on_subscribe_delta("c", 0, +1);
    auto out = d.on_publish(msg("c", "1"), 0);
    REQUIRE(out.size() == 1);
    CHECK(out[0].workers == std::vector<uint32_t>{0, 2});
    CHECK(*d.last_id("c") == "1");
    CHECK(d.on_publish(msg("d", "1"), 0).empty());
    // no id: clears the last id
    d.on_publish(msg("c"), 0);
    CHECK(d.last_id("c") == nullptr);
}

TEST_CASE("shard: prev-id sequencing releases in order", "[pubsub][shard]") {
    ShardDirectory d({.message_wait_ms = 5000});
    d.on_subscribe_delta("c", 0, +1);
    CHECK(ids(d.on_publish(msg("c", "1"), 100)) == V{"1"});
    // 3 (after 2) and 4 (after 3) arrive before 2
    CHECK(d.on_publish(msg("c", "3", "2"), 200).empty());
    CHECK(d.on_publish(msg("c", "4", "3"), 300).empty());
    CHECK(d.pending_count("c") == 2);
    CHECK(d.next_expiry() == 5200);
    CHECK(ids(d.on_publish(msg("c", "2", "1"), 400)) == V{"2", "3", "4"});
    CHECK(d.pending_count("c") == 0);
    CHECK(*d.last_id("c") == "4");
    CHECK(d.expire(100000).empty()); // stale timer entries are skipped
    CHECK_FALSE(d.next_expiry());
    // no prev-id, or unknown last id: straight through
    CHECK(ids(d.on_publish(msg("c", "9"), 500)) == V{"9"});
}

TEST_CASE("shard: waiting messages expire after message_wait", "[pubsub][shard]") {
    ShardDirectory d({.message_wait_ms = 1000});
    d.on_subscribe_delta("c", 0, +1);
    d.on_publish(msg("c", "1"), 0);
    CHECK(d.on_publish(msg("c", "3", "2"), 10).empty());
    CHECK(d.on_publish(msg("c", "4", "3"), 20).empty());
    CHECK(d.on_publish(msg("c", "9", "8"), 500).empty());
    CHECK(d.expire(1009).empty());
    // 3 times out and unblocks 4; 9 still waits (its predecessor 8 never came)
    CHECK(ids(d.expire(1010)) == V{"3", "4"});
    CHECK(*d.last_id("c") == "4");
    CHECK(d.pending_count("c") == 1);
    CHECK(d.next_expiry() == 1500);
    CHECK(ids(d.expire(1500)) == V{"9"});
    CHECK(d.pending_count("c") == 0);
}

TEST_CASE("shard: duplicate prev-id, pending cap, no-seq", "[pubsub][shard]") {
    ShardDirectory d({.message_wait_ms = 1000, .id_cache_ttl_ms = 0, .pending_max = 3});
    d.on_subscribe_delta("c", 0, +1);
    d.on_publish(msg("c", "1"), 0);
    CHECK(d.on_publish(msg("c", "a", "x"), 0).empty());
    CHECK(d.on_publish(msg("c", "b", "x"), 0).empty()); // same prev-id: dropped
    CHECK(d.pending_count("c") == 1);
    d.on_publish(msg("c", "c", "y"), 0);
    d.on_publish(msg("c", "d", "z"), 0);
    CHECK(d.pending_count("c") == 3);
    CHECK(d.on_publish(msg("c", "e", "w"), 0).empty()); // over the cap: dropped
    CHECK(d.pending_count("c") == 3);
    // no-seq goes straight out and leaves the last id alone
    CHECK(ids(d.on_publish(msg("c", "n", "zzz", true), 0)) == V{"n"});
    CHECK(*d.last_id("c") == "1");
    CHECK(ids(d.expire(1000)) == V{"a", "c", "d"});
}

TEST_CASE("shard: id dedupe within the TTL", "[pubsub][shard]") {
    ShardDirectory d({.message_wait_ms = 5000, .id_cache_ttl_ms = 60000});
    d.on_subscribe_delta("c", 0, +1);
    CHECK(ids(d.on_publish(msg("c", "1"), 0)) == V{"1"});
    CHECK(d.on_publish(msg("c", "1"), 59999).empty());
    CHECK(ids(d.on_publish(msg("other", "1"), 10)).empty()); // no subscribers, but remembered
    CHECK(d.id_cache_size() == 2);
    CHECK(ids(d.on_publish(msg("c", "1"), 60000)) == V{"1"});              // expired, accepted again
    CHECK(d.on_publish(msg("c", "1", std::nullopt, true), 60001).empty()); // no-seq is deduped too
    CHECK(ids(d.on_publish(msg("c"), 60002)) == V{"-"});                   // no id: never deduped
    CHECK(ids(d.on_publish(msg("c"), 60002)) == V{"-"});
    d.expire(200000);
    CHECK(d.id_cache_size() == 0);
}

TEST_CASE("shard: last subscriber leaving forgets the channel", "[pubsub][shard]") {
    ShardDirectory d({.message_wait_ms = 1000});
    d.on_subscribe_delta("c", 0, +1);
    d.on_publish(msg("c", "1"), 0);
    d.on_publish(msg("c", "3", "2"), 0);
    CHECK(d.on_subscribe_delta("c", 0, -1) == SubscriberChange::Last);
    CHECK(d.last_id("c") == nullptr);
    CHECK(d.pending_count("c") == 0);
    CHECK(d.on_subscribe_delta("c", 1, +1) == SubscriberChange::First);
    CHECK(d.expire(5000).empty()); // the forgotten waiter is not released
    // fresh state: prev-id of an unknown last id passes
    CHECK(ids(d.on_publish(msg("c", "7", "6"), 5000)) == V{"7"});
}

TEST_CASE("shard: recover forgets last ids", "[pubsub][shard]") {
    ShardDirectory d;
    d.on_subscribe_delta("c", 0, +1);
    d.on_publish(msg("c", "1"), 0);
    d.recover();
    CHECK(d.last_id("c") == nullptr);
    CHECK(ids(d.on_publish(msg("c", "5", "4"), 0)) == V{"5"});
}

TEST_CASE("shard: time going backwards is clamped", "[pubsub][shard]") {
    ShardDirectory d({.message_wait_ms = 1000});
    d.on_subscribe_delta("c", 0, +1);
    d.on_publish(msg("c", "1"), 5000);
    d.on_publish(msg("c", "3", "2"), 100); // treated as 5000
    CHECK(d.expire(5999).empty());
    CHECK(ids(d.expire(6000)) == V{"3"});
}

TEST_CASE("shard: a channel left by a long-poll lingers with its last id", "[pubsub][shard][linger]") {
    ShardConfig cfg;
    cfg.subscription_linger_ms = 60000;
    ShardDirectory d(cfg);
    CHECK(d.on_subscribe_delta("c", 0, 1, false, 1000) == SubscriberChange::First);
    CHECK(ids(d.on_publish(msg("c", "a"), 1000)) == V{"a"});
    // The last one to leave was a long-poll: the state stays, nothing is reported yet.
    CHECK(d.on_subscribe_delta("c", 0, -1, true, 2000) == SubscriberChange::None);
    CHECK(d.is_lingering("c"));
    // Still sequenced while nobody listens: the last id moves on, nothing is delivered.
    CHECK(d.on_publish(msg("c", "b", "a"), 3000).empty());
    REQUIRE(d.last_id("c"));
    CHECK(*d.last_id("c") == "b");
    CHECK(d.next_expiry() == std::optional<uint64_t>(62000));
    // A long-poll back within the linger finds it (no new First: a bus stayed subscribed).
    CHECK(d.on_subscribe_delta("c", 1, 1, false, 4000) == SubscriberChange::None);
    CHECK_FALSE(d.is_lingering("c"));
    CHECK(d.end_lingering(70000).empty()); // revived: its old deadline is stale
    CHECK(ids(d.on_publish(msg("c", "c", "b"), 70000)) == V{"c"});
    // Left again; this time the linger runs out.
    CHECK(d.on_subscribe_delta("c", 1, -1, true, 71000) == SubscriberChange::None);
    CHECK(d.end_lingering(130999).empty());
    CHECK(d.end_lingering(131000) == V{"c"});
    CHECK_FALSE(d.has_subscribers("c"));
    CHECK(d.last_id("c") == nullptr);
}

TEST_CASE("shard: streams and WebSockets, or a linger of 0, forget at once", "[pubsub][shard][linger]") {
    ShardConfig cfg;
    cfg.subscription_linger_ms = 60000;
    ShardDirectory d(cfg);
    d.on_subscribe_delta("s", 0, 1, false, 0);
    d.on_publish(msg("s", "a"), 0);
    CHECK(d.on_subscribe_delta("s", 0, -1, false, 0) == SubscriberChange::Last);
    CHECK(d.last_id("s") == nullptr);
    ShardDirectory z; // subscription_linger=0
    z.on_subscribe_delta("r", 0, 1, false, 0);
    CHECK(z.on_subscribe_delta("r", 0, -1, true, 0) == SubscriberChange::Last);
}
