// http-response `body-patch`: a JSON Patch (RFC 6902, pointers per RFC 6901) applied to a held
// long-poll's own body when a publish names one (PROTOCOL.md 3.5). Pure: text in, text out.
//
// What Pushpin 1.36 does, and gripd with it (src/handler/httpsession.cpp applyBodyPatch):
//   - the body must be a JSON object or array (core::json::parse's rules), and so must the result;
//   - the result is written as compact JSON, and a trailing "\r\n" or "\n" of the body is kept;
//   - any failure (a body that is not JSON, an op that does not apply, a `test` that does not hold)
//     yields no body at all: the hold answers 502 as Pushpin does.
// Where gripd follows the RFC and Pushpin 1.36 does not: `add` into an array inserts before the
// index (index == size appends), and the empty pointer "" names the whole document. Object members
// keep their order (Pushpin writes them sorted by name).
// Nesting stays within core::json::kMaxDepth: an op whose result would nest deeper fails, so every
// recursion over the patched document (copy, compare, write, free) stays bounded.
// Time is bounded too (gripd; Pushpin has no bound): a patch of more than kMaxPatchOps operations,
// or one whose work (values visited, members compared on lookup, array elements shifted) passes
// kMaxPatchWork, fails like any other failing patch (the hold answers 502, Pushpin's behaviour for
// a patch that does not apply).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <cstddef>

namespace gripd::grip {

constexpr size_t kMaxPatchOps = 1000;
constexpr size_t kMaxPatchWork = 10'000'000;

// Applies the JSON Patch `patch` (a JSON array of operations, as text) to the JSON text `body`.
// Returns the patched body, or nullopt with a short reason in `error` (for a debug line).
std::optional<std::string> apply_json_patch(std::string_view body, std::string_view patch,
                                            std::string& error);

} // namespace gripd::grip
