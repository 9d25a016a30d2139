// One HTTP/2 stream as an http::ClientStream: the request head decoded into an http::RequestHead
// for the service, the response framed by nghttp2 (HEADERS, then DATA as the client's window
// allows).
#include "session_internal.hpp"

#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/net/memory_guard.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <openssl/rand.h>

namespace gripd::h2 {

namespace {

// HPACK's per-field overhead (RFC 7541 4.1): what a header costs against the list size limit.
constexpr size_t kFieldOverhead = 32;
// An idle stream gives back an output queue bigger than this (pieces) once it drains.
constexpr size_t kKeepOutPieces = 16;
// Shared payloads smaller than this are copied (a reference costs more than the bytes), as TcpConn.
constexpr size_t kCopyBelow = 256;
// Own bytes are appended to the last piece while it is smaller than this.
constexpr size_t kCoalesceUpTo = 16 * 1024;
const std::string kNoPeer;

ssize_t read_cb(nghttp2_session*, int32_t, uint8_t*, size_t len, uint32_t* flags, nghttp2_data_source* src,
                void*) {
    return static_cast<Stream*>(src->ptr)->read_body(len, flags);
}

} // namespace

Stream::Stream(Session& session, int32_t id)
    : session_(&session), id_(id), worker_index_(session.worker().index()),
      head_(std::make_unique<http::RequestHead>()) {
    head_->version_major = 2;
    head_->version_minor = 0;
}

Stream::~Stream() {
    clear_out();
}

void Stream::account() {
    size_t now = queued_bytes();
    if (now == accounted_) return;
    net::MemoryGuard::instance().account_queued(worker_index_,
                                                static_cast<int64_t>(now) - static_cast<int64_t>(accounted_));
    accounted_ = now;
}

void Stream::queue_out(std::string_view data, const std::shared_ptr<const void>& keep) {
    if (out_head_ > 0 && out_head_ >= out_.size() / 2) { // O(1) amortized: each piece moves once
        out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
        out_head_ = 0;
    }
    if (keep && data.size() >= kCopyBelow) {
        out_.push_back(OutPiece{keep, data, {}});
    } else if (out_.size() > out_head_ && !out_.back().keep && out_.back().own.size() < kCoalesceUpTo) {
        out_.back().own.append(data);
    } else {
        out_.push_back(OutPiece{nullptr, {}, std::string(data)});
    }
    out_bytes_ += data.size();
    account();
}

void Stream::clear_out() {
    std::vector<OutPiece>().swap(out_);
    out_head_ = out_off_ = out_bytes_ = 0;
    account();
}

nghttp2_session* Stream::ng() const {
    return session_ ? session_->ng() : nullptr;
}

const std::string& Stream::peer() const {
    return session_ && session_->conn() ? session_->conn()->peer() : kNoPeer;
}

bool Stream::is_tls() const {
    return session_ && session_->conn() && session_->conn()->is_tls();
}

// ---- the request ----

bool Stream::on_header(std::string_view name, std::string_view value, size_t max_bytes) {
    if (!head_) return false;
    head_bytes_ += name.size() + value.size() + kFieldOverhead;
    if (head_bytes_ > max_bytes) return false; // answered 431 once the head is complete
    if (!name.empty() && name[0] == ':') {
        if (name == ":method")
            head_->method.assign(value);
        else if (name == ":path")
            head_->target.assign(value);
        else if (name == ":authority" && !head_->headers.get("host"))
            head_->headers.add("host", value);
        else if (name == ":protocol")
            ws_protocol_ = value == "websocket";
        return true; // :scheme
    }
    if (name == "host") {
        head_->headers.remove("host"); // Host wins over :authority as in HTTP/1.1 proxies
    } else if (name == "content-length") {
        int64_t n = -1;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec == std::errc() && p == value.data() + value.size()) head_->content_length = n;
    } else if (name == "te") {
        return true; // only "trailers" is allowed on HTTP/2, and it is hop-by-hop
    } else if (name == "cookie") {
        // HTTP/2 may split cookies into fields; HTTP/1.1 backends expect one (RFC 9113 8.2.3).
        if (const std::string* prev = head_->headers.get("cookie")) {
            std::string joined = *prev + "; " + std::string(value);
            head_->headers.remove("cookie");
            head_->headers.add("cookie", joined);
            return true;
        }
    }
    head_->headers.add(name, value);
    return true;
}

