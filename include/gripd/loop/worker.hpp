// Worker: one thread running one uv loop. Every connection, request and subscription belongs to
// exactly one worker for its whole life. Other threads reach a worker only through its inbox
// (Worker::post), which is lock-free: one single-producer ring per sending thread.
#pragma once

#include "gripd/loop/deletable.hpp"
#include "gripd/loop/flush_queue.hpp"
#include "gripd/loop/inbox.hpp"
#include "gripd/loop/timer_wheel.hpp"
#include "gripd/loop/turn_stats.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <uv.h>
#include <vector>

namespace gripd::loop {

class Worker {
  public:
    // `index` is this worker's number (0..count-1); `producers` is how many threads may post to it
    // (each gets its own ring: the other workers plus the main thread).
    Worker(int index, int producers);
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;
    ~Worker();

    int index() const { return index_; }
    uv_loop_t* uv() { return &loop_; }
    TimerWheel& timers() { return *timers_; }
    // A read buffer shared by every connection of this worker (valid only during a read callback).
    std::vector<char>& read_buffer() { return read_buffer_; }

    // Calls `out.flush()` at the end of this loop iteration (a connection's gathered writes), or in
    // a later one when it is bulk output past the turn's budget (FlushQueue). `out` must stay alive
    // until then or call forget_flush() first (connections do in their destructor).
    void schedule_flush(Flushable& out);
    void forget_flush(Flushable& out) { flushes_.forget(out); }
    // Bulk output from an earlier turn still waits: the broker delivers no more until it went out.
    bool output_backlogged() const { return flushes_.bulk_waiting(); }
    size_t output_backlog() const { return flushes_.bulk_waiting_count(); }
    // While one is alive, what connections gather is bulk output (the broker's deliveries).
    class BulkOutput {
      public:
        explicit BulkOutput(Worker& w) : flushes_(w.flushes_), was_(w.flushes_.bulk_mode()) {
            flushes_.set_bulk(true);
        }
        ~BulkOutput() { flushes_.set_bulk(was_); }
        BulkOutput(const BulkOutput&) = delete;
        BulkOutput& operator=(const BulkOutput&) = delete;

      private:
        FlushQueue& flushes_;
        bool was_;
    };
    // Loop time one turn may spend writing bulk output.
    static constexpr uint64_t kBulkFlushBudgetNs = 1'000'000;
    // Loop time one turn may spend on inbox messages (checked after each batch of kInboxDrainBatch
    // per producer ring).
    static constexpr uint64_t kInboxDrainBudgetNs = 1'000'000;
    static constexpr size_t kInboxDrainBatch = 256;

    // Frees `obj` after the current loop iteration.
    void defer_delete(std::unique_ptr<Deletable> obj);

    // Runs `fn` on the worker thread right after the loop starts (wiring: listeners, services).
    void on_start(std::function<void(Worker&)> fn) { start_hooks_.push_back(std::move(fn)); }
    // Runs `fn` on the worker thread when a stop is requested (close listeners, idle connections).
    void on_stop(std::function<void(Worker&)> fn) { stop_hooks_.push_back(std::move(fn)); }
    // Runs `fn` when the worker closes everything at the end of a stop: close owned connections.
    void on_close_all(std::function<void(Worker&)> fn) { close_hooks_.push_back(std::move(fn)); }
    // Handles inbox messages other than Stop, which the worker handles itself (set before start()).
    void set_message_handler(std::function<void(Worker&, InboxMessage&)> fn) { handler_ = std::move(fn); }
    // Runs `fn` at the end of every loop turn (uv_check): services arm their periodic timers there
    // only when they have work, so an idle worker sleeps (set before start(); keep it cheap).
    void on_turn(std::function<void(Worker&)> fn) { turn_hook_ = std::move(fn); }

    // Starts the thread: it runs the on_start hooks, then the loop until a stop completes.
    void start();
    void join();
    // From the main thread only (it posts on the main thread's ring, the last producer): asks the
    // worker to stop accepting, finish in-flight requests and, after `grace_ms`, close everything
    // and end its loop.
    void request_stop(uint64_t grace_ms);
    bool is_stopping() const { return stopping_; }

