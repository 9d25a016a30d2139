#include "gripd/pubsub/redis_bus.hpp"

#include "gripd/core/assert.hpp"
#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/loop/worker.hpp"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <charconv>

namespace gripd::pubsub {

namespace {
constexpr uint64_t kFirstRetryMs = 500;
constexpr uint64_t kMaxRetryMs = 8000;
// Publishes sent to Redis and not yet answered (hiredis keeps them in its output buffer and its
// reply queue): past either bound a publish fails at once (the API answers 503) instead of
// growing the buffer while Redis is slow.
constexpr size_t kMaxPendingPublishes = 100000;
constexpr size_t kMaxPendingPublishBytes = 64 * 1024 * 1024;

std::string redis_channel(std::string_view channel) {
    std::string c(RedisBus::kChannelPrefix);
    c += channel;
    return c;
}
} // namespace

namespace {
// XADD and PUBLISH in one step, so every instance sees the stream and the live items in one order;
// one call carries a run of one channel's items (the script's cost is paid once per run, not per
// item). KEYS: the stream, the pub/sub channel, the bytes kept, the kept items' sizes (oldest first,
// in step with the stream). ARGV: items kept, bytes kept, then per item: "0" keep it, "1" keep it
// with its stream id as its id, "2" publish only; the item's own id; the item.
// The stream is trimmed by items and by the bytes of its items (the newest always stays); an item
// over the byte bound alone is not kept: the stream is cut to a marker in its place ('g' = its id),
// so a resume from before it is told of the gap rather than skipping it silently.
constexpr std::string_view kPublishWithHistory = R"lua(
local maxn = tonumber(ARGV[1])
local maxb = tonumber(ARGV[2])
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
local sizes = {}
for i = 3, #ARGV, 3 do
  local how, item = ARGV[i], ARGV[i + 2]
  if how ~= '2' then
    local size = #item
    local id
    if size > maxb then
      redis.call('DEL', KEYS[4])
      id = redis.call('XADD', KEYS[1], '*', 'g', ARGV[i + 1])
      redis.call('XTRIM', KEYS[1], 'MAXLEN', 1)
      sizes = {0}
      total = 0
    else
      id = redis.call('XADD', KEYS[1], '*', 'i', item)
      sizes[#sizes + 1] = size
      total = total + size
    end
    if how == '1' then item = '#' .. id .. ' ' .. item end
  end
  redis.call('PUBLISH', KEYS[2], item)
end
if #sizes == 0 then return 1 end
redis.call('RPUSH', KEYS[4], unpack(sizes))
local len = redis.call('XLEN', KEYS[1])
local drop = 0
if len > maxn then
  drop = len - maxn
  for _, v in ipairs(redis.call('LRANGE', KEYS[4], 0, drop - 1)) do total = total - tonumber(v) end
  redis.call('LTRIM', KEYS[4], drop, -1)
end
while len - drop > 1 and total > maxb do
  local v = redis.call('LPOP', KEYS[4])
  if not v then break end
  total = total - tonumber(v)
  drop = drop + 1
end
if drop > 0 then redis.call('XTRIM', KEYS[1], 'MAXLEN', len - drop) end
redis.call('SET', KEYS[3], total)
return 1
)lua";
} // namespace

bool parse_bus_url(std::string_view url, BusAddress* out, std::string* error) {
    constexpr std::string_view scheme = "redis://";
    if (url.substr(0, scheme.size()) != scheme) {
        *error = "bus must be redis://host[:port] (got \"" + std::string(url) + "\")";
        return false;
    }
    std::string_view rest = url.substr(scheme.size());
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    std::string_view host = rest, port;
    if (!rest.empty() && rest.front() == '[') {
        size_t close = rest.find(']');
        if (close == std::string_view::npos) {
            *error = "bus: unclosed [ in the address";
            return false;
        }
        host = rest.substr(1, close - 1);
        std::string_view after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                *error = "bus: bad address";
                return false;
            }
            port = after.substr(1);
        }
    } else if (size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    if (host.empty() || host.find('/') != std::string_view::npos ||
        host.find('@') != std::string_view::npos) {
        *error = "bus: bad host in \"" + std::string(url) +
                 "\" (credentials and database numbers are not supported)";
        return false;
    }
    out->host = std::string(host);
    out->port = 6379;
    if (!port.empty()) {
        int p = 0;
        auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc{} || end != port.data() + port.size() || p < 1 || p > 65535) {
            *error = "bus: bad port in \"" + std::string(url) + "\"";
            return false;
        }
        out->port = p;
    }
    return true;
}

