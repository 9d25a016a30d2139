// malloc_policy: the glibc malloc thresholds gripd runs with, set once at startup.
//
// Why: glibc's defaults adapt to the largest block freed so far and give memory back once 128 KiB
// (later twice the largest mmap'd block) lie free at the top of a heap. A publish request's
// buffers (its body, the items for each channel owner: a few hundred KiB for 500 items) then came
// from mmap, or regrew a just-trimmed heap, on every request: page faults each time and, for a
// worker's own heap, TLB shootdowns on the other cores. Fixed thresholds (blocks under 1 MiB from
// the heap; give back once 2 MiB lie free at its top) keep them on the heap, for at most 2 MiB more
// resident per malloc arena. history_bench.py, gripd CPU per published item: 1.78 -> 1.40 us.
//
// An operator's own settings win: with a glibc.malloc tunable in GLIBC_TUNABLES, or
// MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ set, nothing is changed.
#pragma once

namespace gripd::core {

inline constexpr int kMallocMmapThreshold = 1 << 20;
inline constexpr int kMallocTrimThreshold = 2 << 20;

// Call before any thread starts. Returns whether the thresholds were set.
bool apply_malloc_policy();

} // namespace gripd::core
