#include "gripd/pubsub/channel_index.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

using namespace gripd::pubsub;

namespace {

struct Sub : IndexHook {
    explicit Sub(int i) : id(i) {}
    int id;
};

using Index = ChannelIndex<Sub>;

std::vector<int> walk(Index& index, std::string_view channel) {
    std::vector<int> out;
    index.for_each(channel, [&](Sub& s) { out.push_back(s.id); });
    return out;
}

using V = std::vector<int>;

} // namespace

TEST_CASE("channel index: first/last transitions and counts", "[pubsub][index]") {
    Index index;
    Sub a(1), b(2), c(3);
    CHECK(sizeof(IndexHook) <= 32);
    CHECK(index.subscribe(a, "x"));
    CHECK_FALSE(index.subscribe(b, "x"));
    CHECK(index.subscribe(c, "y"));
    CHECK_FALSE(index.subscribe(a, "y")); // already subscribed: no-op
    CHECK(a.is_subscribed());
    CHECK(Index::channel_of(a) == "x");
    CHECK(index.count("x") == 2);
    CHECK(index.channel_count() == 2);
    CHECK(index.subscription_count() == 3);
    CHECK(walk(index, "x") == V{1, 2});
    CHECK(walk(index, "nope").empty());

    CHECK_FALSE(index.unsubscribe(a));
    CHECK_FALSE(index.unsubscribe(a)); // not subscribed: no-op
    CHECK_FALSE(a.is_subscribed());
    CHECK(index.unsubscribe(b));
    CHECK_FALSE(index.has("x"));
    CHECK(index.channel_count() == 1);
    CHECK(index.unsubscribe(c));
    CHECK(index.channel_count() == 0);
    CHECK(index.subscription_count() == 0);
}

TEST_CASE("channel index: O(1) unsubscribe from the middle keeps order", "[pubsub][index]") {
    Index index;
    std::vector<std::unique_ptr<Sub>> subs;
    for (int i = 0; i < 10; ++i) {
        subs.push_back(std::make_unique<Sub>(i));
        index.subscribe(*subs.back(), "x");
    }
    index.unsubscribe(*subs[0]);
    index.unsubscribe(*subs[5]);
    index.unsubscribe(*subs[9]);
    CHECK(walk(index, "x") == V{1, 2, 3, 4, 6, 7, 8});
    for (auto& s : subs)
        index.unsubscribe(*s);
    CHECK(index.channel_count() == 0);
}

TEST_CASE("channel index: walks survive unsubscribes from the callback", "[pubsub][index]") {
    Index index;
    Sub a(1), b(2), c(3), d(4);
    for (Sub* s : {&a, &b, &c, &d})
        index.subscribe(*s, "x");

    SECTION("the current one") {
        std::vector<int> seen;
        index.for_each("x", [&](Sub& s) {
            seen.push_back(s.id);
            index.unsubscribe(s);
        });
        CHECK(seen == V{1, 2, 3, 4});
        CHECK(index.channel_count() == 0); // erased once the walk ended
    }
    SECTION("the next one and an earlier one") {
        std::vector<int> seen;
        index.for_each("x", [&](Sub& s) {
            seen.push_back(s.id);
            if (s.id == 2) {
                index.unsubscribe(c);
                index.unsubscribe(a);
            }
        });
        CHECK(seen == V{1, 2, 4});
        CHECK(walk(index, "x") == V{2, 4});
        index.unsubscribe(b);
        index.unsubscribe(d);
    }
    SECTION("everyone, then a new subscription during the walk") {
        Sub e(5);
        std::vector<int> seen;
        bool last_reported = false, first_reported = false;
        index.for_each("x", [&](Sub& s) {
            seen.push_back(s.id);
            if (s.id == 1) {
                for (Sub* o : {&a, &b, &c})
                    index.unsubscribe(*o);
                last_reported = index.unsubscribe(d);
                first_reported = index.subscribe(e, "x"); // not visited by this walk
            }
        });
        CHECK(seen == V{1});
        CHECK(last_reported);
        CHECK(first_reported);
        CHECK(walk(index, "x") == V{5});
        CHECK(index.unsubscribe(e));
        CHECK(index.channel_count() == 0);
    }
    SECTION("resubscribing moves to the back, not visited twice") {
        std::vector<int> seen;
        index.for_each("x", [&](Sub& s) {
            seen.push_back(s.id);
            if (s.id == 1) {
                index.unsubscribe(a);
                index.subscribe(a, "x");
            }
        });
        CHECK(seen == V{1, 2, 3, 4});
        CHECK(walk(index, "x") == V{2, 3, 4, 1});
        for (Sub* s : {&a, &b, &c, &d})
            index.unsubscribe(*s);
    }
    SECTION("nested walk of the same channel") {
        std::vector<int> seen;
        index.for_each("x", [&](Sub& s) {
            seen.push_back(s.id);
            if (s.id == 2) {
                index.unsubscribe(d);
                CHECK(walk(index, "x") == V{1, 2, 3});
            }
        });
        CHECK(seen == V{1, 2, 3});
        for (Sub* s : {&a, &b, &c})
            index.unsubscribe(*s);
    }
    CHECK(index.subscription_count() == 0);
}