struct RedisBus::Link {
    RedisBus* bus = nullptr;
    const char* role = "";
    bool subscriber = false;
    redisAsyncContext* ac = nullptr;
    bool connected = false;
    bool reported_down = false; // one log line per outage
    uint64_t retry_ms = kFirstRetryMs;
    loop::TimerEntry retry;
};

RedisBus::RedisBus(loop::Worker& worker, BusAddress address, Handler& handler)
    : worker_(worker), address_(std::move(address)), handler_(handler) {
    for (auto* slot : {&publisher_, &subscriber_}) {
        *slot = std::make_unique<Link>();
        (*slot)->bus = this;
        (*slot)->retry.init(&worker_.timers(), slot->get(), &RedisBus::on_retry_timer);
    }
    publisher_->role = "publish";
    subscriber_->role = "subscribe";
    subscriber_->subscriber = true;
}

RedisBus::~RedisBus() {
    stop();
}

void RedisBus::start() {
    connect(*publisher_);
    connect(*subscriber_);
}

void RedisBus::stop() {
    stopping_ = true;
    for (Link* link : {publisher_.get(), subscriber_.get()}) {
        if (!link) continue;
        link->retry.disarm();
        if (redisAsyncContext* ac = link->ac) {
            link->ac = nullptr;
            link->connected = false;
            ac->data = nullptr;
            redisAsyncFree(ac); // pending publishes are answered (failed) from here
        }
    }
}

void RedisBus::connect(Link& link) {
    if (stopping_ || link.ac) return;
    redisAsyncContext* ac = redisAsyncConnect(address_.host.c_str(), address_.port);
    if (!ac || ac->err) {
        if (!link.reported_down)
            LOG_WARN("bus", "cannot connect to redis://%s:%d (%s): %s", address_.host.c_str(), address_.port,
                     link.role, ac ? ac->errstr : "out of memory");
        link.reported_down = true;
        if (ac) redisAsyncFree(ac);
        retry_later(link);
        return;
    }
    ac->data = &link;
    if (redisLibuvAttach(ac, worker_.uv()) != REDIS_OK) {
        LOG_ERROR("bus", "cannot watch the bus connection on the loop");
        ac->data = nullptr;
        redisAsyncFree(ac);
        retry_later(link);
        return;
    }
    redisAsyncSetConnectCallback(ac, &RedisBus::on_connect_cb);
    redisAsyncSetDisconnectCallback(ac, &RedisBus::on_disconnect_cb);
    link.ac = ac;
}

void RedisBus::retry_later(Link& link) {
    if (stopping_) return;
    link.retry.arm(link.retry_ms);
    link.retry_ms = link.retry_ms * 2 > kMaxRetryMs ? kMaxRetryMs : link.retry_ms * 2;
}

void RedisBus::on_retry_timer(void* p) {
    auto* link = static_cast<Link*>(p);
    link->bus->connect(*link);
}

void RedisBus::on_connect_cb(const redisAsyncContext* ac, int status) {
    auto* link = static_cast<Link*>(ac->data);
    if (!link) return;
    RedisBus* bus = link->bus;
    if (status != REDIS_OK) { // hiredis frees the context after this returns
        link->ac = nullptr;
        if (!link->reported_down)
            LOG_WARN("bus", "cannot connect to redis://%s:%d (%s): %s", bus->address_.host.c_str(),
                     bus->address_.port, link->role, ac->errstr);
        link->reported_down = true;
        bus->retry_later(*link);
        return;
    }
    bus->on_connected(*link);
}

void RedisBus::on_connected(Link& link) {
    link.connected = true;
    link.retry_ms = kFirstRetryMs;
    if (link.reported_down)
        LOG_INFO("bus", "connected to redis://%s:%d (%s) again", address_.host.c_str(), address_.port,
                 link.role);
    else if (worker_.index() == 0)
        LOG_INFO("bus", "connected to redis://%s:%d (%s)", address_.host.c_str(), address_.port, link.role);
    link.reported_down = false;
    if (!link.subscriber) { // EVALSHA once Redis has the script (commands on a link keep their order)
        script_sha_.clear();
        const char* argv[3] = {"SCRIPT", "LOAD", kPublishWithHistory.data()};
        size_t lens[3] = {6, 4, kPublishWithHistory.size()};
        redisAsyncCommandArgv(link.ac, &RedisBus::on_script_loaded, nullptr, 3, argv, lens);
    }
    if (link.subscriber)
        for (const std::string& channel : handler_.bus_channels())
            subscribe(channel);
}

