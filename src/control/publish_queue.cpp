#include "publish_queue.hpp"

#include "gripd/control/publish_gate.hpp"
#include "gripd/core/log.hpp"
#include "gripd/pubsub/broker.hpp"
#include "gripd/pubsub/publish.hpp"

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>

namespace gripd::control {

struct PublishQueue::Job {
    enum class State : uint8_t { Queued, Parsing, Validating, Ready };
    uint64_t id = 0;
    State state = State::Queued;
    std::string body; // until parsed
    size_t body_bytes = 0;
    bool keep_json = false;
    Done done;
    std::unique_ptr<pubsub::PublishBodyParser> parser = std::make_unique<pubsub::PublishBodyParser>();
    std::vector<pubsub::PublishItem> items;
    std::vector<std::string> channels; // sorted, unique: known once parsed
    size_t total = 0;                  // items admitted
    size_t handed = 0;                 // items given to the broker
    size_t slices_out = 0;             // slices the broker has not acknowledged yet
    bool failed = false;               // a slice failed (bus unavailable)
    bool answered = false;             // answered early: its items wait for the gate's tokens
    uint64_t ticket = 0;               // its turn at the gate (paced only)
    std::vector<uint64_t> tokens;      // the broker's, to cancel if the queue goes first
};

PublishQueue::PublishQueue(uv_loop_t* loop, pubsub::Broker& broker, PublishGate* gate)
    : loop_(loop), broker_(broker), gate_(gate && gate->paced() ? gate : nullptr) {
    // Closed with the worker's other embedded handles when its loop ends (Worker::close_all).
    uv_idle_init(loop_, &idle_);
    idle_.data = this;
    uv_timer_init(loop_, &pace_timer_);
    pace_timer_.data = this;
}

// A big body's JSON parse, on libuv's thread pool: pure work on data it owns (the body in, the
// parsed document out), handed back to the loop in after_work. A parse costs ~7 ms per MB of loop
// time otherwise, the largest single cost a publisher could put on a loop.
struct PublishQueue::ParseWork {
    uv_work_t req{};
    PublishQueue* queue = nullptr; // null once the queue is gone (the loop still runs after_work)
    uint64_t job_id = 0;
    std::string body;
    bool keep_json = false;
    std::unique_ptr<pubsub::PublishBodyParser> parser;
    bool ok = false;
    std::string error;
};

bool PublishQueue::parse_off_loop(Job& job) {
    auto work = std::make_unique<ParseWork>();
    work->queue = this;
    work->job_id = job.id;
    work->body = std::move(job.body);
    work->keep_json = job.keep_json;
    work->parser = std::move(job.parser);
    work->req.data = work.get();
    int r = uv_queue_work(
        loop_, &work->req,
        [](uv_work_t* req) {
            auto* w = static_cast<ParseWork*>(req->data);
            w->ok = w->parser->begin(w->body, w->keep_json, w->error);
            std::string().swap(w->body);
        },
        &PublishQueue::on_parsed);
    if (r != 0) { // cannot happen with a valid loop and callback: parse on the loop then
        job.body = std::move(work->body);
        job.parser = std::move(work->parser);
        return false;
    }
    job.state = Job::State::Parsing;
    parsing_.push_back(work.release()); // owned by libuv until on_parsed
    return true;
}

void PublishQueue::on_parsed(uv_work_t* req, int /*status*/) {
    std::unique_ptr<ParseWork> work(static_cast<ParseWork*>(req->data));
    PublishQueue* self = work->queue;
    if (self == nullptr) return;
    self->parsing_.erase(std::find(self->parsing_.begin(), self->parsing_.end(), work.get()));
    auto it = self->jobs_.find(work->job_id);
    if (it == self->jobs_.end()) return; // cancelled meanwhile (order_ skips its id)
    Job& job = *it->second;
    job.parser = std::move(work->parser);
    if (!work->ok) {
        self->order_.erase(std::find(self->order_.begin(), self->order_.end(), job.id));
        self->finish(job.id, 400, work->error);
    } else {
        job.items.reserve(job.parser->size());
        job.channels = job.parser->channels();
        job.state = Job::State::Validating;
    }
    if (!self->pumping_) self->pump(self->turn_budget());
}

PublishQueue::~PublishQueue() {
    for (ParseWork* w : parsing_)
        w->queue = nullptr;
    for (auto& [id, job] : jobs_) {
        for (uint64_t t : job->tokens)
            broker_.cancel_publish(t);
        if (gate_ && job->state == Job::State::Ready) gate_->release(job->total - job->handed);
    }
}

size_t PublishQueue::turn_budget() {
    uint64_t turn = uv_now(loop_);
    if (turn != budget_turn_) {
        budget_turn_ = turn;
        budget_ = kSliceItems;
    }
    return budget_;
}

uint64_t PublishQueue::submit(std::string&& body, bool keep_json, Done done) {
    uint64_t id = next_id_++;
    auto job = std::make_unique<Job>();
    job->id = id;
    job->body_bytes = body.size();
    job->body = std::move(body);
    job->keep_json = keep_json;
    job->done = std::move(done);
    jobs_.emplace(id, std::move(job));
    order_.push_back(id);
    if (!pumping_) pump(turn_budget());
    return jobs_.count(id) ? id : 0;
}

void PublishQueue::cancel(uint64_t id) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    Job& job = *it->second;
    job.done = nullptr;
    if (job.state == Job::State::Queued || job.state == Job::State::Parsing ||
        job.state == Job::State::Validating) {
        // Nothing handed over yet: forget it (order_ skips ids it no longer knows).
        jobs_.erase(it);
    }
}

