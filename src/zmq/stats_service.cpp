#include "gripd/zmq/stats_service.hpp"

#include "gripd/core/json.hpp"
#include "gripd/core/log.hpp"
#include "gripd/zmq/spec.hpp"
#include "gripd/zmq/tnetstring.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <unistd.h>
#include <zmq.h>

namespace gripd::zmq {

namespace {
constexpr const char* kModes[] = {"response", "stream", "ws"};
constexpr const char* kTransports[] = {"http-response", "http-stream", "ws-message"};

std::string sub_key(uint8_t mode, std::string_view channel) {
    std::string k(1, static_cast<char>('0' + mode));
    k.append(channel);
    return k;
}

// Whether a subscription topic selects `activity` or `message` events (a prefix either way).
bool wants_hot(std::string_view topic) {
    for (std::string_view type : {std::string_view("activity "), std::string_view("message ")}) {
        size_t n = std::min(type.size(), topic.size());
        if (topic.substr(0, n) == type.substr(0, n)) return true;
    }
    return false;
}
} // namespace

// One field of an event: a string, an integer or true.
struct StatsService::Field {
    enum class Kind { Str, Int, True } kind;
    std::string_view key;
    std::string_view str;
    int64_t num = 0;
    static Field s(std::string_view k, std::string_view v) { return {Kind::Str, k, v, 0}; }
    static Field i(std::string_view k, int64_t v) { return {Kind::Int, k, {}, v}; }
    static Field t(std::string_view k) { return {Kind::True, k, {}, 0}; }
};

StatsService::StatsService(const config::Settings& settings, uv_loop_t* loop,
                           std::function<ReportTotals()> totals)
    : settings_(settings), loop_(loop), totals_(std::move(totals)) {
    uv_timer_init(loop_, &activity_timer_);
    uv_timer_init(loop_, &refresh_timer_);
    uv_timer_init(loop_, &report_timer_);
    activity_timer_.data = refresh_timer_.data = report_timer_.data = this;
    json_ = settings_.stats_format == "json";
    conn_refresh_ms_ = static_cast<uint64_t>(std::max(settings_.stats_connection_ttl, 1)) * 1000 * 3 / 4;
    sub_refresh_ms_ = static_cast<uint64_t>(std::max(settings_.stats_subscription_ttl, 1)) * 1000 * 3 / 4;
    // Pushpin's handler says `pushpin-handler_<pid>`; an instance's id is what monitors key on.
    from_ = "gripd_" + std::to_string(getpid());
}

StatsService::~StatsService() {
    stats::g_listening.store(false, std::memory_order_relaxed);
    pub_.reset();
    if (ctx_) zmq_ctx_term(ctx_);
}

bool StatsService::start(std::string* error) {
    ctx_ = zmq_ctx_new();
    if (!ctx_) {
        *error = std::string("ZeroMQ: ") + zmq_strerror(errno);
        return false;
    }
    spec_ = apply_port_offset(settings_.stats_spec, settings_.port_offset);
    pub_ = std::make_unique<Socket>(loop_, ctx_, ZMQ_XPUB, this);
    pub_->set_int(ZMQ_SNDHWM, kSndHwm);
    pub_->set_int(ZMQ_RCVHWM, 0); // subscription messages are never dropped
    pub_->set_int(ZMQ_LINGER, 0);
    std::string e;
    if (!pub_->bind(spec_, &e) || !pub_->start(&e)) {
        *error = "[handler] stats_spec: " + e;
        return false;
    }
    report_start_ = uv_now(loop_);
    last_totals_ = totals_();
    uint64_t report_ms = static_cast<uint64_t>(std::max(settings_.stats_report_interval, 1)) * 1000;
    uv_timer_start(&report_timer_, &StatsService::on_report_timer, report_ms, report_ms);
    LOG_INFO("zmq", "stats: %s", spec_.c_str());
    return true;
}

void StatsService::stop() {
    uv_timer_stop(&activity_timer_);
    uv_timer_stop(&refresh_timer_);
    uv_timer_stop(&report_timer_);
    stats::g_listening.store(false, std::memory_order_relaxed);
    if (pub_) pub_->stop();
}

// ---- subscribers of the PUB socket ----

bool StatsService::on_message(Socket&, const std::vector<std::string_view>& parts, size_t, bool) {
    // XPUB: `\x01topic` subscribes, `\x00topic` unsubscribes (once per topic: libzmq folds repeats).
    if (parts.size() != 1 || parts[0].empty()) return true;
    std::string topic(parts[0].substr(1));
    if (parts[0][0] == 1) {
        ++topics_[topic];
    } else if (parts[0][0] == 0) {
        auto it = topics_.find(topic);
        if (it != topics_.end() && --it->second <= 0) topics_.erase(it);
    }
    update_listening();
    return true;
}

void StatsService::update_listening() {
    bool hot = std::any_of(topics_.begin(), topics_.end(), [](const auto& t) { return wants_hot(t.first); });
    stats::g_listening.store(hot, std::memory_order_relaxed);
}

// ---- events from the workers ----

void StatsService::on_batch(const stats::EventBatch& batch) {
    uint64_t now = uv_now(loop_);
    for (const stats::Event& e : batch.events)
        on_event(e, now);
    arm_refresh(now);
}

// The refresh timer runs only while a connection or subscription is due some time (at its earliest
// due time, at most once per kRefreshMs, which also gathers a burst of count changes into one
// `sub` event): with nothing open, the loop sleeps.
void StatsService::arm_refresh(uint64_t now) {
    uint64_t next = UINT64_MAX;
    if (!conn_due_.empty()) next = conn_due_.begin()->first;
    if (!sub_due_.empty()) next = std::min(next, sub_due_.begin()->first);
    if (next == UINT64_MAX) {
        uv_timer_stop(&refresh_timer_);
        refresh_at_ = 0;
        return;
    }
    next = std::max(next, last_refresh_ + kRefreshMs);
    if (refresh_at_ != 0 && refresh_at_ <= next) return; // it fires soon enough (maybe for nothing)
    refresh_at_ = next;
    uv_timer_start(&refresh_timer_, &StatsService::on_refresh_timer, next > now ? next - now : 0, 0);
}

void StatsService::on_event(const stats::Event& e, uint64_t now) {
    using K = stats::Event::Kind;
    switch (e.kind) {
    case K::Activity:
        if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&activity_timer_)))
            uv_timer_start(&activity_timer_, &StatsService::on_activity_timer, kActivityMs, 0);
        activity_[e.route] += e.count;
        return;
    case K::Message:
        write("message",
              {Field::s("channel", e.key), e.extra.empty() ? Field::s("", "") : Field::s("item-id", e.extra),
               Field::i("count", e.count), Field::s("transport", kTransports[e.mode % 3])});
        return;
    case K::ConnOpen: {
        Conn& c = conns_[e.key];
        c.ws = e.ws;
        c.ssl = e.ssl;
        c.peer = e.extra;
        c.route = e.route;
        c.last_minute = now;
        ++conn_minutes_; // minutes are rounded up: one counts at once, as Pushpin
        conns_peak_ = std::max<int64_t>(conns_peak_, static_cast<int64_t>(conns_.size()));
        schedule_conn(e.key, c, now + conn_refresh_ms_);
        send_conn(e.key, c);
        return;
    }
    case K::ConnClose: {
        auto it = conns_.find(e.key);
        if (it == conns_.end()) return;
        conn_minutes_ += static_cast<int64_t>((now - it->second.last_minute) / 60000);
        conn_due_.erase({it->second.due, e.key});
        std::string route = std::move(it->second.route);
        conns_.erase(it);
        send_disconn(e.key, route);
        return;
    }
    case K::Sub:
    case K::Unsub:
        on_sub_event(e, now);
        return;
    }
}

