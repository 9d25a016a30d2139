// Broker across two real workers (two threads, two uv loops), in the manner of libuv's tests: every
// step is a callback that is counted, the workers run until they stop on their own, and at the end
// every handle is closed and nothing is left subscribed. Channel "owned by worker 0, subscribed on
// worker 1" makes every message of the publish path cross a loop: SubscribeDelta, PublishToOwner,
// Deliver, PublishAck, Recover, LastIdQuery and LastIdReply.
#include "gripd/pubsub/broker.hpp"

#include "gripd/loop/worker.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

using namespace gripd;
using pubsub::Broker;
using pubsub::MessageRef;
using pubsub::Subscription;

namespace {

template <class... F> struct Overloaded : F... { using F::operator()...; };
template <class... F> Overloaded(F...) -> Overloaded<F...>;

// A channel whose shard owner is worker `owner` of `workers`.
std::string channel_owned_by(int owner, int workers) {
    for (int i = 0;; ++i) {
        std::string name = "ch" + std::to_string(i);
        if (static_cast<int>(Broker::shard_of_channel(name) % static_cast<uint32_t>(workers)) == owner)
            return name;
    }
}

pubsub::PublishItem stream_item(const std::string& channel, const std::string& id,
                                const std::string& content) {
    pubsub::PublishItem item;
    item.channel = channel;
    item.id = id;
    pubsub::HttpStreamFormat f;
    f.content = content;
    item.http_stream = std::move(f);
    return item;
}

// Two workers, each with a broker wired as src/server.cpp wires them (the same single visit).
struct TwoWorkers {
    config::Settings settings;
    std::vector<std::unique_ptr<loop::Worker>> workers;
    std::vector<loop::Worker*> peers;
    std::vector<std::unique_ptr<Broker>> brokers;
    std::atomic<int> quiesced{0};

    TwoWorkers() {
        for (int i = 0; i < 2; ++i)
            workers.push_back(std::make_unique<loop::Worker>(i, 3)); // 2 workers + this thread
        for (auto& w : workers)
            peers.push_back(w.get());
        brokers.resize(2);
        for (auto& w : workers) {
            w->set_peers(peers);
            w->set_shutdown_barrier(&quiesced, 2);
            // Created on the worker's thread before its loop drains anything.
            w->on_start([this](loop::Worker& self) {
                brokers[static_cast<size_t>(self.index())] = std::make_unique<Broker>(self, peers, settings);
            });
            w->set_message_handler([this](loop::Worker& self, loop::InboxMessage& m) {
                Broker& b = *brokers[static_cast<size_t>(self.index())];
                std::visit(Overloaded{
                               [](loop::ReloadRoutes&) {},
                               [](loop::Stop&) {},
                               [](loop::StatsEvents&) {},
                               [](loop::SockjsRelay&) {},
                               [](loop::SockjsAnswer&) {},
                               [](loop::SockjsGone&) {},
                               [](loop::ConnRefresh&) {},
                               [](loop::ConnRefreshReply&) {},
                               [&](auto& msg) { b.on_inbox(m.from, msg); },
                           },
                           m.body);
            });
        }
    }

    void start() {
        for (auto& w : workers)
            w->start();
    }
    // From this thread (the last producer), as main does on SIGTERM.
    void stop_and_join() {
        for (auto& w : workers)
            w->request_stop(0);
        for (auto& w : workers)
            w->join();
    }
};

// Lives on worker 1; walks the steps below, one per callback.
struct Probe : pubsub::Subscriber {
    TwoWorkers& env;
    std::string channel;
    Subscription sub;
    std::promise<void> finished;
    // Counted on worker 1, read by the test thread after finished (the promise orders them).
    std::vector<std::string> delivered;
    int publish_done = 0;
    bool publish_ok = false;
    std::vector<bool> behind_answers;
    bool answered_locally = true;
    size_t local_channels_at_end = 99;

    Probe(TwoWorkers& e, std::string ch) : env(e), channel(std::move(ch)) { sub.owner = this; }
    Broker& broker() { return *env.brokers[1]; }

