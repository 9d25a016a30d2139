#include "http/h1_internal.hpp"

#include "gripd/core/strings.hpp"

#include <algorithm>
#include <limits>

namespace gripd::http::detail {

namespace {

bool is_hex(unsigned char c, unsigned& value) {
    if (c >= '0' && c <= '9') {
        value = c - '0';
        return true;
    }
    c = static_cast<unsigned char>(c | 0x20);
    if (c >= 'a' && c <= 'f') {
        value = c - 'a' + 10;
        return true;
    }
    return false;
}

// Field-value bytes: HTAB, SP, VCHAR, obs-text.
bool is_field_byte(unsigned char c) {
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

constexpr std::string_view kProto = "HTTP/";

} // namespace

bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

// ---- FrameScanner ----

FrameScanner::FrameScanner(Kind kind, size_t max_head_bytes) : kind_(kind), max_head_(max_head_bytes) {}

void FrameScanner::start_message() {
    state_ = S::LeadStart;
    trailers_ = false;
    head_bytes_ = 0;
    spaces_ = 0;
    prev_space_ = false;
    line_bytes_ = 0;
    proto_pos_ = 0;
    major_ = 0;
}

void FrameScanner::begin_chunked() {
    state_ = S::ChunkSizeStart;
    line_bytes_ = 0;
    chunk_digits_ = 0;
    chunk_left_ = 0;
}

void FrameScanner::begin_opaque() {
    state_ = S::Opaque;
}

FrameScanner::Result FrameScanner::fail(size_t used, int status, const char* message) {
    state_ = S::Failed;
    error_status_ = status;
    error_message_ = message;
    return {used, Event::Error};
}

// One byte of the request line or status line (not CR or LF); false if it is invalid.
bool FrameScanner::start_line_byte(unsigned char c) {
    if (kind_ == Kind::Response) {
        // status-line = HTTP-version SP status-code SP [ reason-phrase ]; llhttp checks the rest.
        if (line_bytes_ < kProto.size() && c != static_cast<unsigned char>(kProto[line_bytes_])) return false;
        ++line_bytes_;
        return is_field_byte(c);
    }
    // request-line = method SP request-target SP HTTP-version, single spaces, no HTAB.
    ++line_bytes_;
    if (c == ' ') {
        if (prev_space_ || line_bytes_ == 1 || ++spaces_ > 2) return false;
        prev_space_ = true;
        return true;
    }
    prev_space_ = false;
    if (spaces_ == 0) return is_tchar(c); // method = token (RFC 9110 §9.1)
    if (c < 0x21 || c == 0x7f) return false;
    if (spaces_ == 2) {
        // HTTP-version = "HTTP/" DIGIT "." DIGIT
        size_t at = proto_pos_++;
        if (at < kProto.size()) return c == static_cast<unsigned char>(kProto[at]);
        if (at == kProto.size()) major_ = c;
        if (at == kProto.size() + 1) return c == '.';
        return at <= kProto.size() + 2 && c >= '0' && c <= '9';
    }
    return true;
}

// The status and message for a head or trailer section over max_head_.
const char* FrameScanner::section_error_status(int& status) const {
    if (trailers_) {
        status = kind_ == Kind::Request ? 431 : 502;
        return "trailer section too large";
    }
    if (kind_ == Kind::Response) {
        status = 502;
        return "response header section too large";
    }
    if (state_ == S::StartLine || state_ == S::StartLineLf) {
        status = 414;
        return "request line too long";
    }
    status = 431;
    return "request header fields too large";
}

FrameScanner::Result FrameScanner::scan(const char* data, size_t len) {
    if (state_ == S::Failed) return {0, Event::Error};
    if (state_ == S::Opaque) return {len, Event::None};
    const auto* p = reinterpret_cast<const unsigned char*>(data);
    size_t i = 0;
    Result stop{0, Event::None};
    while (i < len) {
        if (state_ == S::ChunkData) {
            size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_left_, len - i));
            i += n;
            chunk_left_ -= n;
            if (chunk_left_ == 0) state_ = S::ChunkDataCr;
            continue;
        }
        unsigned char c = p[i];
        if (state_ <= S::FinalLf && ++head_bytes_ > max_head_) {
            int status = 0;
            const char* message = section_error_status(status);
            return fail(i, status, message);
        }
        bool stopped = state_ <= S::StartLine ? start_line_step(c, i, stop)
                       : state_ <= S::FinalLf ? field_step(c, i, stop)
                                              : chunk_step(c, i, stop);
        if (stopped) return stop;
        ++i;
    }
    return {len, Event::None};
}

