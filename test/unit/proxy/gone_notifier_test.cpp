// GoneNotifier (src/proxy/gone_notifier.hpp): retries with backoff, the concurrency cap, the queue
// bounds, stop and close, and its counters, with fake requests and the worker's timer wheel
// advanced by hand (the loop never runs).
#include "../../../src/proxy/gone_notifier.hpp"

#include "gripd/loop/worker.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

using gripd::proxy::GoneNotice;
using gripd::proxy::GoneNotifier;
namespace grip = gripd::grip;
namespace http = gripd::http;
namespace proxy = gripd::proxy;

namespace {

struct Fakes;

// One attempt: the test answers or fails it through its user (the notifier's job).
struct FakeRequest final : grip::LinkFetch {
    Fakes& fakes;
    grip::LinkUser& user;
    std::string target;
    FakeRequest(Fakes& f, grip::LinkUser& u, std::string t);
    ~FakeRequest() override;
    void start() override;
};

struct Fakes {
    std::vector<FakeRequest*> live;   // made and not yet freed
    std::vector<std::string> started; // targets, in start order
    int fail_at_once = 0;             // this many next starts fail inside start()
    bool refuse = false;              // the send function returns nullptr

    proxy::GoneSendFn send_fn() {
        return [this](const GoneNotice& n, grip::LinkUser& u) -> std::unique_ptr<grip::LinkFetch> {
            if (refuse) return nullptr;
            return std::make_unique<FakeRequest>(*this, u, n.target);
        };
    }
    FakeRequest& oldest() {
        REQUIRE(!live.empty());
        return *live.front();
    }
    // Answers the oldest request still out (the notifier frees it).
    void answer(int status) {
        FakeRequest& r = oldest();
        http::ResponseHead head;
        head.status = status;
        std::string body;
        r.user.on_link_response(head, body);
    }
    void fail(const char* why = "connection refused") { oldest().user.on_link_failed(why); }
};

FakeRequest::FakeRequest(Fakes& f, grip::LinkUser& u, std::string t)
    : fakes(f), user(u), target(std::move(t)) {
    fakes.live.push_back(this);
}
FakeRequest::~FakeRequest() {
    fakes.live.erase(std::find(fakes.live.begin(), fakes.live.end(), this));
}
void FakeRequest::start() {
    fakes.started.push_back(target);
    if (fakes.fail_at_once > 0) {
        --fakes.fail_at_once;
        user.on_link_failed("refused at once"); // frees this request
    }
}

GoneNotice notice(std::string target, std::string host = "backend") {
    GoneNotice n;
    n.host = std::move(host);
    n.target = std::move(target);
    n.peer = "127.0.0.1";
    return n;
}

struct Fixture {
    gripd::loop::Worker worker{0, 1};
    gripd::stats::GoneStats stats;
    Fakes fakes;
    GoneNotifier gone{worker, stats, fakes.send_fn()};
    uint64_t now = worker.timers().now();

    // Moves the wheel's clock on by `ms` (firing what is due).
    void advance(uint64_t ms) {
        now += ms;
        worker.timers().advance(now);
    }
};

} // namespace

TEST_CASE("gone notifier: an answer below 500 is delivered at once, counted", "[gone][proxy]") {
    Fixture f;
    f.gone.notify(notice("/gone/1"));
    f.gone.notify(notice("/gone/2"));
    REQUIRE(f.fakes.started == std::vector<std::string>{"/gone/1", "/gone/2"});
    CHECK(f.stats.queued.get() == 2);
    f.fakes.answer(204);
    f.fakes.answer(404); // the backend's answer too: not tried again
    CHECK(f.fakes.live.empty());
    CHECK(f.gone.queued() == 0);
    CHECK(f.stats.delivered.get() == 2);
    CHECK(f.stats.queued.get() == 0);
    CHECK(f.stats.retries.get() == 0);
    f.advance(20000);
    CHECK(f.fakes.started.size() == 2);
}

TEST_CASE("gone notifier: failures and 5xx are tried again after 1, 2, 4 s, then given up", "[gone][proxy]") {
    Fixture f;
    f.gone.notify(notice("/gone/r"));
    REQUIRE(f.fakes.started.size() == 1);
    f.fakes.answer(503);
    CHECK(f.fakes.live.empty());
    CHECK(f.gone.queued() == 1); // waiting out its backoff
    // base delays 1,000 / 2,000 / 4,000 ms plus up to 500 ms of jitter
    for (uint64_t base : {1000u, 2000u, 4000u}) {
        size_t before = f.fakes.started.size();
        f.advance(base - 100); // not yet (a wheel tick is 50 ms)
        CHECK(f.fakes.started.size() == before);
        f.advance(100 + 500 + 100); // past the largest jitter
        REQUIRE(f.fakes.started.size() == before + 1);
        f.fakes.fail();
    }
    CHECK(f.fakes.started.size() == 1 + proxy::kGoneRetries);
    CHECK(f.gone.queued() == 0);
    CHECK(f.stats.failed.get() == 1);
    CHECK(f.stats.retries.get() == proxy::kGoneRetries);
    CHECK(f.stats.delivered.get() == 0);
    CHECK(f.stats.queued.get() == 0);
    f.advance(60000);
    CHECK(f.fakes.started.size() == 1 + proxy::kGoneRetries); // nothing more
}

