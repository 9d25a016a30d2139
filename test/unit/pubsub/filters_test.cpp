#include "gripd/pubsub/filters.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

using namespace gripd;
using namespace gripd::pubsub;

namespace {

// A subscriber that holds the channels it is told to (require-sub asks it).
struct FakeSubscriber final : Subscriber {
    std::set<std::string, std::less<>> channels;
    void on_message(Subscription&, const MessageRef&) override {}
    bool has_subscription(std::string_view channel) const override { return channels.count(channel) > 0; }
};

MessageRef item(std::vector<std::pair<std::string, std::string>> meta) {
    PublishItem i;
    i.channel = "c";
    i.meta = std::move(meta);
    i.ws_message.emplace();
    return Message::create(std::move(i));
}

struct Sub {
    FakeSubscriber owner;
    Subscription sub;
    explicit Sub(std::vector<std::string> filters) {
        sub.owner = &owner;
        sub.filters = std::move(filters);
    }
};

} // namespace

TEST_CASE("filters: skip-self drops the subscriber's own items", "[pubsub][filters]") {
    Sub s({"skip-self"});
    Meta alice{{"user", "alice"}};
    CHECK_FALSE(passes_delivery_filters(s.sub, alice, *item({{"sender", "alice"}})));
    CHECK(passes_delivery_filters(s.sub, alice, *item({{"sender", "bob"}})));
    CHECK(passes_delivery_filters(s.sub, alice, *item({})));
    CHECK(passes_delivery_filters(s.sub, {}, *item({{"sender", "alice"}})));
    // Empty values count as absent (Pushpin).
    CHECK(passes_delivery_filters(s.sub, Meta{{"user", ""}}, *item({{"sender", ""}})));
    // Without the filter the meta does not matter.
    Sub plain({});
    CHECK(passes_delivery_filters(plain.sub, alice, *item({{"sender", "alice"}})));
}

TEST_CASE("filters: skip-users matches a trimmed comma list", "[pubsub][filters]") {
    Sub s({"skip-users"});
    Meta carol{{"user", "carol"}};
    CHECK_FALSE(passes_delivery_filters(s.sub, carol, *item({{"skip_users", "alice, carol"}})));
    CHECK_FALSE(passes_delivery_filters(s.sub, carol, *item({{"skip_users", "carol"}})));
    CHECK(passes_delivery_filters(s.sub, carol, *item({{"skip_users", "alice,caroline"}})));
    CHECK(passes_delivery_filters(s.sub, carol, *item({})));
    CHECK(passes_delivery_filters(s.sub, Meta{{"user", ""}}, *item({{"skip_users", "a,,b"}})));
}

TEST_CASE("filters: require-sub asks the subscriber", "[pubsub][filters]") {
    Sub s({"require-sub"});
    s.owner.channels = {"c", "b"};
    CHECK(passes_delivery_filters(s.sub, {}, *item({{"require_sub", "b"}})));
    CHECK_FALSE(passes_delivery_filters(s.sub, {}, *item({{"require_sub", "x"}})));
    CHECK(passes_delivery_filters(s.sub, {}, *item({})));
    CHECK(passes_delivery_filters(s.sub, {}, *item({{"require_sub", ""}})));
}

TEST_CASE("filters: every named filter must pass", "[pubsub][filters]") {
    Sub s({"skip-self", "require-sub"});
    s.owner.channels = {"c"};
    Meta alice{{"user", "alice"}};
    CHECK_FALSE(passes_delivery_filters(s.sub, alice, *item({{"sender", "bob"}, {"require_sub", "x"}})));
    CHECK_FALSE(passes_delivery_filters(s.sub, alice, *item({{"sender", "alice"}, {"require_sub", "c"}})));
    CHECK(passes_delivery_filters(s.sub, alice, *item({{"sender", "bob"}, {"require_sub", "c"}})));
}

TEST_CASE("filters: content-filters compare the content filters only", "[pubsub][filters]") {
    using V = std::vector<std::string>;
    CHECK(content_filters_match({}, {}));
    CHECK(content_filters_match({"skip-self"}, {}));
    CHECK_FALSE(content_filters_match({"skip-self"}, {"skip-self"}));
    CHECK(content_filters_match({"skip-self", "var-subst"}, {"var-subst"}));
    CHECK_FALSE(content_filters_match({"var-subst"}, {}));
    CHECK(content_filters_match({"build-id", "require-sub", "var-subst"}, V{"build-id", "var-subst"}));
    CHECK_FALSE(content_filters_match({"build-id", "var-subst"}, V{"var-subst", "build-id"}));
    CHECK_FALSE(content_filters_match({"build-id"}, V{"build-id", "var-subst"}));
}
