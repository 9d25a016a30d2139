#include "gripd/http/response_parser.hpp"

#include "gripd/core/strings.hpp"
#include "http/h1_internal.hpp"

namespace gripd::http {

using detail::FrameScanner;
using detail::H1Core;

class ResponseParser::Impl final : public H1Core {
  public:
    Impl(Handler& handler, Limits limits)
        : H1Core(FrameScanner::Kind::Response, limits.max_header_bytes), handler_(handler) {}

    void set_expect_no_body(bool on) { expect_no_body_ = on; }
    bool finish();
    void reset_all() {
        reset();
        expect_no_body_ = interim_ = close_delimited_ = false;
        keep_alive_ = true;
    }

  protected:
    int on_head() override;
    int on_body(std::string_view data) override {
        handler_.on_response_body(data);
        return maybe_pause();
    }
    int on_complete() override;
    int status_for(llhttp_errno_t, const char*, const char*) const override { return 502; }
    bool decline_upgrade() override { return false; }

  private:
    Handler& handler_;
    bool expect_no_body_ = false;
    bool interim_ = false;         // the message being parsed is a skipped 1xx
    bool close_delimited_ = false; // the body ends at EOF
    bool keep_alive_ = true;       // of the current response
};

int ResponseParser::Impl::on_head() {
    const int major = parser_.http_major;
    const int minor = parser_.http_minor;
    if (major != 1) return fail(502, "unsupported HTTP version");
    const int status = parser_.status_code;
    if (status < 100) return fail(502, "invalid status code");
    if (status < 200 && status != 101) {
        // Interim response: dropped, and never a body (llhttp would read one given Content-Length).
        interim_ = true;
        parser_.flags |= F_SKIPBODY;
        headers_.clear();
        return 0;
    }

    const bool no_body = expect_no_body_ || status == 204 || status == 304 || status == 101;
    const Te te = transfer_encoding();
    const bool chunked = (parser_.flags & F_CHUNKED) != 0;
    if (!no_body) {
        // A close-delimited body with a coding we cannot remove would reach the client mangled.
        if (te == Te::Invalid || te == Te::Unsupported) return fail(502, "unsupported Transfer-Encoding");
        if (chunked != (te == Te::Chunked)) return fail(502, "invalid Transfer-Encoding");
    }
    int64_t length = -1;
    if (!content_length(length)) return fail(502, "Content-Length too large");
    if (chunked && length >= 0) return fail(502, "Content-Length with Transfer-Encoding");
    // llhttp 8.1 reads a body for 204/304 given Content-Length; F_SKIPBODY is what a return of 1
    // from on_headers_complete would set.
    if (no_body) parser_.flags |= F_SKIPBODY;

    ResponseHead head;
    head.status = status;
    head.reason = std::move(start_text_);
    start_text_.clear();
    head.version_major = major;
    head.version_minor = minor;
    head.content_length = length;
    head.chunked = chunked;
    head.no_body = no_body;
    const bool close = headers_.has_token("connection", "close");
    if (minor >= 1)
        head.keep_alive = !close;
    else
        head.keep_alive = !close && headers_.has_token("connection", "keep-alive");
    head.keep_alive = head.keep_alive && llhttp_should_keep_alive(&parser_) != 0 && status != 101;
    close_delimited_ = !no_body && !chunked && length < 0;
    keep_alive_ = head.keep_alive;
    body_chunked_ = chunked && !no_body;
    head.headers = std::move(headers_);
    headers_.clear();

    handler_.on_response_head(head);
    if (status == 101) {
        pause_requested_ = false;
        state_ = State::Upgrade;
        in_message_ = false;
        return HPE_PAUSED;
    }
    return maybe_pause();
}

int ResponseParser::Impl::on_complete() {
    if (interim_) {
        interim_ = false;
        end_message(true);  // whatever its version and Connection header say
        in_message_ = true; // the final response is still owed
        return 0;
    }
    expect_no_body_ = false;
    close_delimited_ = false;
    end_message(keep_alive_);
    handler_.on_response_complete();
    pause_requested_ = false;
    state_ = State::Paused;
    return HPE_PAUSED;
}

bool ResponseParser::Impl::finish() {
    if (state_ == State::Error) return false;
    if (!in_message_) return true;
    if (!close_delimited_) return false;
    // The body runs to EOF: this is its end. (llhttp_finish would do nothing while paused.)
    close_delimited_ = false;
    in_message_ = false;
    expect_no_body_ = false;
    handler_.on_response_complete();
    if (state_ == State::Ok) state_ = State::Paused;
    return true;
}

ResponseParser::ResponseParser(Handler& handler, Limits limits)
    : impl_(std::make_unique<Impl>(handler, limits)) {}

ResponseParser::~ResponseParser() = default;

size_t ResponseParser::feed(const char* data, size_t len) {
    return impl_->feed(data, len);
}

void ResponseParser::resume() {
    impl_->resume();
}

void ResponseParser::pause() {
    impl_->pause();
}

void ResponseParser::expect_no_body(bool on) {
    impl_->set_expect_no_body(on);
}

ResponseParser::State ResponseParser::state() const {
    return static_cast<State>(impl_->state());
}

std::string_view ResponseParser::error_message() const {
    return impl_->error_message();
}

bool ResponseParser::finish() {
    return impl_->finish();
}

bool ResponseParser::in_message() const {
    return impl_->in_message();
}

void ResponseParser::reset() {
    impl_->reset_all();
}

} // namespace gripd::http
