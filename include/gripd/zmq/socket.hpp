// A ZeroMQ socket driven by one worker's libuv loop, with no thread of its own.
//
// libzmq exposes one file descriptor per socket (ZMQ_FD) that signals, edge-triggered, that the
// socket's state may have changed; ZMQ_EVENTS then says whether a message can be read. So:
//  - a uv_poll on ZMQ_FD wakes us; each wake-up reads ZMQ_EVENTS (which also clears the signal)
//    and reads whole messages until EAGAIN;
//  - reading stops early after kBudget messages per loop turn, or when the owner pauses it
//    (back-pressure): a uv_idle then resumes draining on a later turn, since the fd will not
//    signal again for messages already queued;
//  - a send may consume the edge that announced incoming messages, so after each send the idle
//    handle is started too and the next turn drains.
// Lifetime: the uv handles are embedded and closed with the worker's other handles when its loop
// ends (Worker::close_all); stop() ends polling and closes the ZeroMQ socket before that; the
// object is freed after the loop has closed. Everything runs on the owning loop.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <uv.h>
#include <vector>

namespace gripd::zmq {

class Socket {
  public:
    static constexpr size_t kBudget = 256;  // messages read per loop turn
    static constexpr size_t kMaxParts = 16; // parts kept of one message; the rest are counted, not kept

    // What a read message is handed to. `parts` are valid only during the call; `truncated` is
    // true when the message had more than kMaxParts parts. Returns false to pause reading
    // (resume() restarts it).
    class Handler {
      public:
        virtual bool on_message(Socket& s, const std::vector<std::string_view>& parts, size_t bytes,
                                bool truncated) = 0;

      protected:
        ~Handler() = default;
    };

    // `ctx` is the zmq context; `type` ZMQ_PULL, ZMQ_SUB, ZMQ_ROUTER, ZMQ_PUB, ...
    Socket(uv_loop_t* loop, void* ctx, int type, Handler* handler);
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    ~Socket();

    // Socket options (before bind/connect): receive high-water mark (messages), the largest
    // message libzmq accepts (bytes; a peer sending more is disconnected by libzmq), send hwm.
    bool set_int(int option, int value);
    bool set_int64(int option, int64_t value);
    // Binds (or connects) each spec; false with "spec: reason" in `error`.
    bool bind(const std::string& spec, std::string* error);
    // Releases a bound endpoint (its port) at once, e.g. for the process that replaces this one.
    void unbind(const std::string& spec);
    bool connect(const std::string& spec, std::string* error);
    // Starts polling (after bind/connect). Only sockets with a handler read.
    bool start(std::string* error);
    // Pauses or resumes reading (back-pressure from the publish path).
    void pause();
    void resume();
    // Sends a multipart message without blocking; false when it would block (dropped) or failed.
    bool send(const std::vector<std::string_view>& parts);
    // ZMQ_SUBSCRIBE / ZMQ_UNSUBSCRIBE (SUB sockets).
    bool subscribe(std::string_view topic, bool on);
    // Stops polling and closes the ZeroMQ socket (idempotent).
    void stop();

    void* raw() { return sock_; }

  private:
    static void on_poll(uv_poll_t* h, int status, int events);
    static void on_idle(uv_idle_t* h);
    void drain();

    uv_loop_t* loop_;
    void* sock_ = nullptr;
    Handler* handler_;
    uv_poll_t poll_{};
    uv_idle_t idle_{};
    bool polling_ = false;
    bool paused_ = false;
    bool idle_on_ = false;
    std::vector<std::string_view> parts_; // views into the current message's zmq_msg_t parts
};

} // namespace gripd::zmq
