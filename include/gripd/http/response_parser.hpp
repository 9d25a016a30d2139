// Sans-I/O HTTP/1.1 response parser (backend side) on llhttp: bytes in, events out.
//
// Same strictness as RequestParser (every llhttp leniency off, raw bytes re-checked). Interim 1xx
// responses other than 101 are skipped silently. A 101 is reported and stops parsing (Upgrade).
// Bodies: Content-Length, chunked, or until EOF (completed by finish()); none for 1xx, 204, 304 and
// responses to HEAD (expect_no_body). Transfer-Encoding other than exactly "chunked" is an error.
#pragma once

#include "gripd/http/headers.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace gripd::http {

struct ResponseHead {
    int status = 0;
    std::string reason; // as sent, trimmed (may be empty)
    int version_major = 1, version_minor = 1;
    Headers headers;             // in order, values trimmed
    int64_t content_length = -1; // Content-Length header, -1 when absent (even when no_body)
    bool chunked = false;        // Transfer-Encoding: chunked
    bool keep_alive = true;      // false for Connection: close, HTTP/1.0 without keep-alive, EOF bodies
    bool no_body = false;        // 204, 304, 101 or a HEAD response: no body follows whatever the headers say
};

class ResponseParser {
  public:
    // The handler must not destroy or reset() the parser from inside a callback.
    struct Handler {
        virtual ~Handler() = default;
        virtual void on_response_head(ResponseHead& head) = 0; // handler may std::move from head
        // Decoded body bytes (chunk framing removed), as they arrive; never called with empty data.
        virtual void on_response_body(std::string_view data) = 0;
        virtual void on_response_complete() = 0;
    };
    struct Limits {
        size_t max_header_bytes = 65536;
    };
    enum class State { Ok, Paused, Upgrade, Error };

    ResponseParser(Handler& handler, Limits limits);
    ~ResponseParser();
    ResponseParser(const ResponseParser&) = delete;
    ResponseParser& operator=(const ResponseParser&) = delete;

    // Parses up to len bytes and returns how many were consumed. Parsing stops right after
    // on_response_complete (state Paused); resume() continues with the next response on the
    // connection. After a 101 head the state is Upgrade and the unconsumed bytes belong to the new
    // protocol. Returns 0 unless state() is Ok.
    size_t feed(const char* data, size_t len);
    // Continues after Paused; then feed() the unconsumed bytes (feed(nullptr, 0) when there are none).
    // No effect in the Upgrade state.
    void resume();
    // Callable from inside a handler callback: stop after this callback (state Paused).
    void pause();
    // The next final response answers a HEAD request: no body even with Content-Length or chunked.
    // Cleared automatically when that response completes.
    void expect_no_body(bool on);
    State state() const;
    std::string_view error_message() const; // short text for logs when state() == Error
    // At EOF: completes a close-delimited body (calls on_response_complete, returns true). False if a
    // response was cut short (head incomplete, Content-Length or chunked body unfinished) or after an
    // error; true if no response was in progress.
    bool finish();
    bool in_message() const; // a response started (or only interim ones arrived) but is not complete
    void reset();            // ready for a fresh connection

  private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace gripd::http
