#include "gripd/net/tls_client.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

namespace gripd::net {

namespace {

// The worker thread's client context (created on first use, freed when the thread ends).
SSL_CTX* client_context() {
    thread_local std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx = [] {
        std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> c(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
        if (c) {
            SSL_CTX_set_min_proto_version(c.get(), TLS1_2_VERSION);
            SSL_CTX_set_default_verify_paths(c.get());
            // Idle connections give their record buffers back (pooled backend connections).
            SSL_CTX_set_mode(c.get(), SSL_MODE_RELEASE_BUFFERS);
        }
        return c;
    }();
    return ctx.get();
}

bool is_ip_address(const std::string& s) {
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "TLS protocol error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    return buf;
}

// Loads a PEM certificate chain (leaf first) and private key into `ssl`. Returns an error or "".
std::string use_client_identity(SSL* ssl, const std::string& cert_pem, const std::string& key_pem) {
    std::unique_ptr<BIO, int (*)(BIO*)> certs(
        BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), BIO_free);
    std::unique_ptr<X509, void (*)(X509*)> leaf(
        certs ? PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr) : nullptr, X509_free);
    if (!leaf || SSL_use_certificate(ssl, leaf.get()) != 1) return "client_cert: no PEM certificate";
    while (X509* extra = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr))
        if (SSL_add0_chain_cert(ssl, extra) != 1) X509_free(extra); // the chain owns it once added
    ERR_clear_error();                                              // the loop ends on "no start line"
    std::unique_ptr<BIO, int (*)(BIO*)> keys(
        BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), BIO_free);
    std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
        keys ? PEM_read_bio_PrivateKey(keys.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free);
    if (!key) return "client_key: no PEM private key";
    if (SSL_use_PrivateKey(ssl, key.get()) != 1 || SSL_check_private_key(ssl) != 1)
        return "client_key does not match client_cert";
    return "";
}

} // namespace

TlsClient::TlsClient(const std::string& server_name, bool verify, const std::string* client_cert_pem,
                     const std::string* client_key_pem)
    : ssl_(nullptr, SSL_free) {
    SSL_CTX* ctx = client_context();
    if (!ctx) {
        error_ = "cannot create a TLS context: " + openssl_error();
        return;
    }
    ssl_.reset(SSL_new(ctx));
    if (!ssl_) {
        error_ = "cannot create a TLS session: " + openssl_error();
        return;
    }
    BIO* rbio = BIO_new(BIO_s_mem());
    BIO* wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_.get(), rbio, wbio); // the session owns both
    SSL_set_connect_state(ssl_.get());
    bool ip = is_ip_address(server_name);
    if (!ip && !server_name.empty()) SSL_set_tlsext_host_name(ssl_.get(), server_name.c_str());
    if (verify) {
        SSL_set_verify(ssl_.get(), SSL_VERIFY_PEER, nullptr);
        if (ip)
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), server_name.c_str());
        else
            SSL_set1_host(ssl_.get(), server_name.c_str());
    } else {
        SSL_set_verify(ssl_.get(), SSL_VERIFY_NONE, nullptr);
    }
    if (client_cert_pem && client_key_pem) {
        error_ = use_client_identity(ssl_.get(), *client_cert_pem, *client_key_pem);
        ERR_clear_error();
    }
}

TlsClient::~TlsClient() = default;

void TlsClient::drain(std::string& out) {
    BIO* wbio = SSL_get_wbio(ssl_.get());
    size_t pending = BIO_ctrl_pending(wbio);
    if (pending == 0) return;
    size_t at = out.size();
    out.resize(at + pending);
    int n = BIO_read(wbio, out.data() + at, static_cast<int>(pending));
    out.resize(at + (n > 0 ? static_cast<size_t>(n) : 0));
}

TlsClient::Status TlsClient::step(int rc) {
    int err = SSL_get_error(ssl_.get(), rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::InProgress;
    if (err == SSL_ERROR_ZERO_RETURN) return Status::Closed;
    long verify = SSL_get_verify_result(ssl_.get());
    if (verify != X509_V_OK)
        error_ = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    else
        error_ = openssl_error();
    ERR_clear_error();
    return Status::Error;
}

TlsClient::Status TlsClient::start(std::string& out) {
    if (!ssl_ || !error_.empty()) return Status::Error;
    int rc = SSL_do_handshake(ssl_.get());
    Status s = rc == 1 ? Status::Ready : step(rc);
    if (s == Status::Ready) ready_ = true;
    drain(out);
    return s;
}

TlsClient::Status TlsClient::feed(std::string_view in, std::string& plain, std::string& out) {
    if (!ssl_ || !error_.empty()) return Status::Error;
    BIO* rbio = SSL_get_rbio(ssl_.get());
    if (!in.empty() &&
        BIO_write(rbio, in.data(), static_cast<int>(in.size())) != static_cast<int>(in.size())) {
        error_ = "TLS buffer error";
        return Status::Error;
    }
    if (!ready_) {
        int rc = SSL_do_handshake(ssl_.get());
        if (rc != 1) {
            Status s = step(rc);
            drain(out);
            return s;
        }
        ready_ = true;
    }
    char buf[16384];
    for (;;) {
        int n = SSL_read(ssl_.get(), buf, sizeof(buf));
        if (n > 0) {
            plain.append(buf, static_cast<size_t>(n));
            continue;
        }
        Status s = step(n);
        drain(out); // e.g. answers to a key update
        return s == Status::InProgress ? Status::Ready : s;
    }
}

bool TlsClient::encrypt(std::string_view plain, std::string& out) {
    if (!ssl_ || !ready_ || !error_.empty()) return false;
    while (!plain.empty()) {
        int n = SSL_write(ssl_.get(), plain.data(),
                          static_cast<int>(plain.size() > (1u << 30) ? (1u << 30) : plain.size()));
        if (n <= 0) {
            step(n);
            return false;
        }
        plain.remove_prefix(static_cast<size_t>(n));
    }
    drain(out);
    return true;
}

} // namespace gripd::net
