// GoneNotifier: gone links (`Grip-Link: <URL>; rel=gone`, Pushpin 1.41: fastly/pushpin commit
// c5a9b0c1, PR #48067, src/handler/httpsession.cpp). When a hold whose first instructions named a
// gone link ends, the backend is told with `POST <URL>` and an empty body, sent as a client request
// to that URL would be: routed afresh, rewritten and signed (Grip-Sig) by the forwarding rules.
//
// Pushpin 1.41 sends one best-effort POST. gripd makes it reliable within bounds, per worker:
//  - retries: a transport failure or a 5xx answer is tried again kGoneRetries times, after 1 s,
//    2 s, 4 s (plus up to 0.5 s at random); any other status is an answer (logged if not 2xx).
//  - concurrency: at most kGoneMaxInFlight requests out at once; the rest wait in a FIFO.
//  - queue: at most kGoneMaxQueued notices (waiting, out or between retries) and kGoneMaxQueuedBytes
//    of URLs; a notice beyond either is dropped (the newest: what is queued is older and was
//    promised first), counted, and logged (the first, then every 1,000th).
//  - server stop: notices still queued or out are sent (no more retries) while the stop's grace
//    period lasts (the worker waits for them as for client connections); what is left when the
//    loop closes is dropped with one log line.
// Counted in stats::GoneStats (metrics: gripd_gone_requests_total{result=...}, gripd_gone_retries_total,
// gripd_gone_queued).
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/grip/next_link.hpp"
#include "gripd/loop/timer_wheel.hpp"
#include "gripd/stats/gone_stats.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

namespace gripd::loop {
class Worker;
}

namespace gripd::proxy {

class ProxyService;

constexpr int kGoneRetries = 3;
constexpr uint64_t kGoneRetryBaseMs = 1000;
constexpr size_t kGoneMaxInFlight = 32;
constexpr size_t kGoneMaxQueued = 10000;
constexpr size_t kGoneMaxQueuedBytes = 4 * 1024 * 1024;

struct GoneNotice {
    std::shared_ptr<const config::RouteTable> routes; // keeps `route` alive
    const config::Route* route = nullptr;
    std::string host;   // Host of the gone URL
    std::string target; // its origin-form target
    std::string peer;   // the client that went away (X-Forwarded-For, as for its own requests)
};

// Makes one attempt's request (not started); nullptr counts as a failed attempt.
using GoneSendFn = std::function<std::unique_ptr<grip::LinkFetch>(const GoneNotice&, grip::LinkUser&)>;

// The real requests: through `proxy`'s forwarding rules and backend pool.
GoneSendFn gone_requests_through(ProxyService& proxy);

class GoneNotifier {
  public:
    GoneNotifier(loop::Worker& worker, stats::GoneStats& stats, GoneSendFn send);
    GoneNotifier(const GoneNotifier&) = delete;
    GoneNotifier& operator=(const GoneNotifier&) = delete;
    ~GoneNotifier();

    // Queues the POST (or drops it when the queue is full or the loop is closing).
    void notify(GoneNotice&& notice);
    // Server stop: what is queued is still sent, failures are not tried again.
    void stop();
    // The loop is closing: everything left is dropped (one log line).
    void close();

    size_t queued() const { return jobs_.size(); }
    size_t in_flight() const { return sending_; }
    uint64_t sent() const { return sent_; }
    uint64_t dropped() const { return dropped_; }

  private:
    struct Job;
    void pump(); // starts waiting jobs while below the concurrency cap
    void attempt_done(Job& job, bool ok, const std::string& why); // may free job
    void finish(Job& job);                                        // frees job
    static void on_retry_timer(void* job);

    loop::Worker& worker_;
    stats::GoneStats& stats_;
    GoneSendFn send_;
    std::unordered_map<Job*, std::unique_ptr<Job>> jobs_; // every notice not yet finished
    std::deque<Job*> waiting_;                            // FIFO of jobs to (re)send
    size_t sending_ = 0;
    size_t bytes_ = 0;
    bool pumping_ = false; // re-entrancy guard of pump()
    bool stopping_ = false;
    bool closed_ = false;
    uint64_t sent_ = 0;
    uint64_t dropped_ = 0;
};

} // namespace gripd::proxy
