// Invariant checks at ownership hand-offs and state transitions.
//
// - GRIPD_ASSERT(cond): a bug check for debug and sanitizer builds (anything built without NDEBUG,
//   which includes meson's default debugoptimized). On failure it prints file:line and aborts, so
//   tests and sanitizer runs stop at the first broken invariant. Compiled out under NDEBUG.
// - GRIPD_CHECK(cond): always evaluated, never fatal. On failure it logs one error line, counts the
//   failure (check_failures()) and yields false, so the caller drops the offending connection or
//   session instead of taking the whole process down:
//       if (!GRIPD_CHECK(lease.valid())) return close(CloseReason::Internal);
#pragma once

#include <cstdint>

namespace gripd::core {

// Logs "check failed: <expr> at <file>:<line>" and counts it; returns false. Thread-safe.
bool check_failed(const char* expr, const char* file, int line);
// Aborts after printing "assertion failed: <expr> at <file>:<line>" to stderr.
[[noreturn]] void assert_failed(const char* expr, const char* file, int line);
// How many GRIPD_CHECKs failed in this process (for metrics and tests).
uint64_t check_failures();

} // namespace gripd::core

#define GRIPD_CHECK(cond)                                                                                    \
    (__builtin_expect(!!(cond), 1) ? true : ::gripd::core::check_failed(#cond, __FILE__, __LINE__))

#ifdef NDEBUG
#define GRIPD_ASSERT(cond) ((void)0)
#else
#define GRIPD_ASSERT(cond)                                                                                   \
    (__builtin_expect(!!(cond), 1) ? (void)0 : ::gripd::core::assert_failed(#cond, __FILE__, __LINE__))
#endif