void RedisBus::on_disconnect_cb(const redisAsyncContext* ac, int status) {
    auto* link = static_cast<Link*>(ac->data);
    if (!link) return;
    link->ac = nullptr; // hiredis frees it after this returns
    link->connected = false;
    RedisBus* bus = link->bus;
    if (bus->stopping_) return;
    LOG_WARN("bus", "lost the connection to redis://%s:%d (%s)%s", bus->address_.host.c_str(),
             bus->address_.port, link->role, status == REDIS_OK ? "" : ": error");
    link->reported_down = true;
    bus->retry_later(*link);
}

void RedisBus::on_script_loaded(redisAsyncContext* ac, void* r, void* /*privdata*/) {
    auto* link = ac ? static_cast<Link*>(ac->data) : nullptr;
    auto* reply = static_cast<redisReply*>(r);
    if (!link || !reply) return;
    if (reply->type == REDIS_REPLY_STRING)
        link->bus->script_sha_.assign(reply->str, reply->len);
    else if (reply->type == REDIS_REPLY_ERROR)
        LOG_WARN("bus", "redis refused SCRIPT LOAD (publishing with EVAL): %.*s",
                 static_cast<int>(reply->len), reply->str);
}

bool RedisBus::is_connected() const {
    return publisher_ && publisher_->connected && subscriber_ && subscriber_->connected;
}

void RedisBus::read_history(const std::string& channel, size_t count,
                            std::function<void(bool, std::vector<StreamEntry>)> done) {
    Link& link = *publisher_;
    if (!link.connected || !link.ac) {
        done(false, {});
        return;
    }
    std::string key = std::string(kStreamPrefix) + channel;
    std::string n = std::to_string(count == 0 ? 1 : count);
    const char* argv[6] = {"XREVRANGE", key.data(), "+", "-", "COUNT", n.data()};
    size_t lens[6] = {9, key.size(), 1, 1, 5, n.size()};
    auto cb = std::make_unique<PendingRead>(PendingRead{std::move(done)});
    if (redisAsyncCommandArgv(link.ac, &RedisBus::on_read_reply, cb.get(), 6, argv, lens) != REDIS_OK) {
        cb->done(false, {});
        return;
    }
    static_cast<void>(cb.release()); // freed in on_read_reply
}

void RedisBus::on_read_reply(redisAsyncContext* /*ac*/, void* r, void* privdata) {
    std::unique_ptr<PendingRead> p(static_cast<PendingRead*>(privdata));
    auto* reply = static_cast<redisReply*>(r);
    std::vector<StreamEntry> out;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            LOG_WARN("bus", "redis refused a history read: %.*s", static_cast<int>(reply->len), reply->str);
        p->done(false, {});
        return;
    }
    // [[id, [field, value, ...]], ...], newest first.
    for (size_t i = reply->elements; i-- > 0;) {
        redisReply* e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
        redisReply* id = e->element[0];
        redisReply* fields = e->element[1];
        if (id->type != REDIS_REPLY_STRING || fields->type != REDIS_REPLY_ARRAY || fields->elements < 2)
            continue;
        redisReply* f = fields->element[0];
        redisReply* v = fields->element[1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        uint64_t ms = 0;
        std::string_view ids(id->str, id->len);
        std::from_chars(ids.data(), ids.data() + ids.size(), ms);
        StreamEntry entry{ms, std::string(ids), {}, false, {}};
        if (std::string_view(f->str, f->len) == "g") { // an item too big to keep (the publish script)
            entry.marker = true;
            entry.item_id.assign(v->str, v->len);
        } else {
            entry.payload.assign(v->str, v->len);
        }
        out.push_back(std::move(entry));
    }
    p->done(true, std::move(out));
}