TEST_CASE("channel index: many channels rehash without moving entries", "[pubsub][index]") {
    Index index;
    std::vector<std::unique_ptr<Sub>> subs;
    for (int i = 0; i < 5000; ++i) {
        subs.push_back(std::make_unique<Sub>(i));
        CHECK(index.subscribe(*subs.back(), "ch" + std::to_string(i % 1000)) == (i < 1000));
    }
    CHECK(index.channel_count() == 1000);
    CHECK(Index::channel_of(*subs[1234]) == "ch234");
    CHECK(walk(index, "ch7") == V{7, 1007, 2007, 3007, 4007});
    int lasts = 0;
    for (auto& s : subs)
        lasts += index.unsubscribe(*s) ? 1 : 0;
    CHECK(lasts == 1000);
    CHECK(index.channel_count() == 0);
}

TEST_CASE("channel index: a resumable walk goes on across slices", "[pubsub][index]") {
    Index index;
    std::vector<std::unique_ptr<Sub>> subs;
    for (int i = 0; i < 10; ++i) {
        subs.push_back(std::make_unique<Sub>(i));
        index.subscribe(*subs.back(), "x");
    }
    Index::Walk w;
    CHECK_FALSE(index.begin_walk("nobody", w));
    REQUIRE(index.begin_walk("x", w));
    V seen;
    auto visit = [&](Sub& s) { seen.push_back(s.id); };
    CHECK(index.step(w, 3, visit) == 3);
    CHECK(w.is_active());
    // Between slices: one not yet visited leaves, a visited one leaves, a newcomer arrives (after
    // the walk began: not visited), and a plain walk runs past the markers.
    index.unsubscribe(*subs[4]);
    index.unsubscribe(*subs[1]);
    Sub late(99);
    index.subscribe(late, "x");
    CHECK(walk(index, "x") == V{0, 2, 3, 5, 6, 7, 8, 9, 99});
    CHECK(index.step(w, 4, visit) == 4);
    CHECK(index.step(w, 100, visit) == 2);
    CHECK_FALSE(w.is_active());
    CHECK(seen == V{0, 1, 2, 3, 5, 6, 7, 8, 9});
    CHECK(index.step(w, 10, visit) == 0);

    // A channel emptied during a walk stays until the walk ends, then goes.
    Index::Walk w2;
    REQUIRE(index.begin_walk("x", w2));
    for (auto& s : subs)
        index.unsubscribe(*s);
    index.unsubscribe(late);
    CHECK(index.channel_count() == 1);
    CHECK(index.step(w2, 5, visit) == 0);
    CHECK_FALSE(w2.is_active());
    CHECK(index.channel_count() == 0);

    // Abandoned midway.
    Sub a(1), b(2);
    index.subscribe(a, "y");
    index.subscribe(b, "y");
    Index::Walk w3;
    REQUIRE(index.begin_walk("y", w3));
    CHECK(index.step(w3, 1, visit) == 1);
    index.abandon(w3);
    CHECK_FALSE(w3.is_active());
    CHECK(walk(index, "y") == V{1, 2});
    index.unsubscribe(a);
    index.unsubscribe(b);
    CHECK(index.channel_count() == 0);
}