void PublishQueue::on_idle(uv_idle_t* h) {
    auto* self = static_cast<PublishQueue*>(h->data);
    self->budget_turn_ = uv_now(self->loop_);
    self->budget_ = kSliceItems;
    self->pump(self->budget_);
}

void PublishQueue::on_pace_timer(uv_timer_t* h) {
    auto* self = static_cast<PublishQueue*>(h->data);
    self->pacing_ = false;
    if (!self->pumping_) self->pump(self->turn_budget());
}

bool PublishQueue::may_validate() const {
    if (order_.empty()) return false;
    auto it = jobs_.find(order_.front());
    if (it != jobs_.end() && it->second->state == Job::State::Parsing) return false; // on_parsed goes on
    // Paced without a hwm, only one request is admitted at a time, as the request waits for its
    // hand-over; with a hwm, admitted items are bounded by it (and bytes by kMaxPacedBytes), so
    // later requests are validated and answered meanwhile. Unpaced, up to kMaxReady requests are
    // admitted, so one on another channel can go past one waiting for the broker.
    if (gate_) return ready_.empty() || gate_->has_hwm();
    return ready_.size() < kMaxReady;
}

bool PublishQueue::can_hand() const {
    if (ready_.empty() || pacing_) return false;
    if (gate_) return !slice_out_;
    return next_ready() < ready_.size();
}

size_t PublishQueue::next_ready() const {
    for (size_t i = 0; i < ready_.size(); ++i) {
        const Job& job = *jobs_.at(ready_[i]);
        if (job.slices_out == 0 && !shares_channel_with_earlier(job, i)) return i;
    }
    return ready_.size();
}

bool PublishQueue::shares_channel_with_earlier(const Job& job, size_t before) const {
    for (size_t k = 0; k < before; ++k) {
        const Job& a = *jobs_.at(ready_[k]);
        for (const std::string& c : job.channels)
            if (std::binary_search(a.channels.begin(), a.channels.end(), c)) return true;
    }
    return false;
}