// fail(), for the step functions: the result goes to `out`; returns true (stop scanning).
bool FrameScanner::fail_into(Result& out, size_t used, int status, const char* message) {
    out = fail(used, status, message);
    return true;
}

// Leading empty lines and the start line (up to its CR). True to stop with `out`.
bool FrameScanner::start_line_step(unsigned char c, size_t i, Result& out) {
    switch (state_) {
    case S::LeadStart:
        if (c == '\r') {
            state_ = S::LeadLf;
            return false;
        }
        state_ = S::StartLine;
        if (c == '\n' || !start_line_byte(c))
            return fail_into(out, i, 400,
                             kind_ == Kind::Request ? "invalid request line" : "invalid status line");
        return false;
    case S::LeadLf:
        if (c != '\n') return fail_into(out, i, 400, "bare CR");
        state_ = S::LeadStart;
        return false;
    default: // S::StartLine
        if (c == '\r') {
            if (kind_ == Kind::Request && (spaces_ != 2 || prev_space_ || proto_pos_ != kProto.size() + 3))
                return fail_into(out, i, 400, "invalid request line");
            // llhttp accepts HTTP/0.9 and HTTP/2.0 (and the HTTP/2 preface): not ours.
            if (kind_ == Kind::Request && major_ != '1')
                return fail_into(out, i, 505, "HTTP version not supported");
            state_ = S::StartLineLf;
        } else if (c == '\n') {
            return fail_into(out, i, 400, "bare LF");
        } else if (!start_line_byte(c)) {
            return fail_into(out, i, 400,
                             kind_ == Kind::Request ? "invalid request line" : "invalid status line");
        } else if (kind_ == Kind::Request && c == ' ' && spaces_ == 1) {
            out = {i + 1, Event::MethodEnd};
            return true;
        }
        return false;
    }
}

// The header (or trailer) fields and the empty line that ends them. True to stop with `out`.
bool FrameScanner::field_step(unsigned char c, size_t i, Result& out) {
    switch (state_) {
    case S::StartLineLf:
    case S::FieldValueLf:
        if (c != '\n') return fail_into(out, i, 400, "bare CR");
        state_ = S::FieldStart;
        return false;
    case S::FieldStart:
        if (c == '\r') {
            state_ = S::FinalLf;
        } else if (c == ' ' || c == '\t') {
            return fail_into(out, i, 400, "obs-fold not allowed");
        } else if (c == '\n') {
            return fail_into(out, i, 400, "bare LF");
        } else if (!is_tchar(c)) {
            return fail_into(out, i, 400, "invalid header name");
        } else {
            state_ = S::FieldName;
        }
        return false;
    case S::FieldName:
        if (c == ':') {
            state_ = S::FieldValue;
        } else if (!is_tchar(c)) {
            return fail_into(out, i, 400, "invalid header name");
        }
        return false;
    case S::FieldValue:
        if (c == '\r') {
            state_ = S::FieldValueLf;
        } else if (c == '\n') {
            return fail_into(out, i, 400, "bare LF");
        } else if (!is_field_byte(c)) {
            return fail_into(out, i, 400, "invalid header value");
        }
        return false;
    default: // S::FinalLf
        if (c != '\n') return fail_into(out, i, 400, "bare CR");
        // Opaque until start_message() (after trailers), or begin_chunked()/begin_opaque()/start_message().
        state_ = S::Opaque;
        out = {i + 1, trailers_ ? Event::MessageEnd : Event::HeadEnd};
        return true;
    }
}

