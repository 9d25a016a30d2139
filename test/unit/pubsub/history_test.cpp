// HistoryStore (pure, time passed in) and resume through the Broker across two real loops: the
// items after a resume point come once each and in the owner's order, while other loops publish.
#include "gripd/pubsub/history.hpp"

#include "gripd/loop/worker.hpp"
#include "gripd/pubsub/broker.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <string>
#include <variant>
#include <vector>

using namespace gripd;
using pubsub::HistoryBounds;
using pubsub::HistoryStore;
using pubsub::MessageRef;
using pubsub::ReplayStatus;

namespace {

MessageRef msg(const std::string& channel, std::optional<std::string> id, const std::string& content = "x") {
    pubsub::PublishItem item;
    item.channel = channel;
    item.id = std::move(id);
    pubsub::HttpStreamFormat f;
    f.content = content;
    item.http_stream = std::move(f);
    return pubsub::Message::create(std::move(item));
}

std::vector<std::string> ids(const std::vector<MessageRef>& v) {
    std::vector<std::string> out;
    for (const auto& m : v)
        out.push_back(*m->id());
    return out;
}

} // namespace

TEST_CASE("history: off by default keeps nothing", "[pubsub][history]") {
    HistoryStore h;
    CHECK_FALSE(h.is_active());
    CHECK_FALSE(h.on_publish(msg("a", "1"), 1));
    CHECK(h.channel_count() == 0);
    CHECK(h.after("a", "1", 1).status == ReplayStatus::Unknown);
}

TEST_CASE("history: a busy channel's messages are made in its own arena, a quiet one's on the heap",
          "[pubsub][history]") {
    HistoryStore h(HistoryBounds{1000, 1 << 20, 0});
    CHECK(h.arena_for("busy") == nullptr); // nothing kept yet
    for (size_t i = 0; i < HistoryStore::kArenaMinItems; ++i) {
        CHECK(h.arena_for("busy") == nullptr);
        REQUIRE(h.on_publish(msg("busy", std::to_string(i)), 1));
    }
    REQUIRE(h.on_publish(msg("quiet", "q1"), 1));
    CHECK(h.arena_for("quiet") == nullptr);
    core::PageArena* arena = h.arena_for("busy");
    REQUIRE(arena != nullptr);
    MessageRef m;
    {
        core::ArenaScope scope(arena);
        m = msg("busy", "next", std::string(300, 'c'));
    }
    if (core::PageArena::enabled()) CHECK(core::arena_owns(m.get()));
    REQUIRE(h.on_publish(m, 1));
    auto r = h.after("busy", std::to_string(HistoryStore::kArenaMinItems - 1), 1);
    REQUIRE(r.items.size() == 1);
    CHECK(r.items[0]->http_stream()->content() == std::string(300, 'c'));
    // The channel gone (bounds off), its arena with it: the message stays whole for whoever holds it.
    h.set_bounds("busy", HistoryBounds{0, 0, 0});
    CHECK(h.arena_for("busy") == nullptr);
    r.items.clear();
    CHECK(m->http_stream()->content() == std::string(300, 'c'));
}

TEST_CASE("history: items after an id, gap when it is gone, only items with ids", "[pubsub][history]") {
    HistoryStore h(HistoryBounds{3, 1 << 20, 0});
    for (int i = 1; i <= 5; ++i)
        h.on_publish(msg("a", std::to_string(i)), static_cast<uint64_t>(i));
    CHECK_FALSE(h.on_publish(msg("a", std::nullopt), 6)); // no id: no resume point
    CHECK(h.item_count() == 3);
    auto r = h.after("a", "3", 7);
    CHECK(r.status == ReplayStatus::Covered);
    CHECK(ids(r.items) == std::vector<std::string>{"4", "5"});
    CHECK(h.after("a", "5", 7).items.empty());
    r = h.after("a", "1", 7); // aged out by the item bound
    CHECK(r.status == ReplayStatus::Gap);
    CHECK(ids(r.items) == std::vector<std::string>{"3", "4", "5"});
    CHECK(ids(h.after("a", "3", 7, 1).items) == std::vector<std::string>{"4"}); // limit
    CHECK(h.after("b", "1", 7).status == ReplayStatus::Unknown);
}

