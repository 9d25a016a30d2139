// PublishQueue: the publish requests of one worker's control API, validated and handed to the broker
// in slices so that one big publish costs a bounded amount of loop time per turn.
//
//  - Requests are taken in arrival order (FIFO). The oldest one that can make progress is worked
//    on: its body is parsed (one JSON parse, then kSliceItems items validated per turn), and once
//    every item is valid it is handed to the broker kSliceItems items per turn, one slice at a
//    time: the next goes once the broker answered the last (it answers once the deliveries are
//    short again on every worker). While a request waits for that answer, later ones go on, but
//    one is handed over only if it shares no channel with an earlier request still handing over:
//    per channel, requests keep their arrival order (the broker keeps the order it is given, per
//    channel), and a big publish on one channel does not hold up a small one on another.
//  - All or nothing: a bad item anywhere rejects the body (400) before anything is handed over.
//  - Admission: a publish whose items are all valid is refused (503, counted) instead of handed
//    over when some worker's inbox is congested (Broker::is_congested); once its first slice is
//    out, the rest follows (one request at a time per worker, so at most one body's worth of
//    items is admitted past that check).
//  - The requester is answered once the broker took every slice (200), or 503 if the bus failed
//    one of them (the slices before it are out: as with a bus error on any multi-item publish).
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

class PublishQueue {
  public:
    // Items validated, or handed to the broker, per loop turn (both count against one budget).
    static constexpr size_t kSliceItems = 256;
    // A body's JSON parse counts as one item per this many bytes.
    static constexpr size_t kBytesPerItem = 256;
    // What one job may take of the budget before the next job's turn (round-robin within a turn).
    static constexpr size_t kJobShare = 64;
    // Bodies this big are parsed on libuv's thread pool, not on the loop.
    static constexpr size_t kParseOffLoopBytes = 64 * 1024;

    // `status` 200, 400 (`message` is Pushpin's text) or 503.
    using Done = std::function<void(int status, std::string_view message)>;

    PublishQueue(uv_loop_t* loop, pubsub::Broker& broker);
    PublishQueue(const PublishQueue&) = delete;
    PublishQueue& operator=(const PublishQueue&) = delete;
    ~PublishQueue();

    // Queues a publish body; `done` runs later on this loop, or before this returns when the
    // body is small and nothing is ahead of it. Returns an id for cancel() (0 if already done).
    uint64_t submit(std::string&& body, bool keep_json, Done done);
    // The requester went away: `done` will not run. A publish still being validated is dropped;
    // one being handed over goes on (its first slices are out).
    void cancel(uint64_t id);

  private:
    struct Job;
    struct ParseWork;
    void pump(size_t budget);
    void parse_off_loop(Job& job); // Queued -> Parsing, unless the pool refused (then still Queued)
    static void on_parsed(uv_work_t* req, int status);
    enum class Step : uint8_t {
        More,    // the job has more to do this turn
        Left,    // the job left the queue (handed over or answered)
        Blocked, // the job waits for the broker to take its last slice
    };
    Step step(Job& job, size_t& budget);
    // Whether `job` shares a channel with one of `ahead` (earlier jobs still handing over).
    static bool shares_channel(const Job& job, const std::vector<const Job*>& ahead);
    void on_slice_done(uint64_t id, bool ok);
    void finish(uint64_t id, int status, std::string_view message);
    size_t turn_budget();
    static void on_idle(uv_idle_t* h);

    uv_loop_t* loop_;
    pubsub::Broker& broker_;
    std::unordered_map<uint64_t, std::unique_ptr<Job>> jobs_; // every job until answered
    std::deque<uint64_t> order_;                              // jobs not yet handed over, oldest first
    uint64_t next_id_ = 1;
    size_t budget_ = kSliceItems;
    uint64_t budget_turn_ = 0; // uv_now() when budget_ was refilled
    bool pumping_ = false;     // in pump(): an answer may submit again
    bool blocked_ = false;     // every queued job waits for a slice's answer (on_slice_done resumes)
    uv_idle_t idle_{};
    std::vector<ParseWork*> parsing_; // on the thread pool now (few: one per big body in flight)
};

} // namespace gripd::control