void Stream::on_request_head(bool end_stream) {
    if (!session_ || !head_ || state_ != State::Headers) return;
    state_ = State::Body;
    std::unique_ptr<http::RequestHead> head = std::move(head_);
    http::Service& service = session_->service();
    service.requests.add();
    if (head_bytes_ > service.max_header_bytes()) {
        service.on_request_rejected(*this, 431);
        respond_text(431, "Request Header Fields Too Large\n");
        return;
    }
    if (head->method == "CONNECT") {
        if (!ws_protocol_) {
            respond_text(501, "Only CONNECT with :protocol websocket is supported\n");
            return;
        }
        start_tunnel(*head);
    }
    head_request_ = head->method == "HEAD";
    head->chunked = !end_stream && head->content_length < 0;
    if (service.stats_events && stats::enabled()) stats_conn_.open(tunnel_, peer(), is_tls());
    exchange_ = service.start_exchange(*this, *head);
    head.reset(); // an idle held stream keeps no request head
    if (exchange_) exchange_->on_start();
    if (end_stream) on_request_end();
}

void Stream::on_body(const uint8_t* data, size_t len) {
    std::string_view bytes(reinterpret_cast<const char*>(data), len);
    if (exchange_ && raw_)
        exchange_->on_raw_data(bytes);
    else if (exchange_ && state_ == State::Body && !tunnel_)
        exchange_->on_request_body(bytes);
    if (!session_) return;
    if (body_paused_ && exchange_)
        unconsumed_ += len; // the client's window stays shut until the exchange resumes
    else
        nghttp2_session_consume_stream(ng(), id_, len);
}

void Stream::on_request_end() {
    if (state_ != State::Body) return;
    state_ = State::Complete;
    if (tunnel_) {
        // The client ended its side of a WebSocket: as the end of an HTTP/1.1 connection, the
        // session is over; our side ends once what is queued went out.
        if (exchange_) {
            std::unique_ptr<http::Exchange> ex = std::move(exchange_);
            ex->on_client_gone();
            if (session_) session_->worker().defer_delete(std::move(ex));
        }
        if (out_state_ == Out::None)
            abort_response();
        else
            end_response();
        return;
    }
    if (exchange_)
        exchange_->on_request_end();
    else if (out_state_ == Out::None)
        respond_text(500, "Internal Server Error\n"); // never leave a request unanswered
}

void Stream::pause_request_body() {
    body_paused_ = true;
}

void Stream::resume_request_body() {
    if (!body_paused_) return;
    body_paused_ = false;
    if (unconsumed_ > 0 && session_ && state_ != State::Closed) {
        nghttp2_session_consume_stream(ng(), id_, unconsumed_);
        unconsumed_ = 0;
        session_->schedule_pump();
    }
}

// ---- the response ----

bool Stream::send_head(int status, std::string_view /*reason: HTTP/2 has none*/, const http::Headers& headers,
                       int64_t content_length) {
    if (is_closing() || out_state_ != Out::None) return false;
    no_body_ = head_request_ || status == 204 || status == 304 || (status >= 100 && status < 200);
    // Names must be lower case on HTTP/2; the strings live until nghttp2 copied them (submit).
    std::vector<std::string> store;
    store.reserve(2 * headers.size() + 2);
    store.push_back(std::to_string(status));
    for (const auto& h : headers) {
        if (http::is_hop_by_hop(h.name) || core::iequals(h.name, "content-length")) continue;
        store.push_back(core::to_lower(h.name));
        store.push_back(h.value);
    }
    if (content_length >= 0 && status != 204 && !(status >= 100 && status < 200)) {
        store.emplace_back("content-length");
        store.push_back(std::to_string(content_length));
    }
    std::vector<nghttp2_nv> nva;
    nva.reserve(store.size() / 2 + 1);
    auto nv = [](const std::string& n, const std::string& v) {
        return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                          reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                          NGHTTP2_NV_FLAG_NONE};
    };
    static const std::string kStatus = ":status";
    nva.push_back(nv(kStatus, store[0]));
    for (size_t i = 1; i + 1 < store.size(); i += 2)
        nva.push_back(nv(store[i], store[i + 1]));
    nghttp2_data_provider prd{};
    prd.source.ptr = this;
    prd.read_callback = read_cb;
    int rv = nghttp2_submit_response(ng(), id_, nva.data(), nva.size(), no_body_ ? nullptr : &prd);
    if (rv != 0) {
        LOG_DEBUG("h2", "client %s: stream %d: no response head: %s", peer().c_str(), id_,
                  nghttp2_strerror(rv));
        return false;
    }
    out_state_ = Out::Started;
    session_->schedule_pump();
    return true;
}

