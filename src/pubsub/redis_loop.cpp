#include "redis_loop.hpp"

#include "gripd/loop/flushable.hpp"
#include "gripd/loop/handle.hpp"
#include "gripd/loop/worker.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include <memory>

namespace gripd::pubsub {

namespace {

// One per context, owned by its poll handle: freed in the handle's close callback, which hiredis's
// cleanup hook starts (the context is gone by then).
class RedisLoopEvents final : public loop::Flushable {
  public:
    RedisLoopEvents(redisAsyncContext* ac, loop::Worker& worker) : ac_(ac), worker_(worker) {}

    bool init() {
        if (uv_poll_init(worker_.uv(), &poll_, ac_->c.fd) != 0) return false;
        poll_.data = this;
        return true;
    }

    static void add_read(void* p) { static_cast<RedisLoopEvents*>(p)->set(UV_READABLE, true); }
    static void del_read(void* p) { static_cast<RedisLoopEvents*>(p)->set(UV_READABLE, false); }
    static void del_write(void* p) { static_cast<RedisLoopEvents*>(p)->set(UV_WRITABLE, false); }

    static void add_write(void* p) {
        auto* self = static_cast<RedisLoopEvents*>(p);
        // Connecting (hiredis learns the outcome from writability), or a write in flush() found the
        // socket full: wait for the socket. Otherwise one write at the end of this iteration.
        if (self->flushing_ || !(self->ac_->c.flags & REDIS_CONNECTED)) {
            self->set(UV_WRITABLE, true);
            return;
        }
        if (self->flush_queued_ || self->wanted_ & UV_WRITABLE) return;
        self->flush_queued_ = true;
        self->worker_.schedule_flush(*self);
    }

    static void cleanup(void* p) {
        auto* self = static_cast<RedisLoopEvents*>(p);
        self->ac_ = nullptr; // the context is being freed
        if (self->flush_queued_) self->worker_.forget_flush(*self);
        self->flush_queued_ = false;
        uv_close(reinterpret_cast<uv_handle_t*>(&self->poll_), [](uv_handle_t* h) {
            std::unique_ptr<RedisLoopEvents> owned(static_cast<RedisLoopEvents*>(h->data));
        });
    }

    void flush() override {
        flush_queued_ = false;
        if (!ac_) return;
        flushing_ = true;
        redisAsyncHandleWrite(ac_); // may free the context: cleanup() runs, `this` lives on
        flushing_ = false;
    }

  private:
    void set(int bit, bool on) {
        int next = on ? (wanted_ | bit) : (wanted_ & ~bit);
        if (next == wanted_ || !ac_) {
            wanted_ = next;
            return;
        }
        wanted_ = next;
        if (wanted_ != 0)
            uv_poll_start(&poll_, wanted_, &RedisLoopEvents::on_poll);
        else
            uv_poll_stop(&poll_);
    }

    static void on_poll(uv_poll_t* handle, int status, int events) {
        auto* self = static_cast<RedisLoopEvents*>(handle->data);
        if (status != 0) return; // as hiredis's adapter: the next read or write reports the error
        if (self->ac_ && (events & UV_READABLE)) redisAsyncHandleRead(self->ac_);
        if (self->ac_ && (events & UV_WRITABLE)) redisAsyncHandleWrite(self->ac_);
    }

    redisAsyncContext* ac_;
    loop::Worker& worker_;
    uv_poll_t poll_{};
    int wanted_ = 0; // the events the poll handle waits for
    bool flush_queued_ = false;
    bool flushing_ = false;
};

} // namespace

int attach_redis_to_loop(redisAsyncContext* ac, loop::Worker& worker) {
    if (ac->ev.data != nullptr) return REDIS_ERR;
    auto events = std::make_unique<RedisLoopEvents>(ac, worker);
    if (!events->init()) return REDIS_ERR;
    ac->ev.addRead = &RedisLoopEvents::add_read;
    ac->ev.delRead = &RedisLoopEvents::del_read;
    ac->ev.addWrite = &RedisLoopEvents::add_write;
    ac->ev.delWrite = &RedisLoopEvents::del_write;
    ac->ev.cleanup = &RedisLoopEvents::cleanup;
    ac->ev.data = events.release(); // owned by its poll handle from here (cleanup closes it)
    return REDIS_OK;
}

} // namespace gripd::pubsub
