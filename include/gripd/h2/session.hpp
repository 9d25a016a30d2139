// HTTP/2 for clients (RFC 9113), with nghttp2 as a sans-I/O codec on the client connection's own
// loop and socket. A ServerConn hands itself over (h2c prior knowledge, or ALPN "h2" on a TLS
// port) to a Session, an http::Exchange in the connection's raw mode; the Session runs one
// http::Exchange per stream, through the same Service, so the proxy, GRIP holds and the control
// API see a stream as they see an HTTP/1.1 request (http::ClientStream). WebSockets ride on streams
// by RFC 8441 extended CONNECT (the stream hands the WebSocket layer the HTTP/1.1 upgrade it stands
// for, and its DATA frames carry the WebSocket bytes).
//
// Bounds (each a hostile client's most; stated in the README's HTTP/2 section):
//  - streams: kMaxConcurrentStreams open at a time (SETTINGS_MAX_CONCURRENT_STREAMS; nghttp2
//    refuses more); reset storms (CVE-2023-44487) are cut by nghttp2's reset rate limit
//    (kResetBurst, then kResetRate per second) with GOAWAY.
//  - headers: a request's decoded header list is capped at the service's max_header_bytes (431),
//    the HPACK table at kHeaderTableSize, CONTINUATION frames per header block at nghttp2's 8.
//  - control frames: SETTINGS/PING/RST answers nghttp2 has queued are capped at kMaxOutboundAck
//    (a client that floods them without reading is dropped), and a SETTINGS frame at
//    kMaxSettingsEntries entries.
//  - output: the session pulls frames from nghttp2 only while the connection has less than
//    kConnOutHighWater queued; each stream keeps what its flow-control window does not let out,
//    counted as its queued_bytes() (the per-client cap of HTTP/1.1 applies per stream), and a
//    stream that gets no window for the send timeout is reset.
//  - request bodies: at most kInitialWindow bytes beyond what the exchange has taken (windows are
//    opened as it consumes them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace gripd::http {
class Exchange;
class ServerConn;
class Service;
} // namespace gripd::http

namespace gripd::h2 {

constexpr uint32_t kMaxConcurrentStreams = 128;
constexpr uint32_t kInitialWindow = 64 * 1024;
constexpr uint32_t kHeaderTableSize = 4096;
constexpr size_t kMaxOutboundAck = 1000;
constexpr size_t kMaxSettingsEntries = 32;
constexpr uint64_t kResetBurst = 1000;
constexpr uint64_t kResetRate = 33;
constexpr size_t kConnOutHighWater = 256 * 1024;

// An http::H2Factory: takes `conn` over for HTTP/2, serving its streams through `service`.
std::unique_ptr<http::Exchange> start_session(http::ServerConn& conn, http::Service& service);

// The libnghttp2 version gripd runs with (for the startup log).
const char* nghttp2_version_text();

} // namespace gripd::h2
