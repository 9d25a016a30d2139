// Mode fanout: N subscribers (HTTP streams, or WebSockets with a ws:// URL) on one channel. One
// uncounted warm-up publish checks that every subscription is live, then --messages publishes, one
// at a time, --gap ms apart. For each publish: time from send to the first and to the last
// subscriber having it. Reports p50/p99, missed deliveries and subscribers that missed any.
#include "client.hpp"

#include <unistd.h>

#include <algorithm>

namespace rtb {

namespace {

struct FanoutMode : Client {
    struct Rec {
        uint64_t sent = 0, first = 0, last = 0;
        uint32_t count = 0;
    };
    std::string channel;
    uint32_t subs = 0, messages = 0;
    double gap_ms = 0, msg_timeout_ms = 0;
    size_t payload = 0;
    std::vector<Rec> recs; // index 0: warm-up
    uint32_t seq = 0;
    uint64_t dups = 0;
    std::vector<double> lat_last_ms, lat_first_ms;
    uint32_t incomplete = 0;
    Pub pub;

    void start() {
        if (!init(true)) return;
        subs = static_cast<uint32_t>(opt.num("subs", 10000));
        messages = static_cast<uint32_t>(opt.num("messages", 20));
        gap_ms = opt.real("gap", 200);
        msg_timeout_ms = opt.real("msg-timeout", 10) * 1000;
        payload = static_cast<size_t>(opt.num("payload", 0));
        channel = opt.str("channel", "fanout-" + std::to_string(getpid()));
        pub.url = ctl;
        recs.resize(messages + 1);
        make_pool([this](uint32_t) { return channel; });
        pool->on_msg = [this](Sub& s, uint64_t q, uint64_t, uint64_t t) {
            if (q >= recs.size()) return;
            Rec& r = recs[q];
            if (r.count == 0) r.first = t;
            r.last = t;
            ++r.count;
            if (q > 0 && s.received >= q) ++dups; // per-subscriber order: seq q is its q-th message
            if (q > 0) ++s.received;
        };
        result("subs", subs);
        result("messages", messages);
        open_subs(subs, [this](bool in_time) {
            report_pool("subs_");
            result("connect_s", fmt2(pool->connect_seconds()));
            result("conns_per_s", fmt2(pool->connect_rate()));
            if (pool->open() == 0) return fail("no subscriber holds a stream: " + pool->summary());
            if (!in_time) logf("not all subscribers answered in time; continuing with %u", pool->open());
            after_ms(1000, [this] { publish(0); });
        });
    }

    void publish(uint32_t q) {
        seq = q;
        recs[q].sent = now_ns();
        pub.post(publish_request(ctl, channel, q, 1, payload, format()), [this, q](int status) {
            if (status != 200)
                return fail("publish answered " + std::to_string(status) + " (0 = network error)");
            SubPool* p = pool.get();
            wait_until([this, p, q] { return recs[q].count >= p->open(); }, msg_timeout_ms,
                       [this, q](bool all) { delivered(q, all); });
        });
    }

    void delivered(uint32_t q, bool all) {
        Rec& r = recs[q];
        if (q == 0) {
            result("warmup_received", r.count);
            if (r.count == 0) return fail("warm-up publish reached no subscriber");
            if (!all) logf("warm-up reached %u of %u subscribers", r.count, pool->open());
        } else {
            if (!all) ++incomplete;
            if (r.count > 0) {
                lat_last_ms.push_back((r.last - r.sent) / 1e6);
                lat_first_ms.push_back((r.first - r.sent) / 1e6);
            }
            logf("publish %u: %u/%u subscribers, first %.2f ms, last %.2f ms", q, r.count, pool->open(),
                 r.count ? (r.first - r.sent) / 1e6 : -1.0, r.count ? (r.last - r.sent) / 1e6 : -1.0);
        }
        if (q == messages) {
            after_ms(1000, [this] { report(); }); // stragglers
            return;
        }
        after_ms(gap_ms, [this, q] { publish(q + 1); });
    }

    void report() {
        uint64_t expected = 0, got = 0;
        uint32_t subs_missing = 0;
        for (auto& s : pool->subs()) {
            if (s->st != Sub::St::Open) continue;
            expected += messages;
            got += std::min(s->received, messages);
            if (s->received < messages) ++subs_missing;
        }
        result("open_at_end", pool->open());
        result("last_p50_ms", fmt2(pct(lat_last_ms, 50)));
        result("last_p99_ms", fmt2(pct(lat_last_ms, 99)));
        result("last_max_ms", fmt2(pct(lat_last_ms, 100)));
        result("first_p50_ms", fmt2(pct(lat_first_ms, 50)));
        result("missed_deliveries", expected - got);
        result("subs_missing_any", subs_missing);
        result("incomplete_publishes", incomplete);
        result("out_of_order_or_dup", dups);
        finish(expected == got ? "ok" : "partial", 0);
    }
};

} // namespace

void start_fanout(const Options& opt) {
    launch<FanoutMode>(opt);
}

} // namespace rtb
