// Mode throughput: S subscribers on one channel; P publisher connections post back to back (B items
// per request) for D seconds (or at --rate requests/s); then drains. Reports deliveries/s, lost and
// duplicated deliveries (every item carries a sequence number), and delivery latency.
#include "client.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace rtb {

namespace {

struct ThroughputMode : Client {
    std::string channel;
    uint32_t subs = 0, batch = 1, npubs = 1;
    double duration_ms = 0;
    size_t payload = 0;
    std::vector<std::unique_ptr<Pub>> pubs;
    std::vector<uint32_t> counts; // deliveries per seq (seq 0 = warm-up)
    std::vector<uint8_t> acked;   // 1 = publish answered 200
    uint64_t next_seq = 1;
    uint64_t t0 = 0, t_end = 0, t_pub_end = 0, first_delivery = 0, last_delivery = 0;
    double rate = 0;        // publish requests per second over all publishers, 0 = back to back
    uint64_t scheduled = 0; // requests scheduled so far when rate > 0
    uint64_t deliveries = 0, in_window = 0, requests = 0, req_errors = 0, items_acked = 0;
    uint32_t running = 0, expected_per_item = 0;
    std::vector<uint32_t> lat_us;
    int last_bad_status = -1;

    void start() {
        if (!init(true)) return;
        subs = static_cast<uint32_t>(opt.num("subs", 100));
        batch = static_cast<uint32_t>(std::max(1L, opt.num("batch", 1)));
        npubs = static_cast<uint32_t>(std::max(1L, opt.num("publishers", 2)));
        duration_ms = opt.real("duration", 10) * 1000;
        payload = static_cast<size_t>(opt.num("payload", 0));
        rate = opt.real("rate", 0);
        channel = opt.str("channel", "tp-" + std::to_string(getpid()));
        counts.assign(1, 0);
        acked.assign(1, 1);
        lat_us.reserve(1 << 20);
        make_pool([this](uint32_t) { return channel; });
        pool->on_msg = [this](Sub&, uint64_t q, uint64_t ts, uint64_t t) {
            if (q >= counts.size()) return;
            ++counts[q];
            if (q == 0) return;
            ++deliveries;
            if (!first_delivery) first_delivery = t;
            last_delivery = t;
            if (t <= t_end) ++in_window;
            if (lat_us.size() < (1u << 24) && t > ts)
                lat_us.push_back(static_cast<uint32_t>((t - ts) / 1000));
        };
        result("subs", subs);
        result("batch", batch);
        result("publishers", npubs);
        if (rate > 0) result("rate_limit_req_per_s", rate);
        open_subs(subs, [this](bool) {
            report_pool("subs_");
            if (pool->open() == 0) return fail("no subscriber holds a stream: " + pool->summary());
            after_ms(1000, [this] { warmup(); });
        });
    }

    void warmup() {
        pubs.push_back(std::make_unique<Pub>());
        pubs[0]->url = ctl;
        pubs[0]->post(publish_request(ctl, channel, 0, 1, payload, format()), [this](int status) {
            if (status != 200)
                return fail("publish answered " + std::to_string(status) + " (0 = network error)");
            SubPool* p = pool.get();
            wait_until([this, p] { return counts[0] >= p->open(); }, 10000,
                       [this](bool all) {
                           result("warmup_received", counts[0]);
                           if (counts[0] == 0) return fail("warm-up publish reached no subscriber");
                           if (!all) logf("warm-up reached %u of %u subscribers", counts[0], pool->open());
                           run();
                       });
        });
    }

    void run() {
        expected_per_item = pool->open();
        t0 = now_ns();
        t_end = t0 + static_cast<uint64_t>(duration_ms * 1e6);
        for (uint32_t i = 1; i < npubs; ++i) {
            pubs.push_back(std::make_unique<Pub>());
            pubs.back()->url = ctl;
        }
        running = npubs;
        for (auto& p : pubs)
            post_next(*p);
    }

