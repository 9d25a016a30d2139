#include "gripd/loop/worker.hpp"

#include "gripd/core/log.hpp"

namespace gripd::loop {

namespace {
constexpr size_t kReadBufferSize = size_t{64} * 1024;
constexpr uint64_t kBarrierPollMs = 50;
} // namespace

Worker::Worker(int index, int producers) : index_(index), read_buffer_(kReadBufferSize), inbox_(producers) {
    uv_loop_init(&loop_);
    // Poll-wait time, so that a turn's busy time can be told apart from its wait (TurnStats).
    uv_loop_configure(&loop_, UV_METRICS_IDLE_TIME);
    loop_.data = this;
    timers_ = std::make_unique<TimerWheel>(&loop_);
    inbox_.bind(&loop_, this, &Worker::on_wake);
    uv_check_init(&loop_, &check_);
    check_.data = this;
    uv_check_start(&check_, &Worker::on_check);
    uv_unref(reinterpret_cast<uv_handle_t*>(&check_));
    uv_idle_init(&loop_, &flush_idle_);
    uv_unref(reinterpret_cast<uv_handle_t*>(&flush_idle_));
    grace_timer_.init(timers_.get(), this, &Worker::on_grace_end);
}

Worker::~Worker() {
    if (thread_.joinable()) thread_.join();
    grace_timer_.disarm();
    if (!closed_all_) close_own_handles();
    timers_.reset();
    deferred_.clear();
    int r = uv_loop_close(&loop_);
    if (r != 0) LOG_DEBUG("worker", "worker %d: loop closed with open handles", index_);
}

// A worker whose loop never ran to its end (unit tests drive it by hand): its own handles still sit
// in the loop's queues, the wheel's timer among them, and must be closed before that memory goes.
void Worker::close_own_handles() {
    inbox_.close();
    timers_->close();
    for (auto* h : {reinterpret_cast<uv_handle_t*>(&check_), reinterpret_cast<uv_handle_t*>(&flush_idle_)})
        if (!uv_is_closing(h)) uv_close(h, nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT); // runs the close callbacks
}

size_t Worker::open_handles_for_test() {
    size_t n = 0;
    uv_walk(
        &loop_, [](uv_handle_t*, void* arg) { ++*static_cast<size_t*>(arg); }, &n);
    return n;
}

void Worker::defer_delete(std::unique_ptr<Deletable> obj) {
    if (obj) deferred_.push_back(std::move(obj));
}

void Worker::start() {
    thread_ = std::thread([this] { run(); });
}

void Worker::join() {
    if (thread_.joinable()) thread_.join();
}

void Worker::run() {
    thread_id_ = std::this_thread::get_id();
    core::log_set_thread_buffering(true); // flushed once per iteration in on_check
    for (auto& fn : start_hooks_)
        fn(*this);
    uv_run(&loop_, UV_RUN_DEFAULT);
    deferred_.clear();
    core::log_set_thread_buffering(false);
}

void Worker::request_stop(uint64_t grace_ms) {
    // The main thread is the last producer.
    post(static_cast<int>(peers_.size()), InboxMessage{Stop{grace_ms}});
}

void Worker::on_wake(uv_async_t* h) {
    auto* self = static_cast<Worker*>(h->data);
    // Drain in batches until empty (a message may post more to this same inbox), but for at most
    // kInboxDrainBudgetNs per turn: what is left wakes this loop again after the turn's I/O, so a
    // burst from other workers cannot hold up this worker's own clients.
    const uint64_t deadline = uv_hrtime() + kInboxDrainBudgetNs;
    while (self->inbox_.drain([self](InboxMessage&& m) { self->handle(m); }, kInboxDrainBatch) > 0) {
        if (uv_hrtime() >= deadline) {
            if (!self->closed_all_) uv_async_send(h); // coalesced; runs in the next turn
            return;
        }
    }
}

void Worker::handle(InboxMessage& msg) {
    if (const auto* stop = std::get_if<Stop>(&msg.body)) {
        begin_stop(stop->grace_ms);
        return;
    }
    if (handler_) handler_(*this, msg);
}

void Worker::schedule_flush(Flushable& out) {
    flushes_.add(out);
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&flush_idle_)) && !closed_all_)
        uv_idle_start(&flush_idle_, [](uv_idle_t*) {});
}

