// Flushable: what the worker flushes at the end of a loop iteration. loop knows no net type: a
// connection that gathers writes during an iteration implements this and asks its worker
// (Worker::schedule_flush) to call flush() once, after every callback of the iteration has run.
#pragma once

#include <cstddef>

namespace gripd::loop {

class Flushable {
  public:
    // Sends what was gathered. Runs on the worker's thread, in its uv_check phase.
    virtual void flush() = 0;

  protected:
    ~Flushable() = default; // never owned or deleted through this interface

  private:
    friend class FlushQueue;
    static constexpr size_t kNotQueued = ~size_t{0};
    size_t slot_ = kNotQueued; // where FlushQueue keeps it while it waits (in bulk_ or interactive_)
    bool bulk_ = false;
};

} // namespace gripd::loop
