// ClientStream: the client side of one request, as the code that answers it (an Exchange: a proxy
// session, a GRIP hold, a WebSocket session, the control API) sees it. An HTTP/1.1 connection
// (http::ServerConn) is one; an HTTP/2 stream (h2::Stream) is another. The exchange writes its
// response here and never learns which protocol carries it, so every GRIP feature works the same
// on both. Owned by the connection (or HTTP/2 session); an exchange keeps it only until
// Exchange::on_client_gone.
#pragma once

#include "gripd/http/headers.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace gripd::http {

class Exchange;

class ClientStream {
  public:
    ClientStream() = default;
    ClientStream(const ClientStream&) = delete;
    ClientStream& operator=(const ClientStream&) = delete;

    // Sends the status and headers. content_length < 0 means unknown (chunked on HTTP/1.1, DATA
    // frames until END_STREAM on HTTP/2). Framing and hop-by-hop headers in `headers` are ignored;
    // the stream writes its own. Returns false if the stream is closing.
    virtual bool send_head(int status, std::string_view reason, const Headers& headers,
                           int64_t content_length) = 0;
    // Body bytes. `keep` (shared, immutable bytes) is as in net::TcpConn::write.
    virtual bool send_body(std::string_view data, const std::shared_ptr<const void>& keep = {}) = 0;
    // Bytes already framed for this stream's protocol, sent verbatim: HTTP/1.1 chunks or whole
    // responses (only when is_http1()), or a protocol's bytes after enter_raw_mode().
    virtual bool send_raw(std::string_view data, const std::shared_ptr<const void>& keep = {}) = 0;
    // Ends the response; the exchange is deleted after the current callback.
    virtual void end_response() = 0;
    // Replaces the current exchange (the old one is deleted after the current callback).
    virtual void set_exchange(std::unique_ptr<Exchange> next) = 0;
    // Ends the response abnormally: the client sees a truncated response (a closed connection on
    // HTTP/1.1, RST_STREAM on HTTP/2).
    virtual void abort_response() = 0;
    // Like abort_response(), for a client that stopped reading: what is queued for it is dropped.
    virtual void cut_off() = 0;
    // Ends the response once what is queued went out, and then the stream (HTTP/1.1: the
    // connection) too.
    virtual void close_after_flush() = 0;
    // Protocol upgrade hand-off (see ServerConn::enter_raw_mode).
    virtual void enter_raw_mode() = 0;
    // Backpressure on the request body.
    virtual void pause_request_body() = 0;
    virtual void resume_request_body() = 0;

    virtual bool is_chunked_response() const = 0;
    virtual bool request_is_head() const = 0;
    virtual bool request_complete() const = 0;
    virtual bool response_started() const = 0;
    virtual bool client_keep_alive() const = 0;
    virtual const std::string& peer() const = 0;
    // Output accepted for this client that it has not taken yet (the cap on a slow consumer).
    virtual size_t queued_bytes() const = 0;
    virtual bool is_closing() const = 0;
    virtual bool is_tls() const = 0;
    // Whether the client speaks HTTP/1.x, so that pre-rendered HTTP/1.1 bytes (a whole held
    // response, chunks) can go out through send_raw as they are.
    virtual bool is_http1() const { return true; }
    // The id of this request's `conn` stats events (stats_spec set), "" otherwise. A WebSocket
    // session keeps it: the command socket's `refresh` finds the session by it, as Pushpin does.
    virtual const std::string& stats_conn_id() const {
        static const std::string none;
        return none;
    }

    // Convenience: a complete response with a small body (e.g. errors).
    void respond(int status, std::string_view reason, const Headers& headers, std::string_view body) {
        send_head(status, reason, headers, static_cast<int64_t>(body.size()));
        send_body(body);
        end_response();
    }
    void respond_text(int status, std::string_view body) {
        Headers h;
        h.add("Content-Type", "text/plain");
        respond(status, {}, h, body);
    }

  protected:
    ~ClientStream() = default;
};

} // namespace gripd::http
