// TlsClient: the client side of one TLS session, as a pure transformation with no I/O of its own.
// Ciphertext from the socket goes in through feed(), plaintext comes out; plaintext goes in through
// encrypt(), ciphertext comes out for the socket. OutboundConn runs it over its TCP connection, so
// backend connections (HTTP, WebSocket-over-HTTP and passthrough WebSockets) speak TLS the same way.
//
// Certificates are checked against the system's CA store (OpenSSL's default paths, so SSL_CERT_FILE
// and SSL_CERT_DIR apply) and the server name, unless `verify` is off (the route's `insecure`).
// One context per worker thread: no TLS object is shared between loops.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <openssl/types.h>

namespace gripd::net {

class TlsClient {
  public:
    enum class Status { InProgress, Ready, Closed, Error };

    // `server_name`: sent as SNI (unless it is an IP address) and checked against the certificate.
    // `client_cert_pem`/`client_key_pem` (both or neither): the certificate (then its chain) and key sent
    // when the server asks for one (mTLS). A bad one fails the session at start().
    TlsClient(const std::string& server_name, bool verify, const std::string* client_cert_pem = nullptr,
              const std::string* client_key_pem = nullptr);
    ~TlsClient();
    TlsClient(const TlsClient&) = delete;
    TlsClient& operator=(const TlsClient&) = delete;

    // Starts the handshake: appends the ciphertext to send to `out`.
    Status start(std::string& out);
    // Ciphertext received: appends plaintext to `plain` and anything to send back to `out`.
    Status feed(std::string_view in, std::string& plain, std::string& out);
    // Appends the ciphertext of `plain` to `out`. False once the session failed.
    bool encrypt(std::string_view plain, std::string& out);

    bool ready() const { return ready_; }
    // Why the session failed (certificate problem or protocol error), for one log line.
    const std::string& error() const { return error_; }

  private:
    Status step(int rc);
    void drain(std::string& out);

    std::unique_ptr<SSL, void (*)(SSL*)> ssl_;
    bool ready_ = false;
    std::string error_;
};

} // namespace gripd::net
