// Subscriber connections: HTTP streams (GET, held open by a Grip-Hold: stream answer) or WebSockets
// (upgrade to ws://, subscribed by the backend), opened at a bounded rate, with every record
// "@<seq>:<ts>\n" they receive reported to the mode.
#pragma once

#include "common.hpp"
#include "http_response.hpp"
#include "publisher.hpp"
#include "ws_client.hpp"

#include <functional>
#include <map>
#include <memory>

namespace rtb {

class SubPool;

struct Sub final : ResponseSink, WsFrameReader::Handler {
    enum class St : uint8_t { Connecting, Waiting, Open, Closed };

    uv_tcp_t tcp{};
    uv_connect_t creq{};
    SubPool* pool = nullptr;
    uint32_t idx = 0;
    St st = St::Connecting;
    ResponseParser parser;
    MsgScanner scan;
    uint32_t received = 0;
    // WebSockets only.
    std::string ws_key; // until the 101 is checked
    WsFrameReader ws;

    bool on_head(int status, bool, std::string_view head) override;
    void on_body(const char* p, size_t n) override;
    void on_end() override;
    void on_ws_data(const char* p, size_t n) override;
    bool on_ws_control(uint8_t opcode, std::string_view payload) override;
    // Stream bodies and WebSocket data carry the same records.
    void scan_records(const char* p, size_t n);
};

class SubPool {
  public:
    using MsgFn = std::function<void(Sub&, uint64_t seq, uint64_t ts, uint64_t now)>;

    // At most `concurrency` connections are connecting or waiting for their response head at once.
    // A connection that fails before its head is replaced by a new attempt while the pool's failures
    // stay within the retry budget (retry_pct percent of the target plus 100). url.ws selects
    // WebSockets.
    SubPool(Url url, std::function<std::string(uint32_t)> channel_of, uint32_t concurrency, double retry_pct)
        : url_(std::move(url)), channel_of_(std::move(channel_of)), concurrency_(concurrency),
          retry_pct_(retry_pct) {}

    MsgFn on_msg;

    // More servers for the subscribers (--also): subscriber i connects to the i-th URL of
    // [url, also...] round robin, so one pool spreads over several instances.
    void add_url(Url u) { also_.push_back(std::move(u)); }
    const Url& url_for(uint32_t idx) const {
        size_t k = also_.empty() ? 0 : idx % (also_.size() + 1);
        return k == 0 ? url_ : also_[k - 1];
    }

    void grow_to(uint32_t n);
    // Every wanted connection has its head, or the retry budget is spent and nothing is in flight.
    bool settled() const { return inflight_ == 0 && (ok_ >= target_ || failed_ > max_failed_); }
    bool is_ws() const { return url_.ws; }
    uint32_t open() const { return ok_ - dropped_; }
    uint32_t ok() const { return ok_; }
    uint32_t failed() const { return failed_; }
    uint32_t dropped() const { return dropped_; }
    uint32_t inflight() const { return inflight_; }
    std::vector<std::unique_ptr<Sub>>& subs() { return subs_; }
    // Time from the last grow_to() to the last response head, and the rate of new heads in it.
    double connect_seconds() const;
    double connect_rate() const;

    std::string top_failure() const { return top(fail_reasons_); }
    std::string top_drop() const { return top(drop_reasons_); }
    // One line: heads received, failed attempts and drops with their most frequent reasons.
    std::string summary() const;
    void progress() const;

    // Sub's events.
    void headed(Sub& s, int status, std::string_view head);
    void lost(Sub& s, const std::string& why);

  private:
    static std::string top(const std::map<std::string, uint32_t>& reasons);
    void pump();
    void start_one();
    void close(Sub& s);
    static void on_connect(uv_connect_t* req, int status);
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);

    Url url_;
    std::vector<Url> also_;
    std::function<std::string(uint32_t)> channel_of_;
    uint32_t concurrency_;
    double retry_pct_;
    uint32_t max_failed_ = 0;
    uint32_t target_ = 0, started_ = 0, ok_ = 0, failed_ = 0, dropped_ = 0, inflight_ = 0;
    uint64_t step_start_ns_ = 0, last_head_ns_ = 0;
    uint32_t step_base_ok_ = 0;
    std::map<std::string, uint32_t> fail_reasons_, drop_reasons_;
    std::vector<std::unique_ptr<Sub>> subs_;
};

} // namespace rtb
