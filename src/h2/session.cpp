// The HTTP/2 session: nghttp2 fed with the connection's bytes, its output pulled into the
// connection while the client takes it, one Stream per request.
#include "session_internal.hpp"

#include "gripd/core/assert.hpp"
#include "gripd/core/log.hpp"
#include "gripd/loop/worker.hpp"

#include <cstdlib>
#include <malloc.h>
#include <vector>

namespace gripd::h2 {

namespace {

Session& self_of(void* user) {
    return *static_cast<Session*>(user);
}

int begin_headers_cb(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    return self_of(user).on_begin_headers(frame->hd.stream_id);
}

int header_cb(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
              const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    return self_of(user).on_header(frame->hd.stream_id,
                                   std::string_view(reinterpret_cast<const char*>(name), namelen),
                                   std::string_view(reinterpret_cast<const char*>(value), valuelen));
}

int frame_recv_cb(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    return self_of(user).on_frame_recv(frame);
}

int data_chunk_cb(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* user) {
    return self_of(user).on_data_chunk(id, data, len);
}

int stream_close_cb(nghttp2_session*, int32_t id, uint32_t error_code, void* user) {
    return self_of(user).on_stream_close(id, error_code);
}

int frame_send_cb(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    return self_of(user).on_frame_send(frame);
}

int send_data_cb(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd, size_t length,
                 nghttp2_data_source* source, void*) {
    GRIPD_ASSERT(frame->data.padlen == 0); // no padding callback is set
    (void)frame;
    return static_cast<Stream*>(source->ptr)->write_data(framehd, length);
}

// nghttp2's allocations for a session, counted (malloc_usable_size: what the heap really holds), so
// the memory ceiling sees them beside the streams' output.
void* ng_malloc(size_t size, void* user) {
    void* p = std::malloc(size);
    if (p) self_of(user).count_alloc(static_cast<int64_t>(malloc_usable_size(p)));
    return p;
}
void ng_free(void* p, void* user) {
    if (!p) return;
    self_of(user).count_alloc(-static_cast<int64_t>(malloc_usable_size(p)));
    std::free(p);
}
void* ng_calloc(size_t n, size_t size, void* user) {
    void* p = std::calloc(n, size);
    if (p) self_of(user).count_alloc(static_cast<int64_t>(malloc_usable_size(p)));
    return p;
}
void* ng_realloc(void* p, size_t size, void* user) {
    size_t before = p ? malloc_usable_size(p) : 0;
    void* q = std::realloc(p, size);
    if (q || size == 0)
        self_of(user).count_alloc(static_cast<int64_t>(q ? malloc_usable_size(q) : 0) -
                                  static_cast<int64_t>(before));
    return q;
}

struct CallbacksDeleter {
    void operator()(nghttp2_session_callbacks* c) const { nghttp2_session_callbacks_del(c); }
};
struct OptionDeleter {
    void operator()(nghttp2_option* o) const { nghttp2_option_del(o); }
};

} // namespace

std::unique_ptr<http::Exchange> start_session(http::ServerConn& conn, http::Service& service) {
    auto s = std::make_unique<Session>(conn, service);
    if (!s->init()) return nullptr;
    return s;
}

const char* nghttp2_version_text() {
    return nghttp2_version(0)->version_str;
}

Session::Session(http::ServerConn& conn, http::Service& service)
    : conn_(&conn), service_(service), worker_(conn.worker()) {
    timer_.init(&worker_.timers(), this, &Session::on_timer);
}

Session::~Session() {
    timer_.disarm();
    if (pump_scheduled_) worker_.forget_flush(*this);
    if (ng_) nghttp2_session_del(ng_);
}

bool Session::init() {
    nghttp2_session_callbacks* raw_cbs = nullptr;
    if (nghttp2_session_callbacks_new(&raw_cbs) != 0) return false;
    std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter> cbs(raw_cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(raw_cbs, begin_headers_cb);
    nghttp2_session_callbacks_set_on_header_callback(raw_cbs, header_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(raw_cbs, frame_recv_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(raw_cbs, data_chunk_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(raw_cbs, stream_close_cb);
    nghttp2_session_callbacks_set_on_frame_send_callback(raw_cbs, frame_send_cb);
    nghttp2_session_callbacks_set_send_data_callback(raw_cbs, send_data_cb);

    nghttp2_option* raw_opt = nullptr;
    if (nghttp2_option_new(&raw_opt) != 0) return false;
    std::unique_ptr<nghttp2_option, OptionDeleter> opt(raw_opt);
    // Windows open as exchanges take request bodies (Stream::on_body), not as bytes arrive.
    nghttp2_option_set_no_auto_window_update(raw_opt, 1);
    nghttp2_option_set_max_deflate_dynamic_table_size(raw_opt, kHeaderTableSize);
    nghttp2_option_set_max_outbound_ack(raw_opt, kMaxOutboundAck);
    nghttp2_option_set_max_settings(raw_opt, kMaxSettingsEntries);
    nghttp2_option_set_stream_reset_rate_limit(raw_opt, kResetBurst, kResetRate);
    nghttp2_option_set_max_continuations(raw_opt, 8);
    nghttp2_mem mem{this, ng_malloc, ng_free, ng_calloc, ng_realloc}; // nghttp2 keeps a copy
    return nghttp2_session_server_new3(&ng_, raw_cbs, this, raw_opt, &mem) == 0;
}

void Session::on_start() {
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kInitialWindow},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, kHeaderTableSize},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(service_.max_header_bytes())},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1}, // WebSockets over streams (RFC 8441)
    };
    nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, settings, sizeof(settings) / sizeof(settings[0]));
    arm_idle();
    pump();
}

