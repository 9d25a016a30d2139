#include "gripd/core/uuid.hpp"

#include <openssl/rand.h>

#include <cstdint>
#include <cstdio>
#include <random>

namespace gripd::core {

std::string random_uuid() {
    thread_local std::mt19937_64 rng = [] {
        uint64_t seed = 0;
        if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof(seed)) != 1)
            seed = std::random_device{}();
        return std::mt19937_64(seed);
    }();
    uint64_t a = rng(), b = rng();
    a = (a & ~0xF000ull) | 0x4000ull;                        // version 4
    b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull; // RFC 4122 variant
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                  static_cast<unsigned>((a >> 16) & 0xFFFF), static_cast<unsigned>(a & 0xFFFF),
                  static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFull));
    return buf;
}

} // namespace gripd::core
