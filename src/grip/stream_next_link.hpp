// The state a StreamHold keeps while it follows next links (allocated only for such holds).
#pragma once

#include "gripd/grip/hold.hpp"

namespace gripd::grip {

// Pushpin follows a stream hold's next link about a second after it is given (its update pacing).
constexpr uint64_t kNextLinkPacingMs = 1000;
// Failed fetches are tried again this many times, 1 s doubling plus up to 1 s at random, then the
// response ends (as Pushpin does).
constexpr int kNextLinkRetries = 5;
constexpr uint64_t kNextLinkRetryBaseMs = 1000;

struct StreamHold::NextLink {
    FetchLinkFn fetch;
    std::optional<Link> link;             // the link to follow next, if any
    bool holding = false;                 // a stream hold is in force (else the chain ends the response)
    std::unique_ptr<LinkFetch> in_flight; // the request out now
    loop::TimerEntry timer;               // the next fetch: retry, re-poll or pacing
    bool quiet_wait = false;              // the timer waits for the link's timeout of quiet
    int failures = 0;                     // in a row
    // An update (a hint, /recover, a behind check) came while a fetch was out: fetch once more as
    // soon as it is done (Pushpin's needUpdate), rather than drop it.
    bool again = false;
    size_t max_channels = 0;
    std::string prefix; // the route's channel prefix
    struct LastId {
        std::string channel; // prefixed, as subscribed
        std::string id;
    };
    std::vector<LastId> last_ids; // Grip-Last: the last id seen per channel
    std::vector<uint64_t> checks; // behind checks out (Broker::check_behind tokens)
};

} // namespace gripd::grip
