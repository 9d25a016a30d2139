// Worker: output gathered outside the poll phase (a timer here; the broker's idle slices in
// gripd) is flushed in the same loop turn, without the poll blocking first. Before this was so, a
// flush scheduled from an idle callback waited for the next timer or event: 30-55 ms per publish
// in the fan-out benchmark. Checked without timing: the loop must spend no idle time (time blocked
// in the poll, uv_metrics_idle_time) between the schedule and the flush.
#include "gripd/loop/flushable.hpp"
#include "gripd/loop/worker.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>
#include <uv.h>

using gripd::loop::Flushable;
using gripd::loop::Worker;

namespace {

struct Probe : Flushable {
    Worker* worker = nullptr;
    uint64_t idle_at_schedule = 0, idle_at_flush = 0;
    int flushes = 0;
    void flush() override {
        ++flushes;
        idle_at_flush = uv_metrics_idle_time(worker->uv());
    }
};

} // namespace

TEST_CASE("worker: a flush scheduled from a timer goes out before the poll blocks", "[worker][loop]") {
    Worker worker(0, 1);
    Probe probe;
    probe.worker = &worker;
    uv_timer_t scheduler{}, far{}; // outlive the loop; the worker closes them at its end
    worker.on_start([&](Worker& w) {
        uv_loop_configure(w.uv(), UV_METRICS_IDLE_TIME);
        uv_timer_init(w.uv(), &scheduler);
        uv_timer_init(w.uv(), &far);
        scheduler.data = &probe;
        uv_timer_start(
            &scheduler,
            [](uv_timer_t* t) {
                auto* p = static_cast<Probe*>(t->data);
                p->idle_at_schedule = uv_metrics_idle_time(p->worker->uv());
                p->worker->schedule_flush(*p);
            },
            20, 0);
        // The next thing the loop would wake up for: a poll that blocks waits until this one.
        uv_timer_start(
            &far, [](uv_timer_t*) {}, 400, 0);
    });
    worker.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    worker.request_stop(0);
    worker.join();
    REQUIRE(probe.flushes == 1);
    CHECK(probe.idle_at_flush == probe.idle_at_schedule); // no time blocked in the poll in between
}