void StatsService::on_sub_event(const stats::Event& e, uint64_t now) {
    std::string key = sub_key(e.mode, e.key);
    auto it = subs_.find(key);
    if (it == subs_.end()) {
        if (e.kind != stats::Event::Kind::Sub) return;
        it = subs_.emplace(key, Sub{}).first;
        it->second.mode = e.mode;
        it->second.channel = e.key;
    }
    Sub& s = it->second;
    s.count += e.kind == stats::Event::Kind::Sub ? 1 : -1;
    if (s.count > 0) {
        if (!s.announced || s.linger) {
            // New, or back while lingering: announced now, as Pushpin does.
            s.announced = true;
            s.linger = false;
            schedule_sub(key, s, now + sub_refresh_ms_);
            send_sub(s);
        } else {
            schedule_sub(key, s, now); // the count changed: refreshed on the next tick
        }
        return;
    }
    if (s.linger) return;
    if (e.kind == stats::Event::Kind::Unsub && e.linger && settings_.subscription_linger > 0 && s.announced) {
        // The last one was a long-poll: it may come back; unsubscribed after the linger.
        s.linger = true;
        schedule_sub(key, s, now + static_cast<uint64_t>(settings_.subscription_linger) * 1000);
        return;
    }
    sub_due_.erase({s.due, key});
    if (s.announced) send_unsub(s);
    subs_.erase(it);
}