TEST_CASE("history: bounded in bytes per channel, age, and bytes overall", "[pubsub][history]") {
    SECTION("bytes per channel") {
        uint64_t one = pubsub::message_bytes(*msg("a", "1", std::string(100, 'x')));
        HistoryStore h(HistoryBounds{100, one * 2, 0});
        for (int i = 1; i <= 4; ++i)
            h.on_publish(msg("a", std::to_string(i), std::string(100, 'x')), 1);
        CHECK(h.item_count() == 2);
        CHECK(h.byte_count() <= one * 2);
        CHECK_FALSE(h.on_publish(msg("a", "big", std::string(10000, 'x')), 1)); // never fits
    }
    SECTION("age") {
        HistoryStore h(HistoryBounds{100, 1 << 20, 1000});
        h.on_publish(msg("a", "1"), 100);
        h.on_publish(msg("a", "2"), 600);
        CHECK(ids(h.items("a", 1099)) == std::vector<std::string>{"1", "2"});
        CHECK(ids(h.items("a", 1100)) == std::vector<std::string>{"2"});
        h.expire(1600); // a quiet channel is dropped by expire() alone
        CHECK(h.channel_count() == 0);
        CHECK(h.item_count() == 0);
        CHECK(h.byte_count() == 0);
    }
    SECTION("overall: the channel published to least recently gives way") {
        uint64_t one = pubsub::message_bytes(*msg("a", "1"));
        HistoryStore h(HistoryBounds{100, 1 << 20, 0}, one * 3);
        h.on_publish(msg("a", "1"), 1);
        h.on_publish(msg("b", "1"), 1);
        h.on_publish(msg("a", "2"), 1);
        CHECK(h.on_publish(msg("c", "1"), 1)); // over: b (least recent) goes first
        CHECK(h.items("b", 1).empty());
        CHECK(ids(h.items("a", 1)) == std::vector<std::string>{"1", "2"});
        CHECK(h.byte_count() <= one * 3);
    }
    SECTION("overall: the item that takes the store over is kept, at another channel's cost") {
        uint64_t one = pubsub::message_bytes(*msg("a", "1"));
        HistoryStore h(HistoryBounds{100, 1 << 20, 0}, one * 2 + one / 2);
        CHECK(h.on_publish(msg("a", "1"), 1));
        CHECK(h.on_publish(msg("b", "1"), 1));
        // b's second item takes the store over: a (published to least recently) gives way
        CHECK(h.on_publish(msg("b", "2"), 1));
        CHECK(h.items("a", 1).empty());
        CHECK(ids(h.items("b", 1)) == std::vector<std::string>{"1", "2"});
    }
    SECTION("many items: dropping the oldest keeps the newest, in order") {
        HistoryStore h(HistoryBounds{3, 1 << 20, 0});
        for (int i = 1; i <= 50; ++i)
            h.on_publish(msg("a", std::to_string(i)), 1);
        CHECK(ids(h.items("a", 1)) == std::vector<std::string>{"48", "49", "50"});
        CHECK(h.item_count() == 3);
    }
}

TEST_CASE("history: a channel's own bounds (a route's override)", "[pubsub][history]") {
    HistoryStore h; // off by default
    h.set_bounds("r", HistoryBounds{2, 1 << 20, 0});
    CHECK(h.is_active());
    CHECK_FALSE(h.on_publish(msg("other", "1"), 1));
    for (int i = 1; i <= 3; ++i)
        CHECK(h.on_publish(msg("r", std::to_string(i)), 1));
    CHECK(ids(h.items("r", 1)) == std::vector<std::string>{"2", "3"});
    h.set_bounds("r", HistoryBounds{0, 1 << 20, 0}); // off again: dropped
    CHECK(h.channel_count() == 0);
    CHECK(h.item_count() == 0);
}

// ---- resume across two loops ----

namespace {

template <class... F> struct Overloaded : F... { using F::operator()...; };
template <class... F> Overloaded(F...) -> Overloaded<F...>;

std::string channel_owned_by(int owner, int workers) {
    for (int i = 0;; ++i) {
        std::string name = "h" + std::to_string(i);
        if (static_cast<int>(pubsub::Broker::shard_of_channel(name) % static_cast<uint32_t>(workers)) ==
            owner)
            return name;
    }
}

struct Loops {
    config::Settings settings;
    std::vector<std::unique_ptr<loop::Worker>> workers;
    std::vector<loop::Worker*> peers;
    std::vector<std::unique_ptr<pubsub::Broker>> brokers;
    std::atomic<int> quiesced{0};