void RedisBus::publish(const std::string& channel, const std::vector<BusItem>& items,
                       std::function<void(bool)> done, const StreamBounds& keep) {
    Link& link = *publisher_;
    if (!link.connected || !link.ac) {
        done(false);
        return;
    }
    std::string name = redis_channel(channel);
    size_t bytes = 0;
    for (const BusItem& it : items)
        bytes += name.size() + it.payload.size();
    if (pending_publishes_ >= kMaxPendingPublishes ||
        pending_publish_bytes_ + bytes > kMaxPendingPublishBytes) {
        LOG_DEBUG("bus", "publish refused: %zu publishes (%zu bytes) already wait for redis",
                  pending_publishes_, pending_publish_bytes_);
        done(false);
        return;
    }
    auto cb = std::make_unique<PendingPublish>(PendingPublish{this, bytes, std::move(done)});
    int rc;
    if (keep.items > 0) {
        std::string key = std::string(kStreamPrefix) + channel;
        std::string sizes = "gripd:hs:" + channel;
        std::string bytes_key = "gripd:hb:" + channel;
        std::string max = std::to_string(keep.items);
        std::string max_bytes = std::to_string(keep.bytes);
        bool sha = !script_sha_.empty();
        std::string_view script = sha ? std::string_view(script_sha_) : kPublishWithHistory;
        std::vector<const char*> argv{
            sha ? "EVALSHA" : "EVAL", script.data(), "4",        key.data(),      name.data(),
            bytes_key.data(),         sizes.data(),  max.data(), max_bytes.data()};
        std::vector<size_t> lens{sha ? 7u : 4u,    script.size(), 1u,         key.size(),      name.size(),
                                 bytes_key.size(), sizes.size(),  max.size(), max_bytes.size()};
        for (const BusItem& it : items) {
            static constexpr const char* kHow[3] = {"0", "1", "2"};
            argv.push_back(kHow[static_cast<int>(it.how)]);
            lens.push_back(1);
            argv.push_back(it.id.data());
            lens.push_back(it.id.size());
            argv.push_back(it.payload.data());
            lens.push_back(it.payload.size());
        }
        rc = redisAsyncCommandArgv(link.ac, &RedisBus::on_publish_reply, cb.get(),
                                   static_cast<int>(argv.size()), argv.data(), lens.data());
    } else {
        GRIPD_ASSERT(items.size() == 1);
        const char* argv[3] = {"PUBLISH", name.data(), items.front().payload.data()};
        size_t lens[3] = {7, name.size(), items.front().payload.size()};
        rc = redisAsyncCommandArgv(link.ac, &RedisBus::on_publish_reply, cb.get(), 3, argv, lens);
    }
    if (rc != REDIS_OK) {
        cb->done(false);
        return;
    }
    ++pending_publishes_;
    pending_publish_bytes_ += bytes;
    static_cast<void>(cb.release()); // owned by the pending command; freed in on_publish_reply
}

void RedisBus::on_publish_reply(redisAsyncContext* /*ac*/, void* r, void* privdata) {
    std::unique_ptr<PendingPublish> p(static_cast<PendingPublish*>(privdata));
    --p->bus->pending_publishes_;
    p->bus->pending_publish_bytes_ -= p->bytes;
    auto* reply = static_cast<redisReply*>(r);
    bool ok = reply && reply->type == REDIS_REPLY_INTEGER;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        LOG_WARN("bus", "redis refused a publish: %.*s", static_cast<int>(reply->len), reply->str);
    p->done(ok);
}

void RedisBus::subscribe(const std::string& channel) {
    Link& link = *subscriber_;
    if (!link.connected || !link.ac) return; // subscribed to on connecting
    std::string name = redis_channel(channel);
    const char* argv[2] = {"SUBSCRIBE", name.data()};
    size_t lens[2] = {9, name.size()};
    redisAsyncCommandArgv(link.ac, &RedisBus::on_subscription_reply, &link, 2, argv, lens);
}

void RedisBus::unsubscribe(const std::string& channel) {
    Link& link = *subscriber_;
    if (!link.connected || !link.ac) return;
    std::string name = redis_channel(channel);
    const char* argv[2] = {"UNSUBSCRIBE", name.data()};
    size_t lens[2] = {11, name.size()};
    redisAsyncCommandArgv(link.ac, nullptr, nullptr, 2, argv, lens);
}

void RedisBus::on_subscription_reply(redisAsyncContext* /*ac*/, void* r, void* privdata) {
    auto* reply = static_cast<redisReply*>(r);
    auto* link = static_cast<Link*>(privdata);
    if (!reply || !link || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
    redisReply** e = reply->element;
    if (e[0]->type == REDIS_REPLY_STRING && std::string_view(e[0]->str, e[0]->len) == "subscribe" &&
        e[1]->type == REDIS_REPLY_STRING) {
        std::string_view name(e[1]->str, e[1]->len);
        if (name.substr(0, kChannelPrefix.size()) == kChannelPrefix)
            link->bus->handler_.on_bus_subscribed(name.substr(kChannelPrefix.size()));
        return;
    }
    if (e[0]->type != REDIS_REPLY_STRING || std::string_view(e[0]->str, e[0]->len) != "message") return;
    if (e[1]->type != REDIS_REPLY_STRING || e[2]->type != REDIS_REPLY_STRING) return;
    std::string_view channel(e[1]->str, e[1]->len);
    if (channel.substr(0, kChannelPrefix.size()) != kChannelPrefix) return;
    channel.remove_prefix(kChannelPrefix.size());
    link->bus->handler_.on_bus_message(channel, std::string_view(e[2]->str, e[2]->len));
}

} // namespace gripd::pubsub
