// LinkShare (src/proxy/link_share.hpp): next-link request collapsing, with a fake request.
#include "../../../src/proxy/link_share.hpp"

#include <catch2/catch.hpp>

using gripd::proxy::LinkShare;
namespace grip = gripd::grip;
namespace http = gripd::http;

namespace {
// The real request: remembers who to answer; the test answers or fails it.
struct FakeRequest final : grip::LinkFetch {
    grip::LinkUser& user;
    int* started;
    int* alive;
    FakeRequest(grip::LinkUser& u, int* s, int* a) : user(u), started(s), alive(a) { ++*alive; }
    ~FakeRequest() override { --*alive; }
    void start() override { ++*started; }
};

struct Recorder final : grip::LinkUser {
    std::vector<std::string> got; // bodies, or "failed: why"
    std::unique_ptr<grip::LinkFetch> handle;
    std::string append; // changes its copy, which must not reach the others
    void on_link_response(http::ResponseHead& head, std::string& body) override {
        body += append;
        head.status = 599;
        got.push_back(body);
        handle.reset(); // as StreamHold frees its fetch in the callback
    }
    void on_link_failed(const char* why) override {
        got.push_back(std::string("failed: ") + why);
        handle.reset();
    }
};

struct Fixture {
    LinkShare share;
    int started = 0;
    int alive = 0;
    FakeRequest* last = nullptr;
    LinkShare::MakeFn make() {
        return [this](grip::LinkUser& u) {
            auto r = std::make_unique<FakeRequest>(u, &started, &alive);
            last = r.get();
            return r;
        };
    }
    void follow(Recorder& r, const std::string& key) {
        r.handle = share.join(key, make(), r);
        r.handle->start();
    }
};
} // namespace

TEST_CASE("link share: the key is the route, the host and the path, with Grip-Last sorted", "[proxy]") {
    int route = 0, other = 0;
    auto k = LinkShare::key(&route, "Example.com", "/l?x=1", {"b; last-id=2", "a; last-id=1"});
    CHECK(k == LinkShare::key(&route, "example.com", "/l?y=2", {"a; last-id=1", "b; last-id=2"}));
    CHECK(k != LinkShare::key(&other, "example.com", "/l?x=1", {"a; last-id=1", "b; last-id=2"}));
    CHECK(k != LinkShare::key(&route, "example.com", "/m?x=1", {"a; last-id=1", "b; last-id=2"}));
    CHECK(k != LinkShare::key(&route, "example.com", "/l?x=1", {"a; last-id=1", "b; last-id=3"}));
    CHECK(k != LinkShare::key(&route, "example.org", "/l?x=1", {"a; last-id=1", "b; last-id=2"}));
}

TEST_CASE("link share: followers of a link out join its request and each get the answer", "[proxy]") {
    Fixture f;
    Recorder a, b, c;
    a.append = "+a";
    f.follow(a, "k");
    f.follow(b, "k");
    f.follow(c, "k");
    CHECK(f.started == 1);
    CHECK(f.share.in_flight() == 1);
    CHECK(f.share.joined() == 2);
    http::ResponseHead head;
    head.status = 200;
    std::string body = "A";
    f.last->user.on_link_response(head, body);
    CHECK(a.got == std::vector<std::string>{"A+a"});
    CHECK(b.got == std::vector<std::string>{"A"}); // each gets its own copy
    CHECK(c.got == std::vector<std::string>{"A"});
    CHECK(f.share.in_flight() == 0);
    CHECK(f.alive == 0); // the request is freed with its entry
    // Once answered, the next fetch of that link is a new request.
    Recorder d;
    f.follow(d, "k");
    CHECK(f.started == 2);
}

TEST_CASE("link share: different keys are different requests", "[proxy]") {
    Fixture f;
    Recorder a, b;
    f.follow(a, "k1");
    f.follow(b, "k2");
    CHECK(f.started == 2);
    CHECK(f.share.in_flight() == 2);
}

TEST_CASE("link share: a failure reaches every follower", "[proxy]") {
    Fixture f;
    Recorder a, b;
    f.follow(a, "k");
    f.follow(b, "k");
    f.last->user.on_link_failed("status 503");
    CHECK(a.got == std::vector<std::string>{"failed: status 503"});
    CHECK(b.got == std::vector<std::string>{"failed: status 503"});
    CHECK(f.alive == 0);
}

TEST_CASE("link share: the last follower to leave abandons the request", "[proxy]") {
    Fixture f;
    Recorder a, b;
    f.follow(a, "k");
    f.follow(b, "k");
    a.handle.reset();
    CHECK(f.alive == 1); // b still waits
    b.handle.reset();
    CHECK(f.alive == 0);
    CHECK(f.share.in_flight() == 0);
    CHECK(a.got.empty());
    CHECK(b.got.empty());
}

TEST_CASE("link share: a follower that leaves while others are answered is skipped", "[proxy]") {
    Fixture f;
    Recorder a, c;
    struct Leaver final : grip::LinkUser { // frees another follower's handle from its callback
        std::unique_ptr<grip::LinkFetch> handle;
        Recorder* other = nullptr;
        void on_link_response(http::ResponseHead&, std::string&) override {
            other->handle.reset();
            handle.reset();
        }
        void on_link_failed(const char*) override { handle.reset(); }
    } leaver;
    leaver.other = &c;
    f.follow(a, "k");
    leaver.handle = f.share.join("k", f.make(), leaver);
    leaver.handle->start();
    f.follow(c, "k");
    http::ResponseHead head;
    std::string body = "A";
    f.last->user.on_link_response(head, body);
    CHECK(a.got == std::vector<std::string>{"A"});
    CHECK(c.got.empty());
    CHECK(f.alive == 0);
}
