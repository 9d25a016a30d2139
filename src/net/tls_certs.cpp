// TlsCertSource: the certificates of runner/certs loaded into immutable TlsCertStores, and the
// settings every server context shares (protocols, ciphers, tickets, ALPN, the SNI switch).
#include "gripd/core/log.hpp"
#include "gripd/net/tls_server.hpp"
#include "tls_internal.hpp"
#include "tls_ticket_keys.hpp"

#include <uv.h>

#include <cstring>
#include <dirent.h>
#include <map>
#include <mutex>
#include <sys/stat.h>

namespace gripd::net {

namespace {

// Mozilla's "intermediate" TLS 1.2 suites (AEAD with forward secrecy only) and its TLS 1.3 order,
// chosen by the server (SSL_OP_CIPHER_SERVER_PREFERENCE), AES-128-GCM first as Go's crypto/tls
// server does: a TLS 1.3 handshake hashes its transcript and runs its whole key schedule (a dozen
// HKDF steps) with the suite's hash, SHA-256 here, which current x86 and ARM CPUs run in hardware,
// where AES-256-GCM's SHA-384 runs in software. OpenSSL clients (curl, Python, Node) list AES-256
// first, so on the client's order each of their handshakes paid for SHA-384 (callgrind: a seventh
// of a resumed handshake's instructions). A client that lists ChaCha20 first (one without AES
// hardware) still gets it (SSL_OP_PRIORITIZE_CHACHA).
constexpr const char* kCiphers12 = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                   "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                   "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kSuites13 =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
// Resumed sessions must come from gripd (any worker, any reload).
constexpr unsigned char kSessionIdContext[] = "gripd";
// A resumable session lives this long (OpenSSL's default is 2 hours, as nginx's tickets).
constexpr long kSessionTimeoutS = 2 * 3600;

// ALPN protocols we speak, in our order of preference, in wire format (length-prefixed): HTTP/2
// (src/h2, behind the client port's ServerConn) first, then HTTP/1.1.
constexpr unsigned char kAlpn[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// [gripd] http2 = false: only `http/1.1` (the list past its first entry). Written once before the
// workers start, read by handshakes on every loop.
std::atomic<bool> g_alpn_h2{true};

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
    unsigned char* chosen = nullptr;
    size_t skip = g_alpn_h2.load(std::memory_order_relaxed) ? 0 : 3;
    if (SSL_select_next_proto(&chosen, outlen, kAlpn + skip, sizeof(kAlpn) - skip, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; // no common protocol: go on without ALPN, as nginx does
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

int on_server_name(SSL* ssl, int* alert, void*);

// Settings shared by every context: the one a session starts on and each identity's.
bool configure(SSL_CTX* ctx, OSSL_LIB_CTX* lib, const std::shared_ptr<TicketKeyRing>& tickets,
               std::string* error) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(ctx, kCiphers12) != 1) {
        *error = "cipher list: " + openssl_error();
        return false;
    }
    if (SSL_CTX_set_ciphersuites(ctx, kSuites13) != 1) {
        *error = "TLS 1.3 cipher suites: " + openssl_error();
        return false;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
    // Idle connections give their record buffers back (the bulk of an idle TLS connection).
    // The chain sent is the one in the .crt file: no chain building on each full handshake (the
    // context's store is empty, so building one could only find the certificate itself).
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
    // Stateless tickets only: no server-side cache to lock or grow; the keys are the same on every
    // context so a ticket works whichever worker (and whichever reload) the client comes back to,
    // and they are rotated (TicketKeyRing).
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_timeout(ctx, kSessionTimeoutS);
    SSL_CTX_set_num_tickets(ctx, 1);
    if (!tickets || !tickets->ok() || !TicketKeyRing::install(ctx, lib, tickets)) {
        *error = "session ticket keys: " + openssl_error();
        return false;
    }
    SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof(kSessionIdContext) - 1);
    SSL_CTX_set_alpn_select_cb(ctx, &select_alpn, nullptr);
    SSL_CTX_set_tlsext_servername_callback(ctx, &on_server_name);
    return true;
}

// The files of one identity as they were when loaded.
struct FileStamp {
    std::string name; // file name in the directory
    long long size = 0;
    long long mtime_ns = 0;
    unsigned long long ino = 0;
};

// *.crt and *.key in `dir`, sorted by name; false if the directory cannot be read.
bool list_cert_files(const std::string& dir, std::vector<FileStamp>* out) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return false;
    while (dirent* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        bool crt = n.size() > 4 && n.substr(n.size() - 4) == ".crt";
        bool key = n.size() > 4 && n.substr(n.size() - 4) == ".key";
        if (!crt && !key) continue;
        struct stat st {};
        if (::stat((dir + "/" + std::string(n)).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        out->push_back({std::string(n), static_cast<long long>(st.st_size),
                        static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec,
                        static_cast<unsigned long long>(st.st_ino)});
    }
    ::closedir(d);
    std::sort(out->begin(), out->end(),
              [](const FileStamp& a, const FileStamp& b) { return a.name < b.name; });
    return true;
}

std::string signature_of(const std::vector<FileStamp>& files) {
    std::string sig;
    for (const auto& f : files)
        sig += f.name + '\0' + std::to_string(f.size) + '\0' + std::to_string(f.mtime_ns) + '\0' +
               std::to_string(f.ino) + '\n';
    return sig;
}

int on_server_name(SSL* ssl, int* alert, void*) {
    auto* session = static_cast<TlsServerSession*>(SSL_get_app_data(ssl));
    if (!session || !session->store()) return SSL_TLSEXT_ERR_ALERT_FATAL;
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    SSL_CTX* ctx = session->store()->pick(name ? name : "", session->port());
    if (!ctx) {
        // As Pushpin: no certificate for the name and no default for the port is a fatal alert.
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (ctx != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, ctx) != ctx) return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

// Loads `<name>.crt` (chain) and `<name>.key` into a configured context.
CtxPtr load_identity(OSSL_LIB_CTX* lib, const std::string& dir, const std::string& name,
                     const std::shared_ptr<TicketKeyRing>& keys, std::string* error) {
    CtxPtr ctx(SSL_CTX_new_ex(lib, nullptr, TLS_server_method()), SSL_CTX_free);
    if (!ctx) {
        *error = openssl_error();
        return ctx;
    }
    if (!configure(ctx.get(), lib, keys, error)) return CtxPtr(nullptr, SSL_CTX_free);
    std::string crt = dir + "/" + name + ".crt", key = dir + "/" + name + ".key";
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), crt.c_str()) != 1) {
        *error = crt + ": " + openssl_error();
        return CtxPtr(nullptr, SSL_CTX_free);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
        *error = key + ": " + openssl_error();
        return CtxPtr(nullptr, SSL_CTX_free);
    }
    if (SSL_CTX_check_private_key(ctx.get()) != 1) {
        *error = key + " does not match " + crt + ": " + openssl_error();
        return CtxPtr(nullptr, SSL_CTX_free);
    }
    return ctx;
}

// Each <name>.crt with its <name>.key goes into `store`. As Pushpin: one that fails to load (e.g.
// caught half written) leaves the one loaded before (in `previous`) in use.
void load_identities(OSSL_LIB_CTX* lib, const std::string& dir, const std::vector<FileStamp>& files,
                     const TlsCertStore* previous, const std::shared_ptr<TicketKeyRing>& ticket_keys,
                     TlsCertStore& store, bool log) {
    std::map<std::string, bool> has_key;
    for (const auto& f : files)
        if (f.name.size() > 4 && f.name.compare(f.name.size() - 4, 4, ".key") == 0)
            has_key[f.name.substr(0, f.name.size() - 4)] = true;
    for (const auto& f : files) {
        if (f.name.compare(f.name.size() - 4, 4, ".crt") != 0) continue;
        std::string name = f.name.substr(0, f.name.size() - 4);
        if (!has_key.count(name)) {
            if (log)
                LOG_WARN("tls", "%s/%s has no %s.key beside it: not used", dir.c_str(), f.name.c_str(),
                         name.c_str());
            continue;
        }
        std::string error;
        CtxPtr ctx = load_identity(lib, dir, name, ticket_keys, &error);
        if (!ctx) {
            SSL_CTX* old = previous ? previous->find(name) : nullptr;
            if (log)
                LOG_WARN("tls", "certificate %s not loaded: %s%s", name.c_str(), error.c_str(),
                         old ? " (the one loaded before stays in use)" : "");
            if (!old || SSL_CTX_up_ref(old) != 1) continue;
            ctx.reset(old);
        }
        store.names_.push_back(name);
        store.by_name_.emplace(name, std::move(ctx));
    }
}

void log_loaded(const TlsCertStore& store, const std::string& dir, bool first) {
    std::string list;
    for (const auto& n : store.names_)
        list += (list.empty() ? "" : ", ") + n;
    if (store.names_.empty())
        LOG_WARN("tls", "no certificate in %s: TLS handshakes will fail", dir.c_str());
    else
        LOG_INFO("tls", "%s %zu certificates from %s: %s", first ? "loaded" : "reloaded", store.names_.size(),
                 dir.c_str(), list.c_str());
}

// The library context of copy `i` (> 0), made on first use. Never freed, and reachable for the
// process's life: an established session's SSL keeps its SSL_CTX, and so the library context, alive
// after the store (and the source, at exit) is gone. Main thread (and tests) only: the mutex is
// never on a loop's path.
OSSL_LIB_CTX* shared_lib_ctx(int i) {
    static std::mutex mu;
    static auto* libs = new std::vector<OSSL_LIB_CTX*>();
    std::lock_guard<std::mutex> lock(mu);
    while (libs->size() < static_cast<size_t>(i)) {
        OSSL_LIB_CTX* lib = OSSL_LIB_CTX_new();
        if (!lib) return nullptr;
        libs->push_back(lib);
    }
    return (*libs)[static_cast<size_t>(i) - 1];
}

} // namespace

void set_alpn_h2(bool offer) {
    g_alpn_h2.store(offer, std::memory_order_relaxed);
}

// ---- TlsCertSource ----

TlsCertSource::TlsCertSource(std::string dir, int copies) : dir_(std::move(dir)) {
    copies = std::max(copies, 1);
    libs_.push_back(nullptr); // the first copy uses OpenSSL's default library context
    for (int i = 1; i < copies; ++i) {
        OSSL_LIB_CTX* lib = shared_lib_ctx(i);
        if (!lib) {
            LOG_WARN("tls", "cannot create an OpenSSL library context: workers share one");
            break;
        }
        libs_.push_back(lib);
    }
    store_ = std::make_unique<std::atomic<std::shared_ptr<const TlsCertStore>>[]>(libs_.size());
    tickets_ = std::make_shared<TicketKeyRing>();
    tickets_rotated_ms_ = uv_hrtime() / 1000000;
    if (!tickets_->ok()) // no context can be built then (reload() says so); never on a working system
        LOG_ERROR("tls", "cannot draw random session ticket keys: %s", openssl_error().c_str());
}

TlsCertSource::~TlsCertSource() = default;

bool TlsCertSource::rotate_ticket_keys() {
    tickets_rotated_ms_ = uv_hrtime() / 1000000;
    if (tickets_->rotate()) return true;
    LOG_WARN("tls", "cannot draw a new session ticket key (%s): the current one stays",
             openssl_error().c_str());
    return false;
}

bool TlsCertSource::reload(bool force) {
    // Called every second by the main loop: the ticket key rotation rides on it.
    if (uv_hrtime() / 1000000 - tickets_rotated_ms_ >= TicketKeyRing::kRotateMs) rotate_ticket_keys();
    std::vector<FileStamp> files;
    bool readable = list_cert_files(dir_, &files);
    std::string sig = readable ? signature_of(files) : std::string("unreadable");
    if (!force && sig == signature_) return false;
    bool first = signature_.empty();
    signature_ = sig;
    if (!readable)
        LOG_WARN("tls", "cannot read the certificates directory %s: TLS handshakes will fail", dir_.c_str());

    // Every copy is built before any is published: a failure leaves all workers on the old ones.
    std::vector<std::shared_ptr<TlsCertStore>> built;
    for (size_t i = 0; i < libs_.size(); ++i) {
        auto store = std::make_shared<TlsCertStore>();
        std::string error;
        store->base_.reset(SSL_CTX_new_ex(libs_[i], nullptr, TLS_server_method()));
        if (!store->base_ || !configure(store->base_.get(), libs_[i], tickets_, &error)) {
            LOG_ERROR("tls", "cannot create a TLS context: %s",
                      error.empty() ? openssl_error().c_str() : error.c_str());
            return false;
        }
        std::shared_ptr<const TlsCertStore> previous = store_[i].load(std::memory_order_acquire);
        load_identities(libs_[i], dir_, files, previous.get(), tickets_, *store, i == 0);
        built.push_back(std::move(store));
    }
    log_loaded(*built[0], dir_, first);
    for (size_t i = 0; i < built.size(); ++i)
        store_[i].store(std::move(built[i]), std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
    return true;
}

const std::shared_ptr<const TlsCertStore>& TlsCertSource::current(std::shared_ptr<const TlsCertStore>& cache,
                                                                  uint64_t& cache_gen, int copy) const {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    if (gen != cache_gen || !cache) {
        // Once per reload per listener.
        cache = store_[static_cast<size_t>(std::max(copy, 0)) % libs_.size()].load(std::memory_order_acquire);
        cache_gen = gen;
    }
    return cache;
}

std::vector<std::string> TlsCertSource::names() const {
    std::shared_ptr<const TlsCertStore> store = store_[0].load(std::memory_order_acquire);
    return store ? store->names_ : std::vector<std::string>{};
}

} // namespace gripd::net