// Chunked framing outside the chunk data itself. True to stop with `out`.
bool FrameScanner::chunk_step(unsigned char c, size_t i, Result& out) {
    switch (state_) {
    case S::ChunkSizeStart:
    case S::ChunkSize: {
        unsigned d = 0;
        if (is_hex(c, d)) {
            if (++chunk_digits_ > 16) return fail_into(out, i, 400, "chunk size too large");
            chunk_left_ = chunk_left_ * 16 + d;
            state_ = S::ChunkSize;
        } else if (state_ == S::ChunkSize && c == ';') {
            state_ = S::ChunkExt;
            line_bytes_ = chunk_digits_ + 1;
        } else if (state_ == S::ChunkSize && c == '\r') {
            state_ = S::ChunkSizeLf;
        } else {
            return fail_into(out, i, 400, "invalid chunk size");
        }
        return false;
    }
    case S::ChunkExt:
        if (c == '\r') {
            state_ = S::ChunkSizeLf;
        } else if (!is_field_byte(c)) {
            return fail_into(out, i, 400, "invalid chunk extension");
        } else if (++line_bytes_ > kMaxChunkLine) {
            return fail_into(out, i, 400, "chunk extension too long");
        }
        return false;
    case S::ChunkSizeLf:
        if (c != '\n') return fail_into(out, i, 400, "expected LF after chunk size");
        chunk_digits_ = 0;
        if (chunk_left_ == 0) {
            trailers_ = true;
            head_bytes_ = 0;
            state_ = S::FieldStart;
        } else {
            state_ = S::ChunkData;
        }
        return false;
    case S::ChunkDataCr:
        if (c != '\r') return fail_into(out, i, 400, "expected CRLF after chunk data");
        state_ = S::ChunkDataLf;
        return false;
    case S::ChunkDataLf:
        if (c != '\n') return fail_into(out, i, 400, "expected CRLF after chunk data");
        state_ = S::ChunkSizeStart;
        chunk_left_ = 0;
        return false;
    default:
        return false; // ChunkData, Opaque, Failed: handled in scan()
    }
}

// ---- H1Core ----

H1Core::H1Core(FrameScanner::Kind kind, size_t max_head_bytes) : kind_(kind), scanner_(kind, max_head_bytes) {
    init_llhttp();
}

const llhttp_settings_t* H1Core::settings() {
    static const llhttp_settings_t s = [] {
        llhttp_settings_t v;
        llhttp_settings_init(&v);
        v.on_message_begin = cb_message_begin;
        v.on_url = cb_start_text;
        v.on_status = cb_start_text;
        v.on_header_field = cb_header_field;
        v.on_header_value = cb_header_value;
        v.on_header_value_complete = cb_header_value_complete;
        v.on_headers_complete = cb_headers_complete;
        v.on_body = cb_body;
        v.on_message_complete = cb_message_complete;
        return v;
    }();
    return &s;
}

void H1Core::init_llhttp() {
    llhttp_init(&parser_, kind_ == FrameScanner::Kind::Request ? HTTP_REQUEST : HTTP_RESPONSE, settings());
    // Every leniency off, including LENIENT_VERSION which has no setter in 8.1.
    llhttp_set_lenient_headers(&parser_, 0);
    llhttp_set_lenient_chunked_length(&parser_, 0);
    llhttp_set_lenient_keep_alive(&parser_, 0);
    llhttp_set_lenient_transfer_encoding(&parser_, 0);
    parser_.lenient_flags = 0;
    parser_.data = this;
}

void H1Core::reset() {
    init_llhttp();
    scanner_.start_message();
    headers_.clear();
    start_text_.clear();
    method_.clear();
    field_.clear();
    value_.clear();
    state_ = State::Ok;
    body_chunked_ = false;
    in_message_ = false;
    pause_requested_ = false;
    closed_ = false;
    head_done_ = false;
    error_status_ = 0;
    error_message_ = "";
}

int H1Core::fail(int status, const char* message) {
    state_ = State::Error;
    error_status_ = status;
    error_message_ = message;
    llhttp_set_error_reason(&parser_, message);
    return HPE_USER;
}

int H1Core::maybe_pause() {
    if (!pause_requested_) return 0;
    pause_requested_ = false;
    if (state_ == State::Ok) state_ = State::Paused;
    return HPE_PAUSED;
}

