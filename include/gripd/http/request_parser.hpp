// Sans-I/O HTTP/1.1 request parser (server side) on llhttp: bytes in, events out.
//
// Strict by design (no request smuggling): llhttp runs with every leniency off, and the raw bytes are
// checked again before llhttp sees them (CRLF only, no obs-fold, token header names, chunked framing).
// Rejected: Content-Length with Transfer-Encoding, repeated or non-numeric Content-Length, a
// Transfer-Encoding whose last coding is not chunked (400) or with codings besides chunked (501),
// invalid chunk sizes, a method that is not a token (400; any token is passed on as sent, as Pushpin
// does), CONNECT (501), HTTP versions other than 1.x (505), a header
// section over the limit (431, or 414 while still in the request line), more than max_headers fields
// (431), Transfer-Encoding in an HTTP/1.0 request, a target that is neither origin-form, absolute-form
// (http/https, no userinfo, authority equal to Host) nor "*" for OPTIONS (400).
// Known llhttp 8.1 limitation: chunk extensions must have no whitespace, and an unquoted value is
// only accepted on the last one ("5;a=b;c=d" is refused with 400; "5;a=\"b\";c=d" is fine).
//
// Typical use: feed() what was read; on Paused answer the request, then resume() and feed() the
// unconsumed rest (pipelining). On Error reply error_status() with error_message() and close.
#pragma once

#include "gripd/http/headers.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace gripd::http {

struct RequestHead {
    std::string method;
    std::string target; // request-target as sent ("/path?query" or absolute form)
    int version_major = 1, version_minor = 1;
    Headers headers;             // in order, values trimmed
    int64_t content_length = -1; // -1 when absent
    bool chunked = false;
    bool keep_alive = true;       // from version + Connection header
    bool expect_continue = false; // Expect: 100-continue (HTTP/1.1 only)
    bool upgrade = false;         // Connection: upgrade + Upgrade header present
};

class RequestParser {
  public:
    // The handler must not destroy or reset() the parser from inside a callback.
    struct Handler {
        virtual ~Handler() = default;
        virtual void on_request_head(RequestHead& head) = 0; // handler may std::move from head
        // Decoded body bytes (chunk framing removed), as they arrive; never called with empty data.
        virtual void on_request_body(std::string_view data) = 0;
        virtual void on_request_complete() = 0;
    };
    struct Limits {
        size_t max_header_bytes = 8192; // request line + headers (and, separately, trailers)
        bool require_host = true;       // HTTP/1.1 requests need exactly one Host (RFC 9112 §3.2)
        size_t max_headers = 100;       // header fields in the head (431 beyond)
    };
    enum class State { Ok, Paused, Upgrade, Error };

    RequestParser(Handler& handler, Limits limits);
    ~RequestParser();
    RequestParser(const RequestParser&) = delete;
    RequestParser& operator=(const RequestParser&) = delete;

    // Parses up to len bytes and returns how many were consumed. Parsing stops right after
    // on_request_complete (state Paused) so the caller can answer before a pipelined request is read;
    // resume() continues. For an upgrade request (upgrade == true) parsing stops after the head with
    // state Upgrade; the unconsumed bytes belong to the new protocol. Returns 0 unless state() is Ok.
    size_t feed(const char* data, size_t len);
    // Continues after Paused; then feed() the unconsumed bytes (feed(nullptr, 0) when there are none:
    // a request without body paused in on_request_head completes then). In the Upgrade state it
    // declines the upgrade: the request is parsed on as plain HTTP/1.1 (body, on_request_complete).
    void resume();
    // Callable from inside a handler callback: stop after this callback (state Paused). Outside a
    // callback the next feed() consumes nothing and returns with state Paused.
    void pause();
    State state() const;
    int error_status() const;               // e.g. 400, 431, 414, 501, 505 when state() == Error
    std::string_view error_message() const; // short text for the error response body
    bool finish();                          // at EOF; false if the peer closed mid-message
    bool in_message() const;                // a message started but not complete
    void reset();                           // ready for a fresh connection

  private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace gripd::http
