#include "gripd/core/page_arena.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace gripd;
using core::ArenaScope;
using core::PageArena;

namespace {

// Under AddressSanitizer the arena is off by design: scopes change nothing.
bool arena_on() {
    if (PageArena::enabled()) return true;
    WARN("the page arena is off in this build (AddressSanitizer): nothing to check");
    return false;
}

} // namespace

TEST_CASE("operator new takes small allocations from the scope's arena, the rest from the heap",
          "[core][arena]") {
    if (!arena_on()) return;
    PageArena arena;
    std::unique_ptr<std::array<char, 100>> small;
    std::unique_ptr<std::array<char, 4000>> big;
    std::string text;
    {
        ArenaScope scope(&arena);
        small = std::make_unique<std::array<char, 100>>();
        big = std::make_unique<std::array<char, 4000>>();
        text.assign(200, 'x'); // a string's buffer too
    }
    auto outside = std::make_unique<int>(7);
    CHECK(core::arena_owns(small.get()));
    CHECK(core::arena_owns(text.data()));
    CHECK_FALSE(core::arena_owns(big.get())); // over kMaxSmall
    CHECK_FALSE(core::arena_owns(outside.get()));
    CHECK(reinterpret_cast<uintptr_t>(small.get()) % 16 == 0);
    text.append(300, 'y'); // grown outside the scope: moved to the heap, the arena's copy freed
    CHECK_FALSE(core::arena_owns(text.data()));
    CHECK(text == std::string(200, 'x') + std::string(300, 'y'));
}

TEST_CASE("arena scopes nest and restore the previous arena", "[core][arena]") {
    PageArena a;
    CHECK(core::current_arena() == nullptr);
    {
        ArenaScope outer(&a);
        CHECK(core::current_arena() == &a);
        {
            ArenaScope heap(nullptr);
            CHECK(core::current_arena() == nullptr);
        }
        CHECK(core::current_arena() == &a);
    }
    CHECK(core::current_arena() == nullptr);
}

TEST_CASE("a page is reused once its allocations are freed and its arena has moved on", "[core][arena]") {
    if (!arena_on()) return;
    const uint64_t in_use = PageArena::stats().pages_in_use;
    std::vector<std::unique_ptr<std::array<char, 200>>> kept;
    kept.reserve(200); // on the heap, before any scope: only the items are the arena's
    auto fill = [&](PageArena& arena) {
        ArenaScope scope(&arena);
        for (int i = 0; i < 100; ++i) // 100 x 208 bytes: several pages
            kept.push_back(std::make_unique<std::array<char, 200>>());
    };
    {
        PageArena arena;
        fill(arena);
        CHECK(PageArena::stats().pages_in_use >= in_use + 5);
        kept.clear(); // the arena still fills its last page: that one stays
        CHECK(PageArena::stats().pages_in_use == in_use + 1);
    }
    CHECK(PageArena::stats().pages_in_use == in_use);
    // Freed pages are taken again before any new memory.
    const uint64_t reserved = PageArena::stats().pages_reserved;
    {
        PageArena arena;
        fill(arena);
        // An arena's pages live as long as their allocations, even after the arena is gone.
    }
    CHECK(PageArena::stats().pages_reserved == reserved);
    CHECK(PageArena::stats().pages_in_use >= in_use + 5);
    for (auto& a : kept)
        a->fill('z');
    kept.clear();
    CHECK(PageArena::stats().pages_in_use == in_use);
}

