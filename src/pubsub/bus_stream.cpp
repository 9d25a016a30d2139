#include "gripd/pubsub/bus_stream.hpp"

#include <charconv>

namespace gripd::pubsub::bus_stream {

namespace {
// KEYS: stream, channel, meta (hash: b bytes kept, n items kept), runs (one value per stream entry:
// bytes * 1024 + items). ARGV: maxn (0: ids only), maxb, how, items, bytes, marker id, run.
// One XADD and one PUBLISH per call whatever its items. how 't' (trim only): the stream, the runs
// list and the sums were written by a MULTI (add_outside_script); the script only trims, and never
// sees a run: Redis's Lua hashes every byte of every string it makes (ARGV, the concatenated
// message), which was half of redis-server's CPU with history on (perf: luaS_newlstr).
constexpr std::string_view kScript = R"lua(
local maxn, maxb, how = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local k, bytes, run = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[7]
if how == 'p' then return redis.call('@PUBLISH@', KEYS[2], '* ' .. run) end
local id
if maxn == 0 then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '1', '*', 'n', '')
elseif how == 'g' then
  id = redis.call('XADD', KEYS[1], '*', 'g', ARGV[6])
  redis.call('XTRIM', KEYS[1], 'MAXLEN', '1')
  redis.call('DEL', KEYS[4])
  redis.call('RPUSH', KEYS[4], '1')
  redis.call('HSET', KEYS[3], 'b', '0', 'n', '1')
else
  if how ~= 't' then id = redis.call('XADD', KEYS[1], '*', 'r', run) end
  local m = redis.call('HMGET', KEYS[3], 'b', 'n')
  local total, n = (tonumber(m[1]) or 0) + bytes, (tonumber(m[2]) or 0) + k
  local len
  if how == 't' then
    len = redis.call('LLEN', KEYS[4])
  else
    len = redis.call('RPUSH', KEYS[4], string.format('%d', bytes * 1024 + k))
  end
  local drop = 0
  while len - drop > 1 do
    local v = tonumber(redis.call('LINDEX', KEYS[4], drop))
    if not v then break end
    local vn = v % 1024
    if n - vn < maxn and total <= maxb then break end
    total = total - (v - vn) / 1024
    n = n - vn
    drop = drop + 1
  end
  if drop > 0 then redis.call('LTRIM', KEYS[4], drop, -1) end
  if drop > 0 or redis.call('XLEN', KEYS[1]) > len then
    redis.call('XTRIM', KEYS[1], 'MAXLEN', string.format('%d', len - drop))
  end
  redis.call('HSET', KEYS[3], 'b', string.format('%d', total), 'n', string.format('%d', n))
  if how == 't' then return 0 end
end
local ms, s = string.match(id, '^(%d+)-(%d+)$')
local first = ms .. '-' .. string.format('%d', tonumber(s) * 256)
return redis.call('@PUBLISH@', KEYS[2], '*' .. first .. ' ' .. run)
)lua";

std::string make_script(std::string_view publish) {
    std::string s(kScript);
    constexpr std::string_view mark = "@PUBLISH@";
    for (size_t at = s.find(mark); at != std::string::npos; at = s.find(mark, at))
        s.replace(at, mark.size(), publish);
    return s;
}

void append_record(std::string* run, char how, std::string_view item) {
    char len[24];
    auto [end, ec] = std::to_chars(len, len + sizeof len, item.size());
    static_cast<void>(ec); // 24 chars hold any size_t
    run->push_back(how);
    run->append(len, end);
    run->push_back(':');
    run->append(item);
}

char how_char(RedisBus::BusItem::How how) {
    switch (how) {
    case RedisBus::BusItem::How::Keep:
        return 'k';
    case RedisBus::BusItem::How::KeepAssign:
        return 'a';
    case RedisBus::BusItem::How::PublishOnly:
        break;
    }
    return 'p';
}

// "<ms>-<s>" -> ms and s; false if it is not a stream id.
bool split_id(std::string_view id, uint64_t* ms, uint64_t* seq) {
    size_t dash = id.find('-');
    if (dash == std::string_view::npos) return false;
    auto a = std::from_chars(id.data(), id.data() + dash, *ms);
    auto b = std::from_chars(id.data() + dash + 1, id.data() + id.size(), *seq);
    return a.ec == std::errc{} && a.ptr == id.data() + dash && b.ec == std::errc{} &&
           b.ptr == id.data() + id.size();
}

std::string item_id(uint64_t ms, uint64_t first_seq, size_t j) {
    return std::to_string(ms) + "-" + std::to_string(first_seq + j);
}

// Calls each(how, item) for every "<how><len>:<item>" record of `run`; false if one is malformed.
template <class F> bool for_each_record(std::string_view run, F&& each) {
    while (!run.empty()) {
        char how = run.front();
        if (how != 'k' && how != 'a' && how != 'p') return false;
        run.remove_prefix(1);
        size_t len = 0;
        auto [p, ec] = std::from_chars(run.data(), run.data() + run.size(), len);
        if (ec != std::errc{} || p == run.data() + run.size() || *p != ':') return false;
        size_t head = static_cast<size_t>(p - run.data()) + 1;
        if (run.size() - head < len) return false;
        each(how, run.substr(head, len));
        run.remove_prefix(head + len);
    }
    return true;
}
} // namespace

const std::string& publish_script(bool sharded) {
    static const std::string plain = make_script("PUBLISH");
    static const std::string cluster = make_script("SPUBLISH");
    return sharded ? cluster : plain;
}

