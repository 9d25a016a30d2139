#include "gripd/core/page_arena.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

// AddressSanitizer must see every allocation to find misuse; arena memory would hide it.
#if defined(__SANITIZE_ADDRESS__)
#define GRIPD_PAGE_ARENA_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define GRIPD_PAGE_ARENA_OFF 1
#endif
#endif

namespace gripd::core {

namespace {

// A page being filled holds this many references on top of its allocations, so frees on other
// threads cannot take it to zero before its arena is done with it (retire() removes the bias).
constexpr int64_t kBias = int64_t{1} << 40;
constexpr uint32_t kHeaderBytes = 64;
constexpr size_t kMaxPools = 256;
// Free pages a pool keeps ready (4 MiB; a busy channel needs a few: its pages come free as fast as it
// fills new ones); beyond that they are given back to the kernel.
constexpr size_t kPooledPagesMax = 1024;
constexpr size_t kReleaseBatch = 256;

struct PagePool;

} // namespace

struct ArenaPage {
    std::atomic<int64_t> refs; // kBias while being filled, minus frees; 0 when reusable
    PagePool* pool;            // the owner thread's
    ArenaPage* next;           // in a free list
};
static_assert(sizeof(ArenaPage) <= kHeaderBytes);

namespace {

// One per thread that owns arenas. Pages freed on other threads come back through `returned`.
// Its counts are split by writer, so no line is written by two threads on the hot path (a shared
// count of pages in use, written by every worker on every page, was a hot spot).
struct PagePool {
    alignas(64) std::atomic<ArenaPage*> returned{nullptr}; // pushed by any thread, taken by the owner
    std::atomic<uint64_t> recycled_elsewhere{0};           // pages other threads gave back
    alignas(64) ArenaPage* free = nullptr;                 // the owner's alone from here on
    size_t free_count = 0;
    std::atomic<uint64_t> taken{0};    // written by the owner only, read by stats()
    std::atomic<uint64_t> recycled{0}; // pages the owner gave back; likewise
    // Made on first use and never destroyed: a pool lives as long as the process, and pages may
    // still come back to it while the process exits.
    std::vector<ArenaPage*>* surplus = nullptr; // free pages past kPooledPagesMax, to give back
    std::vector<ArenaPage*>* cold = nullptr;    // pages given back to the kernel, reused after those
};

std::atomic<char*> g_base{nullptr};
std::atomic<uintptr_t> g_size{0}; // 0 until reserved: arena_owns() is then false for everything
std::atomic<uint64_t> g_next_page{0};
std::atomic<size_t> g_pools_used{0};
PagePool g_pools[kMaxPools];

thread_local PageArena* t_arena = nullptr;
thread_local PagePool* t_pool = nullptr;
thread_local bool t_no_pool = false;

// The range is reserved inaccessible and made writable a chunk at a time, as its pages are first
// taken: with strict overcommit (vm.overcommit_memory=2, where MAP_NORESERVE does not apply) only a
// writable private mapping is charged to the commit limit, so gripd is charged for the chunks it
// uses, not for 16 GiB. Otherwise MAP_NORESERVE keeps the writable chunks uncharged too.
constexpr uint64_t kRangeBytes = 16ull << 30;
constexpr uint64_t kChunkBytes = 64ull << 20;
constexpr size_t kChunks = kRangeBytes / kChunkBytes;
enum : uint8_t { kChunkReserved = 0, kChunkWritable = 1, kChunkRefused = 2 };
std::atomic<uint8_t> g_chunk_state[kChunks];

// Whether page `i` of the range can be used: its chunk made writable, now or before. Threads that
// take the first pages of a chunk at once may each call mprotect (it is idempotent); a chunk the
// kernel refuses (commit limit reached) is not tried again, its pages' allocations use the heap.
bool page_writable(uint64_t i) {
    size_t c = static_cast<size_t>(i * PageArena::kPageSize / kChunkBytes);
    uint8_t state = g_chunk_state[c].load(std::memory_order_acquire);
    if (state != kChunkReserved) return state == kChunkWritable;
    char* chunk = g_base.load(std::memory_order_relaxed) + c * kChunkBytes;
    bool ok = mprotect(chunk, kChunkBytes, PROT_READ | PROT_WRITE) == 0;
    g_chunk_state[c].store(ok ? kChunkWritable : kChunkRefused, std::memory_order_release);
    return ok;
}

bool reserve_range() {
#ifdef GRIPD_PAGE_ARENA_OFF
    return false;
#else
    static const bool ok = [] {
        void* p = mmap(nullptr, kRangeBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return false;
        g_base.store(static_cast<char*>(p), std::memory_order_relaxed);
        g_size.store(kRangeBytes, std::memory_order_release);
        return true;
    }();
    return ok;
#endif
}

PagePool* this_thread_pool() {
    if (t_pool || t_no_pool) return t_pool;
    size_t i = g_pools_used.fetch_add(1, std::memory_order_relaxed);
    if (i >= kMaxPools) {
        t_no_pool = true; // this thread's arenas use the heap
        return nullptr;
    }
    t_pool = &g_pools[i];
    return t_pool;
}

// Past kPooledPagesMax, free pages go back to the kernel, a batch at a time and sorted, so a big
// channel's pages (taken one after another from the range) go in a few calls rather than one each.
void give_to_kernel(PagePool& pool, ArenaPage* page) {
    ArenaScope heap(nullptr); // the lists' own memory must not come from an arena
    if (!pool.surplus) pool.surplus = new std::vector<ArenaPage*>();
    if (!pool.cold) pool.cold = new std::vector<ArenaPage*>();
    pool.surplus->push_back(page);
    if (pool.surplus->size() < kReleaseBatch) return;
    std::sort(pool.surplus->begin(), pool.surplus->end());
    size_t run = 0;
    for (size_t i = 1; i <= pool.surplus->size(); ++i) {
        std::vector<ArenaPage*>& v = *pool.surplus;
        if (i < v.size() &&
            reinterpret_cast<char*>(v[i]) == reinterpret_cast<char*>(v[i - 1]) + PageArena::kPageSize)
            continue;
        madvise(v[run], (i - run) * PageArena::kPageSize, MADV_DONTNEED);
        run = i;
    }
    pool.cold->insert(pool.cold->end(), pool.surplus->begin(), pool.surplus->end());
    pool.surplus->clear();
}

void add_free(PagePool& pool, ArenaPage* page) {
    if (pool.free_count >= kPooledPagesMax) {
        give_to_kernel(pool, page);
        return;
    }
    page->next = pool.free;
    pool.free = page;
    ++pool.free_count;
}

ArenaPage* take_page(PagePool& pool) {
    if (!pool.free) {
        ArenaPage* r = pool.returned.exchange(nullptr, std::memory_order_acquire);
        while (r) {
            ArenaPage* next = r->next;
            add_free(pool, r);
            r = next;
        }
    }
    ArenaPage* page = pool.free;
    if (page) {
        pool.free = page->next;
        --pool.free_count;
    } else if (pool.surplus && !pool.surplus->empty()) {
        page = pool.surplus->back(); // not given back yet: still in memory
        pool.surplus->pop_back();
    } else if (pool.cold && !pool.cold->empty()) {
        page = pool.cold->back();
        pool.cold->pop_back();
    } else {
        uint64_t i = g_next_page.fetch_add(1, std::memory_order_relaxed);
        if ((i + 1) * PageArena::kPageSize > g_size.load(std::memory_order_relaxed)) return nullptr;
        if (!page_writable(i)) return nullptr;
        page =
            reinterpret_cast<ArenaPage*>(g_base.load(std::memory_order_relaxed) + i * PageArena::kPageSize);
    }
    page->pool = &pool;
    page->next = nullptr;
    page->refs.store(kBias, std::memory_order_relaxed);
    pool.taken.store(pool.taken.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return page;
}

// The page's last allocation is gone and its arena has moved on: back to its pool.
void recycle(ArenaPage* page) {
    PagePool* pool = page->pool;
    if (pool == t_pool) {
        pool->recycled.store(pool->recycled.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        add_free(*pool, page);
        return;
    }
    pool->recycled_elsewhere.fetch_add(1, std::memory_order_relaxed);
    ArenaPage* head = pool->returned.load(std::memory_order_relaxed);
    do {
        page->next = head;
    } while (!pool->returned.compare_exchange_weak(head, page, std::memory_order_release,
                                                   std::memory_order_relaxed));
}

} // namespace

bool PageArena::enabled() {
    return reserve_range();
}

PageArena::~PageArena() {
    retire();
}

void* PageArena::allocate(size_t n) {
    n = (n + 15) & ~size_t{15};
    if (n > kMaxSmall) return nullptr;
    if (!page_ || used_ + n > kPageSize) {
        retire();
        PagePool* pool = this_thread_pool();
        if (!pool || !enabled()) return nullptr;
        page_ = take_page(*pool);
        if (!page_) return nullptr;
        used_ = kHeaderBytes;
        count_ = 0;
    }
    void* p = reinterpret_cast<char*>(page_) + used_;
    used_ += static_cast<uint32_t>(n);
    ++count_;
    return p;
}

void PageArena::retire() {
    if (!page_) return;
    ArenaPage* page = std::exchange(page_, nullptr);
    const int64_t drop = kBias - count_;
    if (page->refs.fetch_sub(drop, std::memory_order_acq_rel) == drop) recycle(page);
}

PageArena::Stats PageArena::stats() {
    Stats s;
    s.pages_reserved = std::min<uint64_t>(g_next_page.load(std::memory_order_relaxed),
                                          g_size.load(std::memory_order_relaxed) / kPageSize);
    // Read while pages move, the sum may be off for a moment (never below 0).
    const size_t pools = std::min(g_pools_used.load(std::memory_order_relaxed), kMaxPools);
    int64_t in_use = 0;
    for (size_t i = 0; i < pools; ++i) {
        const PagePool& p = g_pools[i];
        in_use += static_cast<int64_t>(p.taken.load(std::memory_order_relaxed)) -
                  static_cast<int64_t>(p.recycled.load(std::memory_order_relaxed)) -
                  static_cast<int64_t>(p.recycled_elsewhere.load(std::memory_order_relaxed));
    }
    s.pages_in_use = static_cast<uint64_t>(std::max<int64_t>(in_use, 0));
    return s;
}

ArenaScope::ArenaScope(PageArena* arena) : previous_(std::exchange(t_arena, arena)) {}

ArenaScope::~ArenaScope() {
    t_arena = previous_;
}

PageArena* current_arena() {
    return t_arena;
}

bool arena_owns(const void* p) {
    return reinterpret_cast<uintptr_t>(p) -
               reinterpret_cast<uintptr_t>(g_base.load(std::memory_order_relaxed)) <
           g_size.load(std::memory_order_relaxed);
}

void arena_free(void* p) {
    // The range starts on a page boundary (mmap), so the page is the address rounded down.
    auto* page = static_cast<ArenaPage*>(const_cast<void*>(arena_page_of(p)));
    if (page->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) recycle(page);
}

} // namespace gripd::core

#ifndef GRIPD_PAGE_ARENA_OFF

// The process's operator new and delete: the heap (malloc), except inside an ArenaScope.
namespace {

void* heap_new(std::size_t n) {
    if (n == 0) n = 1;
    for (;;) {
        if (void* p = std::malloc(n)) return p;
        std::new_handler handler = std::get_new_handler();
        if (!handler) throw std::bad_alloc();
        handler();
    }
}

} // namespace

void* operator new(std::size_t n) {
    if (gripd::core::PageArena* arena = gripd::core::current_arena())
        if (void* p = arena->allocate(n)) return p;
    return heap_new(n);
}

void* operator new[](std::size_t n) {
    return ::operator new(n);
}

void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return ::operator new(n);
    } catch (...) {
        return nullptr;
    }
}

void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    return ::operator new(n, std::nothrow);
}

void operator delete(void* p) noexcept {
    if (gripd::core::arena_owns(p))
        gripd::core::arena_free(p);
    else
        std::free(p);
}

void operator delete[](void* p) noexcept {
    ::operator delete(p);
}

void operator delete(void* p, std::size_t) noexcept {
    ::operator delete(p);
}

void operator delete[](void* p, std::size_t) noexcept {
    ::operator delete(p);
}

void operator delete(void* p, const std::nothrow_t&) noexcept {
    ::operator delete(p);
}

void operator delete[](void* p, const std::nothrow_t&) noexcept {
    ::operator delete(p);
}

#endif