void Session::on_raw_data(std::string_view data) {
    if (!conn_ || state_ == State::Closed) return;
    in_ng_ = true;
    ssize_t rv = nghttp2_session_mem_recv(ng_, reinterpret_cast<const uint8_t*>(data.data()), data.size());
    in_ng_ = false;
    if (rv < 0) {
        // A protocol error, a flood nghttp2 caught, or a bad preface: nghttp2 queued a GOAWAY when
        // it could; send it and close.
        LOG_DEBUG("h2", "client %s: %s: closing", conn_->peer().c_str(),
                  nghttp2_strerror(static_cast<int>(rv)));
        nghttp2_session_terminate_session(ng_, NGHTTP2_PROTOCOL_ERROR);
        pump();
        close_conn(true);
        return;
    }
    pump();
}

void Session::schedule_pump() {
    if (pump_scheduled_ || state_ == State::Closed) return;
    pump_scheduled_ = true;
    worker_.schedule_flush(*this);
}

void Session::pump() {
    if (in_ng_) {
        want_pump_ = true;
        return;
    }
    std::vector<int32_t> writable;
    do {
        want_pump_ = false;
        if (!conn_ || state_ == State::Closed) return;
        in_ng_ = true;
        while (conn_ && !conn_->is_closing() && conn_->queued_bytes() < kConnOutHighWater) {
            const uint8_t* p = nullptr;
            ssize_t n = nghttp2_session_mem_send(ng_, &p);
            if (n <= 0) {
                if (n < 0)
                    LOG_DEBUG("h2", "client %s: %s", conn_->peer().c_str(),
                              nghttp2_strerror(static_cast<int>(n)));
                break;
            }
            conn_->send_raw(std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n)));
        }
        in_ng_ = false;
        // Streams whose output drained get on_client_writable now, outside nghttp2.
        writable.swap(writable_);
        for (int32_t id : writable)
            if (Stream* s = stream(id)) s->notify_writable();
        writable.clear();
    } while (want_pump_ || !writable_.empty());
    if (!conn_ || conn_->is_closing()) return;
    bool done = !nghttp2_session_want_read(ng_) && !nghttp2_session_want_write(ng_);
    if (done || (state_ == State::Stopping && stream_count_ == 0)) close_conn(true);
}

void Session::close_conn(bool graceful) {
    if (state_ == State::Closed || !conn_) return;
    state_ = State::Closed;
    timer_.disarm();
    http::ServerConn* c = conn_;
    if (graceful)
        c->close_after_flush(); // on_client_gone follows when it closes
    else
        c->abort_response();
}

void Session::on_client_gone() {
    conn_ = nullptr;
    state_ = State::Closed;
    timer_.disarm();
    while (Stream* s = streams_.front()) {
        s->on_closed();
        release(*s);
    }
}

void Session::on_server_stopping() {
    if (state_ != State::Running || !conn_) return;
    state_ = State::Stopping;
    nghttp2_submit_goaway(ng_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng_),
                          NGHTTP2_NO_ERROR, nullptr, 0);
    pump();
}

Stream* Session::stream(int32_t id) const {
    return static_cast<Stream*>(nghttp2_session_get_stream_user_data(ng_, id));
}

size_t Session::shed_candidates(size_t min_queued, std::vector<http::ShedCandidate>& out) {
    streams_.for_each([&](Stream& st) {
        size_t q = st.queued_bytes();
        if (q >= min_queued && !st.is_closing()) out.push_back(http::ShedCandidate{q, nullptr, &st});
    });
    return ng_bytes_;
}