std::vector<Call> plan_calls(const std::vector<RedisBus::BusItem>& items,
                             const RedisBus::StreamBounds& keep) {
    std::vector<Call> calls;
    const size_t run_bytes = std::max<size_t>(1, keep.bytes / kRunBytesDivisor);
    bool open = false; // calls.back() takes more records
    for (const RedisBus::BusItem& it : items) {
        char how = how_char(it.how);
        bool kept = how != 'p' && !keep.ids_only && keep.items > 0;
        if (kept && it.payload.size() > keep.bytes) { // alone over the bound: a marker of its own
            Call c;
            c.how = 'g';
            c.items = 1;
            c.bytes = it.payload.size();
            if (how == 'k') c.id = std::string(it.id);
            append_record(&c.run, how, it.payload);
            calls.push_back(std::move(c));
            open = false;
            continue;
        }
        bool byte_bound = keep.items > 0 && !keep.ids_only;
        if (!open || calls.back().records >= kMaxRunItems ||
            (byte_bound && calls.back().bytes + it.payload.size() > run_bytes && calls.back().records > 0)) {
            calls.push_back(Call{'p', 0, 0, 0, false, {}, {}});
            open = true;
        }
        Call& c = calls.back();
        ++c.records;
        c.bytes += it.payload.size();
        if (kept) ++c.items;
        // A run with nothing to keep is only published; with ids only, one with assigned ids
        // still goes through the stream (its entry id makes them).
        if (kept || (keep.ids_only && how == 'a')) c.how = 'r';
        if (how == 'a') c.assigns = true;
        append_record(&c.run, how, it.payload);
    }
    return calls;
}

std::string publish_message(const Call& call, std::string_view first_item) {
    if (call.records == 1) return std::string(first_item); // one item: its JSON, as earlier versions sent
    std::string m = "* ";
    m += call.run;
    return m;
}

bool add_outside_script(const Call& call, const RedisBus::StreamBounds& keep) {
    return call.how == 'r' && !call.assigns && !keep.ids_only && keep.items > 0;
}

std::vector<std::string> keys(std::string_view channel, std::string_view pubsub_name, bool cluster) {
    auto key = [&](std::string_view prefix) {
        std::string k(prefix);
        if (cluster) k += '{';
        k += channel;
        if (cluster) k += '}';
        return k;
    };
    return {key(RedisBus::kStreamPrefix), std::string(pubsub_name), key("gripd:hm:"), key("gripd:hr:")};
}

std::vector<std::string> args(const Call& call, const RedisBus::StreamBounds& keep) {
    return {keep.ids_only ? "0" : std::to_string(keep.items),
            std::to_string(keep.bytes),
            std::string(1, call.how),
            std::to_string(call.items),
            std::to_string(call.bytes),
            call.id,
            call.run};
}

std::vector<std::string> trim_args(const RedisBus::StreamBounds& keep) {
    return {std::to_string(keep.items), std::to_string(keep.bytes), "t", "0", "0", "", ""};
}

std::string run_value(const Call& call) {
    return std::to_string(call.bytes * 1024 + call.items);
}

bool over_bounds(long long items, long long bytes, const RedisBus::StreamBounds& keep) {
    const size_t max_items = keep.items + keep.items / kTrimSlackDivisor;
    // Redis's sums are signed; one below zero (never written so) is not over anything.
    return (items > 0 && static_cast<unsigned long long>(items) > max_items) ||
           (bytes > 0 && static_cast<unsigned long long>(bytes) > keep.bytes);
}

bool for_each_message_item(
    std::string_view payload,
    const std::function<void(std::string_view item, std::string_view assigned)>& each) {
    if (payload.empty() || (payload.front() != '*' && payload.front() != '#')) {
        each(payload, {}); // one item (earlier versions, and the bus without history)
        return true;
    }
    size_t sp = payload.find(' ');
    if (sp == std::string_view::npos) return false;
    std::string_view head = payload.substr(1, sp - 1);
    std::string_view rest = payload.substr(sp + 1);
    if (payload.front() == '#') { // "#<id> <item>" (earlier versions)
        each(rest, head);
        return true;
    }
    uint64_t ms = 0, seq = 0;
    if (!head.empty() && !split_id(head, &ms, &seq)) return false;
    size_t j = 0;
    bool ok = true;
    bool whole = for_each_record(rest, [&](char how, std::string_view item) {
        if (how == 'a') {
            if (head.empty())
                ok = false; // assigned ids need the entry's
            else
                each(item, item_id(ms, seq, j));
        } else {
            each(item, {});
        }
        ++j;
    });
    return whole && ok;
}

void expand_entry(std::string_view id, std::string_view field, std::string_view value,
                  std::vector<RedisBus::StreamEntry>* out) {
    uint64_t ms = 0, seq = 0;
    if (!split_id(id, &ms, &seq)) return;
    auto entry = [&](std::string stream_id) {
        RedisBus::StreamEntry e;
        e.time_ms = ms;
        e.stream_id = std::move(stream_id);
        return e;
    };
    if (field == "i") { // one item (earlier versions): its stream id is its assigned id
        RedisBus::StreamEntry e = entry(std::string(id));
        e.payload = std::string(value);
        out->push_back(std::move(e));
    } else if (field == "g") {
        RedisBus::StreamEntry e = entry(item_id(ms, seq * kMaxRunItems, 0));
        e.marker = true;
        e.item_id = std::string(value);
        out->push_back(std::move(e));
    } else if (field == "r") { // a run: its kept records ("p": published only)
        size_t j = 0;
        for_each_record(value, [&](char how, std::string_view item) {
            if (how != 'p') {
                RedisBus::StreamEntry e = entry(item_id(ms, seq * kMaxRunItems, j));
                e.payload = std::string(item);
                out->push_back(std::move(e));
            }
            ++j;
        });
    }
    // "n": the ids-only stream keeps no items.
}

} // namespace gripd::pubsub::bus_stream
