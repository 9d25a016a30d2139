// What every client mode starts from: --url (http:// streams or ws:// WebSockets) and --publish, a
// subscriber pool, progress lines, and the pool's figures for the RESULT line.
#pragma once

#include "common.hpp"
#include "publisher.hpp"
#include "subscribers.hpp"

#include <memory>

namespace rtb {

struct Client {
    Options opt;
    Url url;
    std::vector<Url> also; // --also: more servers for the subscribers
    Url ctl;
    std::unique_ptr<SubPool> pool;
    uv_timer_t progress_timer{};
    double connect_timeout_ms = 0;

    // Reads the common options; false (after fail()) when they are unusable.
    bool init(bool need_ctl);
    void make_pool(std::function<std::string(uint32_t)> channel_of);
    // Opens subscribers up to n, then calls next(all_settled_in_time).
    void open_subs(uint32_t n, std::function<void(bool)> next);
    void report_pool(const std::string& prefix = "");
    // The publish format the subscribers read.
    Format format() const { return url.ws ? Format::WsMessage : Format::HttpStream; }
};

// Starts client mode M (a Client with start()); it lives until the program ends.
template <class M> void launch(const Options& opt) {
    static std::unique_ptr<M> mode;
    mode = std::make_unique<M>();
    mode->opt = opt;
    mode->start();
}

// The client modes, each in its own file; each runs on g_loop until finish().
void start_held(const Options& opt);
void start_fanout(const Options& opt);
void start_throughput(const Options& opt);
// The GRIP backend (not a client mode): serves until SIGTERM/SIGINT or --max-seconds.
int run_backend(const Options& opt);

} // namespace rtb
