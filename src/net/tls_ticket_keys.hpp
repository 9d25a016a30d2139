// Private to net/: the session ticket keys every server context shares, rotated on a timer.
//
// A ticket is encrypted (AES-256-CBC) and authenticated (HMAC-SHA256) under the current key; the
// keys before it still open tickets for as long as a ticket may be used (the ticket's lifetime),
// then are forgotten. Tickets opened with an older key are answered with a fresh ticket. The keys
// live in memory only: a restart starts a new set (old tickets then give full handshakes).
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

namespace gripd::net {

struct TicketKey {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
};

// One published generation of keys: keys[0] encrypts, all of keys[0..count) decrypt.
struct TicketKeySet {
    static constexpr size_t kMax = 3;
    std::array<TicketKey, kMax> keys{};
    size_t count = 0;
    ~TicketKeySet();
};

class TicketKeyRing {
  public:
    // How often a new key takes over, and how many are kept: a ticket made just before a rotation
    // opens for (kKept - 1) rotation periods, two hours, the lifetime gripd gives its sessions.
    static constexpr uint64_t kRotateMs = 3600 * 1000;
    static constexpr size_t kKept = TicketKeySet::kMax;

    // Draws the first key. ok() is false if no randomness was to be had (tickets then fail).
    TicketKeyRing();
    bool ok() const { return set_.load(std::memory_order_acquire) != nullptr; }
    // Main thread: a new current key; the oldest beyond kKept is dropped.
    bool rotate();
    // Any thread, no lock in the common case: the keys as last published. The reference stays valid
    // on this thread until its next call.
    const TicketKeySet* snapshot() const;

    // Makes `ctx` (in library context `lib`, null: the default) encrypt its tickets with this ring's
    // keys (the callback keeps the ring alive).
    static bool install(SSL_CTX* ctx, OSSL_LIB_CTX* lib, std::shared_ptr<TicketKeyRing> ring);

  private:
    const uint64_t id_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<std::shared_ptr<const TicketKeySet>> set_;
};

} // namespace gripd::net