void PublishQueue::pump(size_t budget) {
    pumping_ = true;
    while (budget > 0) {
        bool worked = false;
        if (can_hand()) worked |= hand(budget);
        if (budget > 0 && may_validate()) worked |= validate_step(budget);
        if (!worked) break;
    }
    budget_ = budget;
    pumping_ = false;
    // The idle handle runs only while there is work this worker can do now: while a slice waits
    // for the broker (on_slice_done resumes) or the gate for tokens (the pace timer does), it
    // would only spin the loop.
    bool want = can_hand() || may_validate();
    bool active = uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_));
    if (want && !active) uv_idle_start(&idle_, &PublishQueue::on_idle);
    if (!want && active) uv_idle_stop(&idle_);
}

bool PublishQueue::validate_step(size_t& budget) {
    auto it = jobs_.find(order_.front());
    if (it == jobs_.end()) { // cancelled while waiting
        order_.pop_front();
        return true;
    }
    Job& job = *it->second;
    if (job.state == Job::State::Queued) {
        if (job.body.size() >= kParseOffLoopBytes && parse_off_loop(job)) return true;
        std::string error;
        bool ok = job.parser->begin(job.body, job.keep_json, error);
        budget -= std::min(budget, std::max<size_t>(1, job.body.size() / kBytesPerItem));
        std::string().swap(job.body); // the parsed document holds its own copies
        if (!ok) {
            order_.pop_front();
            finish(job.id, 400, error);
            return true;
        }
        job.items.reserve(job.parser->size());
        job.channels = job.parser->channels();
        job.state = Job::State::Validating;
        return true;
    }
    if (job.state == Job::State::Parsing) return false;
    size_t n = std::min(budget, job.parser->size() - job.items.size());
    std::string error;
    int error_item = -1;
    bool ok = job.parser->next(n, job.items, error, error_item);
    budget -= n;
    if (!ok) {
        LOG_DEBUG("control", "publish rejected: %s (item %d)", error.c_str(), error_item);
        order_.pop_front();
        finish(job.id, 400, error);
        return true;
    }
    if (!job.parser->done()) return true;
    order_.pop_front();
    if (broker_.is_congested()) {
        broker_.note_refused();
        LOG_DEBUG("control", "publish of %zu items refused: a worker is far behind", job.items.size());
        finish(job.id, 503, "Too many messages waiting; try again later.");
        return true;
    }
    admit(job);
    return true;
}

void PublishQueue::admit(Job& job) {
    if (job.items.empty()) {
        finish(job.id, 200, "Published");
        return;
    }
    if (gate_) {
        size_t want = job.items.size();
        size_t fit =
            paced_bytes_ + job.body_bytes > kMaxPacedBytes && !ready_.empty() ? 0 : gate_->admit(want);
        if (fit < want) {
            // Pushpin drops what exceeds the hwm and still answers 200: the newest items go.
            job.items.resize(fit);
            drop(want - fit);
        }
        if (fit == 0) {
            finish(job.id, 200, "Published");
            return;
        }
        paced_bytes_ += job.body_bytes;
        job.ticket = gate_->ticket();
    }
    job.total = job.items.size();
    job.state = Job::State::Ready;
    ready_.push_back(job.id);
    if (pacing_) answer_waiting(); // the hand-over already waits for tokens: accepted now
}

void PublishQueue::drop(size_t n) {
    gate_->count_dropped(n);
    dropped_unwarned_ += n;
    uint64_t now = uv_now(loop_);
    if (dropped_warned_at_ == 0 || now - dropped_warned_at_ >= 1000) {
        LOG_WARN("control", "exceeded publish hwm (%lld items waiting for message_rate), dropped %llu items",
                 static_cast<long long>(gate_->hwm()), static_cast<unsigned long long>(dropped_unwarned_));
        dropped_warned_at_ = now;
        dropped_unwarned_ = 0;
    }
}

