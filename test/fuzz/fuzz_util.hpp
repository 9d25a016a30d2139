// Shared by the codec fuzz targets: a deterministic PRNG for piece sizes and a driver that feeds
// pieces the way a connection does (keep unconsumed bytes, resume after each pause).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace gripd::fuzz {

// FNV-1a: piece sizes and limits follow from the input, so every run of an input is the same.
inline uint64_t hash_bytes(const uint8_t* data, size_t size) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; ++i)
        h = (h ^ data[i]) * 1099511628211ull;
    return h;
}

struct Rng {
    uint64_t state;
    uint32_t next() {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        return static_cast<uint32_t>(state >> 33);
    }
};

// Mode 0: one piece; mode 1: byte by byte; mode 2: random pieces of 1..64 bytes. `kPaused` is the
// parser's state after a handler stopped it (resume() continues); any other state than that and
// State::Ok ends the run. Returns the bytes not consumed.
template <class Parser, auto kPaused = Parser::State::Paused>
std::string drive(Parser& parser, std::string_view input, int mode, uint64_t seed) {
    Rng rng{seed};
    std::string buf;
    size_t pos = 0;
    for (int guard = 0;; ++guard) {
        if (guard > 1000000) abort(); // no progress: a bug
        if (parser.state() == kPaused) {
            if (buf.empty() && pos == input.size()) break;
            parser.resume();
        }
        if (parser.state() != Parser::State::Ok) break;
        size_t n = parser.feed(buf.data(), buf.size());
        if (n > buf.size()) abort();
        buf.erase(0, n);
        if (parser.state() == kPaused) continue;
        if (parser.state() != Parser::State::Ok) break;
        if (pos == input.size()) break;
        size_t step = mode == 0 ? input.size() : mode == 1 ? 1 : 1 + rng.next() % 64;
        step = std::min(step, input.size() - pos);
        buf.append(input.substr(pos, step));
        pos += step;
    }
    return buf + std::string(input.substr(pos));
}

} // namespace gripd::fuzz
