#include "gripd/core/assert.hpp"

#include "gripd/core/log.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace gripd::core {

namespace {
std::atomic<uint64_t> g_check_failures{0};
} // namespace

bool check_failed(const char* expr, const char* file, int line) {
    g_check_failures.fetch_add(1, std::memory_order_relaxed);
    LOG_ERROR("gripd", "check failed: %s at %s:%d (dropping the connection)", expr, file, line);
    return false;
}

void assert_failed(const char* expr, const char* file, int line) {
    std::fprintf(stderr, "gripd: assertion failed: %s at %s:%d\n", expr, file, line);
    std::fflush(stderr);
    std::abort();
}

uint64_t check_failures() {
    return g_check_failures.load(std::memory_order_relaxed);
}

} // namespace gripd::core