void Session::release(Stream& s) {
    if (ng_ && conn_) nghttp2_session_set_stream_user_data(ng_, s.id(), nullptr);
    s.link.unlink();
    --stream_count_;
    worker_.defer_delete(std::unique_ptr<loop::Deletable>(&s));
    if (state_ == State::Running && wait_ != Wait::Idle && !serving()) arm_idle();
}

bool Session::serving() {
    bool any = false;
    streams_.for_each([&](Stream& st) { any = any || st.has_head(); });
    return any;
}

// ---- timers: idle (no stream for the idle timeout) and the stall sweep ----

void Session::arm_idle() {
    wait_ = Wait::Idle;
    timer_.arm(service_.idle_timeout_ms());
}

void Session::watch_stalls() {
    if (wait_ == Wait::Sweep || service_.send_timeout_ms() == 0) return;
    wait_ = Wait::Sweep;
    timer_.arm(service_.send_timeout_ms());
}

void Session::on_timer(void* p) {
    auto* self = static_cast<Session*>(p);
    Wait what = self->wait_;
    self->wait_ = Wait::None;
    if (!self->conn_ || self->state_ == State::Closed) return;
    if (what == Wait::Sweep) {
        self->sweep();
        return;
    }
    if (self->serving()) return; // (else only partial request heads wait: no slow-loris heads)
    LOG_DEBUG("h2", "closing idle HTTP/2 connection from %s", self->conn_->peer().c_str());
    nghttp2_session_terminate_session(self->ng_, NGHTTP2_NO_ERROR);
    self->pump();
    self->close_conn(true);
}

// A stream that has output waiting and took none of it since the last sweep (its client gives no
// window) is reset; the others on the connection go on.
void Session::sweep() {
    std::vector<Stream*> stalled;
    bool waiting = false;
    streams_.for_each([&](Stream& s) {
        if (s.queued_bytes() == 0) return;
        if (s.stalled_since_last_sweep())
            stalled.push_back(&s);
        else
            waiting = true;
    });
    for (Stream* s : stalled) {
        LOG_DEBUG("h2", "client %s: stream %d got no window for %llu ms (%zu bytes waiting): resetting it",
                  conn_->peer().c_str(), s->id(), static_cast<unsigned long long>(service_.send_timeout_ms()),
                  s->queued_bytes());
        s->cut_off();
    }
    if (waiting)
        watch_stalls();
    else if (state_ == State::Running && !serving())
        arm_idle();
}

// ---- nghttp2 events ----

int Session::on_begin_headers(int32_t id) {
    if (state_ != State::Running) return 0; // nghttp2 refuses streams after our GOAWAY
    auto s = std::make_unique<Stream>(*this, id);
    if (nghttp2_session_set_stream_user_data(ng_, id, s.get()) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    streams_.push_back(*s.release());
    ++stream_count_;
    return 0; // the idle timer runs on until a whole request head is in (no slow-loris heads)
}

int Session::on_header(int32_t id, std::string_view name, std::string_view value) {
    if (Stream* s = stream(id)) s->on_header(name, value, service_.max_header_bytes());
    return 0;
}

int Session::on_frame_recv(const nghttp2_frame* frame) {
    Stream* s = stream(frame->hd.stream_id);
    if (!s) return 0;
    bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            if (wait_ == Wait::Idle) {
                wait_ = Wait::None;
                timer_.disarm();
            }
            s->on_request_head(end_stream);
        } else if (end_stream)
            s->on_request_end(); // trailers
        break;
    case NGHTTP2_DATA:
        if (end_stream) s->on_request_end();
        break;
    default:
        break;
    }
    return 0;
}

int Session::on_data_chunk(int32_t id, const uint8_t* data, size_t len) {
    nghttp2_session_consume_connection(ng_, len); // the connection's window is never held up
    if (Stream* s = stream(id))
        s->on_body(data, len);
    else
        nghttp2_session_consume_stream(ng_, id, len);
    return 0;
}

int Session::on_stream_close(int32_t id, uint32_t /*error_code*/) {
    Stream* s = stream(id);
    if (!s) return 0;
    s->on_closed();
    release(*s);
    return 0;
}

int Session::on_frame_send(const nghttp2_frame* frame) {
    // The response ended before the request did: tell the client to stop sending (RFC 9113 8.1).
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        Stream* s = stream(frame->hd.stream_id);
        if (s && !s->request_complete())
            nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, s->id(), NGHTTP2_NO_ERROR);
    }
    return 0;
}

} // namespace gripd::h2
