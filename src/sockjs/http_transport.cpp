// SockJS's xhr and jsonp transports, as Pushpin 1.36 serves them (sockjsmanager.cpp: which request
// starts or joins a session; sockjssession.cpp, Http mode: polls, sends, heartbeats, close frames).
#include "gripd/sockjs/http_transport.hpp"

#include "gripd/core/json.hpp"
#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/sockjs/sockjs.hpp"
#include "gripd/ws/handshake.hpp"

#include <rapidjson/document.h>

namespace gripd::sockjs {

namespace {

std::string_view path_of(std::string_view target) {
    return target.substr(0, target.find('?'));
}

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decoding as Qt's (`+` stays `+`; a `%` without two hex digits stays).
std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            int a = hex(s[i + 1]), b = hex(s[i + 2]);
            if (a >= 0 && b >= 0) {
                out += static_cast<char>(a * 16 + b);
                i += 2;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

// The value of the first `name=` item of a query or form body (decoded), if any.
bool form_value(std::string_view form, std::string_view name, std::string& out) {
    size_t start = 0;
    while (start <= form.size()) {
        size_t end = form.find('&', start);
        if (end == std::string_view::npos) end = form.size();
        std::string_view kv = form.substr(start, end - start);
        size_t eq = kv.find('=');
        if (eq != std::string_view::npos && percent_decode(kv.substr(0, eq)) == name) {
            out = percent_decode(kv.substr(eq + 1));
            return true;
        }
        start = end + 1;
    }
    return false;
}

std::string json_array(const std::deque<std::string>& messages) {
    std::string out = "[";
    for (const auto& m : messages) {
        if (out.size() > 1) out += ',';
        append_json_string(out, m);
    }
    return out + "]";
}

} // namespace

// ---- TransportRequest ----

TransportRequest::TransportRequest(HttpTransports& owner, http::ClientStream& conn,
                                   std::shared_ptr<const config::RouteTable> routes,
                                   const config::Route& route, http::RequestHead head, bool trusted)
    : owner_(owner), conn_(&conn), routes_(std::move(routes)), route_(route), head_(std::move(head)),
      trusted_(trusted), tls_(conn.is_tls()), peer_(conn.peer()) {
    parse_target();
}

TransportRequest::TransportRequest(HttpTransports& owner, int origin, RelayedRequest&& relayed)
    : owner_(owner), routes_(std::move(relayed.routes)), route_(*relayed.route),
      head_(std::move(relayed.head)), trusted_(relayed.trusted), tls_(relayed.tls),
      peer_(std::move(relayed.peer)), body_(std::move(relayed.body)), too_large_(relayed.too_large),
      origin_(origin), origin_token_(relayed.token) {
    parse_target();
}

TransportRequest::~TransportRequest() {
    if (relay_token_) owner_.cancel_relay(*this);
}

void TransportRequest::parse_target() {
    std::string_view path = path_of(head_.target);
    std::string_view rest = path.substr(route_.sockjs_path.size());
    // `/<server>/<session>/<transport>` (classify() checked the shape).
    rest.remove_prefix(1);
    rest.remove_prefix(rest.find('/') + 1);
    size_t slash = rest.find('/');
    sid_ = std::string(rest.substr(0, slash));
    transport_ = std::string(rest.substr(slash + 1));
    if (transport_.rfind("jsonp", 0) == 0) {
        std::string_view query = std::string_view(head_.target).substr(path.size());
        if (!query.empty()) query.remove_prefix(1);
        if (!form_value(query, "callback", callback_)) form_value(query, "c", callback_);
    }
}

void TransportRequest::on_request_body(std::string_view data) {
    if (too_large_) return;
    if (body_.size() + data.size() > kMaxRequestBody) {
        too_large_ = true;
        body_ = std::string();
        return;
    }
    body_.append(data);
}

void TransportRequest::on_request_end() {
    if (!live()) return;
    if (too_large_) {
        respond(400, "text/plain", "Request too large.\n");
        return;
    }
    owner_.dispatch(*this);
}

void TransportRequest::on_client_gone() {
    conn_ = nullptr;
    if (relay_token_) owner_.cancel_relay(*this);
    if (HttpSession* s = session_) {
        session_ = nullptr;
        s->on_request_gone(*this);
    }
}

void TransportRequest::respond(int status, std::string_view content_type, std::string_view body) {
    if (!live()) return;
    http::Headers h;
    if (!content_type.empty()) h.add("Content-Type", content_type);
    add_common_headers(h, head_);
    answer(status, h, body);
}

void TransportRequest::answer(int status, const http::Headers& headers, std::string_view body) {
    session_ = nullptr;
    if (http::ClientStream* c = conn_) {
        conn_ = nullptr;
        c->respond(status, {}, headers, body);
        return;
    }
    if (origin_ >= 0 && !answered_) {
        answered_ = true;
        owner_.send_answer(*this, status, headers, body);
    }
}

void TransportRequest::respond_ok(std::string_view text) {
    if (callback_.empty()) {
        respond(200, "text/plain", text);
        return;
    }
    std::string out = "/**/" + callback_ + "(";
    append_json_string(out, text.substr(0, text.size() - (!text.empty() && text.back() == '\n' ? 1 : 0)));
    out += ");\n";
    respond(200, "application/javascript", out);
}

// ---- HttpTransports ----

HttpTransports::~HttpTransports() {
    for (auto& [sid, s] : sessions_)
        s->abandon();
}

std::unique_ptr<http::Exchange> HttpTransports::start(http::ClientStream& conn,
                                                      std::shared_ptr<const config::RouteTable> routes,
                                                      const config::Route& route, http::RequestHead& head,
                                                      bool trusted) {
    return std::make_unique<TransportRequest>(*this, conn, std::move(routes), route, std::move(head),
                                              trusted);
}

void HttpTransports::dispatch(TransportRequest& req) {
    if (req.origin_ < 0 && workers_.size() > 1) {
        int owner = owner_of(req.sid_, static_cast<int>(workers_.size()));
        if (owner != worker_.index()) {
            relay(req, owner);
            return;
        }
    }
    serve(req);
}

void HttpTransports::serve(TransportRequest& req) {
    auto it = sessions_.find(req.sid_);
    if (it != sessions_.end()) {
        HttpSession& s = *it->second;
        if (s.is_lingering()) {
            req.respond_ok("c" + s.close_value() + "\n");
            return;
        }
        s.handle(req);
        return;
    }
    const std::string& m = req.head_.method;
    bool opens = (m == "POST" && req.transport_ == "xhr") ||
                 ((m == "GET" || m == "POST") && req.transport_ == "jsonp");
    if (!opens) {
        req.respond(404, "text/plain", "Not Found\n");
        return;
    }
    if (req.transport_ == "jsonp" && req.callback_.empty()) {
        req.respond(400, "text/plain", "Bad Request\n");
        return;
    }
    if (!ws_) {
        req.respond(501, "text/plain", "WebSocket not supported\n");
        return;
    }
    if (sessions_.size() >= kMaxSessions) {
        LOG_INFO("sockjs", "refused session %s from %s: %zu sessions on this worker", req.sid_.c_str(),
                 req.peer_.c_str(), sessions_.size());
        req.respond(503, "text/plain", "Too many SockJS sessions.\n");
        return;
    }
    auto session = std::make_unique<HttpSession>(*this, req.sid_, req);
    HttpSession* s = session.get();
    sessions_.emplace(req.sid_, std::move(session));
    s->start(req, *ws_);
}

void HttpTransports::remove(const std::string& sid) {
    auto it = sessions_.find(sid);
    if (it == sessions_.end()) return;
    std::unique_ptr<HttpSession> s = std::move(it->second);
    sessions_.erase(it);
    worker_.defer_delete(std::move(s)); // it may be deep in its own callbacks
}

// ---- HttpSession ----

HttpSession::HttpSession(HttpTransports& owner, std::string sid, const TransportRequest& first)
    : owner_(owner), sid_(std::move(sid)), peer_(first.peer_), tls_(first.tls_),
      parser_(frames_, ws::FrameParser::Role::Client, {kMaxQueuedBytes, kMaxQueuedBytes}) {
    frames_.self = this;
    timer_.init(&owner_.worker().timers(), this, &HttpSession::on_timer);
}

HttpSession::~HttpSession() {
    detach_requests();
}

void HttpSession::detach_requests() {
    if (poll_) poll_->session_ = nullptr;
    if (send_) send_->session_ = nullptr;
    poll_ = send_ = nullptr;
}

void HttpSession::abandon() {
    detach_requests();
    timer_.disarm();
    link_.reset(); // the ws session may be gone already: only the link object is freed
    state_ = State::Ended;
}

void HttpSession::start(TransportRequest& first, http::WsHandler& ws) {
    // The upgrade request the ws session sees: the first request's headers, at the route's base path
    // (or sockjs_as_path) with its whole query (the JSON-P callback too, as Pushpin's asUri).
    http::RequestHead head = first.head_;
    std::string_view path = path_of(first.head_.target);
    std::string query(std::string_view(first.head_.target).substr(path.size()));
    head.method = "GET";
    head.target =
        (first.route_.sockjs_as_path.empty() ? first.route_.sockjs_path : first.route_.sockjs_as_path) +
        query;
    head.version_major = 1;
    head.version_minor = 1;
    for (const char* h : {"Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Upgrade",
                          "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions"})
        head.headers.remove(h);
    head.headers.add("Connection", "Upgrade");
    head.headers.add("Upgrade", "websocket");
    head.headers.add("Sec-WebSocket-Version", "13");
    head.headers.add("Sec-WebSocket-Key", ws::make_client_key());
    head.content_length = -1;
    head.chunked = false;
    head.upgrade = true;
    poll_ = &first;
    first.session_ = this;
    LOG_DEBUG("sockjs", "session %s (%s) -> %s", sid_.c_str(), first.transport_.c_str(), head.target.c_str());
    link_ = ws.start_websocket(*this, first.route_, first.routes_, head, first.trusted_, nullptr);
    if (link_)
        link_->on_start();
    else if (state_ == State::Connecting)
        fail("the WebSocket handling refused it");
}

void HttpSession::handle(TransportRequest& req) {
    const std::string& t = req.transport_;
    if (t == "xhr" || t == "jsonp") {
        if (poll_ || state_ == State::Connecting) {
            req.respond_ok("c[2010,\"Another connection still open\"]\n");
            return;
        }
        if (peer_closed_) {
            req.respond_ok("c[3000,\"Client already closed connection\"]\n");
            return;
        }
        poll_ = &req;
        req.session_ = this;
        arm(kHeartbeatMs);
        try_write();
        return;
    }
    if (t != "xhr_send" && t != "jsonp_send") {
        req.respond(404, "text/plain", "Not Found\n");
        return;
    }
    if (send_) {
        req.respond(400, "text/plain", "Already sending\n");
        return;
    }
    std::string param;
    if (req.head_.method == "POST") {
        if (t == "xhr_send")
            param = std::move(req.body_);
        else
            form_value(req.body_, "d", param);
    } else {
        std::string_view target = req.head_.target;
        size_t q = target.find('?');
        if (q != std::string_view::npos) form_value(target.substr(q + 1), "d", param);
    }
    rapidjson::Document doc;
    if (!core::json::parse(param, doc) || !doc.IsArray()) {
        req.respond(400, "text/plain", "Payload expected\n");
        return;
    }
    std::vector<std::string> messages;
    for (const auto& v : doc.GetArray()) {
        if (!v.IsString()) {
            req.respond(400, "text/plain", "Payload expected\n");
            return;
        }
        if (v.GetStringLength() > kMaxQueuedBytes) {
            req.respond(400, "text/plain", "Message too large\n");
            return;
        }
        messages.emplace_back(v.GetString(), v.GetStringLength());
    }
    if (messages.empty() || state_ != State::Open) {
        // Nothing to deliver (or the session is closing: Pushpin takes and drops them).
        req.respond_ok("ok");
        return;
    }
    req.sends_ = std::move(messages);
    if (paused_) {
        send_ = &req;
        req.session_ = this;
        return;
    }
    deliver_sends(req);
}

void HttpSession::deliver_sends(TransportRequest& req) {
    std::string frames;
    static constexpr uint8_t kMask[4] = {0x5a, 0x17, 0xc3, 0x2e};
    for (const auto& m : req.sends_)
        ws::append_message(frames, ws::WsOpcode::Text, m, 1 << 20, kMask);
    req.sends_.clear();
    req.respond_ok("ok");
    if (link_) link_->on_raw_data(frames);
}

void HttpSession::resume_request_body() {
    paused_ = false;
    if (TransportRequest* r = send_) {
        send_ = nullptr;
        r->session_ = nullptr;
        deliver_sends(*r);
    }
}

void HttpSession::on_request_gone(TransportRequest& req) {
    if (&req == send_) {
        send_ = nullptr;
        return;
    }
    if (&req != poll_) return;
    poll_ = nullptr;
    if (state_ == State::Connecting) {
        // The opening request went before the backend answered: nobody will poll this session.
        fail("the opening request went away");
        return;
    }
    if (state_ != State::Open || peer_closed_) return;
    // A client that goes away while long-polling closes the session (Pushpin's peerClosed): the ws
    // session gets a close frame with no code.
    peer_closed_ = true;
    arm(kUnconnectedMs);
    std::string frame;
    static constexpr uint8_t kMask[4] = {0, 0, 0, 0};
    ws::append_frame(frame, ws::WsOpcode::Close, {}, true, kMask);
    if (link_) link_->on_raw_data(frame);
}

bool HttpSession::send_head(int status, std::string_view, const http::Headers& headers, int64_t) {
    if (state_ != State::Connecting) return false;
    reject_status_ = status;
    reject_headers_ = headers;
    return true;
}

bool HttpSession::send_body(std::string_view data, const std::shared_ptr<const void>&) {
    if (reject_status_ == 0) return false;
    if (reject_body_.size() + data.size() <= kMaxRequestBody) reject_body_.append(data);
    return true;
}

void HttpSession::end_response() {
    if (reject_status_ == 0 || state_ != State::Connecting) return;
    // The handshake was refused: the opening request gets the answer, and the session is over.
    state_ = State::Ended;
    if (TransportRequest* r = poll_) {
        poll_ = nullptr;
        r->session_ = nullptr;
        if (r->live()) {
            http::Headers h = reject_headers_;
            add_common_headers(h, r->head_);
            r->answer(reject_status_, h, reject_body_);
        }
    }
    link_.reset();
    remove();
}

bool HttpSession::send_raw(std::string_view data, const std::shared_ptr<const void>&) {
    if (state_ == State::Connecting) {
        if (data.substr(0, 12) != "HTTP/1.1 101") return false;
        state_ = State::Open;
        if (TransportRequest* r = poll_) {
            poll_ = nullptr;
            r->respond_ok("o\n");
        }
        arm(kUnconnectedMs);
        return true;
    }
    if (state_ == State::Ended || state_ == State::Lingering) return false;
    while (!data.empty() && parser_.state() == ws::FrameParser::State::Ok) {
        size_t n = parser_.feed(data.data(), data.size());
        if (n == 0) break;
        data.remove_prefix(n);
    }
    if (parser_.state() == ws::FrameParser::State::Error) fail("the WebSocket side wrote a bad frame");
    return true;
}

void HttpSession::on_ws_frame(const ws::Frame& f) {
    if (state_ != State::Open) return;
    switch (f.opcode) {
    case ws::WsOpcode::Ping:
    case ws::WsOpcode::Pong:
        return; // no SockJS form
    case ws::WsOpcode::Close: {
        ws::ClosePayload cp;
        int err = 0;
        if (!ws::parse_close_payload(f.payload, &cp, &err)) cp = {};
        set_close(cp.code == ws::kCloseNoStatus ? -1 : cp.code, cp.reason);
        // Answer the close handshake at once: the ws session may end its side now.
        std::string frame;
        static constexpr uint8_t kMask[4] = {0, 0, 0, 0};
        ws::append_close_frame(frame, cp.code == ws::kCloseNoStatus ? -1 : cp.code, "", kMask);
        if (!peer_closed_ && link_) link_->on_raw_data(frame);
        return;
    }
    default:
        break;
    }
    if (f.first) message_.clear();
    message_.append(f.payload);
    if (!f.fin) return;
    if (queued_bytes_ + message_.size() > kMaxQueuedBytes || queue_.size() >= kMaxQueuedItems) {
        fail("its client fell behind (the poll queue is full)");
        return;
    }
    queued_bytes_ += message_.size();
    queue_.push_back(std::move(message_));
    message_ = std::string();
    try_write();
}

void HttpSession::set_close(int code, std::string_view reason) {
    close_value_ = "[" + std::to_string(code < 0 ? 0 : code) + ",";
    std::string text = code >= 0 && !reason.empty() ? std::string(reason) : std::string("Connection closed");
    append_json_string(close_value_, text);
    close_value_ += "]";
    state_ = State::Closing;
    if (peer_closed_) {
        linger();
        return;
    }
    try_write();
}

void HttpSession::try_write() {
    if (!poll_ || close_sent_) return;
    if (!queue_.empty()) {
        std::string body = "a" + json_array(queue_) + "\n";
        queue_.clear();
        queued_bytes_ = 0;
        TransportRequest* r = poll_;
        poll_ = nullptr;
        r->respond_ok(body);
        arm(kUnconnectedMs);
        if (link_) link_->on_client_writable();
        return;
    }
    if (state_ == State::Closing) {
        close_sent_ = true;
        TransportRequest* r = poll_;
        poll_ = nullptr;
        r->respond_ok("c" + close_value_ + "\n");
        linger();
    }
}

void HttpSession::linger() {
    state_ = State::Lingering;
    queue_.clear();
    queued_bytes_ = 0;
    detach_requests();
    if (link_) {
        // The ws session has closed its side (or is about to): let it go.
        auto link = std::move(link_);
        link->on_client_gone();
        owner_.worker().defer_delete(std::move(link));
    }
    arm(kLingerMs);
}

void HttpSession::on_ws_ended() {
    // The ws session let go of its "client" (after its close handshake, or dropping it).
    if (state_ == State::Connecting) {
        if (reject_status_) return; // end_response() follows
        fail("the WebSocket handling dropped it");
        return;
    }
    if (state_ == State::Open) {
        fail("the WebSocket side ended without a close frame");
        return;
    }
}

void HttpSession::fail(const char* why) {
    if (state_ == State::Ended) return;
    LOG_DEBUG("sockjs", "session %s ends: %s", sid_.c_str(), why);
    state_ = State::Ended;
    timer_.disarm();
    if (TransportRequest* r = poll_) {
        poll_ = nullptr;
        r->respond(410, "text/plain", "Session terminated\n");
    }
    if (TransportRequest* r = send_) {
        send_ = nullptr;
        r->respond(410, "text/plain", "Session terminated\n");
    }
    if (link_) {
        auto link = std::move(link_);
        link->on_client_gone();
        owner_.worker().defer_delete(std::move(link));
    }
    remove();
}

void HttpSession::remove() {
    timer_.disarm();
    detach_requests();
    owner_.remove(sid_);
}

void HttpSession::arm(uint64_t ms) {
    timer_.arm(ms);
}

void HttpSession::on_timer(void* p) {
    auto* self = static_cast<HttpSession*>(p);
    switch (self->state_) {
    case State::Lingering:
        self->state_ = State::Ended;
        self->remove();
        return;
    case State::Open:
    case State::Closing:
        if (TransportRequest* r = self->poll_) {
            // Heartbeat: the waiting poll is answered "h" (the client polls again).
            self->poll_ = nullptr;
            r->respond_ok("h\n");
            self->arm(kUnconnectedMs);
            return;
        }
        self->fail("no poll came in time");
        return;
    default:
        return;
    }
}

} // namespace gripd::sockjs