bool PublishQueue::hand(size_t& budget) {
    // Paced: strictly in order (the gate's turns). Unpaced: the oldest job that has no slice out
    // and shares no channel with an earlier one (per channel, the order requests came in).
    size_t at = gate_ ? 0 : next_ready();
    if (at >= ready_.size()) return false;
    Job& job = *jobs_.at(ready_[at]);
    size_t n = std::min(budget, job.total - job.handed);
    if (gate_) {
        uint64_t wait_ns = 0;
        if (job.handed == 0 && !gate_->is_turn(job.ticket)) {
            // An earlier paced publish (on another worker) goes first: look again in a moment.
            n = 0;
            wait_ns = kTurnPollMs * 1000000;
        } else {
            n = gate_->take(n, uv_hrtime(), &wait_ns);
        }
        if (n == 0) {
            answer_waiting();
            pacing_ = true;
            uv_timer_start(&pace_timer_, &PublishQueue::on_pace_timer,
                           std::max<uint64_t>(1, (wait_ns + 999999) / 1000000), 0);
            return false;
        }
        gate_->release(n);
    }
    auto first = job.items.begin() + static_cast<std::ptrdiff_t>(job.handed);
    std::vector<pubsub::PublishItem> slice(std::make_move_iterator(first),
                                           std::make_move_iterator(first + static_cast<std::ptrdiff_t>(n)));
    job.handed += n;
    budget -= n;
    bool last = job.handed == job.total;
    uint64_t id = job.id;
    if (last) {
        ready_.erase(ready_.begin() + static_cast<std::ptrdiff_t>(at));
        if (gate_) paced_bytes_ -= job.body_bytes;
        LOG_DEBUG("control", "published %zu items", job.total);
        std::vector<pubsub::PublishItem>().swap(job.items);
    }
    // One slice per request in the broker at a time (paced: one in all): the broker answers a slice
    // only once the deliveries it caused are short again on every worker (Broker::publish holds it
    // back otherwise), so a big publish is paced by delivery and never piles a whole body's
    // deliveries into the workers' backlogs at once.
    ++job.slices_out;
    slice_out_ = true;
    // May answer before returning (then the job may be gone).
    uint64_t token = broker_.publish(std::move(slice), [this, id](bool ok) { on_slice_done(id, ok); });
    if (token) {
        auto it = jobs_.find(id);
        if (it != jobs_.end()) it->second->tokens.push_back(token);
    }
    return true;
}

void PublishQueue::answer_waiting() {
    // The answered jobs are a prefix of ready_ (answered in this order, or gone once done): only
    // the unanswered tail is visited, so a long paced queue costs nothing here on every wait.
    size_t first = ready_.size();
    while (first > 0 && !jobs_.at(ready_[first - 1])->answered)
        --first;
    for (size_t i = first; i < ready_.size(); ++i) {
        Job& job = *jobs_.at(ready_[i]);
        job.answered = true;
        Done done = std::move(job.done);
        job.done = nullptr;
        if (done) done(200, "Published"); // may submit again: pumping_ keeps that from re-entering
    }
}

void PublishQueue::on_slice_done(uint64_t id, bool ok) {
    slice_out_ = false;
    auto it = jobs_.find(id);
    if (it != jobs_.end()) {
        Job& job = *it->second;
        if (!ok) job.failed = true;
        --job.slices_out;
        if (job.state == Job::State::Ready && job.handed == job.total && job.slices_out == 0) {
            if (gate_) gate_->end_turn(job.ticket);
            if (job.answered && job.failed)
                LOG_WARN("control",
                         "a paced publish could not be handed to the bus: some of its items are lost");
            finish(id, job.failed ? 503 : 200, job.failed ? "Bus unavailable." : "Published");
        }
    }
    // The next slice may go: from the next idle turn (this may run inside broker_.publish).
    if (!pumping_ && can_hand() && !uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_)))
        uv_idle_start(&idle_, &PublishQueue::on_idle);
}

void PublishQueue::finish(uint64_t id, int status, std::string_view message) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    Done done = std::move(it->second->done);
    jobs_.erase(it); // before answering: the answer may submit again
    if (done) done(status, message);
}

} // namespace gripd::control