bool Stream::send_body(std::string_view data, const std::shared_ptr<const void>& keep) {
    if (is_closing() || out_state_ != Out::Started) return false;
    if (no_body_ || data.empty()) return true;
    queue_out(data, keep);
    nghttp2_session_resume_data(ng(), id_);
    session_->watch_stalls(); // a client that gives no window for it is cut off
    session_->schedule_pump();
    return true;
}

// RFC 8441: the stream's request goes on as the HTTP/1.1 upgrade the WebSocket layer knows (GET,
// Upgrade, a key of our own for the accept it computes); its 101 becomes a 200 (send_raw).
void Stream::start_tunnel(http::RequestHead& head) {
    tunnel_ = true;
    head.method = "GET";
    head.version_major = 1;
    head.version_minor = 1;
    head.upgrade = true;
    head.chunked = false;
    head.content_length = -1;
    head.headers.remove("upgrade");
    head.headers.remove("connection");
    head.headers.remove("sec-websocket-key");
    head.headers.add("Upgrade", "websocket");
    head.headers.add("Connection", "Upgrade");
    unsigned char key[16];
    if (RAND_bytes(key, sizeof(key)) != 1) std::memset(key, 'k', sizeof(key)); // never checked by the client
    head.headers.add("Sec-WebSocket-Key",
                     core::base64_encode(std::string_view(reinterpret_cast<const char*>(key), sizeof(key))));
    if (!head.headers.has("sec-websocket-version")) head.headers.add("Sec-WebSocket-Version", "13");
}

// The WebSocket layer's HTTP/1.1 answer to the upgrade: 101 becomes 200 (RFC 8441 5), without
// the HTTP/1.1 handshake headers; anything after the head is the protocol's first bytes.
bool Stream::send_upgrade_answer(std::string_view data) {
    size_t end = data.find("\r\n\r\n");
    if (end == std::string_view::npos || data.size() < 12 || data.substr(0, 9) != "HTTP/1.1 ") {
        abort_response();
        return false;
    }
    int status = 0;
    std::from_chars(data.data() + 9, data.data() + 12, status);
    http::Headers headers;
    size_t pos = data.find("\r\n") + 2;
    while (pos < end) {
        size_t eol = data.find("\r\n", pos);
        std::string_view line = data.substr(pos, eol - pos);
        pos = eol + 2;
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view name = line.substr(0, colon);
        if (core::iequals(name, "sec-websocket-accept") || core::iequals(name, "upgrade") ||
            core::iequals(name, "connection"))
            continue;
        headers.add(name, core::trim(line.substr(colon + 1)));
    }
    if (!send_head(status == 101 ? 200 : status, {}, headers, -1)) return false;
    std::string_view rest = data.substr(end + 4);
    return rest.empty() || send_body(rest);
}

void Stream::enter_raw_mode() {
    if (!tunnel_) {
        abort_response(); // no upgrade on a plain stream
        return;
    }
    raw_ = true;
}

