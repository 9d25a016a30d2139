#include "gripd/net/memory_guard.hpp"

#include "gripd/core/log.hpp"

#include <fcntl.h>
#include <fstream>
#include <malloc.h>
#include <string>
#include <unistd.h>

namespace gripd::net {

namespace {

constexpr uint64_t kNoLimit = UINT64_MAX;

// A cgroup limit file's value: a byte count, or kNoLimit for "max", absurd v1 values or no file.
uint64_t read_limit_file(const std::string& path) {
    std::ifstream f(path);
    std::string text;
    if (!f || !(f >> text) || text == "max") return kNoLimit;
    char* end = nullptr;
    unsigned long long v = std::strtoull(text.c_str(), &end, 10);
    if (end == text.c_str() || v == 0 || v >= (1ULL << 60)) return kNoLimit; // v1's "unlimited"
    return v;
}

// The smallest limit from `dir` up to `root` (a parent's limit binds its children too).
uint64_t min_along(const std::string& root, std::string rel, const char* file) {
    uint64_t best = kNoLimit;
    for (;;) {
        uint64_t v = read_limit_file(root + rel + "/" + file);
        if (v < best) best = v;
        if (rel.empty() || rel == "/") break;
        size_t slash = rel.rfind('/');
        rel = slash == std::string::npos ? std::string() : rel.substr(0, slash);
    }
    return best;
}

uint64_t cgroup_limit() {
    std::ifstream f("/proc/self/cgroup");
    std::string line;
    uint64_t best = kNoLimit;
    while (std::getline(f, line)) {
        // "hierarchy-ID:controllers:path"; v2 is "0::/path", v1 memory is "N:memory:/path".
        size_t a = line.find(':');
        size_t b = a == std::string::npos ? a : line.find(':', a + 1);
        if (b == std::string::npos) continue;
        std::string controllers = line.substr(a + 1, b - a - 1);
        std::string path = line.substr(b + 1);
        uint64_t v = kNoLimit;
        if (controllers.empty())
            v = min_along("/sys/fs/cgroup", path, "memory.max");
        else if (controllers.find("memory") != std::string::npos)
            v = min_along("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes");
        if (v < best) best = v;
    }
    return best;
}

} // namespace

uint64_t default_memory_limit() {
    uint64_t cg = cgroup_limit();
    if (cg != kNoLimit) return cg / 10 * 8;
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return 0;
    return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / 2;
}

uint64_t read_rss_bytes() {
    // Opened once and read with pread: a sample costs one system call.
    static const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    if (fd < 0) return 0;
    char buf[128];
    ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) return 0;
    buf[n] = '\0';
    // "size resident shared text lib data dt", in pages.
    char* p = buf;
    std::strtoull(p, &p, 10);
    return std::strtoull(p, nullptr, 10) * page;
}

void trim_heap() {
    ::malloc_trim(0);
}

MemoryGuard& MemoryGuard::instance() {
    static MemoryGuard guard;
    return guard;
}

void MemoryGuard::configure(uint64_t limit_bytes) {
    limit_ = limit_bytes;
    level_.store(0, std::memory_order_relaxed);
}

int64_t MemoryGuard::queued_total() const {
    int64_t sum = 0;
    for (const auto& s : slots_)
        sum += s.bytes.load(std::memory_order_relaxed);
    return sum;
}

void MemoryGuard::sample(uint64_t now_ms) {
    if (!enabled()) return;
    uint64_t last = last_sample_ms_.load(std::memory_order_relaxed);
    if (now_ms < last + kSampleMs) return;
    if (!last_sample_ms_.compare_exchange_strong(last, now_ms, std::memory_order_relaxed)) return;
    update(read_rss_bytes(), now_ms);
}

void MemoryGuard::update(uint64_t rss, uint64_t now_ms) {
    rss_.store(rss, std::memory_order_relaxed);
    Level old = level();
    Level now = old;
    if (rss >= limit_ / 100 * kShedAt)
        now = Level::Shed;
    else if (rss >= limit_ / 100 * kRefuseAt && old == Level::Normal)
        now = Level::Refuse;
    else if (rss < limit_ / 100 * kReleaseAt)
        now = Level::Normal;
    // Otherwise the level holds (hysteresis): shedding goes on down to the release mark.
    if (now == Level::Refuse && old == Level::Refuse &&
        now_ms >= refuse_since_ms_.load(std::memory_order_relaxed) + kRefuseAloneMs)
        now = Level::Shed;
    if (now == old) return;
    if (now == Level::Refuse) refuse_since_ms_.store(now_ms, std::memory_order_relaxed);
    level_.store(static_cast<int>(now), std::memory_order_relaxed);
    if (now == Level::Normal)
        LOG_INFO("memory", "memory use back to %llu MiB (limit %llu MiB): accepting connections again",
                 static_cast<unsigned long long>(rss >> 20), static_cast<unsigned long long>(limit_ >> 20));
    else
        LOG_WARN("memory", "memory use %llu MiB of the %llu MiB limit: %s",
                 static_cast<unsigned long long>(rss >> 20), static_cast<unsigned long long>(limit_ >> 20),
                 now == Level::Shed ? "refusing new connections and cutting the slowest consumers"
                                    : "refusing new connections");
}

uint64_t MemoryGuard::excess() const {
    if (level() != Level::Shed) return 0;
    uint64_t mark = limit_ / 100 * kReleaseAt;
    uint64_t r = rss();
    return r > mark ? r - mark : 0;
}

} // namespace gripd::net