void StatsService::schedule_conn(const std::string& id, Conn& c, uint64_t due) {
    conn_due_.erase({c.due, id});
    c.due = due;
    conn_due_.insert({due, id});
}

void StatsService::schedule_sub(const std::string& key, Sub& s, uint64_t due) {
    sub_due_.erase({s.due, key});
    s.due = due;
    sub_due_.insert({due, key});
}

bool StatsService::refresh_connection(const std::string& id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return false;
    send_conn(id, it->second);
    return true;
}

// Every second: connections and subscriptions due are announced again (or, lingering, dropped).
void StatsService::refresh(uint64_t now) {
    while (!conn_due_.empty() && conn_due_.begin()->first <= now) {
        std::string id = conn_due_.begin()->second;
        conn_due_.erase(conn_due_.begin());
        auto it = conns_.find(id);
        if (it == conns_.end()) continue;
        Conn& c = it->second;
        uint64_t mins = (now - c.last_minute) / 60000;
        conn_minutes_ += static_cast<int64_t>(mins);
        c.last_minute += mins * 60000;
        c.due = now + conn_refresh_ms_;
        conn_due_.insert({c.due, id});
        send_conn(id, c);
    }
    while (!sub_due_.empty() && sub_due_.begin()->first <= now) {
        std::string key = sub_due_.begin()->second;
        sub_due_.erase(sub_due_.begin());
        auto it = subs_.find(key);
        if (it == subs_.end()) continue;
        Sub& s = it->second;
        if (s.linger) {
            send_unsub(s);
            subs_.erase(it);
            continue;
        }
        s.due = now + sub_refresh_ms_;
        sub_due_.insert({s.due, key});
        send_sub(s);
    }
}

void StatsService::flush_activity() {
    for (const auto& [route, count] : activity_)
        write("activity", {route.empty() ? Field::s("", "") : Field::s("route", route),
                           Field::i("count", std::max<int64_t>(count, 0))});
    activity_.clear();
}

void StatsService::report(uint64_t now) {
    // Connections open for whole minutes since the last report count now.
    for (auto& [id, c] : conns_) {
        uint64_t mins = (now - c.last_minute) / 60000;
        conn_minutes_ += static_cast<int64_t>(mins);
        c.last_minute += mins * 60000;
    }
    ReportTotals t = totals_();
    int64_t received = t.received - last_totals_.received;
    int64_t sent = t.sent - last_totals_.sent;
    int64_t response_sent = t.response_sent - last_totals_.response_sent;
    last_totals_ = t;
    bool empty = conns_peak_ == 0 && conn_minutes_ == 0 && received == 0 && sent == 0;
    // As Pushpin: reports while there is something to say, and the one that says it is over.
    if (!empty || reported_any_)
        write("report", {Field::i("connections", conns_peak_), Field::i("minutes", conn_minutes_),
                         Field::i("received", received), Field::i("sent", sent),
                         Field::i("http-response-sent", response_sent),
                         Field::i("duration", static_cast<int64_t>(now - report_start_))});
    reported_any_ = !empty;
    report_start_ = now;
    conns_peak_ = static_cast<int64_t>(conns_.size());
    conn_minutes_ = 0;
}