void H1Core::end_message(bool keep_alive) {
    // llhttp_should_keep_alive() is true with F_CONNECTION_KEEP_ALIVE, without F_CONNECTION_CLOSE and
    // when the message does not need EOF, which F_SKIPBODY guarantees (trailers such as
    // "Transfer-Encoding: gzip" change the flags it looks at). llhttp clears the flags right after.
    if (keep_alive)
        parser_.flags = static_cast<uint16_t>((parser_.flags | F_CONNECTION_KEEP_ALIVE | F_SKIPBODY) &
                                              ~F_CONNECTION_CLOSE);
    else
        closed_ = true;
}

void H1Core::pause() {
    // Inside a callback the hook returns HPE_PAUSED; outside, the next feed() consumes nothing.
    pause_requested_ = true;
}

void H1Core::resume() {
    pause_requested_ = false;
    if (state_ == State::Paused) {
        llhttp_resume(&parser_);
        state_ = State::Ok;
    } else if (state_ == State::Upgrade && decline_upgrade()) {
        parser_.upgrade = 0; // llhttp must not stop at the end of the message either
        llhttp_resume(&parser_);
        state_ = State::Ok;
        in_message_ = true;
    }
}

H1Core::Te H1Core::transfer_encoding() const {
    if (!headers_.has("transfer-encoding")) return Te::None;
    auto codings = headers_.get_list("transfer-encoding");
    if (codings.empty() || !core::iequals(codings.back(), "chunked")) return Te::Invalid;
    for (size_t i = 0; i + 1 < codings.size(); ++i)
        if (core::iequals(codings[i], "chunked")) return Te::Invalid;
    return codings.size() == 1 ? Te::Chunked : Te::Unsupported;
}

