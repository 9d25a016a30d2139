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
    enum class State : uint8_t { Queued, Parsing, Validating, HandingOver, Waiting };
    uint64_t id = 0;
    State state = State::Queued;
    std::string body; // until parsed
    bool keep_json = false;
    Done done;
    std::unique_ptr<pubsub::PublishBodyParser> parser = std::make_unique<pubsub::PublishBodyParser>();
    std::vector<pubsub::PublishItem> items;
    size_t handed = 0;                 // items given to the broker
    size_t slices_out = 0;             // slices the broker has not acknowledged yet
    bool failed = false;               // a slice failed (bus unavailable)
    std::vector<uint64_t> tokens;      // the broker's, to cancel if the queue goes first
    std::vector<std::string> channels; // sorted, unique: known once every item is valid
};

PublishQueue::PublishQueue(uv_loop_t* loop, pubsub::Broker& broker) : loop_(loop), broker_(broker) {
    // Closed with the worker's other embedded handles when its loop ends (Worker::close_all).
    uv_idle_init(loop_, &idle_);
    idle_.data = this;
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

void PublishQueue::parse_off_loop(Job& job) {
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
    if (r != 0) { // cannot happen with a valid loop and callback; parse here then
        job.body = std::move(work->body);
        job.parser = std::move(work->parser);
        return;
    }
    job.state = Job::State::Parsing;
    parsing_.push_back(work.release()); // owned by libuv until on_parsed
}

void PublishQueue::on_parsed(uv_work_t* req, int /*status*/) {
    std::unique_ptr<ParseWork> work(static_cast<ParseWork*>(req->data));
    PublishQueue* self = work->queue;
    if (self == nullptr) return;
    self->parsing_.erase(std::find(self->parsing_.begin(), self->parsing_.end(), work.get()));
    auto it = self->jobs_.find(work->job_id);
    if (it == self->jobs_.end()) return; // cancelled meanwhile
    Job& job = *it->second;
    job.parser = std::move(work->parser);
    if (!work->ok) {
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

void PublishQueue::pump(size_t budget) {
    pumping_ = true;
    blocked_ = false;
    // Passes over the jobs in arrival order, each taking at most kJobShare of the budget per pass,
    // until the budget is spent or every job waits for the broker: a small publish behind a big
    // one being validated goes through in the first pass.
    bool progress = true;
    while (budget > 0 && progress && !order_.empty()) {
        progress = false;
        std::vector<const Job*> waiting; // earlier jobs waiting for the broker, in order
        size_t i = 0;
        while (budget > 0 && i < order_.size()) {
            auto it = jobs_.find(order_[i]);
            if (it == jobs_.end()) { // cancelled while waiting
                order_.erase(order_.begin() + static_cast<std::ptrdiff_t>(i));
                continue;
            }
            Job& job = *it->second;
            // Behind an earlier job on one of its channels: it waits for that one to hand over.
            bool held = job.state == Job::State::HandingOver && shares_channel(job, waiting);
            Step s = held ? Step::Blocked : Step::More;
            size_t share = order_.size() > 1 ? std::min(budget, kJobShare) : budget; // alone: all of it
            size_t given = share;
            while (s == Step::More && share > 0)
                s = step(job, share);
            budget -= given - share;
            if (s != Step::Blocked) progress = true;
            if (s == Step::Left) {
                order_.erase(order_.begin() + static_cast<std::ptrdiff_t>(i));
                continue;
            }
            if (s == Step::Blocked)
                waiting.push_back(&job); // its channels stay valid: only on_slice_done ends it
            ++i;
        }
    }
    blocked_ = budget > 0 && !order_.empty(); // everything left waits for the broker
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
        if (job.body.size() >= kParseOffLoopBytes) {
            parse_off_loop(job);
            if (job.state == Job::State::Parsing) return Step::Blocked;
        }
        std::string error;
        bool ok = job.parser->begin(job.body, job.keep_json, error);
        budget -= std::min(budget, std::max<size_t>(1, job.body.size() / kBytesPerItem));
        std::string().swap(job.body); // the parsed document holds its own copies
        if (!ok) {
            finish(job.id, 400, error);
            return Step::Left;
        }
        job.items.reserve(job.parser->size());
        job.channels = job.parser->channels();
        job.state = Job::State::Validating;
        return Step::More;
    }
    case Job::State::Parsing:
        return Step::Blocked; // on_parsed goes on
    case Job::State::Validating: {
        size_t n = std::min(budget, job.parser->size() - job.items.size());
        std::string error;
        int error_item = -1;
        bool ok = job.parser->next(n, job.items, error, error_item);
        budget -= n;
        if (!ok) {
            LOG_DEBUG("control", "publish rejected: %s (item %d)", error.c_str(), error_item);
            finish(job.id, 400, error);
            return Step::Left;
        }
        if (!job.parser->done()) return Step::More;
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

bool PublishQueue::shares_channel(const Job& job, const std::vector<const Job*>& ahead) {
    for (const Job* a : ahead) {
        if (a->state == Job::State::Parsing) return true; // its channels are not known yet
        for (const std::string& c : job.channels)
            if (std::binary_search(a->channels.begin(), a->channels.end(), c)) return true;
    }
    return false;
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
