// FlushQueue: the connections a worker flushes in its uv_check phase, in two classes.
//
// Interactive output (answers to requests, frames a session writes) is flushed in the turn it was
// gathered, all of it: each connection's reads are capped per turn, so it is bounded already. Bulk
// output (what the broker delivers while a Worker::BulkOutput scope is open) is flushed after it,
// only until the turn's time budget is spent; the rest waits, in order, for the next turns. A
// fan-out to thousands of sockets is mostly kernel time in write(2) (10-30 us each on loopback), so
// bounding how many subscribers the broker visits per turn does not bound the turn: this does.
// A connection that goes away while it waits, as either kind, must say so (forget()).
#pragma once

#include "gripd/loop/flushable.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gripd::loop {

class FlushQueue {
  public:
    // Adds `f` for this turn. The caller adds a connection at most once until its flush() runs (it
    // keeps its own flag), so entries are unique.
    void add(Flushable& f);
    // While on, add() queues bulk output (Worker::BulkOutput sets it around deliveries).
    void set_bulk(bool on) { bulk_mode_ = on; }
    bool bulk_mode() const { return bulk_mode_; }
    // Flushes every interactive entry, then bulk entries until `now()` reaches `deadline_ns` (read
    // every kClockEvery flushes, so at least that many go out per turn). Entries added meanwhile
    // (a failed write closing another connection) are flushed too. True when nothing waits.
    bool run(uint64_t deadline_ns, uint64_t (*now)());
    // `f` is being destroyed: drops it wherever it waits (a connection freed after it gathered output
    // in the same turn, e.g. from another connection's close callback, must not be flushed).
    void forget(Flushable& f);
    // Bulk output waits from an earlier turn: producers of more bulk output should wait too.
    bool bulk_waiting() const { return head_ < bulk_.size(); }
    size_t bulk_waiting_count() const { return live_bulk_; }
    bool empty() const { return interactive_.empty() && !bulk_waiting(); }

    // A flush is one writev (microseconds at least), a clock read is a vDSO call (tens of ns).
    static constexpr size_t kClockEvery = 1;

  private:
    void compact();

    std::vector<Flushable*> interactive_;
    std::vector<Flushable*> bulk_; // [head_, size) wait; forgotten entries are null
    size_t head_ = 0;
    size_t live_bulk_ = 0;
    bool bulk_mode_ = false;
};

} // namespace gripd::loop
