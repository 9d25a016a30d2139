#include "publisher.hpp"

namespace rtb {

std::string publish_request(const Url& ctl, const std::string& channel, uint64_t first_seq, uint32_t count,
                            size_t payload, Format format) {
    std::string body = "{\"items\":[";
    uint64_t ts = now_ns();
    const char* fmt = format == Format::WsMessage ? "ws-message" : "http-stream";
    for (uint32_t i = 0; i < count; ++i) {
        std::string content = "@" + std::to_string(first_seq + i) + ":" + std::to_string(ts) + "\\n";
        if (content.size() < payload) content.append(payload - content.size(), 'x');
        if (i) body += ",";
        body += "{\"channel\":\"" + channel + "\",";
        // RTB_WS_IDS (realtime_bench.sh WS_IDS=1): ws-message items carry an id (gripd sends the
        // subscribers that asked for ids a gripd-id message before each).
        if (format == Format::WsMessage && ws_ids())
            body += "\"id\":\"" + std::to_string(first_seq + i) + "\",";
        body += "\"formats\":{\"" + std::string(fmt) + "\":{\"content\":\"" + content + "\"}}}";
    }
    body += "]}";
    std::string path = ctl.path == "/" ? "/publish/" : ctl.path;
    return "POST " + path + " HTTP/1.1\r\nHost: " + host_header(ctl) +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
}

void Pub::post(std::string request, DoneFn cb) {
    pending = std::move(request);
    done = std::move(cb);
    if (st == St::Ready) {
        send();
    } else if (st == St::Idle) {
        connect();
    } // Closing: close_cb connects; Connecting: on_connect sends
}

bool Pub::on_head(int s, bool close, std::string_view) {
    status = s;
    server_close = close;
    return true;
}

void Pub::on_end() {
    if (st != St::Busy) return;
    int s = status;
    if (server_close) {
        shut();
    } else {
        st = St::Ready;
    }
    complete(s);
}

void Pub::complete(int s) {
    DoneFn cb = std::move(done);
    done = nullptr;
    if (cb) cb(s);
}

void Pub::connect() {
    st = St::Connecting;
    parser = ResponseParser();
    ++connects;
    uv_tcp_init(g_loop, &tcp);
    uv_tcp_nodelay(&tcp, 1);
    tcp.data = this;
    creq.data = this;
    int r = uv_tcp_connect(
        &creq, &tcp, reinterpret_cast<const sockaddr*>(&url.addr), [](uv_connect_t* req, int status) {
            auto* p = static_cast<Pub*>(req->data);
            if (p->st != St::Connecting) return;
            if (status < 0) {
                p->shut();
                p->complete(0);
                return;
            }
            int r2 = uv_read_start(reinterpret_cast<uv_stream_t*>(&p->tcp), alloc_shared, on_read);
            if (r2 < 0) {
                p->shut();
                p->complete(0);
                return;
            }
            p->send();
        });
    if (r < 0) {
        shut();
        complete(0);
    }
}

void Pub::send() {
    st = St::Busy;
    status = 0;
    server_close = false;
    if (write_str(reinterpret_cast<uv_stream_t*>(&tcp), std::move(pending)) < 0) {
        shut();
        complete(0);
    }
    pending.clear();
}

void Pub::shut() {
    st = St::Closing;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), [](uv_handle_t* h) {
        auto* p = static_cast<Pub*>(h->data);
        p->st = St::Idle;
        if (p->done && !g_finished) p->connect(); // a request is waiting
    });
}

void Pub::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* p = static_cast<Pub*>(stream->data);
    if (p->st == St::Closing || p->st == St::Idle) return;
    if (nread > 0) {
        if (!p->parser.feed(buf->base, static_cast<size_t>(nread), *p)) {
            bool busy = p->st == St::Busy;
            p->shut();
            if (busy) p->complete(0);
        }
    } else if (nread < 0) {
        bool busy = p->st == St::Busy;
        if (busy && p->parser.until_close()) {
            int s = p->status;
            p->shut();
            p->complete(s);
            return;
        }
        p->shut();
        if (busy) p->complete(0);
    }
}

} // namespace rtb
