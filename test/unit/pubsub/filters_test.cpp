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

namespace {

std::optional<std::string> run(std::vector<std::string> filters, const Meta& meta, const ChannelIds* ids,
                               std::string_view content, std::string* err = nullptr,
                               bool proxy_only = false) {
    std::string e;
    auto r = apply_content_filters(filters, meta, ids, content, e, proxy_only);
    if (err) *err = e;
    return r;
}

} // namespace

TEST_CASE("filters: var-subst replaces %(name)s with the subscriber's meta", "[pubsub][filters]") {
    Meta meta{{"user", "alice"}, {"empty", ""}};
    CHECK(run({"var-subst"}, meta, nullptr, "hi %(user)s, 100%% %(empty)s.") == "hi alice, 100% .");
    CHECK(run({"var-subst"}, meta, nullptr, "%(us\\)er)s") == std::nullopt);
    CHECK(run({"skip-self", "var-subst"}, meta, nullptr, "no directives") == "no directives");
    std::string err;
    CHECK(run({"var-subst"}, meta, nullptr, "x %(nobody)s", &err) == std::nullopt);
    CHECK(err == "var-subst: No such variable 'nobody' at position 11");
    for (const char* bad : {"100%", "%d", "%(user)d", "%(user", "%(user)", "% x", "%("})
        CHECK(run({"var-subst"}, meta, nullptr, bad) == std::nullopt);
    // Delivery filters alone leave the content as it is.
    CHECK(run({"skip-self", "require-sub"}, meta, nullptr, "100%") == "100%");
    // proxy_only: var-subst does not rewrite proxied bodies.
    CHECK(run({"var-subst"}, meta, nullptr, "100%", nullptr, true) == "100%");
}

TEST_CASE("filters: build-id renders the subscriber's ID", "[pubsub][filters]") {
    Meta meta{{"id_format", "%(a)s-%(b)s"}};
    ChannelIds ids{{"a", "1"}, {"b", "xy"}};
    CHECK(run({"build-id"}, meta, &ids, "id=%I, lit=%(zz)I, %%") == "id=1-xy, lit=zz, %");
    Meta hex{{"id_format", "%(a)s-%(b)s"}, {"id_encoding", "hex"}};
    CHECK(run({"build-id"}, hex, &ids, "%I %(A)I") == "312d7879 41");
    std::string err;
    CHECK(run({"build-id"}, {}, &ids, "%I", &err) == std::nullopt);
    CHECK(err == "build-id: no sub meta 'id_format'");
    ChannelIds no_b{{"a", "1"}, {"b", std::nullopt}};
    CHECK(run({"build-id"}, meta, &no_b, "x", &err) == std::nullopt);
    CHECK(err.starts_with("build-id: failed to render ID: No such variable 'b'"));
    CHECK(run({"build-id"}, Meta{{"id_format", "x"}, {"id_encoding", "b64"}}, &ids, "x") == std::nullopt);
    // A proxied body has no channel ids: `%I` is an error, `%(x)I` is not.
    CHECK(run({"build-id"}, meta, nullptr, "%(lit)I", nullptr, true) == "lit");
    CHECK(run({"build-id"}, meta, nullptr, "%I", &err, true) == std::nullopt);
    CHECK(err == "build-id: No ID specified and no default ID in context at position 1");
    // Filters run in order, each on the previous one's output.
    Meta both{{"id_format", "%(a)s"}, {"v", "%I"}};
    CHECK(run({"var-subst", "build-id"}, both, &ids, "%(v)s") == "1");
    CHECK(run({"build-id", "var-subst"}, both, &ids, "%(v)s") == std::nullopt);
}

TEST_CASE("filters: the rewritten content is bounded", "[pubsub][filters]") {
    Meta meta{{"a", std::string(10'000, 'x')}};
    std::string content;
    for (int i = 0; i < 200; ++i)
        content += "%(a)s";
    std::string err;
    CHECK(run({"var-subst"}, meta, nullptr, content, &err) == std::nullopt); // 2,000,000 bytes
    CHECK(err.find("output over 1000000 bytes") != std::string::npos);
    content.resize(5 * 90);
    CHECK(run({"var-subst"}, meta, nullptr, content)->size() == 900'000);
}
