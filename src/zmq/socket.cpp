#include "gripd/zmq/socket.hpp"

#include "gripd/core/log.hpp"

#include <array>
#include <cerrno>
#include <zmq.h>

namespace gripd::zmq {

namespace {

// The parts of one message, closed when the read is over.
struct Parts {
    std::array<zmq_msg_t, Socket::kMaxParts> msgs;
    size_t count = 0;
    ~Parts() {
        for (size_t i = 0; i < count; ++i)
            zmq_msg_close(&msgs[i]);
    }
};

} // namespace

Socket::Socket(uv_loop_t* loop, void* ctx, int type, Handler* handler) : loop_(loop), handler_(handler) {
    sock_ = zmq_socket(ctx, type);
    if (sock_) {
        int zero = 0;
        zmq_setsockopt(sock_, ZMQ_LINGER, &zero, sizeof(zero)); // exit never waits for a peer
    }
    uv_idle_init(loop_, &idle_);
    idle_.data = this;
    parts_.reserve(kMaxParts);
}

Socket::~Socket() {
    stop();
}

bool Socket::set_int(int option, int value) {
    return sock_ && zmq_setsockopt(sock_, option, &value, sizeof(value)) == 0;
}

bool Socket::set_int64(int option, int64_t value) {
    return sock_ && zmq_setsockopt(sock_, option, &value, sizeof(value)) == 0;
}

bool Socket::bind(const std::string& spec, std::string* error) {
    if (!sock_ || zmq_bind(sock_, spec.c_str()) != 0) {
        *error = spec + ": " + zmq_strerror(errno);
        return false;
    }
    return true;
}

void Socket::unbind(const std::string& spec) {
    if (sock_) zmq_unbind(sock_, spec.c_str());
}

bool Socket::connect(const std::string& spec, std::string* error) {
    if (!sock_ || zmq_connect(sock_, spec.c_str()) != 0) {
        *error = spec + ": " + zmq_strerror(errno);
        return false;
    }
    return true;
}

bool Socket::start(std::string* error) {
    if (!sock_ || !handler_) return true;
    int fd = -1;
    size_t len = sizeof(fd);
    if (zmq_getsockopt(sock_, ZMQ_FD, &fd, &len) != 0) {
        *error = std::string("ZMQ_FD: ") + zmq_strerror(errno);
        return false;
    }
    int r = uv_poll_init(loop_, &poll_, fd);
    if (r != 0) {
        *error = std::string("poll: ") + uv_strerror(r);
        return false;
    }
    poll_.data = this;
    polling_ = true;
    uv_poll_start(&poll_, UV_READABLE, &Socket::on_poll);
    // Messages may have arrived before the poll: the fd's edge is gone, so look now.
    idle_on_ = true;
    uv_idle_start(&idle_, &Socket::on_idle);
    return true;
}

void Socket::pause() {
    paused_ = true;
}

void Socket::resume() {
    if (!paused_) return;
    paused_ = false;
    if (polling_ && !idle_on_) {
        idle_on_ = true;
        uv_idle_start(&idle_, &Socket::on_idle);
    }
}

bool Socket::send(const std::vector<std::string_view>& parts) {
    if (!sock_) return false;
    bool ok = true;
    for (size_t i = 0; i < parts.size() && ok; ++i) {
        int flags = ZMQ_DONTWAIT | (i + 1 < parts.size() ? ZMQ_SNDMORE : 0);
        ok = zmq_send(sock_, parts[i].data(), parts[i].size(), flags) >= 0;
    }
    // The send may have taken the fd's edge announcing incoming messages: look on the next turn.
    if (polling_ && !idle_on_) {
        idle_on_ = true;
        uv_idle_start(&idle_, &Socket::on_idle);
    }
    return ok;
}

bool Socket::subscribe(std::string_view topic, bool on) {
    bool ok =
        sock_ && zmq_setsockopt(sock_, on ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, topic.data(), topic.size()) == 0;
    // Like a send, this may take the fd's edge: look on the next turn.
    if (polling_ && !idle_on_) {
        idle_on_ = true;
        uv_idle_start(&idle_, &Socket::on_idle);
    }
    return ok;
}

void Socket::stop() {
    if (polling_) {
        uv_poll_stop(&poll_);
        polling_ = false;
    }
    if (idle_on_) {
        uv_idle_stop(&idle_);
        idle_on_ = false;
    }
    if (sock_) {
        zmq_close(sock_);
        sock_ = nullptr;
    }
}

void Socket::on_poll(uv_poll_t* h, int /*status*/, int /*events*/) {
    static_cast<Socket*>(h->data)->drain();
}

void Socket::on_idle(uv_idle_t* h) {
    static_cast<Socket*>(h->data)->drain();
}

void Socket::drain() {
    size_t budget = kBudget;
    while (sock_ && !paused_) {
        int events = 0;
        size_t len = sizeof(events);
        if (zmq_getsockopt(sock_, ZMQ_EVENTS, &events, &len) != 0 || !(events & ZMQ_POLLIN)) break;
        if (budget-- == 0) {
            // More is queued: go on next turn (the fd will not signal for it again).
            if (!idle_on_) {
                idle_on_ = true;
                uv_idle_start(&idle_, &Socket::on_idle);
            }
            return;
        }
        Parts p;
        size_t bytes = 0;
        bool truncated = false;
        bool more = true;
        parts_.clear();
        while (more) {
            zmq_msg_t scratch;
            bool keep = p.count < kMaxParts;
            zmq_msg_t* m = keep ? &p.msgs[p.count] : &scratch;
            zmq_msg_init(m);
            if (zmq_msg_recv(m, sock_, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(m);
                more = false;
                if (p.count == 0) break; // EAGAIN: nothing after all
                continue;
            }
            bytes += zmq_msg_size(m);
            more = zmq_msg_more(m) != 0;
            if (keep) {
                parts_.emplace_back(static_cast<const char*>(zmq_msg_data(m)), zmq_msg_size(m));
                ++p.count;
            } else {
                truncated = true;
                zmq_msg_close(m);
            }
        }
        if (p.count == 0) break;
        if (!handler_->on_message(*this, parts_, bytes, truncated)) paused_ = true;
    }
    if (idle_on_) {
        uv_idle_stop(&idle_);
        idle_on_ = false;
    }
}

} // namespace gripd::zmq