    // 1. Subscribe (tells worker 0, the owner) and publish through the owner in the same ring.
    void begin() {
        broker().subscribe(sub, channel);
        std::vector<pubsub::PublishItem> items;
        items.push_back(stream_item(channel, "1", "hello"));
        broker().publish(std::move(items), [this](bool ok) {
            ++publish_done;
            publish_ok = ok;
            maybe_check();
        });
    }
    // 2. The owner delivers back to this worker.
    void on_message(Subscription&, const MessageRef& msg) override {
        delivered.emplace_back(msg->http_stream()->content());
        maybe_check();
    }
    bool has_subscription(std::string_view ch) const override { return ch == channel; }

    // 3. Once delivered and acknowledged: is a subscriber at id "0" behind? (yes: the last id is "1")
    void maybe_check() {
        if (delivered.size() != 1 || publish_done != 1) return;
        uint64_t token = 0;
        auto local = broker().check_behind(
            channel, "0", [this](bool behind) { on_first_answer(behind); }, &token);
        answered_locally = local.has_value(); // worker 0 owns it: must be answered across loops
    }
    // 4. Then recover (the owner forgets the last id) and ask again: no longer behind.
    void on_first_answer(bool behind) {
        behind_answers.push_back(behind);
        broker().recover();
        uint64_t token = 0;
        broker().check_behind(
            channel, "0", [this](bool b) { on_second_answer(b); }, &token);
    }
    // 5. Unsubscribe (tells the owner the last subscriber went) and hand back to the test thread.
    void on_second_answer(bool behind) {
        behind_answers.push_back(behind);
        broker().unsubscribe(sub);
        local_channels_at_end = broker().local_channels();
        finished.set_value();
    }
};

} // namespace

TEST_CASE("broker: subscribe, publish, deliver, ack, behind check and recover across two loops",
          "[pubsub][broker]") {
    TwoWorkers env;
    Probe probe(env, channel_owned_by(0, 2));
    env.workers[1]->on_start([&probe](loop::Worker&) { probe.begin(); }); // after the broker exists
    env.start();

    auto status = probe.finished.get_future().wait_for(std::chrono::seconds(30));
    env.stop_and_join();
    REQUIRE(status == std::future_status::ready);

    CHECK(probe.delivered == std::vector<std::string>{"hello"});
    CHECK(probe.publish_done == 1);
    CHECK(probe.publish_ok);
    CHECK_FALSE(probe.answered_locally);
    CHECK(probe.behind_answers == std::vector<bool>{true, false});
    CHECK(probe.local_channels_at_end == 0);
    CHECK_FALSE(probe.sub.is_active());
    CHECK(env.brokers[0]->stats().messages_delivered.get() == 0); // nobody subscribed on the owner
    CHECK(env.brokers[1]->stats().messages_delivered.get() == 1);
    CHECK(env.brokers[1]->stats().messages_published.get() == 1);
    // Every handle of both loops closed: their uv_loop_close() will succeed.
    CHECK(env.workers[0]->open_handles_for_test() == 0);
    CHECK(env.workers[1]->open_handles_for_test() == 0);
}

TEST_CASE("broker: a publish owned by the publishing worker is delivered and done at once",
          "[pubsub][broker]") {
    TwoWorkers env;
    const std::string channel = channel_owned_by(1, 2);
    std::promise<void> finished;
    int delivered = 0;
    int done_calls = 0;
    uint64_t token = 99;

    struct Local : pubsub::Subscriber {
        int* count;
        std::string channel;
        void on_message(Subscription&, const MessageRef&) override { ++*count; }
        bool has_subscription(std::string_view ch) const override { return ch == channel; }
    } sub_owner;
    sub_owner.count = &delivered;
    sub_owner.channel = channel;
    Subscription sub;
    sub.owner = &sub_owner;

    env.workers[1]->on_start([&](loop::Worker&) {
        Broker& b = *env.brokers[1];
        b.subscribe(sub, channel);
        std::vector<pubsub::PublishItem> items;
        items.push_back(stream_item(channel, "a", "x"));
        token = b.publish(std::move(items), [&](bool ok) { done_calls += ok ? 1 : 100; });
        // Owned here and subscribed here: no message left this loop.
        b.unsubscribe(sub);
        finished.set_value();
    });
    env.start();
    auto status = finished.get_future().wait_for(std::chrono::seconds(30));
    env.stop_and_join();
    REQUIRE(status == std::future_status::ready);
    CHECK(delivered == 1);
    CHECK(done_calls == 1);
    CHECK(token == 0); // nothing to wait for
    CHECK(env.workers[0]->open_handles_for_test() == 0);
    CHECK(env.workers[1]->open_handles_for_test() == 0);
}