TEST_CASE("arena memory freed on another thread goes back to its owner, intact until then",
          "[core][arena][loop]") {
    if (!arena_on()) return;
    const uint64_t in_use = PageArena::stats().pages_in_use;
    struct Item {
        size_t size;
        unsigned char* bytes;
    };
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Item> queue;
    bool done = false;
    size_t corrupt = 0;
    // The freeing thread checks that every allocation still holds the pattern its owner wrote: two
    // live allocations that overlapped, or a page reused too early, would show here.
    std::thread freer([&] {
        for (;;) {
            Item it;
            {
                std::unique_lock lock(mu);
                cv.wait(lock, [&] { return !queue.empty() || done; });
                if (queue.empty()) return;
                it = queue.front();
                queue.pop_front();
            }
            for (size_t k = 0; k < it.size; ++k)
                if (it.bytes[k] != static_cast<unsigned char>(it.size)) ++corrupt;
            delete[] it.bytes;
        }
    });
    {
        PageArena arena;
        for (size_t i = 0; i < 50000; ++i) {
            size_t size = 16 + (i * 37) % 700;
            unsigned char* bytes;
            {
                ArenaScope scope(&arena);
                bytes = new unsigned char[size];
            }
            std::memset(bytes, static_cast<int>(size & 0xff), size);
            {
                std::lock_guard lock(mu);
                queue.push_back(Item{size, bytes});
            }
            cv.notify_one();
        }
    }
    {
        std::lock_guard lock(mu);
        done = true;
    }
    cv.notify_one();
    freer.join();
    CHECK(corrupt == 0);
    CHECK(PageArena::stats().pages_in_use == in_use);
    // The pages came back to this thread's pool: taking as many again needs no new ones.
    const uint64_t reserved = PageArena::stats().pages_reserved;
    {
        PageArena arena;
        std::vector<std::unique_ptr<char[]>> again;
        ArenaScope scope(&arena);
        for (int i = 0; i < 200; ++i)
            again.emplace_back(new char[300]);
    }
    CHECK(PageArena::stats().pages_reserved == reserved);
}

TEST_CASE("free pages past the pool's bound go back to the kernel and are reused after", "[core][arena]") {
    if (!arena_on()) return;
    const uint64_t in_use = PageArena::stats().pages_in_use;
    // 6,000 pages (24 MiB): past the 1,024 a pool keeps, so most of the rest is given back.
    std::vector<std::unique_ptr<std::array<unsigned char, 1000>>> kept;
    kept.reserve(24000);
    auto fill = [&](unsigned char v) {
        PageArena arena;
        ArenaScope scope(&arena);
        for (int i = 0; i < 24000; ++i) {
            kept.push_back(std::make_unique<std::array<unsigned char, 1000>>());
            kept.back()->fill(v);
        }
    };
    fill(1);
    CHECK(PageArena::stats().pages_in_use >= in_use + 6000);
    kept.clear();
    CHECK(PageArena::stats().pages_in_use == in_use);
    const uint64_t reserved = PageArena::stats().pages_reserved;
    fill(2); // from the pool, the batch not yet given back, and the pages that were
    CHECK(PageArena::stats().pages_reserved == reserved);
    size_t wrong = 0;
    for (auto& a : kept)
        for (unsigned char c : *a)
            wrong += c != 2;
    CHECK(wrong == 0);
    kept.clear();
    CHECK(PageArena::stats().pages_in_use == in_use);
}

namespace {

struct Mapping {
    uintptr_t start = 0, end = 0;
    std::string perms;
};

std::vector<Mapping> read_maps() {
    std::vector<Mapping> out;
    std::FILE* f = std::fopen("/proc/self/maps", "r");
    if (!f) return out;
    char line[512];
    while (std::fgets(line, sizeof line, f)) {
        unsigned long start = 0, end = 0;
        char perms[8] = {};
        if (std::sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3) out.push_back({start, end, perms});
    }
    std::fclose(f);
    return out;
}

} // namespace

TEST_CASE("the arena's range is writable only as far as its pages have been taken", "[core][arena]") {
    // Strict overcommit charges a writable private mapping in full: the 16 GiB range stays
    // inaccessible (uncharged) past the 64 MiB chunks pages were taken from.
    if (!arena_on()) return;
    PageArena arena;
    std::unique_ptr<int> p;
    {
        ArenaScope scope(&arena);
        p = std::make_unique<int>(1);
    }
    REQUIRE(core::arena_owns(p.get()));
    auto at = reinterpret_cast<uintptr_t>(p.get());
    std::vector<Mapping> maps = read_maps();
    auto it =
        std::find_if(maps.begin(), maps.end(), [&](const Mapping& m) { return m.start <= at && at < m.end; });
    REQUIRE(it != maps.end());
    CHECK(it->perms.substr(0, 2) == "rw");
    uint64_t writable = it->end - it->start;
    CHECK(writable % (64ull << 20) == 0);
    REQUIRE(std::next(it) != maps.end());
    auto rest = std::next(it);
    CHECK(rest->start == it->end);
    CHECK(rest->perms.substr(0, 3) == "---");
    CHECK(rest->end - it->start <= (16ull << 30)); // the range: the chunks in use, then the rest
    CHECK(rest->end - rest->start >= (16ull << 30) - writable - (64ull << 20));
}