    void post_next(Pub& p) {
        uint64_t t = now_ns();
        if (t >= t_end || g_finished) {
            if (--running == 0) drain();
            return;
        }
        if (rate > 0) {
            uint64_t due = t0 + static_cast<uint64_t>(static_cast<double>(scheduled) * 1e9 / rate);
            if (due > t) {
                after_ms((due - t) / 1e6, [this, &p] { send_next(p); });
                ++scheduled;
                return;
            }
            ++scheduled;
        }
        send_next(p);
    }

    void send_next(Pub& p) {
        uint64_t first = next_seq;
        next_seq += batch;
        counts.resize(next_seq, 0);
        acked.resize(next_seq, 0);
        ++requests;
        p.post(publish_request(ctl, channel, first, batch, payload, format()), [this, &p, first](int status) {
            if (status == 200) {
                for (uint64_t q = first; q < first + batch; ++q)
                    acked[q] = 1;
                items_acked += batch;
            } else {
                ++req_errors;
                last_bad_status = status;
                if (req_errors > 1000 && items_acked == 0)
                    return fail("publishes keep failing, status " + std::to_string(status));
            }
            post_next(p);
        });
    }

    void drain() {
        t_pub_end = now_ns();
        uint64_t target = items_acked * expected_per_item;
        double max_ms = opt.real("drain", 15) * 1000;
        wait_until(
            [this, target] {
                return deliveries >= target ||
                       (last_delivery && now_ns() - std::max(last_delivery, t_pub_end) > 2000000000ull);
            },
            max_ms, [this](bool) { report(); });
    }

    void report() {
        uint64_t expected = 0, got_acked = 0, dup = 0, unacked_delivered = 0;
        for (size_t q = 1; q < counts.size(); ++q) {
            if (acked[q]) {
                expected += expected_per_item;
                got_acked += std::min(counts[q], expected_per_item);
                if (counts[q] > expected_per_item) dup += counts[q] - expected_per_item;
            } else {
                unacked_delivered += counts[q];
            }
        }
        double d_s = duration_ms / 1000.0;
        double total_s = (std::max(last_delivery, t_pub_end) - t0) / 1e9;
        std::vector<double> lat(lat_us.begin(), lat_us.end());
        // pct() sorts a copy; sort once here instead for the three figures.
        std::sort(lat.begin(), lat.end());
        auto at = [&](double p) {
            if (lat.empty()) return 0.0;
            size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * lat.size()));
            return lat[std::min(lat.size() - 1, rank == 0 ? 0 : rank - 1)] / 1000.0;
        };
        result("duration_s", fmt2(d_s));
        result("publish_requests", requests);
        result("publish_errors", req_errors);
        if (last_bad_status >= 0) result("last_bad_status", last_bad_status);
        result("pub_req_per_s", fmt2(requests / d_s));
        result("items_acked", items_acked);
        result("items_per_s", fmt2(items_acked / d_s));
        result("deliveries", deliveries);
        result("deliveries_per_s", fmt2(total_s > 0 ? deliveries / total_s : 0));
        result("deliveries_per_s_in_window", fmt2(in_window / d_s));
        result("first_delivery_ms", fmt2(first_delivery ? (first_delivery - t0) / 1e6 : -1));
        result("expected", expected);
        result("lost", expected - got_acked);
        result("lost_pct", fmt2(expected ? 100.0 * static_cast<double>(expected - got_acked) / expected : 0));
        result("dups", dup);
        result("unacked_delivered", unacked_delivered);
        result("drain_s", fmt2((std::max(last_delivery, t_pub_end) - t_pub_end) / 1e9));
        result("lat_p50_ms", fmt2(at(50)));
        result("lat_p99_ms", fmt2(at(99)));
        result("lat_max_ms", fmt2(at(100)));
        result("subs_dropped", pool->dropped());
        finish(expected == got_acked ? "ok" : "partial", 0);
    }
};

} // namespace

void start_throughput(const Options& opt) {
    launch<ThroughputMode>(opt);
}

} // namespace rtb
