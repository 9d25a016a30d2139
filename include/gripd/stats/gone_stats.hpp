// Per-worker gone-link statistics (proxy/gone_notifier.hpp). The worker's GoneNotifier is the only
// writer; a metrics scrape on any worker reads them all (core::Counter).
#pragma once

#include "gripd/core/counter.hpp"

namespace gripd::stats {

struct GoneStats {
    core::Counter delivered; // the backend answered (any status below 500)
    core::Counter failed;    // still a transport failure or a 5xx after the last attempt
    core::Counter dropped;   // never sent: the queue was full, or the server stopped first
    core::Counter retries;   // attempts after the first
    core::Counter queued;    // gauge: notices waiting, out, or between attempts
};

} // namespace gripd::stats