TEST_CASE("gone notifier: a retry that succeeds is delivered once", "[gone][proxy]") {
    Fixture f;
    f.gone.notify(notice("/gone/ok-later"));
    f.fakes.fail();
    f.advance(1700);
    REQUIRE(f.fakes.started.size() == 2);
    f.fakes.answer(200);
    CHECK(f.stats.delivered.get() == 1);
    CHECK(f.stats.retries.get() == 1);
    CHECK(f.stats.failed.get() == 0);
    CHECK(f.gone.queued() == 0);
}

TEST_CASE("gone notifier: a request that cannot be made or fails at once is retried", "[gone][proxy]") {
    Fixture f;
    f.fakes.refuse = true;
    f.gone.notify(notice("/gone/no-route"));
    CHECK(f.gone.queued() == 1);
    CHECK(f.gone.in_flight() == 0);
    f.fakes.refuse = false;
    f.fakes.fail_at_once = 1;
    f.advance(1700); // second attempt: fails inside start()
    CHECK(f.fakes.started.size() == 1);
    CHECK(f.gone.in_flight() == 0);
    f.advance(2700); // third: goes out
    REQUIRE(f.fakes.started.size() == 2);
    CHECK(f.gone.in_flight() == 1);
    f.fakes.answer(200);
    CHECK(f.stats.delivered.get() == 1);
    CHECK(f.stats.retries.get() == 2);
}

TEST_CASE("gone notifier: at most kGoneMaxInFlight requests are out, the rest wait in order",
          "[gone][proxy]") {
    Fixture f;
    size_t n = proxy::kGoneMaxInFlight + 8;
    for (size_t i = 0; i < n; ++i)
        f.gone.notify(notice("/gone/" + std::to_string(i)));
    CHECK(f.fakes.started.size() == proxy::kGoneMaxInFlight);
    CHECK(f.gone.in_flight() == proxy::kGoneMaxInFlight);
    CHECK(f.gone.queued() == n);
    f.fakes.answer(200); // one back: the next waiting one goes out
    REQUIRE(f.fakes.started.size() == proxy::kGoneMaxInFlight + 1);
    CHECK(f.fakes.started.back() == "/gone/" + std::to_string(proxy::kGoneMaxInFlight));
    // a failure frees its slot for a waiting notice too (its own retry comes later)
    f.fakes.fail();
    CHECK(f.fakes.started.size() == proxy::kGoneMaxInFlight + 2);
    CHECK(f.gone.in_flight() == proxy::kGoneMaxInFlight);
    while (!f.fakes.live.empty())
        f.fakes.answer(200);
    f.advance(2000); // the failed one's retry
    while (!f.fakes.live.empty())
        f.fakes.answer(200);
    CHECK(f.stats.delivered.get() == static_cast<int64_t>(n));
    CHECK(f.gone.queued() == 0);
}

TEST_CASE("gone notifier: past kGoneMaxQueued notices the newest are dropped, counted", "[gone][proxy]") {
    Fixture f;
    for (size_t i = 0; i < proxy::kGoneMaxQueued + 5; ++i)
        f.gone.notify(notice("/g" + std::to_string(i)));
    CHECK(f.gone.queued() == proxy::kGoneMaxQueued);
    CHECK(f.gone.dropped() == 5);
    CHECK(f.stats.dropped.get() == 5);
    CHECK(f.stats.queued.get() == static_cast<int64_t>(proxy::kGoneMaxQueued));
    // room again once one finishes
    f.fakes.answer(200);
    f.gone.notify(notice("/again"));
    CHECK(f.gone.queued() == proxy::kGoneMaxQueued);
    CHECK(f.stats.dropped.get() == 5);
}

TEST_CASE("gone notifier: past kGoneMaxQueuedBytes of URLs a notice is dropped", "[gone][proxy]") {
    Fixture f;
    std::string big(1000000, 'x');
    for (int i = 0; i < 5; ++i)
        f.gone.notify(notice("/" + big));
    CHECK(f.gone.queued() == proxy::kGoneMaxQueuedBytes / (big.size() + 1 + 7)); // 4 of 1 MB each
    CHECK(f.stats.dropped.get() == 1);
    f.gone.notify(notice("/small")); // a small one still fits
    CHECK(f.gone.queued() == 5);
}

TEST_CASE("gone notifier: stop sends what waits out a backoff now and retries no more", "[gone][proxy]") {
    Fixture f;
    f.gone.notify(notice("/gone/a"));
    f.gone.notify(notice("/gone/b"));
    f.fakes.fail(); // a waits out its backoff
    REQUIRE(f.fakes.started.size() == 2);
    f.gone.stop();
    REQUIRE(f.fakes.started.size() == 3); // a's last attempt, at once
    CHECK(f.fakes.started.back() == "/gone/a");
    f.fakes.fail(); // b fails: no retry while stopping
    f.fakes.answer(200);
    CHECK(f.gone.queued() == 0);
    CHECK(f.stats.failed.get() == 1);
    CHECK(f.stats.delivered.get() == 1);
    f.advance(10000);
    CHECK(f.fakes.started.size() == 3);
}

TEST_CASE("gone notifier: close drops what is left, counted, and refuses more", "[gone][proxy]") {
    Fixture f;
    f.gone.notify(notice("/gone/a"));
    f.gone.notify(notice("/gone/b"));
    f.fakes.fail();
    f.gone.close();
    CHECK(f.gone.queued() == 0);
    CHECK(f.fakes.live.empty()); // the request out was abandoned
    CHECK(f.stats.dropped.get() == 2);
    CHECK(f.stats.queued.get() == 0);
    f.gone.notify(notice("/gone/c"));
    CHECK(f.stats.dropped.get() == 3);
    CHECK(f.fakes.started.size() == 2);
}