bool H1Core::content_length(int64_t& out) const {
    out = -1;
    if (!(parser_.flags & F_CONTENT_LENGTH)) return true;
    if (parser_.content_length > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    out = static_cast<int64_t>(parser_.content_length);
    return true;
}

size_t H1Core::execute(const char* data, size_t len) {
    static const char kEmpty = 0;
    if (data == nullptr) data = &kEmpty;
    llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    if (err == HPE_OK) return len;
    const char* pos = llhttp_get_error_pos(&parser_);
    size_t used = pos != nullptr && pos >= data && pos <= data + len ? static_cast<size_t>(pos - data) : len;
    if (err == HPE_PAUSED) {
        if (state_ == State::Ok) state_ = State::Paused;
        return used;
    }
    // fail() already recorded the error (llhttp reports it as HPE_USER or as HPE_CB_* for callbacks
    // whose return value it interprets, like on_headers_complete).
    if (state_ == State::Error) return used;
    state_ = State::Error;
    error_status_ = status_for(err, pos, data + len);
    const char* reason = llhttp_get_error_reason(&parser_);
    error_message_ = reason != nullptr && *reason != '\0' ? reason : llhttp_errno_name(err);
    return used;
}

size_t H1Core::feed(const char* data, size_t len) {
    if (state_ == State::Ok && pause_requested_) {
        pause_requested_ = false;
        state_ = State::Paused;
        llhttp_pause(&parser_);
    }
    size_t off = 0;
    // At least one pass even for len == 0: after resume() llhttp may still owe callbacks (the end of a
    // body-less message paused in on_headers_complete).
    bool first = true;
    while (state_ == State::Ok && (off < len || first)) {
        first = false;
        if (closed_ && off < len) {
            state_ = State::Error;
            error_status_ = kind_ == FrameScanner::Kind::Request ? 400 : 502;
            error_message_ = "data after a Connection: close message";
            break;
        }
        if (scanner_.in_method()) {
            // llhttp 8.1 knows a fixed list of methods and refuses any other token, which a proxy
            // must forward as it is. So it never sees the method: the scanner checks it is a token,
            // method_ keeps it, and llhttp gets a stand-in that means nothing special in a request
            // (GET; CONNECT stays CONNECT so that llhttp reads its authority-form target, and the
            // request parser refuses it). Leading empty lines, which llhttp would skip, are dropped.
            FrameScanner::Result r = scanner_.scan(data + off, len - off);
            const bool ends = r.event == FrameScanner::Event::MethodEnd;
            take_method(data + off, r.used, ends);
            off += r.used;
            if (ends) {
                std::string_view stand_in = method_ == "CONNECT" ? "CONNECT " : "GET ";
                execute(stand_in.data(), stand_in.size()); // on_message_begin only: cannot stop
                if (state_ != State::Ok) break;
                continue;
            }
            if (r.event == FrameScanner::Event::Error) {
                state_ = State::Error;
                error_status_ = scanner_.error_status();
                error_message_ = scanner_.error_message();
            }
            break; // all consumed, or an error
        }
        FrameScanner saved = scanner_;
        FrameScanner::Result r = scanner_.scan(data + off, len - off);
        saw_head_ = saw_complete_ = false;
        size_t used = execute(data + off, r.used);
        if (used < r.used) {
            // llhttp stopped early (pause or error): rescan only what it consumed.
            scanner_ = saved;
            scanner_.scan(data + off, used);
        }
        off += used;
        if (saw_head_) {
            if (body_chunked_)
                scanner_.begin_chunked();
            else
                scanner_.begin_opaque();
        }
        if (saw_complete_) scanner_.start_message();
        if (state_ == State::Error || used < r.used) break;
        if (r.event == FrameScanner::Event::Error) {
            state_ = State::Error;
            error_status_ = scanner_.error_status();
            error_message_ = scanner_.error_message();
            // A response error is always the backend's fault.
            if (kind_ == FrameScanner::Kind::Response) error_status_ = 502;
            break;
        }
        if ((r.event == FrameScanner::Event::HeadEnd && !saw_head_) ||
            (r.event == FrameScanner::Event::MessageEnd && !saw_complete_)) {
            state_ = State::Error;
            error_status_ = kind_ == FrameScanner::Kind::Request ? 400 : 502;
            error_message_ = "message framing mismatch";
            break;
        }
    }
    return off;
}

// Method bytes of data[0, len) (leading CR and LF skipped; `ends`: the last byte is the SP after it).
void H1Core::take_method(const char* data, size_t len, bool ends) {
    if (ends) --len;
    for (size_t i = 0; i < len; ++i)
        if (data[i] != '\r' && data[i] != '\n') {
            method_.append(data + i, len - i); // the scanner allows no CR or LF inside a method
            in_message_ = true;
            break;
        }
}

// ---- llhttp callbacks ----

namespace {
H1Core* core_of(llhttp_t* p) {
    return static_cast<H1Core*>(p->data);
}
} // namespace

int H1Core::cb_message_begin(llhttp_t* p) {
    auto* self = core_of(p);
    self->in_message_ = true;
    self->head_done_ = false;
    self->headers_.clear();
    self->start_text_.clear();
    self->field_.clear();
    self->value_.clear();
    self->body_chunked_ = false;
    return 0;
}

int H1Core::cb_start_text(llhttp_t* p, const char* at, size_t len) {
    core_of(p)->start_text_.append(at, len);
    return 0;
}

int H1Core::cb_header_field(llhttp_t* p, const char* at, size_t len) {
    auto* self = core_of(p);
    if (!self->head_done_) self->field_.append(at, len);
    return 0;
}

int H1Core::cb_header_value(llhttp_t* p, const char* at, size_t len) {
    auto* self = core_of(p);
    if (!self->head_done_) self->value_.append(at, len);
    return 0;
}

int H1Core::cb_header_value_complete(llhttp_t* p) {
    auto* self = core_of(p);
    if (!self->head_done_) self->headers_.add(self->field_, core::trim(self->value_));
    self->field_.clear();
    self->value_.clear();
    return 0;
}

int H1Core::cb_headers_complete(llhttp_t* p) {
    auto* self = core_of(p);
    if (self->head_done_) return 0; // end of trailers
    self->head_done_ = true;
    self->saw_head_ = true;
    self->start_text_ = std::string(core::trim(self->start_text_));
    return self->on_head();
}

int H1Core::cb_body(llhttp_t* p, const char* at, size_t len) {
    if (len == 0) return 0;
    return core_of(p)->on_body(std::string_view(at, len));
}

int H1Core::cb_message_complete(llhttp_t* p) {
    auto* self = core_of(p);
    self->saw_complete_ = true;
    self->in_message_ = false;
    // An idle connection keeps no large buffers from its last message.
    for (std::string* s : {&self->field_, &self->value_, &self->start_text_})
        if (s->capacity() > 256) std::string().swap(*s);
    return self->on_complete();
}

} // namespace gripd::http::detail