    Loops() {
        settings.history_size = 100000;
        settings.history_channel_bytes = 64 << 20;
        settings.history_max_bytes = 256 << 20;
        settings.message_wait = 5000;
        for (int i = 0; i < 2; ++i)
            workers.push_back(std::make_unique<loop::Worker>(i, 3));
        for (auto& w : workers)
            peers.push_back(w.get());
        brokers.resize(2);
        for (auto& w : workers) {
            w->set_peers(peers);
            w->set_shutdown_barrier(&quiesced, 2);
            w->on_start([this](loop::Worker& self) {
                brokers[static_cast<size_t>(self.index())] =
                    std::make_unique<pubsub::Broker>(self, peers, settings);
            });
            w->set_message_handler([this](loop::Worker& self, loop::InboxMessage& m) {
                pubsub::Broker& b = *brokers[static_cast<size_t>(self.index())];
                std::visit(Overloaded{
                               [](loop::ReloadRoutes&) {},
                               [](loop::Stop&) {},
                               [](loop::StatsEvents&) {},
                               [](loop::SockjsRelay&) {},
                               [](loop::SockjsAnswer&) {},
                               [](loop::SockjsGone&) {},
                               [](loop::ConnRefresh&) {},
                               [](loop::ConnRefreshReply&) {},
                               [&](auto& x) { b.on_inbox(m.from, x); },
                           },
                           m.body);
            });
        }
    }
};

// Publishes `total` items named prefix0.. on its broker, `batch` per request, the next request when
// the last is taken: it keeps the owner busy while the resumer works.
struct Publisher {
    pubsub::Broker* broker = nullptr;
    std::string channel, prefix;
    int total = 0, sent = 0, batch = 7;
    std::promise<void> done;
    void next() {
        if (sent >= total) {
            done.set_value();
            return;
        }
        std::vector<pubsub::PublishItem> items;
        for (int i = 0; i < batch && sent < total; ++i, ++sent) {
            pubsub::PublishItem item;
            item.channel = channel;
            item.id = prefix + std::to_string(sent);
            pubsub::HttpStreamFormat f;
            f.content = *item.id;
            item.http_stream = std::move(f);
            items.push_back(std::move(item));
        }
        broker->publish(std::move(items), [this](bool) { next(); });
    }
};

// On worker 1: takes `per_round` items, then unsubscribes and resumes from the last one it saw, on
// a new subscription, until it has `want` items.
struct Resumer : pubsub::Subscriber {
    pubsub::Broker* broker = nullptr;
    std::string channel;
    std::string last = "start";
    size_t want = 0, per_round = 5, round_left = 0;
    std::vector<std::string> got;
    std::vector<ReplayStatus> statuses;
    std::unique_ptr<pubsub::Subscription> sub;
    std::promise<void> done;
    std::promise<std::vector<std::string>> order; // the owner's, asked across loops at the end
    bool finished = false;

    void round() {
        if (sub) broker->unsubscribe(*sub);
        sub = std::make_unique<pubsub::Subscription>();
        sub->owner = this;
        broker->subscribe(*sub, channel);
        round_left = per_round;
        broker->resume(*sub, last, std::nullopt);
    }
    void on_resume(pubsub::Subscription&, ReplayStatus s) override { statuses.push_back(s); }
    void on_message(pubsub::Subscription& s, const MessageRef& m) override {
        if (finished || &s != sub.get()) return;
        got.push_back(*m->id());
        last = *m->id();
        if (got.size() >= want) {
            finished = true;
            broker->unsubscribe(s);
            done.set_value();
            broker->fetch_history(
                channel, "start", false, 0,
                [this](ReplayStatus, std::vector<MessageRef> items) { order.set_value(ids(items)); });
            return;
        }
        if (--round_left == 0) round(); // from inside a delivery, as a client cut mid-stream
    }
    bool has_subscription(std::string_view ch) const override { return ch == channel; }
};

} // namespace

TEST_CASE("history: resumes get every item once, in the owner's order, while two loops publish",
          "[pubsub][history][broker]") {
    Loops env;
    const std::string channel = channel_owned_by(0, 2);
    Publisher p0, p1;
    p0.channel = p1.channel = channel;
    p0.prefix = "a";
    p1.prefix = "b";
    p0.total = p1.total = 1500;
    Resumer r;
    r.channel = channel;
    r.want = 3000;
    std::promise<void> started;
    env.workers[0]->on_start([&](loop::Worker&) {
        p0.broker = env.brokers[0].get();
        std::vector<pubsub::PublishItem> items;
        pubsub::PublishItem start;
        start.channel = channel;
        start.id = "start";
        pubsub::HttpStreamFormat f;
        f.content = "start";
        start.http_stream = std::move(f);
        items.push_back(std::move(start));
        p0.broker->publish(std::move(items), [&](bool) {
            started.set_value();
            p0.next();
        });
    });
    env.workers[1]->on_start([&](loop::Worker&) {
        p1.broker = r.broker = env.brokers[1].get();
        r.round();
        p1.next();
    });
    for (auto& w : env.workers)
        w->start();
    auto wait = [](std::promise<void>& p) { return p.get_future().wait_for(std::chrono::seconds(60)); };
    auto s0 = wait(p0.done);
    auto s1 = wait(p1.done);
    auto sr = wait(r.done);
    auto of = r.order.get_future();
    auto so = of.wait_for(std::chrono::seconds(30));
    for (auto& w : env.workers)
        w->request_stop(0);
    for (auto& w : env.workers)
        w->join();
    REQUIRE(s0 == std::future_status::ready);
    REQUIRE(s1 == std::future_status::ready);
    REQUIRE(sr == std::future_status::ready);
    REQUIRE(so == std::future_status::ready);
    std::vector<std::string> expected = of.get();
    REQUIRE(expected.size() == 3000);
    CHECK(r.got == expected);
    for (auto s : r.statuses)
        CHECK(s == ReplayStatus::Covered);
    CHECK(r.statuses.size() >= 3000 / 5);
}
