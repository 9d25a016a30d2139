// TicketKeyRing: session ticket keys shared by every server context, and OpenSSL's ticket callback
// over them (see tls_ticket_keys.hpp).
#include "tls_ticket_keys.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>

namespace gripd::net {

namespace {

std::atomic<uint64_t> g_next_ring_id{1};

bool draw(TicketKey& k) {
    return RAND_bytes(k.name, sizeof(k.name)) == 1 && RAND_priv_bytes(k.aes, sizeof(k.aes)) == 1 &&
           RAND_priv_bytes(k.hmac, sizeof(k.hmac)) == 1;
}

// What the ticket callback of one SSL_CTX needs, in its ex_data: the ring and the cipher fetched
// once in the context's library context (OpenSSL's own ticket code fetches it per ticket).
struct TicketCtxData {
    std::shared_ptr<TicketKeyRing> ring;
    EVP_CIPHER* cipher = nullptr;
};

void free_ctx_data(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    auto* d = static_cast<TicketCtxData*>(ptr);
    if (!d) return;
    EVP_CIPHER_free(d->cipher);
    delete d;
}

int ctx_data_index() {
    static const int index =
        CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, nullptr, nullptr, nullptr, &free_ctx_data);
    return index;
}

// OpenSSL's ticket key callback: 1 = done, 2 = opened, and a new ticket follows (an older key, or
// TLS 1.3), 0 = unknown key (full handshake), -1 = error.
int on_ticket_key(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cctx, EVP_MAC_CTX* hctx,
                  int enc) {
    auto* d = static_cast<TicketCtxData*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_data_index()));
    const TicketKeySet* set = d && d->ring ? d->ring->snapshot() : nullptr;
    if (!set || set->count == 0 || !d->cipher) return enc ? -1 : 0;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (enc) {
        const TicketKey& k = set->keys[0];
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(d->cipher)) != 1) return -1;
        std::memcpy(name, k.name, sizeof(k.name));
        if (EVP_EncryptInit_ex(cctx, d->cipher, nullptr, k.aes, iv) != 1 ||
            EVP_MAC_init(hctx, k.hmac, sizeof(k.hmac), params) != 1)
            return -1;
        return 1;
    }
    for (size_t i = 0; i < set->count; ++i) {
        const TicketKey& k = set->keys[i];
        if (std::memcmp(name, k.name, sizeof(k.name)) != 0) continue;
        if (EVP_MAC_init(hctx, k.hmac, sizeof(k.hmac), params) != 1 ||
            EVP_DecryptInit_ex(cctx, d->cipher, nullptr, k.aes, iv) != 1)
            return -1;
        // 2 asks for a new ticket. TLS 1.3 wants one after every resumption (OpenSSL sends none
        // on 1 there, and its clients do not use a ticket twice); TLS 1.2 keeps a ticket under the
        // current key.
        return i == 0 && SSL_version(ssl) != TLS1_3_VERSION ? 1 : 2;
    }
    return 0;
}

} // namespace

TicketKeySet::~TicketKeySet() {
    OPENSSL_cleanse(keys.data(), sizeof(TicketKey) * keys.size());
}

TicketKeyRing::TicketKeyRing() : id_(g_next_ring_id.fetch_add(1)) {
    rotate();
}

bool TicketKeyRing::rotate() {
    auto next = std::make_shared<TicketKeySet>();
    if (!draw(next->keys[0])) return false;
    std::shared_ptr<const TicketKeySet> prev = set_.load(std::memory_order_acquire);
    next->count = 1;
    for (size_t i = 0; prev && i < prev->count && next->count < kKept; ++i)
        next->keys[next->count++] = prev->keys[i];
    set_.store(std::move(next), std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
    return true;
}

const TicketKeySet* TicketKeyRing::snapshot() const {
    // One cached set per thread: the shared one (whose atomic load may take a short internal lock)
    // is read again only after a rotation.
    thread_local struct {
        uint64_t ring = 0;
        uint64_t generation = 0;
        std::shared_ptr<const TicketKeySet> set;
    } cache;
    uint64_t gen = generation_.load(std::memory_order_acquire);
    if (cache.ring != id_ || cache.generation != gen || !cache.set) {
        cache.set = set_.load(std::memory_order_acquire);
        cache.ring = id_;
        cache.generation = gen;
    }
    return cache.set.get();
}

bool TicketKeyRing::install(SSL_CTX* ctx, OSSL_LIB_CTX* lib, std::shared_ptr<TicketKeyRing> ring) {
    auto* d = new TicketCtxData{std::move(ring), EVP_CIPHER_fetch(lib, "AES-256-CBC", nullptr)};
    if (!d->cipher || SSL_CTX_set_ex_data(ctx, ctx_data_index(), d) != 1) {
        EVP_CIPHER_free(d->cipher);
        delete d;
        return false;
    }
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &on_ticket_key) == 1;
}

} // namespace gripd::net
