// TLS for clients ([runner] https_ports), in two parts:
//
// - TlsCertSource: the certificates of `runner/certs` next to the config file, laid out as Pushpin
//   lays them out: `<host>.crt` + `<host>.key`, `_.example.com.*` for `*.example.com` (one level, as
//   Pushpin), and `default_<port>.*` for clients that send no name or one without a certificate.
//   The main thread loads them (at start, on SIGHUP, and when a file changes) into an immutable
//   TlsCertStore; workers pick up a new store on their next accept. Connections already open keep
//   what they negotiated: a reload never drops a connection.
// - TlsServerSession: the server side of one TLS connection as a pure byte transformation on a
//   memory BIO (no I/O, no thread of its own). TcpConn runs it on its loop: ciphertext read from
//   the socket goes in, plaintext comes out into a caller buffer; ciphertext to send is appended to
//   the caller's string (the connection's write gather buffer, so it costs no extra copy).
//
// TLS 1.2 and 1.3 with modern AEAD ciphers, stateless session tickets (one key for every worker and
// every reload, so a resuming client may land on any loop), ALPN `http/1.1`, and
// SSL_MODE_RELEASE_BUFFERS so that an idle connection holds no record buffers.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/types.h>

namespace gripd::net {

class TlsCertStore;

// Whether ALPN offers `h2` before `http/1.1` ([gripd] http2). Set before the first TlsCertSource
// loads; process-wide, as the setting.
void set_alpn_h2(bool offer);

class TicketKeyRing;

class TlsCertSource {
  public:
    // `dir`: the certificates directory (<config dir>/runner/certs). `copies`: one copy of every
    // context per worker, each in its own OpenSSL library context: the workers are threads of one
    // process, and OpenSSL 3's shared state (algorithm store locks, reference counts of the
    // contexts, certificates and keys, touched on every handshake) bounced between their cores.
    explicit TlsCertSource(std::string dir, int copies = 1);
    ~TlsCertSource();
    TlsCertSource(const TlsCertSource&) = delete;
    TlsCertSource& operator=(const TlsCertSource&) = delete;

    // Main thread only. Reads the directory again when `force` (startup, SIGHUP) or when a file was
    // added, removed or changed since the last load; logs what it loaded and what it could not.
    // Returns whether a new store was published.
    bool reload(bool force);
    // Any thread: the current store. `cache`/`cache_gen` belong to the caller (one per listener):
    // the shared store is read only when a reload published a new one since the caller's last look.
    // `copy`: the caller's worker index (modulo the number of copies).
    const std::shared_ptr<const TlsCertStore>& current(std::shared_ptr<const TlsCertStore>& cache,
                                                       uint64_t& cache_gen, int copy = 0) const;
    const std::string& dir() const { return dir_; }
    // Identities loaded by the last reload (names as in the files, without .crt).
    std::vector<std::string> names() const;
    // Main thread only: a new session ticket key takes over now (reload() does this every
    // TicketKeyRing::kRotateMs); tickets under the previous two keys still resume.
    bool rotate_ticket_keys();

  private:
    std::string dir_;
    std::string signature_; // what the files looked like at the last load (names, sizes, mtimes)
    std::shared_ptr<TicketKeyRing> tickets_; // shared by every context of every copy and reload
    uint64_t tickets_rotated_ms_ = 0;        // uv_hrtime()/1e6 of the last rotation (main thread)
    // Swapped by reload() on the main thread, read by the loops: no mutex a loop could wait on.
    // One per copy (null: OpenSSL's default), shared by every source and kept to the process's end
    // (see shared_lib_ctx in tls_certs.cpp).
    std::vector<OSSL_LIB_CTX*> libs_;
    std::unique_ptr<std::atomic<std::shared_ptr<const TlsCertStore>>[]> store_;
    std::atomic<uint64_t> generation_{0};
};

class TlsServerSession {
  public:
    enum class Status : uint8_t {
        InProgress, // the handshake needs more bytes from the client
        Ready,      // handshake done; for read(): no more plaintext in what was fed
        Closed,     // the client sent close_notify
        Error,      // handshake failure or protocol error: close the connection (see error())
    };

    // A session for a connection accepted on `port`, using the certificates of `store`.
    TlsServerSession(std::shared_ptr<const TlsCertStore> store, int port);
    ~TlsServerSession();
    TlsServerSession(const TlsServerSession&) = delete;
    TlsServerSession& operator=(const TlsServerSession&) = delete;

    // Ciphertext from the client: valid until the next set_input (it is read in place).
    void set_input(const char* data, size_t len);
    // Runs the handshake on the input; ciphertext to send is appended to `out`.
    Status handshake(std::string& out);
    // Decrypts from the input into buf[0..cap); *n gets the plaintext length. Ready with *n == 0
    // means all input was consumed. Ciphertext to send (alerts, key updates) is appended to `out`.
    Status read(char* buf, size_t cap, size_t* n, std::string& out);
    // Appends the ciphertext of `plain` to `out`. False once the session failed.
    bool encrypt(std::string_view plain, std::string& out);
    // Appends a close_notify alert to `out` (after the handshake).
    void close_notify(std::string& out);

    bool established() const { return established_; }
    // The negotiated ALPN protocol ("" if none), the SNI name ("" if none) and the protocol version
    // name ("TLSv1.3"), for logs and future protocol dispatch (h2).
    std::string_view alpn() const;
    std::string_view server_name() const;
    const char* version() const;
    bool resumed() const;
    const std::string& error() const { return error_; }

  private:
    friend struct TlsBio;
    Status fail(int rc);

    // The memory BIO's window: the ciphertext being read (in place) and where output goes.
    const char* in_ = nullptr;
    size_t in_len_ = 0;
    std::string* out_ = nullptr;
    int port_ = 0;

    std::unique_ptr<SSL, void (*)(SSL*)> ssl_;
    // Kept until the handshake picked a certificate (the SNI callback reads it), then dropped: the
    // SSL holds its own reference to the context it uses.
    std::shared_ptr<const TlsCertStore> store_;
    std::string error_;
    bool established_ = false;

  public:
    // For the SNI callback (tls_server.cpp).
    const TlsCertStore* store() const { return store_.get(); }
    int port() const { return port_; }
};

} // namespace gripd::net
