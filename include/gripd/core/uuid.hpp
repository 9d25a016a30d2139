// Random identifiers (its own file: it needs OpenSSL, which strings.cpp users such as the
// benchmarks do not link).
#pragma once

#include <string>

namespace gripd::core {

// A random version-4 UUID ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", lower-case hex), from a
// per-thread generator seeded by OpenSSL's RAND_bytes: the ids gripd gives connections
// (WebSocket-over-HTTP Connection-Id, Grip-Connection-Id).
std::string random_uuid();

} // namespace gripd::core
