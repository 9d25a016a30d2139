#include "gripd/zmq/zmq_service.hpp"

#include "control/publish_queue.hpp"
#include "gripd/control/publish_gate.hpp"
#include "gripd/core/json.hpp"
#include "gripd/core/log.hpp"
#include "gripd/pubsub/broker.hpp"
#include "gripd/zmq/spec.hpp"
#include "gripd/zmq/tnetstring.hpp"

#include <cerrno>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <zmq.h>

namespace gripd::zmq {

namespace {

// `T` + TNetString or bare TNetString, or `J` + JSON object: the item as JSON text for the publish
// path. For JSON, the object is checked here on its own so that one message is one item whatever
// it holds (the publish path then parses it again inside `{"items":[...]}`).
bool item_json(std::string_view msg, std::string_view channel, std::string& out, std::string* error) {
    if (!msg.empty() && msg[0] == 'J') {
        std::string_view json = msg.substr(1);
        rapidjson::Document doc;
        auto r = core::json::parse(json, doc);
        if (!r) {
            *error = "received message with invalid format (json parse failed)";
            return false;
        }
        if (!doc.IsObject()) {
            *error = "received message with invalid format (not a valid json object)";
            return false;
        }
        if (channel.empty()) {
            out.append(json);
            return true;
        }
        // SUB input: the first part's channel replaces the item's.
        doc.RemoveMember("channel");
        doc.AddMember("channel",
                      rapidjson::Value(channel.data(), static_cast<rapidjson::SizeType>(channel.size()),
                                       doc.GetAllocator()),
                      doc.GetAllocator());
        rapidjson::StringBuffer sb;
        rapidjson::Writer<rapidjson::StringBuffer> w(sb);
        doc.Accept(w);
        out.append(sb.GetString(), sb.GetSize());
        return true;
    }
    if (!msg.empty() && msg[0] == 'T') msg.remove_prefix(1);
    tnet::Value v;
    std::string why;
    if (!tnet::parse(msg, v, &why)) {
        *error = "received message with invalid format (tnetstring parse failed: " + why + ")";
        return false;
    }
    if (!tnet::item_to_json(v, channel, out, &why)) {
        *error = "received message with invalid format: " + why;
        return false;
    }
    return true;
}

} // namespace

bool ZmqService::wanted(const config::Settings& s) {
    return !s.push_in_spec.empty() || !s.command_spec.empty() || !split_specs(s.push_in_sub_specs).empty();
}

ZmqService::ZmqService(const config::Settings& settings, pubsub::Broker& broker, uv_loop_t* loop)
    : settings_(settings), broker_(broker), loop_(loop),
      queue_(std::make_unique<control::PublishQueue>(loop, broker, &control::PublishGate::instance())) {
    uv_timer_init(loop_, &congestion_timer_);
    congestion_timer_.data = this;
    uv_timer_init(loop_, &rebind_timer_);
    rebind_timer_.data = this;
}

ZmqService::~ZmqService() {
    queue_.reset();
    pull_.reset();
    sub_.reset();
    command_.reset();
    if (ctx_) zmq_ctx_term(ctx_);
}

bool ZmqService::start(std::string* error) {
    ctx_ = zmq_ctx_new();
    if (!ctx_) {
        *error = std::string("ZeroMQ: ") + zmq_strerror(errno);
        return false;
    }
    const int64_t hard_max =
        static_cast<int64_t>(settings_.push_in_http_max_body_size) * kHardMaxFactor + 65536;
    if (!settings_.push_in_spec.empty()) {
        pull_spec_ = apply_port_offset(settings_.push_in_spec, settings_.port_offset);
        pull_ = std::make_unique<Socket>(loop_, ctx_, ZMQ_PULL, this);
        pull_->set_int(ZMQ_RCVHWM, kRcvHwm);
        pull_->set_int64(ZMQ_MAXMSGSIZE, hard_max);
        std::string e;
        if (!bind_or_wait(*pull_, pull_spec_, "[handler] push_in_spec", &e) || !pull_->start(&e)) {
            *error = "[handler] push_in_spec: " + e;
            return false;
        }
        LOG_INFO("zmq", "in pull: %s", pull_spec_.c_str());
    }
    if (!start_sub(hard_max, error)) return false;
    if (!settings_.command_spec.empty()) {
        command_spec_ = apply_port_offset(settings_.command_spec, settings_.port_offset);
        command_ = std::make_unique<Socket>(loop_, ctx_, ZMQ_ROUTER, this);
        command_->set_int(ZMQ_RCVHWM, kRcvHwm);
        command_->set_int64(ZMQ_MAXMSGSIZE, hard_max);
        std::string e;
        if (!bind_or_wait(*command_, command_spec_, "[handler] command_spec", &e) || !command_->start(&e)) {
            *error = "[handler] command_spec: " + e;
            return false;
        }
        LOG_INFO("zmq", "control server: %s", command_spec_.c_str());
    }
    return true;
}

bool ZmqService::start_sub(int64_t hard_max, std::string* error) {
    for (const auto& spec : split_specs(settings_.push_in_sub_specs))
        sub_specs_.push_back(apply_port_offset(spec, settings_.port_offset));
    if (sub_specs_.empty()) return true;
    sub_ = std::make_unique<Socket>(loop_, ctx_, ZMQ_SUB, this);
    sub_->set_int(ZMQ_RCVHWM, kRcvHwm);
    sub_->set_int(ZMQ_SNDHWM, 0); // subscriptions are never dropped (as Pushpin: one per channel)
    sub_->set_int64(ZMQ_MAXMSGSIZE, hard_max);
    if (settings_.push_in_sub_connect) {
        sub_->set_int(ZMQ_TCP_KEEPALIVE, 1);
        sub_->set_int(ZMQ_TCP_KEEPALIVE_IDLE, 30);
        sub_->set_int(ZMQ_TCP_KEEPALIVE_CNT, 6);
        sub_->set_int(ZMQ_TCP_KEEPALIVE_INTVL, 5);
    }
    for (const auto& spec : sub_specs_) {
        std::string e;
        bool ok = settings_.push_in_sub_connect
                      ? sub_->connect(spec, &e)
                      : bind_or_wait(*sub_, spec, "[handler] push_in_sub_specs", &e);
        if (!ok) {
            *error = "[handler] push_in_sub_specs: " + e;
            return false;
        }
    }
    std::string e;
    if (!sub_->start(&e)) {
        *error = "[handler] push_in_sub_specs: " + e;
        return false;
    }
    // Subscription forwarding: the shard owners tell this worker's broker which channels have
    // subscribers in this instance.
    broker_.set_interest_handler([this](const std::string& channel, bool on) {
        if (sub_) sub_->subscribe(channel, on);
    });
    LOG_INFO("zmq", "in sub: %s", settings_.push_in_sub_specs.c_str());
    return true;
}

void ZmqService::on_sub(const std::vector<std::string_view>& parts, size_t bytes, bool truncated) {
    if (parts.size() != 2 || truncated) {
        stats_.rejected.add();
        warn(Warn::Parts, "IN sub: received message with parts != 2, skipping");
        return;
    }
    if (bytes > static_cast<size_t>(settings_.push_in_http_max_body_size)) {
        stats_.rejected.add();
        warn(Warn::Size,
             "IN sub: message of %zu bytes over the %d-byte limit (push_in_http_max_body_size), skipping",
             bytes, settings_.push_in_http_max_body_size);
        return;
    }
    std::string body = "{\"items\":[";
    std::string error;
    if (!item_json(parts[1], parts[0], body, &error)) {
        stats_.rejected.add();
        warn(Warn::Format, "IN sub: %s, skipping", error.c_str());
        return;
    }
    body += "]}";
    submit(std::move(body), "sub", {});
}

void ZmqService::stop() {
    uv_timer_stop(&congestion_timer_);
    uv_timer_stop(&rebind_timer_);
    rebinds_.clear();
    refreshing_.clear(); // their answers find nothing; the command socket closes unanswered
    if (sub_) {
        sub_->stop();
        if (!settings_.push_in_sub_connect)
            for (const auto& spec : sub_specs_)
                sub_->unbind(spec);
    }
    // The ports go at once, not at exit: a process replacing this one (SIGUSR2) binds them meanwhile
    // and its peers reconnect to it.
    if (pull_) {
        pull_->stop();
        pull_->unbind(pull_spec_);
    }
    if (command_) {
        command_->stop();
        command_->unbind(command_spec_);
    }
}

bool ZmqService::bind_or_wait(Socket& s, const std::string& spec, const char* key, std::string* error) {
    if (s.bind(spec, error)) return true;
    if (!taking_over_ || errno != EADDRINUSE) return false;
    LOG_INFO("zmq", "%s: %s is still the old process's: bound once it lets go", key, spec.c_str());
    rebinds_.push_back({&s, spec, key});
    if (rebinds_.size() == 1)
        uv_timer_start(&rebind_timer_, &ZmqService::on_rebind_timer, kRebindEveryMs, kRebindEveryMs);
    return true;
}

void ZmqService::on_rebind_timer(uv_timer_t* t) {
    auto* self = static_cast<ZmqService*>(t->data);
    ++self->rebind_tries_;
    for (size_t i = 0; i < self->rebinds_.size();) {
        Rebind& r = self->rebinds_[i];
        std::string e;
        if (r.socket->bind(r.spec, &e)) {
            LOG_INFO("zmq", "%s: bound %s", r.key, r.spec.c_str());
            self->rebinds_.erase(self->rebinds_.begin() + static_cast<std::ptrdiff_t>(i));
        } else if (self->rebind_tries_ >= kRebindTries) {
            LOG_ERROR("zmq", "%s: %s (gave up: not serving this input)", r.key, e.c_str());
            self->rebinds_.erase(self->rebinds_.begin() + static_cast<std::ptrdiff_t>(i));
        } else {
            ++i;
        }
    }
    if (self->rebinds_.empty()) uv_timer_stop(t);
}

bool ZmqService::on_message(Socket& s, const std::vector<std::string_view>& parts, size_t bytes,
                            bool truncated) {
    stats_.received.add();
    if (&s == pull_.get())
        on_pull(parts, bytes, truncated);
    else if (&s == sub_.get())
        on_sub(parts, bytes, truncated);
    else
        on_command(parts, truncated);
    if (saturated() || broker_.is_congested()) {
        pause_inputs();
        return false;
    }
    return true;
}

void ZmqService::on_pull(const std::vector<std::string_view>& parts, size_t bytes, bool truncated) {
    if (parts.size() != 1 || truncated) {
        stats_.rejected.add();
        warn(Warn::Parts, "IN pull: received message with parts != 1, skipping");
        return;
    }
    if (bytes > static_cast<size_t>(settings_.push_in_http_max_body_size)) {
        stats_.rejected.add();
        warn(Warn::Size,
             "IN pull: message of %zu bytes over the %d-byte limit (push_in_http_max_body_size), skipping",
             bytes, settings_.push_in_http_max_body_size);
        return;
    }
    std::string body = "{\"items\":[";
    std::string error;
    if (!item_json(parts[0], {}, body, &error)) {
        stats_.rejected.add();
        warn(Warn::Format, "IN pull: %s, skipping", error.c_str());
        return;
    }
    body += "]}";
    submit(std::move(body), "pull", {});
}

void ZmqService::submit(std::string body, std::string_view input,
                        std::function<void(int status, std::string_view message)> reply) {
    ++in_flight_;
    size_t size = body.size();
    in_flight_bytes_ += size;
    std::string name(input);
    queue_->submit(std::move(body), broker_.has_bus(),
                   [this, size, name, reply = std::move(reply)](int status, std::string_view message) {
                       --in_flight_;
                       in_flight_bytes_ -= size;
                       if (status == 200) {
                           stats_.published.add();
                       } else if (status == 400) {
                           stats_.rejected.add();
                           warn(Warn::Item, "IN %s: received message with invalid format: %.*s, skipping",
                                name.c_str(), static_cast<int>(message.size()), message.data());
                       } else {
                           stats_.dropped.add();
                           warn(Warn::Dropped, "IN %s: item dropped: the publish path refused it (%d %.*s)",
                                name.c_str(), status, static_cast<int>(message.size()), message.data());
                       }
                       if (reply) reply(status, message);
                       on_done();
                   });
}

bool ZmqService::saturated() const {
    return in_flight_ >= kMaxInFlight || in_flight_bytes_ >= kMaxInFlightBytes;
}

void ZmqService::pause_inputs() {
    if (paused_) return;
    paused_ = true;
    stats_.paused.add();
    if (pull_) pull_->pause();
    if (sub_) sub_->pause();
    if (command_) command_->pause();
    // Congestion ends without any publish of ours finishing: look again shortly.
    uv_timer_start(&congestion_timer_, &ZmqService::on_congestion_timer, kCongestionPollMs,
                   kCongestionPollMs);
}

void ZmqService::resume_inputs() {
    if (!paused_) return;
    paused_ = false;
    uv_timer_stop(&congestion_timer_);
    if (pull_) pull_->resume();
    if (sub_) sub_->resume();
    if (command_) command_->resume();
}

void ZmqService::on_done() {
    // Resume at half the bound, so a flood is read in batches, not one message per answer.
    if (paused_ && in_flight_ <= kMaxInFlight / 2 && in_flight_bytes_ <= kMaxInFlightBytes / 2 &&
        !broker_.is_congested())
        resume_inputs();
}

void ZmqService::on_congestion_timer(uv_timer_t* t) {
    auto* self = static_cast<ZmqService*>(t->data);
    self->on_done();
}

void ZmqService::warn(Warn kind, const char* fmt, ...) {
    WarnState& w = warns_[static_cast<size_t>(kind)];
    uint64_t now = uv_now(loop_);
    if (w.logged && now - w.last_ms < kWarnIntervalMs) {
        ++w.skipped;
        return;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (w.skipped > 0)
        LOG_WARN("zmq", "%s (and %llu more like it in the last %llu s)", buf,
                 static_cast<unsigned long long>(w.skipped),
                 static_cast<unsigned long long>(kWarnIntervalMs / 1000));
    else
        LOG_WARN("zmq", "%s", buf);
    w.logged = true;
    w.last_ms = now;
    w.skipped = 0;
}

} // namespace gripd::zmq
