// The Redis side of history on the bus, shared by RedisBus (one server, Sentinel) and ClusterBus:
// the publish script, how a run of one channel's items is cut into script calls, and the two
// encodings the script writes: the message PUBLISHed (SPUBLISHed on a cluster) to the instances and
// the stream entry kept for replay.
//
// A run is the items of one call, in publish order, encoded once by gripd as records
// "<how><len>:<item JSON>" one after the other (how: k kept with its own id, a kept with an id
// assigned from the entry's, p published only). The script stores it as ONE stream entry and
// publishes it as ONE message, so Redis does a constant number of commands per call, not per item
// (XADD and PUBLISH per item made Redis the bound: history on was 56% of off). Record j of the entry
// <ms>-<s> has the id <ms>-<s*256+j> (kMaxRunItems = 256, so the ids of consecutive entries keep
// increasing); it is used as the id of `a` records. Stream entries ("gripd:h:<channel>"):
//   r <run>   a run;
//   g <id>    a marker for an item too big to keep (<id>: its own id; empty: assigned, <ms>-<s*256>);
//   n ""      ids only (history_assign_ids without history_size): the stream is just the id source;
//   i <item>  one item (written by earlier versions; still read).
// Messages: "*<ms>-<s*256> <run>" ("* <run>" for a run only published, also without history, by a
// plain PUBLISH; a single item alone goes as its JSON); "#<id> <item>" of earlier versions is still
// understood by the receiver.
// Bounds: "gripd:hr:<channel>" lists one value per stream entry (its JSON bytes * 1024 + its kept
// items), "gripd:hm:<channel>" (a hash) their sums b and n. The oldest entries are trimmed while the
// rest still holds history_size items, and while the bytes are over history_channel_bytes (the
// newest entry always stays); a run holds at most history_channel_bytes / 8 bytes (or one item), so
// trimming by whole entries keeps the byte bound within an eighth of exact.
#pragma once

#include "gripd/pubsub/redis_bus.hpp"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace gripd::pubsub::bus_stream {

constexpr size_t kMaxRunItems = 256;   // items per script call (and the id multiplier above)
constexpr size_t kRunBytesDivisor = 8; // a kept run holds at most history_channel_bytes / 8

// The script's text; `sharded`: SPUBLISH (Redis Cluster) instead of PUBLISH.
const std::string& publish_script(bool sharded);

// One script call. KEYS: stream, channel, meta, runs (keys()). ARGV: args().
struct Call {
    char how = 'r';       // r a run kept in the stream, p a run only published, g an item too big to keep
    size_t records = 0;   // in `run`
    size_t items = 0;     // of them kept
    bool assigns = false; // a record takes its id from the entry's (the message must name that id)
    size_t bytes = 0;     // the JSON bytes of all of them
    std::string id;       // g: the item's own id (empty: assigned)
    std::string run;      // "<how><len>:<json>" records
};
// The calls for a run of one channel's items, in order (a new call at kMaxRunItems records or at
// history_channel_bytes / 8 bytes; an item too big to keep alone is a call of its own).
std::vector<Call> plan_calls(const std::vector<RedisBus::BusItem>& items, const RedisBus::StreamBounds& keep);
// Without a stream (keep.items == 0, every item publish only): the message PUBLISHed for `call`
// ("* <run>", or the item's JSON alone when it is the only one; `first_item`: that JSON).
std::string publish_message(const Call& call, std::string_view first_item);
// KEYS: the stream, the pub/sub channel (`pubsub_name`), the meta hash and the runs list; on a
// cluster the channel is in braces ("gripd:h:{<channel>}"), so all of them share its slot.
std::vector<std::string> keys(std::string_view channel, std::string_view pubsub_name, bool cluster);
// Whether `call` is sent as MULTI, XADD <stream> * r <run>, RPUSH <runs> run_value(call),
// HINCRBY <meta> n <items>, HINCRBY <meta> b <bytes>, PUBLISH <channel> "* <run>" (its JSON alone
// for one item), EXEC instead of one script call: a kept run whose records all carry their own ids,
// so its message needs no entry id. MULTI/EXEC keeps the XADD and the PUBLISH one step, as the
// script did (one order for the stream and the live messages on every instance), and the run never
// becomes a Lua string (Redis's Lua hashes every byte of one: that was half of redis-server's CPU
// with history on). When EXEC's sums are over_bounds, the script trims (trim_args), and the publish
// is answered after it.
bool add_outside_script(const Call& call, const RedisBus::StreamBounds& keep);
// The runs list's value for `call`'s entry: its bytes * 1024 + its kept items.
std::string run_value(const Call& call);
// Trimming waits until the stream holds more than history_size + history_size / 8 items (or more
// than history_channel_bytes), so the script runs once every few calls, not on each; it trims back
// to the bound (at most history_size + 255 items), so a channel's stream holds at most
// history_size * 9 / 8 + 255 items, and between a publish's EXEC and its trim also its run.
constexpr size_t kTrimSlackDivisor = 8;
bool over_bounds(long long items, long long bytes, const RedisBus::StreamBounds& keep);
// (Redis Cluster keeps the one script call: its redirects are per command.)
// ARGV after the keys: maxn (0: ids only), maxb, how, items, bytes, marker id, run.
std::vector<std::string> args(const Call& call, const RedisBus::StreamBounds& keep);
// ARGV of the script when it only trims (how 't').
std::vector<std::string> trim_args(const RedisBus::StreamBounds& keep);

// Calls `each(item_json, assigned_id)` for every item of a bus message (any of the formats above);
// false when it is malformed (the items before the fault were handed out).
bool for_each_message_item(std::string_view payload,
                           const std::function<void(std::string_view item, std::string_view assigned)>& each);

// Appends a stream entry's items (oldest first) to `out`. `id` is the entry's stream id.
void expand_entry(std::string_view id, std::string_view field, std::string_view value,
                  std::vector<RedisBus::StreamEntry>* out);

} // namespace gripd::pubsub::bus_stream
