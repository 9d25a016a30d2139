#include "gripd/http/request_parser.hpp"

#include "gripd/core/strings.hpp"
#include "http/h1_internal.hpp"

#include <cstring>

namespace gripd::http {

using detail::FrameScanner;
using detail::H1Core;

class RequestParser::Impl final : public H1Core {
  public:
    Impl(Handler& handler, Limits limits)
        : H1Core(FrameScanner::Kind::Request, limits.max_header_bytes), handler_(handler), limits_(limits) {}

  protected:
    int on_head() override;
    int on_body(std::string_view data) override {
        handler_.on_request_body(data);
        return maybe_pause();
    }
    int on_complete() override {
        end_message(keep_alive_);
        handler_.on_request_complete();
        pause_requested_ = false;
        state_ = State::Paused;
        return HPE_PAUSED;
    }
    int status_for(llhttp_errno_t err, const char* pos, const char* end) const override;
    bool decline_upgrade() override { return true; }
    const char* check_target() const;
    struct Framing {
        Te te = Te::None;
        bool chunked = false;
        int64_t length = -1; // Content-Length, -1 if none
    };
    int check_head(Framing& f);

  private:
    Handler& handler_;
    Limits limits_;
    bool keep_alive_ = true; // of the current request
};

// The checks on a parsed head before it is handed on: version, method, target, framing (RFC 9112
// §6), Host. 0 if it passes (with its framing in `f`), else the result of fail().
int RequestParser::Impl::check_head(Framing& f) {
    const int major = parser_.http_major;
    const int minor = parser_.http_minor;
    if (major != 1) return fail(505, "HTTP version not supported");
    // CONNECT asks for a tunnel, which a backend could open after a 2xx while gripd goes on reading
    // HTTP from that connection: refused (Pushpin forwards it as a plain request).
    if (method_ == "CONNECT") return fail(501, "CONNECT not supported");
    if (start_text_.empty()) return fail(400, "empty request target");

    if (headers_.size() > limits_.max_headers) return fail(431, "too many header fields");
    if (const char* bad = check_target()) return fail(400, bad);

    f.te = transfer_encoding();
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing.
    if (f.te != Te::None && minor == 0) return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (f.te == Te::Invalid) return fail(400, "invalid Transfer-Encoding");
    if (f.te == Te::Unsupported) return fail(501, "unsupported transfer coding");
    f.chunked = (parser_.flags & F_CHUNKED) != 0;
    if (f.chunked != (f.te == Te::Chunked)) return fail(400, "invalid Transfer-Encoding");
    if (!content_length(f.length)) return fail(400, "Content-Length too large");
    if (f.chunked && f.length >= 0) return fail(400, "Content-Length with Transfer-Encoding");

    size_t hosts = headers_.get_all("host").size();
    if (hosts > 1) return fail(400, "repeated Host header");
    if (hosts == 0 && minor >= 1 && limits_.require_host) return fail(400, "missing Host header");
    return 0;
}

int RequestParser::Impl::on_head() {
    Framing f;
    if (int r = check_head(f); r != 0) return r;
    const int major = parser_.http_major;
    const int minor = parser_.http_minor;
    const Te te = f.te;
    const bool chunked = f.chunked;
    const int64_t length = f.length;

    RequestHead head;
    head.method = std::move(method_);
    method_.clear();
    head.target = std::move(start_text_);
    start_text_.clear();
    head.version_major = major;
    head.version_minor = minor;
    head.content_length = length;
    head.chunked = chunked;
    const bool close = headers_.has_token("connection", "close");
    if (minor >= 1)
        head.keep_alive = !close;
    else // RFC 9112 §6.1: a 1.0 message with Transfer-Encoding must not be followed by another.
        head.keep_alive = !close && headers_.has_token("connection", "keep-alive") && te == Te::None;
    head.keep_alive = head.keep_alive && llhttp_should_keep_alive(&parser_) != 0;
    if (minor >= 1)
        for (auto v : headers_.get_list("expect"))
            if (core::iequals(v, "100-continue")) head.expect_continue = true;
    head.upgrade = headers_.has_token("connection", "upgrade") && headers_.has("upgrade");
    parser_.upgrade = head.upgrade ? 1 : 0;
    keep_alive_ = head.keep_alive;
    body_chunked_ = chunked;
    head.headers = std::move(headers_);
    headers_.clear();

    const bool upgrade = head.upgrade;
    handler_.on_request_head(head);
    if (upgrade) {
        pause_requested_ = false;
        state_ = State::Upgrade;
        in_message_ = false; // unless resume() declines the upgrade
        return HPE_PAUSED;
    }
    return maybe_pause();
}

// RFC 9112 §3.2: origin-form ("/path"), absolute-form ("http://host/path") or, for OPTIONS only,
// asterisk-form; authority-form belongs to CONNECT, which is refused. An absolute-form target's
// authority must be the Host header's value (§3.2.2 lets it override Host; requiring equality means
// routing, which goes by Host, and the backend, which may go by either, can never disagree).
const char* RequestParser::Impl::check_target() const {
    std::string_view t = start_text_;
    if (t.front() == '/') return nullptr;
    if (t == "*") return method_ == "OPTIONS" ? nullptr : "asterisk-form target outside OPTIONS";
    size_t scheme = core::istarts_with(t, "http://") ? 7 : core::istarts_with(t, "https://") ? 8 : 0;
    if (scheme == 0) return "invalid request target";
    std::string_view authority = t.substr(scheme, t.find_first_of("/?#", scheme) - scheme);
    if (authority.empty() || authority.find('@') != std::string_view::npos)
        return "invalid authority in request target";
    const std::string* host = headers_.get("host");
    if (host && !core::iequals(*host, authority)) return "Host does not match the request target";
    return nullptr;
}

int RequestParser::Impl::status_for(llhttp_errno_t err, const char*, const char*) const {
    // llhttp never sees the method (H1Core::feed gives it a stand-in), so no method error comes here.
    switch (err) {
    case HPE_INVALID_VERSION: {
        const char* reason = llhttp_get_error_reason(&parser_);
        return reason != nullptr && std::strcmp(reason, "Invalid HTTP version") == 0 ? 505 : 400;
    }
    case HPE_PAUSED_H2_UPGRADE:
        return 505;
    default:
        return 400;
    }
}

RequestParser::RequestParser(Handler& handler, Limits limits)
    : impl_(std::make_unique<Impl>(handler, limits)) {}

RequestParser::~RequestParser() = default;

size_t RequestParser::feed(const char* data, size_t len) {
    return impl_->feed(data, len);
}

void RequestParser::resume() {
    impl_->resume();
}

void RequestParser::pause() {
    impl_->pause();
}

RequestParser::State RequestParser::state() const {
    return static_cast<State>(impl_->state());
}

int RequestParser::error_status() const {
    return impl_->error_status();
}

std::string_view RequestParser::error_message() const {
    return impl_->error_message();
}

bool RequestParser::finish() {
    return impl_->state() != H1Core::State::Error && !impl_->in_message();
}

bool RequestParser::in_message() const {
    return impl_->in_message();
}

void RequestParser::reset() {
    impl_->reset();
}

} // namespace gripd::http
