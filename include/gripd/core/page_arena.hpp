// PageArena: memory for objects that are made together and die in about the order they were made
// (a busy history channel's messages), kept out of the general heap.
//
// Why: a full history channel frees its oldest message on every publish. With glibc malloc, freeing
// thousands of old, cold chunks interleaved with the publish path's short-lived ones fragments the
// heap, and the allocator's slow paths (consolidation, bin searches) became the largest part of what
// history costs per publish (history_bench.py, perf). Here a channel's messages are carved one after
// another from 4 KiB pages, and a page goes back to its pool when its last allocation is freed: no
// free lists per size, no coalescing, and the hot path is a bump and a counter.
//
// How it is used: an ArenaScope makes operator new on this thread take memory from an arena while
// it lives (Message::create and everything it allocates); operator delete, on any thread, sees from
// the address whether memory is the arena's. Everything else keeps using malloc.
//
// Rules:
//  - A PageArena belongs to one thread (its pool's); allocations from it may be freed by any thread.
//  - A page is reused once every allocation on it is freed and its arena has moved on from it.
//    Pages freed on another thread go back to the owner's pool through a lock-free list.
//  - Allocations bigger than kMaxSmall, and any when the address range is used up, come from the
//    heap instead (allocate() returns nullptr and operator new falls back).
//  - Off under AddressSanitizer (it must see every allocation) and where the range cannot be
//    reserved: enabled() is false, arenas hand out nothing, and scopes change nothing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace gripd::core {

struct ArenaPage;

class PageArena {
  public:
    static constexpr size_t kPageSize = 4096;
    static constexpr size_t kMaxSmall = 1024; // bigger allocations go to the heap

    PageArena() = default;
    ~PageArena(); // gives up its current page: it is reused once its allocations are freed
    PageArena(const PageArena&) = delete;
    PageArena& operator=(const PageArena&) = delete;

    // Whether arenas can hand out memory in this process (not under ASan; the range reserved).
    static bool enabled();
    // `n` bytes, 16-byte aligned, or nullptr (too big, or no page to be had): use the heap.
    void* allocate(size_t n);

    struct Stats {
        uint64_t pages_reserved = 0; // pages ever taken from the address range (touched memory)
        uint64_t pages_in_use = 0;   // pages holding live allocations or being filled
    };
    static Stats stats();

  private:
    void retire();

    ArenaPage* page_ = nullptr;
    uint32_t used_ = 0;  // bytes carved from page_, its header included
    uint32_t count_ = 0; // allocations carved from page_
};

// While it lives, operator new on this thread allocates from `arena` (nullptr: from the heap, as
// usual). Scopes nest; the previous one is restored.
class ArenaScope {
  public:
    explicit ArenaScope(PageArena* arena);
    ~ArenaScope();
    ArenaScope(const ArenaScope&) = delete;
    ArenaScope& operator=(const ArenaScope&) = delete;

  private:
    PageArena* previous_;
};

// For the replaced operator new/delete (page_arena.cpp) and tests.
PageArena* current_arena();
bool arena_owns(const void* p);
void arena_free(void* p);
// The start of the page `p` (arena memory) is on, where its count lives.
inline const void* arena_page_of(const void* p) {
    const char* at = static_cast<const char*>(p);
    return at - (reinterpret_cast<uintptr_t>(at) & (PageArena::kPageSize - 1));
}

} // namespace gripd::core
