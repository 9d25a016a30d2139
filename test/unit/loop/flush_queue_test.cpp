// FlushQueue: interactive output first and whole, bulk output within the turn's budget and carried
// over in order, forgotten entries never flushed, and slots that stay right across compaction.
#include "gripd/loop/flush_queue.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <vector>

using gripd::loop::Flushable;
using gripd::loop::FlushQueue;

namespace {

// A fake clock: each flush "takes" kFlushNs, so the budget is counted in flushes.
uint64_t g_now = 0;
constexpr uint64_t kFlushNs = 10;
uint64_t fake_now() {
    return g_now;
}

struct Out : Flushable {
    int id = 0;
    std::vector<int>* log = nullptr;
    FlushQueue* q = nullptr;
    Out* also = nullptr; // added (interactive) when this one flushes, as a failed write closing another
    void flush() override {
        g_now += kFlushNs;
        log->push_back(id);
        if (also) {
            q->add(*also);
            also = nullptr;
        }
    }
};

std::vector<std::unique_ptr<Out>> make(int n, std::vector<int>& log, FlushQueue& q, int first_id = 0) {
    std::vector<std::unique_ptr<Out>> v;
    for (int i = 0; i < n; ++i) {
        auto o = std::make_unique<Out>();
        o->id = first_id + i;
        o->log = &log;
        o->q = &q;
        v.push_back(std::move(o));
    }
    return v;
}

} // namespace

TEST_CASE("interactive output is flushed whole, before bulk output", "[flush_queue]") {
    FlushQueue q;
    std::vector<int> log;
    auto bulk = make(3, log, q, 100);
    auto inter = make(2, log, q, 1);
    q.set_bulk(true);
    for (auto& o : bulk)
        q.add(*o);
    q.set_bulk(false);
    for (auto& o : inter)
        q.add(*o);
    g_now = 0;
    CHECK(q.run(1000, fake_now));
    CHECK(log == std::vector<int>{1, 2, 100, 101, 102});
    CHECK(q.empty());
}

TEST_CASE("bulk output past the budget waits for the next turns, in order", "[flush_queue]") {
    FlushQueue q;
    std::vector<int> log;
    auto bulk = make(10, log, q);
    q.set_bulk(true);
    for (auto& o : bulk)
        q.add(*o);
    q.set_bulk(false);
    g_now = 0;
    CHECK_FALSE(q.run(3 * kFlushNs, fake_now)); // 3 flushes reach the deadline
    CHECK(log == std::vector<int>{0, 1, 2});
    CHECK(q.bulk_waiting());
    CHECK(q.bulk_waiting_count() == 7);
    // A new turn: interactive output gathered meanwhile goes first.
    auto inter = make(1, log, q, 50);
    q.add(*inter[0]);
    g_now = 0;
    CHECK_FALSE(q.run(2 * kFlushNs, fake_now));
    CHECK(log == std::vector<int>{0, 1, 2, 50, 3});
    g_now = 0;
    CHECK(q.run(100 * kFlushNs, fake_now));
    CHECK(log == std::vector<int>{0, 1, 2, 50, 3, 4, 5, 6, 7, 8, 9});
    CHECK_FALSE(q.bulk_waiting());
}

TEST_CASE("every turn flushes at least one bulk entry, even past its deadline", "[flush_queue]") {
    FlushQueue q;
    std::vector<int> log;
    auto bulk = make(3, log, q);
    q.set_bulk(true);
    for (auto& o : bulk)
        q.add(*o);
    q.set_bulk(false);
    g_now = 1000;
    for (int turn = 0; turn < 3; ++turn)
        q.run(0, fake_now);
    CHECK(log == std::vector<int>{0, 1, 2});
    CHECK(q.empty());
}

TEST_CASE("a forgotten bulk entry is never flushed", "[flush_queue]") {
    FlushQueue q;
    std::vector<int> log;
    auto bulk = make(4, log, q);
    q.set_bulk(true);
    for (auto& o : bulk)
        q.add(*o);
    q.set_bulk(false);
    g_now = 0;
    q.run(kFlushNs, fake_now); // flushes 0
    q.forget(*bulk[2]);
    bulk[2].reset();    // destroyed: its slot must not be touched again
    q.forget(*bulk[0]); // already flushed: nothing to do
    g_now = 0;
    CHECK(q.run(100, fake_now));
    CHECK(log == std::vector<int>{0, 1, 3});
    CHECK(q.bulk_waiting_count() == 0);
}

TEST_CASE("entries added while flushing are flushed in the same turn", "[flush_queue]") {
    FlushQueue q;
    std::vector<int> log;
    auto outs = make(3, log, q);
    outs[0]->also = outs[2].get(); // interactive, added while bulk flushes
    q.set_bulk(true);
    q.add(*outs[0]);
    q.add(*outs[1]);
    q.set_bulk(false);
    g_now = 0;
    CHECK_FALSE(q.run(kFlushNs, fake_now)); // the budget ends after 0; 2 still goes out
    CHECK(log == std::vector<int>{0, 2});
    g_now = 0;
    CHECK(q.run(100, fake_now));
    CHECK(log == std::vector<int>{0, 2, 1});
}

TEST_CASE("slots stay right when a long carried queue is compacted", "[flush_queue]") {
    FlushQueue q;
    std::vector<int> log;
    auto bulk = make(5000, log, q);
    q.set_bulk(true);
    for (auto& o : bulk)
        q.add(*o);
    q.set_bulk(false);
    g_now = 0;
    q.run(3000 * kFlushNs, fake_now); // 3000 out: the prefix is compacted away
    REQUIRE(log.size() == 3000);
    // Forget some of the rest after compaction moved them: exactly those are skipped.
    for (int i = 3000; i < 5000; i += 2)
        q.forget(*bulk[static_cast<size_t>(i)]);
    CHECK(q.bulk_waiting_count() == 1000);
    g_now = 0;
    CHECK(q.run(100000 * kFlushNs, fake_now));
    REQUIRE(log.size() == 4000);
    for (size_t k = 3000; k < 4000; ++k)
        CHECK(log[k] == static_cast<int>(3001 + 2 * (k - 3000)));
}

TEST_CASE("an interactive entry destroyed before the check phase is not flushed", "[flush_queue]") {
    FlushQueue q;
    std::vector<int> log;
    auto outs = make(3, log, q);
    for (auto& o : outs)
        q.add(*o);
    q.forget(*outs[1]); // as ~TcpConn does when a close callback frees it after it gathered output
    outs[1].reset();
    g_now = 0;
    CHECK(q.run(100, fake_now));
    CHECK(log == std::vector<int>{0, 2});
    CHECK(q.empty());
    q.add(*outs[0]); // queued again next turn: its slot was cleared when it flushed
    CHECK(q.run(100, fake_now));
    CHECK(log == std::vector<int>{0, 2, 0});
}
