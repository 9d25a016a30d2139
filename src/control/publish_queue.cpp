#include "publish_queue.hpp"

#include "gripd/core/log.hpp"
#include "gripd/pubsub/broker.hpp"
#include "gripd/pubsub/publish.hpp"

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>

namespace gripd::control {

struct PublishQueue::Job {
    enum class State : uint8_t { Queued, Validating, HandingOver, Waiting };
    uint64_t id = 0;
    State state = State::Queued;
    std::string body; // until parsed
    bool keep_json = false;
    Done done;
    pubsub::PublishBodyParser parser;
    std::vector<pubsub::PublishItem> items;
    size_t handed = 0;            // items given to the broker
    size_t slices_out = 0;        // slices the broker has not acknowledged yet
    bool failed = false;          // a slice failed (bus unavailable)
    std::vector<uint64_t> tokens; // the broker's, to cancel if the queue goes first
};

PublishQueue::PublishQueue(uv_loop_t* loop, pubsub::Broker& broker) : loop_(loop), broker_(broker) {
    // Closed with the worker's other embedded handles when its loop ends (Worker::close_all).
    uv_idle_init(loop_, &idle_);
    idle_.data = this;
}

PublishQueue::~PublishQueue() {
    for (auto& [id, job] : jobs_)
        for (uint64_t t : job->tokens)
            broker_.cancel_publish(t);
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
    if (job.state == Job::State::Queued || job.state == Job::State::Validating) {
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

void PublishQueue::pump(size_t budget) {
    pumping_ = true;
    blocked_ = false;
    while (budget > 0 && !order_.empty()) {
        auto it = jobs_.find(order_.front());
        if (it == jobs_.end()) { // cancelled while waiting
            order_.pop_front();
            continue;
        }
        Step s = step(*it->second, budget);
        if (s == Step::Left) order_.pop_front();
        if (s == Step::Blocked) {
            blocked_ = true;
            break;
        }
    }
    budget_ = budget;
    pumping_ = false;
    // While the head waits for the broker (on_slice_done pumps again), the idle handle would only
    // spin the loop: it runs only while there is work this worker can do now.
    bool want = !order_.empty() && !blocked_;
    bool active = uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_));
    if (want && !active) uv_idle_start(&idle_, &PublishQueue::on_idle);
    if (!want && active) uv_idle_stop(&idle_);
}

PublishQueue::Step PublishQueue::step(Job& job, size_t& budget) {
    switch (job.state) {
    case Job::State::Queued: {
        std::string error;
        bool ok = job.parser.begin(job.body, job.keep_json, error);
        budget -= std::min(budget, std::max<size_t>(1, job.body.size() / kBytesPerItem));
        std::string().swap(job.body); // the parsed document holds its own copies
        if (!ok) {
            finish(job.id, 400, error);
            return Step::Left;
        }
        job.items.reserve(job.parser.size());
        job.state = Job::State::Validating;
        return Step::More;
    }
    case Job::State::Validating: {
        size_t n = std::min(budget, job.parser.size() - job.items.size());
        std::string error;
        int error_item = -1;
        bool ok = job.parser.next(n, job.items, error, error_item);
        budget -= n;
        if (!ok) {
            LOG_DEBUG("control", "publish rejected: %s (item %d)", error.c_str(), error_item);
            finish(job.id, 400, error);
            return Step::Left;
        }
        if (!job.parser.done()) return Step::More;
        if (broker_.is_congested()) {
            broker_.note_refused();
            LOG_DEBUG("control", "publish of %zu items refused: a worker is far behind", job.items.size());
            finish(job.id, 503, "Too many messages waiting; try again later.");
            return Step::Left;
        }
        job.state = Job::State::HandingOver;
        return Step::More;
    }
    case Job::State::HandingOver: {
        // One slice in the broker at a time: the broker answers a slice only once the deliveries
        // it caused are short again on every worker (Broker::publish holds it back otherwise), so
        // a big publish is paced by delivery and never piles a whole body's deliveries into the
        // workers' backlogs at once.
        if (job.slices_out > 0) return Step::Blocked;
        size_t n = std::min(budget, job.items.size() - job.handed);
        if (n > 0) {
            auto first = job.items.begin() + static_cast<std::ptrdiff_t>(job.handed);
            std::vector<pubsub::PublishItem> slice(
                std::make_move_iterator(first),
                std::make_move_iterator(first + static_cast<std::ptrdiff_t>(n)));
            job.handed += n;
            budget -= n;
            ++job.slices_out;
            uint64_t id = job.id;
            // May answer before returning: then job.slices_out is already back down.
            uint64_t token =
                broker_.publish(std::move(slice), [this, id](bool ok) { on_slice_done(id, ok); });
            if (token) job.tokens.push_back(token);
        }
        if (job.handed < job.items.size()) return Step::More;
        LOG_DEBUG("control", "published %zu items", job.items.size());
        std::vector<pubsub::PublishItem>().swap(job.items);
        job.state = Job::State::Waiting;
        if (job.slices_out == 0)
            finish(job.id, job.failed ? 503 : 200, job.failed ? "Bus unavailable." : "Published");
        return Step::Left;
    }
    case Job::State::Waiting:
        return Step::Left;
    }
    return Step::Left;
}

void PublishQueue::on_slice_done(uint64_t id, bool ok) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    Job& job = *it->second;
    if (!ok) job.failed = true;
    --job.slices_out;
    if (job.state == Job::State::HandingOver) {
        // The next slice may go: from the next idle turn (this may run inside broker_.publish).
        if (job.slices_out == 0 && blocked_ && !pumping_) {
            blocked_ = false;
            uv_idle_start(&idle_, &PublishQueue::on_idle);
        }
        return;
    }
    if (job.state != Job::State::Waiting || job.slices_out > 0) return;
    finish(id, job.failed ? 503 : 200, job.failed ? "Bus unavailable." : "Published");
}

void PublishQueue::finish(uint64_t id, int status, std::string_view message) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    Done done = std::move(it->second->done);
    jobs_.erase(it); // before answering: the answer may submit again
    if (done) done(status, message);
}

} // namespace gripd::control