TEST_CASE("broker: a quiet channel's message and its small publish do not wait behind a flood on another "
          "channel",
          "[pubsub][broker]") {
    TwoWorkers env;
    // Both owned by worker 1 and subscribed there: every step below is synchronous on that loop.
    const std::string flood = channel_owned_by(1, 2);
    std::string quiet;
    for (int i = 0;; ++i) {
        quiet = "quiet" + std::to_string(i);
        if (Broker::shard_of_channel(quiet) % 2 == 1) break;
    }
    constexpr int kFloodSubs = 300; // more than one visit chunk: a flood message is queued
    constexpr int kFloodItems = 40; // 12,000 visits: past the throttle, so the flood publish is held

    struct Counting : pubsub::Subscriber {
        std::string channel;
        int count = 0;
        std::vector<std::string> ids; // of the first subscription only
        Subscription* first = nullptr;
        std::function<void()> then;
        void on_message(Subscription& s, const MessageRef& msg) override {
            ++count;
            if (&s == first) ids.push_back(msg->id().value_or(""));
            if (then) then();
        }
        bool has_subscription(std::string_view ch) const override { return ch == channel; }
    };
    Counting flood_owner, quiet_owner;
    flood_owner.channel = flood;
    quiet_owner.channel = quiet;
    std::vector<Subscription> flood_subs(kFloodSubs);
    for (auto& s : flood_subs)
        s.owner = &flood_owner;
    flood_owner.first = &flood_subs[0];
    Subscription quiet_sub;
    quiet_sub.owner = &quiet_owner;

    std::promise<void> finished;
    bool ended = false;
    int flood_done = 0, quiet_done = 0;
    int flood_seen_at_quiet = -1, quiet_seen_at_once = -1, quiet_done_at_once = -1, flood_done_at_quiet = -1;
    env.workers[1]->on_start([&](loop::Worker&) {
        Broker& b = *env.brokers[1];
        for (auto& s : flood_subs)
            b.subscribe(s, flood);
        b.subscribe(quiet_sub, quiet);
        std::vector<pubsub::PublishItem> items;
        for (int i = 0; i < kFloodItems; ++i)
            items.push_back(stream_item(flood, "f" + std::to_string(i), "x"));
        // Ends once the publish was answered and every delivery made (in either order).
        // (It runs from inside flood_owner.then: it must not reset that std::function, which would
        // destroy the lambda while it runs; `ended` makes it run once.)
        auto maybe_end = [&] {
            if (ended || flood_done != 1 || flood_owner.count != kFloodSubs * kFloodItems) return;
            ended = true;
            for (auto& s : flood_subs)
                b.unsubscribe(s);
            b.unsubscribe(quiet_sub);
            finished.set_value();
        };
        flood_owner.then = maybe_end;
        b.publish(std::move(items), [&, maybe_end](bool) {
            ++flood_done;
            maybe_end();
        });
        std::vector<pubsub::PublishItem> one;
        one.push_back(stream_item(quiet, "q", "y"));
        b.publish(std::move(one), [&](bool) { ++quiet_done; });
        // Still inside the same callback: what the quiet publish got at once.
        flood_seen_at_quiet = flood_owner.count;
        quiet_seen_at_once = quiet_owner.count;
        quiet_done_at_once = quiet_done;
        flood_done_at_quiet = flood_done;
    });
    env.start();
    auto status = finished.get_future().wait_for(std::chrono::seconds(30));
    env.stop_and_join();
    REQUIRE(status == std::future_status::ready);
    CHECK(flood_seen_at_quiet < kFloodSubs * kFloodItems); // the flood was still queued...
    CHECK(flood_done_at_quiet == 0);                       // ...and its publisher held back,
    CHECK(quiet_seen_at_once == 1);                        // yet the quiet message went out at once
    CHECK(quiet_done_at_once == 1);                        // and its one-item publish was answered.
    CHECK(flood_owner.count == kFloodSubs * kFloodItems);  // every flood delivery made, in order
    REQUIRE(flood_owner.ids.size() == static_cast<size_t>(kFloodItems));
    for (int i = 0; i < kFloodItems; ++i)
        CHECK(flood_owner.ids[static_cast<size_t>(i)] == "f" + std::to_string(i));
    CHECK(flood_done == 1);
}
