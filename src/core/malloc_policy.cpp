#include "gripd/core/malloc_policy.hpp"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace gripd::core {

bool apply_malloc_policy() {
#if defined(__GLIBC__)
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    if (tunables && std::strstr(tunables, "glibc.malloc.")) return false;
    if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_")) return false;
    return mallopt(M_MMAP_THRESHOLD, kMallocMmapThreshold) == 1 &&
           mallopt(M_TRIM_THRESHOLD, kMallocTrimThreshold) == 1;
#else
    return false;
#endif
}

} // namespace gripd::core
