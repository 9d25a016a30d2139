// PublishQueue: the publish requests of one worker's control API, validated and handed to the broker
// in slices so that one big publish costs a bounded amount of loop time per turn.
//
//  - Requests are validated in arrival order (FIFO): the body is parsed (one JSON parse, on
//    libuv's thread pool from kParseOffLoopBytes, then kSliceItems items validated per turn). All
//    or nothing: a bad item anywhere rejects the body (400) before anything is handed over.
//  - Admission: a publish whose items are all valid is refused (503, counted) when some worker's
//    inbox is congested (Broker::is_congested). Otherwise it joins the ready list.
//  - Hand-over: the ready list goes to the broker in order, kSliceItems items per turn, one slice
//    at a time: the next goes once the broker answered the last (it answers once the deliveries are
//    short again on every worker). Unpaced, each admitted request has at most one slice out, and
//    a later request goes past an earlier one waiting for the broker only if they share no
//    channel: per channel, requests keep their arrival order (the broker keeps the order it is
//    given, per channel), and a big publish on one channel does not hold up a small one on
//    another. Paced, requests go strictly in order, one slice at a time.
//  - The requester is answered once the broker took every slice (200), or 503 if the bus failed one
//    of them (the slices before it are out: as with a bus error on any multi-item publish).
//  - `[handler] message_rate` / `message_hwm` (PublishGate): items leave the ready list only as
//    the gate's tokens allow. Items that would take the items waiting past message_hwm are dropped
//    (counted, one WARN a second) and the rest admitted. When the hand-over has to wait for tokens,
//    the requests waiting on it are answered 200 at once, as Pushpin answers before its limiter
//    sends (their items still go out in order). With a hwm, later requests are validated and
//    admitted meanwhile; without one, they wait (unvalidated) until the ready list is empty.
// One per worker; everything runs on that worker's loop.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <uv.h>
#include <vector>

namespace gripd::pubsub {
class Broker;
}

namespace gripd::control {

class PublishGate;

class PublishQueue {
  public:
    // Items validated, or handed to the broker, per loop turn (both count against one budget).
    static constexpr size_t kSliceItems = 256;
    // A body's JSON parse counts as one item per this many bytes.
    static constexpr size_t kBytesPerItem = 256;
    // Bytes of publish bodies admitted and waiting for the gate's tokens, per worker: past it a
    // body's items are dropped like those past message_hwm (the hwm counts items, not bytes).
    static constexpr size_t kMaxPacedBytes = 64u << 20;
    // How often a paced publish whose turn has not come looks again (another worker has the turn).
    static constexpr uint64_t kTurnPollMs = 2;
    // Unpaced: requests admitted (validated, waiting to be handed over) at a time, per worker.
    static constexpr size_t kMaxReady = 8;
    // Bodies this big are parsed on libuv's thread pool, not on the loop.
    static constexpr size_t kParseOffLoopBytes = 64 * 1024;

    // `status` 200, 400 (`message` is Pushpin's text) or 503.
    using Done = std::function<void(int status, std::string_view message)>;

    // `gate` paces the hand-over (null or unpaced: items go as fast as the broker takes them).
    PublishQueue(uv_loop_t* loop, pubsub::Broker& broker, PublishGate* gate = nullptr);
    PublishQueue(const PublishQueue&) = delete;
    PublishQueue& operator=(const PublishQueue&) = delete;
    ~PublishQueue();

    // Queues a publish body; `done` runs later on this loop, or before this returns when the
    // body is small and nothing is ahead of it. Returns an id for cancel() (0 if already done).
    uint64_t submit(std::string&& body, bool keep_json, Done done);
    // The requester went away: `done` will not run. A publish still being validated is dropped;
    // one admitted goes on.
    void cancel(uint64_t id);

  private:
    struct Job;
    struct ParseWork;
    void pump(size_t budget);
    bool may_validate() const;
    bool can_hand() const;
    // Unpaced: the first ready job that may hand a slice now (ready_.size() if none).
    size_t next_ready() const;
    bool shares_channel_with_earlier(const Job& job, size_t before) const;
    bool parse_off_loop(Job& job); // Queued -> Parsing; false if the pool refused (parse here)
    static void on_parsed(uv_work_t* req, int status);
    // One step of the oldest request being validated; false if nothing was done.
    bool validate_step(size_t& budget);
    void admit(Job& job);
    // Hands one slice of the ready list to the broker; false if nothing could go.
    bool hand(size_t& budget);
    void answer_waiting(); // the hand-over waits for tokens: answer the requests it holds
    void on_slice_done(uint64_t id, bool ok);
    void finish(uint64_t id, int status, std::string_view message);
    size_t turn_budget();
    void drop(size_t n);
    static void on_idle(uv_idle_t* h);
    static void on_pace_timer(uv_timer_t* h);

    uv_loop_t* loop_;
    pubsub::Broker& broker_;
    PublishGate* gate_;
    std::unordered_map<uint64_t, std::unique_ptr<Job>> jobs_; // every job until done
    std::deque<uint64_t> order_;                              // jobs being validated, oldest first
    std::deque<uint64_t> ready_;                              // admitted jobs, in hand-over order
    uint64_t next_id_ = 1;
    size_t budget_ = kSliceItems;
    uint64_t budget_turn_ = 0; // uv_now() when budget_ was refilled
    bool pumping_ = false;     // in pump(): an answer may submit again
    bool slice_out_ = false;   // a slice waits for the broker's answer (on_slice_done resumes)
    bool pacing_ = false;      // the pace timer runs: the gate has no token now
    size_t paced_bytes_ = 0;   // body bytes of the admitted jobs (paced gate only)
    uint64_t dropped_unwarned_ = 0;
    uint64_t dropped_warned_at_ = 0; // uv_now() of the last hwm warning
    uv_idle_t idle_{};
    uv_timer_t pace_timer_{};
    std::vector<ParseWork*> parsing_; // on the thread pool now (one at most: the front's)
};

} // namespace gripd::control
