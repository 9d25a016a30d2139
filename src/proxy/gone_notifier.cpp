#include "gone_notifier.hpp"

#include "gripd/core/log.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/proxy/proxy_service.hpp"
#include "link_fetch.hpp"

#include <random>

namespace gripd::proxy {

namespace {
uint64_t jitter_ms() {
    thread_local std::minstd_rand rng{std::random_device{}()};
    return rng() % 500;
}
} // namespace

// One notice: its request while one is out, its timer between attempts.
struct GoneNotifier::Job final : grip::LinkUser {
    GoneNotifier& owner;
    GoneNotice notice;
    size_t bytes;
    int attempt = 0; // attempts made
    std::unique_ptr<grip::LinkFetch> request;
    loop::TimerEntry timer;

    Job(GoneNotifier& o, GoneNotice&& n)
        : owner(o), notice(std::move(n)), bytes(notice.host.size() + notice.target.size()) {}

    void on_link_response(http::ResponseHead& head, std::string& /*body*/) override {
        // Any answer but a server error is the backend's: only a 5xx is tried again.
        if (head.status >= 300 && head.status < 500)
            LOG_INFO("grip", "gone link %s: the backend answered %d", notice.target.c_str(), head.status);
        owner.attempt_done(*this, head.status < 500, "status " + std::to_string(head.status));
    }
    void on_link_failed(const char* why) override { owner.attempt_done(*this, false, why); }
};

GoneSendFn gone_requests_through(ProxyService& proxy) {
    return [&proxy](const GoneNotice& notice, grip::LinkUser& user) -> std::unique_ptr<grip::LinkFetch> {
        http::RequestHead head;
        head.method = "POST";
        head.target = notice.target;
        head.headers.add("Host", notice.host);
        return std::make_unique<LinkFetchRequest>(proxy, notice.routes, *notice.route, std::move(head),
                                                  notice.peer, std::vector<std::string>{}, user);
    };
}

GoneNotifier::GoneNotifier(loop::Worker& worker, stats::GoneStats& stats, GoneSendFn send)
    : worker_(worker), stats_(stats), send_(std::move(send)) {}

GoneNotifier::~GoneNotifier() {
    stats_.queued.sub(static_cast<int64_t>(jobs_.size()));
    waiting_.clear();
    jobs_.clear();
}

void GoneNotifier::notify(GoneNotice&& notice) {
    size_t bytes = notice.host.size() + notice.target.size();
    if (closed_ || jobs_.size() >= kGoneMaxQueued || bytes_ + bytes > kGoneMaxQueuedBytes) {
        ++dropped_;
        stats_.dropped.add();
        if (dropped_ % 1000 == 1)
            LOG_WARN("grip", "gone link %s not requested: %s (%llu dropped so far on this worker)",
                     notice.target.c_str(),
                     closed_ ? "the server is stopping" : "too many gone notices queued",
                     static_cast<unsigned long long>(dropped_));
        return;
    }
    auto job = std::make_unique<Job>(*this, std::move(notice));
    Job* j = job.get();
    j->timer.init(&worker_.timers(), j, &GoneNotifier::on_retry_timer);
    jobs_.emplace(j, std::move(job));
    bytes_ += bytes;
    stats_.queued.add();
    worker_.add_stop_work(); // a graceful stop waits for it (within its grace period)
    waiting_.push_back(j);
    pump();
}

void GoneNotifier::pump() {
    if (pumping_) return; // a request that fails at once calls back in here: the loop below goes on
    pumping_ = true;
    while (!waiting_.empty() && sending_ < kGoneMaxInFlight && !closed_) {
        Job* j = waiting_.front();
        waiting_.pop_front();
        ++sending_;
        if (++j->attempt > 1) stats_.retries.add();
        j->request = send_(j->notice, *j);
        if (!j->request) {
            attempt_done(*j, false, "the request could not be made"); // may free j; pump() goes on here
            continue;
        }
        j->request->start(); // may report (and free j) before it returns
    }
    pumping_ = false;
}

void GoneNotifier::attempt_done(Job& job, bool ok, const std::string& why) {
    --sending_;
    if (ok) {
        ++sent_;
        stats_.delivered.add();
        LOG_DEBUG("grip", "gone link %s requested", job.notice.target.c_str());
        finish(job); // frees the request whose callback this is: it touches nothing after
    } else if (job.attempt <= kGoneRetries && !stopping_ && !closed_) {
        uint64_t delay = (kGoneRetryBaseMs << (job.attempt - 1)) + jitter_ms();
        LOG_DEBUG("grip", "gone link %s: %s; trying again in %llu ms", job.notice.target.c_str(), why.c_str(),
                  static_cast<unsigned long long>(delay));
        job.request.reset(); // the callback's own request: LinkUser's contract lets us free it
        job.timer.arm(delay);
    } else {
        LOG_INFO("grip", "gone link %s: not delivered after %d attempts (%s)", job.notice.target.c_str(),
                 job.attempt, why.c_str());
        stats_.failed.add();
        finish(job);
    }
    pump();
}

void GoneNotifier::finish(Job& job) {
    bytes_ -= job.bytes;
    stats_.queued.sub();
    worker_.done_stop_work();
    jobs_.erase(&job);
}

void GoneNotifier::on_retry_timer(void* p) {
    auto* job = static_cast<Job*>(p);
    GoneNotifier& self = job->owner;
    self.waiting_.push_back(job);
    self.pump();
}

void GoneNotifier::stop() {
    stopping_ = true;
    // Notices waiting out a backoff get their last attempt now rather than hold the stop up.
    for (auto& [j, job] : jobs_)
        if (job->timer.is_armed()) {
            job->timer.disarm();
            waiting_.push_back(j);
        }
    pump();
}

void GoneNotifier::close() {
    if (closed_) return;
    closed_ = true;
    if (!jobs_.empty())
        LOG_WARN("grip", "%zu gone links not requested: the server stopped first", jobs_.size());
    for (size_t i = 0; i < jobs_.size(); ++i)
        worker_.done_stop_work();
    dropped_ += jobs_.size();
    stats_.dropped.add(static_cast<int64_t>(jobs_.size()));
    stats_.queued.sub(static_cast<int64_t>(jobs_.size()));
    waiting_.clear();
    jobs_.clear();
    bytes_ = 0;
    sending_ = 0;
}

} // namespace gripd::proxy