// ---- writing ----

void StatsService::write(const char* type, const std::vector<Field>& fields) {
    std::string msg(type);
    msg += ' ';
    if (json_) {
        rapidjson::StringBuffer sb;
        rapidjson::Writer<rapidjson::StringBuffer> w(sb);
        w.StartObject();
        w.Key("from");
        w.String(from_.data(), static_cast<rapidjson::SizeType>(from_.size()));
        for (const Field& f : fields) {
            if (f.key.empty()) continue;
            w.Key(f.key.data(), static_cast<rapidjson::SizeType>(f.key.size()));
            if (f.kind == Field::Kind::Str)
                w.String(f.str.data(), static_cast<rapidjson::SizeType>(f.str.size()));
            else if (f.kind == Field::Kind::Int)
                w.Int64(f.num);
            else
                w.Bool(true);
        }
        w.EndObject();
        msg += 'J';
        msg.append(sb.GetString(), sb.GetSize());
    } else {
        std::string body;
        tnet::put_string(body, "from");
        tnet::put_string(body, from_);
        for (const Field& f : fields) {
            if (f.key.empty()) continue;
            tnet::put_string(body, f.key);
            if (f.kind == Field::Kind::Str)
                tnet::put_string(body, f.str);
            else if (f.kind == Field::Kind::Int)
                tnet::put_int(body, f.num);
            else
                tnet::put_bool(body, true);
        }
        msg += 'T';
        tnet::put_dict(msg, body);
    }
    if (pub_ && pub_->send({std::string_view(msg)}))
        out_.sent.add();
    else
        out_.dropped.add();
}

void StatsService::send_conn(const std::string& id, const Conn& c) {
    write("conn",
          {c.route.empty() ? Field::s("", "") : Field::s("route", c.route), Field::s("id", id),
           Field::s("type", c.ws ? "ws" : "http"),
           c.peer.empty() ? Field::s("", "") : Field::s("peer-address", c.peer),
           c.ssl ? Field::t("ssl") : Field::s("", ""), Field::i("ttl", settings_.stats_connection_ttl)});
}

void StatsService::send_disconn(const std::string& id, const std::string& route) {
    write("conn", {route.empty() ? Field::s("", "") : Field::s("route", route), Field::s("id", id),
                   Field::t("unavailable")});
}

void StatsService::send_sub(const Sub& s) {
    write("sub", {Field::s("mode", kModes[s.mode % 3]), Field::s("channel", s.channel),
                  Field::i("ttl", settings_.stats_subscription_ttl), Field::i("subscribers", s.count)});
}

void StatsService::send_unsub(const Sub& s) {
    write("sub",
          {Field::s("mode", kModes[s.mode % 3]), Field::s("channel", s.channel), Field::t("unavailable")});
}

// ---- timers ----

void StatsService::on_activity_timer(uv_timer_t* t) {
    static_cast<StatsService*>(t->data)->flush_activity();
}

void StatsService::on_refresh_timer(uv_timer_t* t) {
    auto* self = static_cast<StatsService*>(t->data);
    uint64_t now = uv_now(self->loop_);
    self->refresh(now);
    self->last_refresh_ = now;
    self->refresh_at_ = 0;
    self->arm_refresh(now);
}

void StatsService::on_report_timer(uv_timer_t* t) {
    auto* self = static_cast<StatsService*>(t->data);
    self->report(uv_now(self->loop_));
}

} // namespace gripd::zmq
