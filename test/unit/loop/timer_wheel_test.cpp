#include "gripd/loop/timer_wheel.hpp"

#include <catch2/catch.hpp>
#include <vector>

using gripd::loop::TimerEntry;
using gripd::loop::TimerWheel;

namespace {
struct Fired {
    std::vector<int>* log;
    int id;
    TimerEntry entry;
};
void on_fire(void* p) {
    auto* f = static_cast<Fired*>(p);
    f->log->push_back(f->id);
}
} // namespace

TEST_CASE("timer wheel fires entries in deadline order and not early", "[loop]") {
    uv_loop_t loop;
    uv_loop_init(&loop);
    {
        TimerWheel wheel(&loop);
        std::vector<int> log;
        Fired a{&log, 1, {}}, b{&log, 2, {}}, c{&log, 3, {}};
        for (Fired* f : {&a, &b, &c})
            f->entry.init(&wheel, f, on_fire);
        uint64_t t0 = wheel.now();
        a.entry.arm(300);
        b.entry.arm(100);
        c.entry.arm(60000 * 2); // beyond one turn of the wheel
        REQUIRE(wheel.armed_count() == 3);
        wheel.advance(t0 + 50);
        REQUIRE(log.empty());
        wheel.advance(t0 + 160);
        REQUIRE(log == std::vector<int>{2});
        wheel.advance(t0 + 400);
        REQUIRE(log == std::vector<int>{2, 1});
        wheel.advance(t0 + 60000);
        REQUIRE(log.size() == 2); // c waits for its round
        wheel.advance(t0 + 120100);
        REQUIRE(log == std::vector<int>{2, 1, 3});
        REQUIRE(wheel.armed_count() == 0);
        wheel.close();
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    REQUIRE(uv_loop_close(&loop) == 0);
}

TEST_CASE("timer wheel disarm and re-arm from a callback", "[loop]") {
    uv_loop_t loop;
    uv_loop_init(&loop);
    {
        TimerWheel wheel(&loop);
        std::vector<int> log;
        Fired a{&log, 1, {}}, b{&log, 2, {}};
        a.entry.init(&wheel, &a, on_fire);
        b.entry.init(&wheel, &b, [](void* p) {
            auto* f = static_cast<Fired*>(p);
            f->log->push_back(f->id);
            if (f->log->size() < 3) f->entry.arm(100); // periodic
        });
        uint64_t t0 = wheel.now();
        a.entry.arm(100);
        b.entry.arm(100);
        a.entry.disarm();
        REQUIRE_FALSE(a.entry.is_armed());
        for (uint64_t t = t0; t <= t0 + 1000; t += 10)
            wheel.advance(t);
        REQUIRE(log == std::vector<int>{2, 2, 2});
        wheel.close();
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    REQUIRE(uv_loop_close(&loop) == 0);
}