void Worker::on_check(uv_check_t* h) {
    auto* self = static_cast<Worker*>(h->data);
    self->record_turn();
    // Every pointer in the queue is valid: a connection leaves it in its destructor (forget_flush).
    bool all_out = self->flushes_.run(uv_hrtime() + kBulkFlushBudgetNs, &uv_hrtime);
    if (all_out) uv_idle_stop(&self->flush_idle_);
    self->deferred_.clear();
    core::log_flush_thread();
    for (auto* peer : self->peers_)
        if (peer->inbox_.has_overflow(self->index_)) peer->inbox_.flush(self->index_);
    if (self->turn_hook_) self->turn_hook_(*self);
}

void Worker::record_turn() {
    uint64_t now = uv_hrtime();
    uint64_t idle = uv_metrics_idle_time(&loop_);
    if (last_check_ns_ != 0) {
        uint64_t wall = now - last_check_ns_;
        uint64_t waited = idle - last_idle_ns_;
        turn_stats_.record(wall > waited ? wall - waited : 0, now);
    }
    last_check_ns_ = now;
    last_idle_ns_ = idle;
}

void Worker::begin_stop(uint64_t grace_ms) {
    if (stopping_) return;
    stopping_ = true;
    LOG_DEBUG("worker", "worker %d stopping (%lld connections)", index_,
              static_cast<long long>(client_connections_));
    for (auto& fn : stop_hooks_)
        fn(*this);
    grace_deadline_ = timers_->now() + grace_ms;
    if (client_connections_ == 0 && stop_work_ == 0) {
        quiesce();
        return;
    }
    grace_timer_.arm(grace_ms);
}

void Worker::on_client_closed() {
    --client_connections_;
    // Not from inside this close: let the current callback finish first.
    if (stopping_ && client_connections_ == 0 && stop_work_ == 0 && !quiesced_self_) grace_timer_.arm(0);
}

void Worker::done_stop_work() {
    --stop_work_;
    if (stopping_ && client_connections_ == 0 && stop_work_ == 0 && !quiesced_self_) grace_timer_.arm(0);
}

void Worker::on_grace_end(void* p) {
    auto* self = static_cast<Worker*>(p);
    // Armed early when the connections were all closed, but work came back (a gone link queued as
    // its client closed): wait for it until the grace period is over.
    uint64_t now = self->timers_->now();
    if ((self->client_connections_ > 0 || self->stop_work_ > 0) && now < self->grace_deadline_) {
        self->grace_timer_.arm(self->grace_deadline_ - now);
        return;
    }
    if (self->client_connections_ > 0)
        LOG_INFO("worker", "grace period over: closing %lld connections",
                 static_cast<long long>(self->client_connections_));
    self->quiesce();
}

// No more client work on this worker. Wait until every worker is here, then close everything so
// the loop ends (a peer could otherwise still post to our inbox).
void Worker::quiesce() {
    if (quiesced_self_) return;
    quiesced_self_ = true;
    grace_timer_.disarm();
    if (quiesced_) quiesced_->fetch_add(1);
    on_barrier_poll(this);
}

void Worker::on_barrier_poll(void* p) {
    auto* self = static_cast<Worker*>(p);
    if (self->quiesced_ && self->quiesced_->load() < self->worker_count_) {
        self->grace_timer_.init(self->timers_.get(), self, &Worker::on_barrier_poll);
        self->grace_timer_.arm(kBarrierPollMs);
        return;
    }
    self->close_all();
}

void Worker::close_all() {
    if (closed_all_) return;
    closed_all_ = true;
    deferred_.clear();
    inbox_.close();
    timers_->close();
    // Connection owners close their own handles (they free themselves in their close callbacks).
    for (auto& fn : close_hooks_)
        fn(*this);
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void* arg) {
            if (uv_is_closing(h)) return;
            if (h->type == UV_TCP) {
                LOG_ERROR("worker", "worker %d: a TCP handle had no owner to close it",
                          static_cast<Worker*>(arg)->index_);
                return;
            }
            uv_close(h, nullptr); // handles embedded in longer-lived objects (check, timers)
        },
        this);
}

} // namespace gripd::loop
