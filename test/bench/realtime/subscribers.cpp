#include "subscribers.hpp"

namespace rtb {

// ---------------------------------------------------------------- Sub

bool Sub::on_head(int status, bool, std::string_view head) {
    pool->headed(*this, status, head);
    return st == St::Open;
}

void Sub::on_body(const char* p, size_t n) {
    if (pool->is_ws()) {
        // After the 101 the parser hands over every byte: WebSocket frames.
        if (!ws.feed(p, n, *this) && st != St::Closed) pool->lost(*this, std::string("ws: ") + ws.error());
        return;
    }
    scan_records(p, n);
}

void Sub::on_end() {
    pool->lost(*this, "stream ended");
}

void Sub::on_ws_data(const char* p, size_t n) {
    scan_records(p, n);
}

void Sub::scan_records(const char* p, size_t n) {
    if (!pool->on_msg) return;
    uint64_t t = now_ns();
    scan.feed(p, n, [&](uint64_t seq, uint64_t ts) { pool->on_msg(*this, seq, ts, t); });
}

bool Sub::on_ws_control(uint8_t opcode, std::string_view payload) {
    auto* stream = reinterpret_cast<uv_stream_t*>(&tcp);
    if (opcode == ws_op::kPing) {
        std::string pong;
        ws_append_client_frame(pong, ws_op::kPong, payload);
        write_str(stream, std::move(pong));
    } else if (opcode == ws_op::kClose) {
        // Answer with the same code, as RFC 6455 §5.5.1 asks, then count the socket as dropped.
        std::string reply;
        ws_append_client_frame(reply, ws_op::kClose, payload.substr(0, 2));
        write_str(stream, std::move(reply));
        int code = payload.size() >= 2
                       ? (static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1])
                       : 1005;
        pool->lost(*this, "ws close " + std::to_string(code));
        return false;
    }
    return true;
}

// ---------------------------------------------------------------- SubPool

void SubPool::grow_to(uint32_t n) {
    target_ = n;
    max_failed_ = static_cast<uint32_t>(n * retry_pct_ / 100.0) + 100;
    step_start_ns_ = now_ns();
    step_base_ok_ = ok_;
    pump();
}

double SubPool::connect_seconds() const {
    return last_head_ns_ > step_start_ns_ ? (last_head_ns_ - step_start_ns_) / 1e9 : 0.0;
}

double SubPool::connect_rate() const {
    double s = connect_seconds();
    return s > 0 ? (ok_ - step_base_ok_) / s : 0.0;
}

std::string SubPool::summary() const {
    std::string s = std::to_string(ok_) + (url_.ws ? " upgraded, " : " answered 200, ") +
                    std::to_string(failed_) + " failed";
    if (failed_) s += " [" + top(fail_reasons_) + "]";
    s += ", " + std::to_string(dropped_) + " closed after the head";
    if (dropped_) s += " [" + top(drop_reasons_) + "]";
    return s;
}

void SubPool::progress() const {
    logf("subscribers: target=%u open=%u failed=%u dropped=%u in-flight=%u", target_, open(), failed_,
         dropped_, inflight_);
}

void SubPool::pump() {
    while (inflight_ < concurrency_ && ok_ + inflight_ < target_ && failed_ <= max_failed_)
        start_one();
}

void SubPool::headed(Sub& s, int status, std::string_view head) {
    --inflight_;
    std::string why;
    if (status != (url_.ws ? 101 : 200)) {
        why = "status " + std::to_string(status);
    } else if (url_.ws && find_header(head, "sec-websocket-accept") != ws_accept_for(s.ws_key)) {
        why = "bad Sec-WebSocket-Accept";
    }
    std::string().swap(s.ws_key);
    if (why.empty()) {
        ++ok_;
        s.st = Sub::St::Open;
        last_head_ns_ = now_ns();
    } else {
        ++failed_;
        ++fail_reasons_[why];
        close(s);
    }
    pump();
}

void SubPool::lost(Sub& s, const std::string& why) {
    if (s.st == Sub::St::Closed) return;
    if (s.st == Sub::St::Open) {
        ++dropped_;
        ++drop_reasons_[why];
    } else {
        --inflight_;
        ++failed_;
        ++fail_reasons_[why];
    }
    close(s);
    pump();
}

void SubPool::close(Sub& s) {
    s.st = Sub::St::Closed;
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&s.tcp))) {
        uv_close(reinterpret_cast<uv_handle_t*>(&s.tcp), nullptr);
    }
}

std::string SubPool::top(const std::map<std::string, uint32_t>& reasons) {
    std::string best;
    uint32_t n = 0;
    for (auto& [k, v] : reasons) {
        if (v > n) {
            n = v;
            best = k;
        }
    }
    return best.empty() ? "" : best + " x" + std::to_string(n);
}

void SubPool::start_one() {
    auto s = std::make_unique<Sub>();
    s->pool = this;
    s->idx = started_++;
    ++inflight_;
    Sub* raw = s.get();
    subs_.push_back(std::move(s));
    uv_tcp_init(g_loop, &raw->tcp);
    raw->tcp.data = raw;
    raw->creq.data = raw;
    int r = uv_tcp_connect(&raw->creq, &raw->tcp, reinterpret_cast<const sockaddr*>(&url_for(raw->idx).addr),
                           on_connect);
    if (r < 0) lost(*raw, std::string("connect: ") + uv_err_name(r));
}

void SubPool::on_connect(uv_connect_t* req, int status) {
    auto* s = static_cast<Sub*>(req->data);
    if (s->st == Sub::St::Closed) return;
    if (status < 0) {
        s->pool->lost(*s, std::string("connect: ") + uv_err_name(status));
        return;
    }
    SubPool& p = *s->pool;
    const Url& u = p.url_for(s->idx);
    std::string path = u.path + p.channel_of_(s->idx);
    std::string req_text;
    if (u.ws) {
        s->ws_key = ws_new_key();
        req_text = ws_handshake_request(path, host_header(u), s->ws_key);
    } else {
        req_text = "GET " + path + " HTTP/1.1\r\nHost: " + host_header(u) +
                   "\r\nUser-Agent: realtime_bench\r\nAccept: */*\r\n\r\n";
    }
    s->st = Sub::St::Waiting;
    int r = write_str(reinterpret_cast<uv_stream_t*>(&s->tcp), std::move(req_text));
    if (r == 0) r = uv_read_start(reinterpret_cast<uv_stream_t*>(&s->tcp), alloc_shared, on_read);
    if (r < 0) p.lost(*s, std::string("write: ") + uv_err_name(r));
}

void SubPool::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* s = static_cast<Sub*>(stream->data);
    if (s->st == Sub::St::Closed) return;
    if (nread > 0) {
        if (!s->parser.feed(buf->base, static_cast<size_t>(nread), *s) && s->st != Sub::St::Closed) {
            s->pool->lost(*s, "bad response");
        }
    } else if (nread < 0) {
        auto err = std::string(uv_err_name(static_cast<int>(nread)));
        s->pool->lost(*s,
                      s->st == Sub::St::Open ? "closed by proxy: " + err : "closed before headers: " + err);
    }
}

} // namespace rtb