bool Stream::send_raw(std::string_view data, const std::shared_ptr<const void>& keep) {
    if (tunnel_) return out_state_ == Out::None ? send_upgrade_answer(data) : send_body(data, keep);
    // Only HTTP/1.1 framing or an upgraded protocol's bytes come this way; neither exists on a
    // stream (is_http1() is false): a caller that forgot to ask gets the stream reset, not
    // corrupted output.
    LOG_ERROR("h2", "client %s: stream %d: HTTP/1.1 bytes for an HTTP/2 stream: resetting it", peer().c_str(),
              id_);
    abort_response();
    return false;
}

void Stream::end_response() {
    if (out_state_ == Out::Ended) return;
    drop_exchange();
    if (is_closing()) return;
    if (out_state_ == Out::None) { // ended without a head: there is no response to give
        out_state_ = Out::Ended;
        nghttp2_submit_rst_stream(ng(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    } else {
        out_state_ = Out::Ended;
        if (!no_body_) nghttp2_session_resume_data(ng(), id_);
    }
    session_->schedule_pump();
}

void Stream::set_exchange(std::unique_ptr<http::Exchange> next) {
    drop_exchange();
    exchange_ = std::move(next);
}

void Stream::abort_response() {
    drop_exchange();
    if (is_closing()) return;
    out_state_ = Out::Ended;
    clear_out();
    nghttp2_submit_rst_stream(ng(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    session_->schedule_pump();
}

void Stream::cut_off() {
    drop_exchange();
    if (is_closing()) return;
    out_state_ = Out::Ended;
    clear_out();
    nghttp2_submit_rst_stream(ng(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
    session_->schedule_pump();
}

ssize_t Stream::read_body(size_t len, uint32_t* flags) {
    size_t n = std::min(len, out_bytes_);
    if (n > 0) *flags |= NGHTTP2_DATA_FLAG_NO_COPY;           // write_data sends them
    if (n < out_bytes_ && session_) session_->watch_stalls(); // more than the window allows
    if (out_state_ == Out::Ended && n == out_bytes_) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return static_cast<ssize_t>(n);
    }
    if (n == 0) return NGHTTP2_ERR_DEFERRED;
    return static_cast<ssize_t>(n);
}

int Stream::write_data(const uint8_t* framehd, size_t len) {
    http::ServerConn* conn = session_ ? session_->conn() : nullptr;
    if (!conn || len > out_bytes_) return NGHTTP2_ERR_CALLBACK_FAILURE;
    conn->send_raw(std::string_view(reinterpret_cast<const char*>(framehd), 9));
    size_t left = len;
    while (left > 0) {
        OutPiece& p = out_[out_head_];
        std::string_view bytes = p.bytes().substr(out_off_);
        size_t k = std::min(left, bytes.size());
        conn->send_raw(bytes.substr(0, k), p.keep); // own bytes are copied by the connection
        left -= k;
        out_off_ += k;
        if (out_off_ == p.bytes().size()) {
            p = OutPiece{}; // lets go of the shared payload now
            ++out_head_;
            out_off_ = 0;
        }
    }
    out_bytes_ -= len;
    sent_ += len;
    if (out_bytes_ == 0) {
        if (out_.capacity() > kKeepOutPieces)
            std::vector<OutPiece>().swap(out_);
        else
            out_.clear();
        out_head_ = out_off_ = 0;
        if (len > 0 && exchange_ && session_) session_->queue_writable(id_);
    }
    account();
    return 0;
}

bool Stream::stalled_since_last_sweep() {
    bool stalled = sent_ == sent_mark_;
    sent_mark_ = sent_;
    return stalled;
}

void Stream::notify_writable() {
    if (exchange_ && !is_closing()) exchange_->on_client_writable();
}

// ---- the end ----

void Stream::drop_exchange() {
    if (exchange_ && session_) session_->worker().defer_delete(std::move(exchange_));
    exchange_.reset();
}

void Stream::on_closed() {
    state_ = State::Closed;
    stats_conn_.close();
    if (exchange_) {
        std::unique_ptr<http::Exchange> ex = std::move(exchange_);
        ex->on_client_gone(); // it lets go of this stream
        if (session_) session_->worker().defer_delete(std::move(ex));
    }
    session_ = nullptr;
}

} // namespace gripd::h2