    // Sends a message from producer `producer` (the caller's thread number: a worker index, or the
    // main thread's number) to this worker. Never blocks; see Inbox.
    bool post(int producer, InboxMessage&& msg) { return inbox_.push(producer, std::move(msg)); }
    // The same for data (deliveries): refused (Full) when that producer's queue here is at its bound.
    Inbox::Pushed post_bounded(int producer, InboxMessage&& msg) {
        return inbox_.push_bounded(producer, std::move(msg));
    }
    // Any thread: this worker's inbox is far behind (new publishes should be refused).
    bool is_congested() const { return inbox_.is_congested(); }
    // Whether messages of `producer` wait in its overflow (call from that producer's thread).
    bool has_overflow_from(int producer) const { return inbox_.has_overflow(producer); }
    // Retries the overflow of `producer` (call from that producer's thread).
    void flush_from(int producer) {
        if (inbox_.has_overflow(producer)) inbox_.flush(producer);
    }

    // Client connection accounting (for graceful stop).
    void on_client_opened() { ++client_connections_; }
    void on_client_closed();
    int64_t client_connections() const { return client_connections_; }
    // Other work a graceful stop waits for (within its grace period) as for client connections:
    // requests the proxy still owes a backend after their client left (gone links).
    void add_stop_work() { ++stop_work_; }
    void done_stop_work();

    // Workers that share a shutdown: each closes its inbox only when all of them have quiesced, so
    // no peer can still be posting to it.
    void set_shutdown_barrier(std::atomic<int>* quiesced, int worker_count) {
        quiesced_ = quiesced;
        worker_count_ = worker_count;
    }
    // Peers whose inboxes this worker posts to; their overflow is flushed on every loop turn.
    void set_peers(std::vector<Worker*> peers) { peers_ = std::move(peers); }

    // Handles still on this worker's loop (after join(): 0 when everything was closed, i.e. the
    // loop will close cleanly). Not thread-safe while the worker runs.
    size_t open_handles_for_test();

    // How long this worker's loop turns take (read by metrics scrapes on any thread).
    const TurnStats& turn_stats() const { return turn_stats_; }

    // True when the calling thread is this worker's thread.
    bool on_own_thread() const { return std::this_thread::get_id() == thread_id_; }

  private:
    static void on_check(uv_check_t* h);
    void record_turn();
    static void on_grace_end(void* self);
    static void on_wake(uv_async_t* h);
    static void on_barrier_poll(void* self);
    void quiesce();
    void run();
    void handle(InboxMessage& msg);
    void begin_stop(uint64_t grace_ms);
    void close_all();
    void close_own_handles();

    int index_;
    uv_loop_t loop_{};
    std::unique_ptr<TimerWheel> timers_;
    std::vector<char> read_buffer_;
    Inbox inbox_;
    uv_check_t check_{};
    TurnStats turn_stats_;
    uint64_t last_check_ns_ = 0; // when the previous check phase ran
    uint64_t last_idle_ns_ = 0;  // the loop's poll-wait total then
    std::vector<std::unique_ptr<Deletable>> deferred_;
    FlushQueue flushes_; // connections with output to send
    // Active while output waits: the poll phase must not block then, or output gathered before it
    // (timers, idle callbacks, bulk carried from the last turn) would wait for the next event.
    uv_idle_t flush_idle_{};
    std::vector<std::function<void(Worker&)>> start_hooks_;
    std::vector<std::function<void(Worker&)>> stop_hooks_;
    std::vector<std::function<void(Worker&)>> close_hooks_;
    std::function<void(Worker&, InboxMessage&)> handler_;
    std::function<void(Worker&)> turn_hook_;
    TimerEntry grace_timer_;
    std::thread thread_;
    std::thread::id thread_id_;
    int64_t client_connections_ = 0;
    std::vector<Worker*> peers_;
    std::atomic<int>* quiesced_ = nullptr;
    int worker_count_ = 1;
    bool stopping_ = false;
    bool quiesced_self_ = false;
    int64_t stop_work_ = 0;
    uint64_t grace_deadline_ = 0; // wheel time the grace period ends
    bool closed_all_ = false;
};

} // namespace gripd::loop
