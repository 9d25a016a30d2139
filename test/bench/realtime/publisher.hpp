// What the benchmarks publish and how subscribers find it again: publish requests for the control
// API, a keep-alive client that posts them, and a scanner for the records they carry.
//
// Published content is "@<seq>:<send time ns>\n" (plus optional padding up to --payload bytes), in
// the http-stream format for HTTP streams and the ws-message format (one text message per item) for
// WebSockets.
#pragma once

#include "common.hpp"
#include "http_response.hpp"

#include <cstring>
#include <functional>

namespace rtb {

enum class Format : uint8_t { HttpStream, WsMessage };

// A POST /publish/ request with `count` items numbered from first_seq, all on `channel`.
std::string publish_request(const Url& ctl, const std::string& channel, uint64_t first_seq, uint32_t count,
                            size_t payload, Format format);

// One keep-alive connection to the control API, one request at a time; reconnects when the server
// closes.
struct Pub final : ResponseSink {
    enum class St : uint8_t { Idle, Connecting, Ready, Busy, Closing };
    using DoneFn = std::function<void(int status)>;

    Url url;
    uv_tcp_t tcp{};
    uv_connect_t creq{};
    St st = St::Idle;
    ResponseParser parser;
    std::string pending;
    DoneFn done;
    int status = 0;
    bool server_close = false;
    uint32_t connects = 0;

    // Sends one request; done(status) is called once with the HTTP status, or 0 on a network error.
    void post(std::string request, DoneFn cb);

    bool on_head(int s, bool close, std::string_view) override;
    void on_body(const char*, size_t) override {}
    void on_end() override;

  private:
    void complete(int s);
    void connect();
    void send();
    void shut();
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
};

// Finds "@<seq>:<ts>\n" records in a byte stream (records may be split across reads and frames).
struct MsgScanner {
    uint8_t st = 0; // 0 looking for '@', 1 in seq, 2 in ts
    uint64_t seq = 0;
    uint64_t ts = 0;

    template <class F> void feed(const char* p, size_t n, F&& on_msg) {
        const char* end = p + n;
        while (p < end) {
            if (st == 0) {
                p = static_cast<const char*>(std::memchr(p, '@', static_cast<size_t>(end - p)));
                if (!p) return;
                ++p;
                st = 1;
                seq = 0;
                continue;
            }
            char c = *p++;
            bool digit = c >= '0' && c <= '9';
            if (st == 1) {
                if (digit) {
                    seq = seq * 10 + static_cast<uint64_t>(c - '0');
                } else if (c == ':') {
                    st = 2;
                    ts = 0;
                } else {
                    st = 0;
                }
            } else {
                if (digit) {
                    ts = ts * 10 + static_cast<uint64_t>(c - '0');
                } else {
                    if (c == '\n') on_msg(seq, ts);
                    st = 0;
                }
            }
        }
    }
};

} // namespace rtb
