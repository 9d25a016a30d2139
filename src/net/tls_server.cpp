// TlsServerSession: one server-side TLS session over a memory BIO window (see tls_server.hpp).
#include "gripd/net/tls_server.hpp"

#include "tls_internal.hpp"

#include <cstring>

namespace gripd::net {

// ---- the memory BIO ----

// A BIO over the session's window: reads take ciphertext in place from the caller's buffer (the
// worker's read buffer), writes append to the caller's string. Nothing is buffered in the BIO, so it
// holds no memory between calls.
struct TlsBio {
    static TlsServerSession* session(BIO* b) { return static_cast<TlsServerSession*>(BIO_get_data(b)); }

    static int write(BIO* b, const char* data, int len) {
        TlsServerSession* s = session(b);
        BIO_clear_retry_flags(b);
        if (!s || !s->out_ || len < 0) return -1;
        s->out_->append(data, static_cast<size_t>(len));
        return len;
    }

    static int read(BIO* b, char* buf, int len) {
        TlsServerSession* s = session(b);
        BIO_clear_retry_flags(b);
        if (!s || len <= 0) return 0;
        if (s->in_len_ == 0) {
            BIO_set_retry_read(b); // more later, from the socket
            return -1;
        }
        size_t n = std::min(s->in_len_, static_cast<size_t>(len));
        std::memcpy(buf, s->in_, n);
        s->in_ += n;
        s->in_len_ -= n;
        return static_cast<int>(n);
    }

    static long ctrl(BIO* b, int cmd, long, void*) {
        switch (cmd) {
        case BIO_CTRL_FLUSH:
            return 1;
        case BIO_CTRL_PENDING: {
            TlsServerSession* s = session(b);
            return s ? static_cast<long>(s->in_len_) : 0;
        }
        default:
            return 0;
        }
    }

    static int create(BIO* b) {
        BIO_set_init(b, 1);
        return 1;
    }

    static BIO_METHOD* method() {
        static BIO_METHOD* m = [] {
            BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gripd window");
            BIO_meth_set_write(bm, &TlsBio::write);
            BIO_meth_set_read(bm, &TlsBio::read);
            BIO_meth_set_ctrl(bm, &TlsBio::ctrl);
            BIO_meth_set_create(bm, &TlsBio::create);
            return bm;
        }();
        return m;
    }
};

// ---- TlsServerSession ----

TlsServerSession::TlsServerSession(std::shared_ptr<const TlsCertStore> store, int port)
    : port_(port), ssl_(nullptr, SSL_free), store_(std::move(store)) {
    if (!store_ || !store_->base()) {
        error_ = "no TLS context";
        return;
    }
    // Start on the port's default certificate when there is one: the clients it serves (no name, or
    // a name without a certificate of its own) then need no switch of context in the SNI callback.
    SSL_CTX* start = store_->find("default_" + std::to_string(port_));
    ssl_.reset(SSL_new(start ? start : store_->base()));
    BIO* bio = ssl_ ? BIO_new(TlsBio::method()) : nullptr;
    if (!bio) {
        error_ = "cannot create a TLS session: " + openssl_error();
        ssl_.reset();
        return;
    }
    BIO_set_data(bio, this);
    SSL_set_bio(ssl_.get(), bio, bio); // one BIO both ways; the session owns it
    SSL_set_app_data(ssl_.get(), this);
    SSL_set_accept_state(ssl_.get());
}

TlsServerSession::~TlsServerSession() = default;

void TlsServerSession::set_input(const char* data, size_t len) {
    in_ = data;
    in_len_ = len;
}

TlsServerSession::Status TlsServerSession::fail(int rc) {
    int err = SSL_get_error(ssl_.get(), rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return Status::InProgress;
    }
    if (err == SSL_ERROR_ZERO_RETURN) return Status::Closed;
    if (error_.empty()) error_ = openssl_error();
    ERR_clear_error();
    return Status::Error;
}

TlsServerSession::Status TlsServerSession::handshake(std::string& out) {
    if (!ssl_ || !error_.empty()) return Status::Error;
    if (established_) return Status::Ready;
    out_ = &out;
    int rc = SSL_do_handshake(ssl_.get());
    Status s = rc == 1 ? Status::Ready : fail(rc);
    out_ = nullptr;
    if (s == Status::Ready) {
        established_ = true;
        store_.reset(); // the SSL keeps its chosen context alive; the rest of the store may go
    }
    return s;
}

TlsServerSession::Status TlsServerSession::read(char* buf, size_t cap, size_t* n, std::string& out) {
    *n = 0;
    if (!ssl_ || !error_.empty()) return Status::Error;
    out_ = &out;
    size_t got = 0;
    int rc = SSL_read_ex(ssl_.get(), buf, cap, &got);
    Status s = Status::Ready;
    if (rc == 1)
        *n = got;
    else if (Status f = fail(0); f != Status::InProgress)
        s = f; // (SSL_get_error takes the return value only to tell <= 0 apart; 0 is right here)
    out_ = nullptr;
    return s;
}

bool TlsServerSession::encrypt(std::string_view plain, std::string& out) {
    if (!ssl_ || !established_ || !error_.empty()) return false;
    out_ = &out;
    bool ok = true;
    while (!plain.empty()) {
        size_t written = 0;
        if (SSL_write_ex(ssl_.get(), plain.data(), plain.size(), &written) != 1) {
            fail(0);
            if (error_.empty()) error_ = "TLS write failed";
            ok = false;
            break;
        }
        plain.remove_prefix(written);
    }
    out_ = nullptr;
    return ok;
}

void TlsServerSession::close_notify(std::string& out) {
    if (!ssl_ || !established_ || !error_.empty()) return;
    out_ = &out;
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
    out_ = nullptr;
}

std::string_view TlsServerSession::alpn() const {
    if (!ssl_) return {};
    const unsigned char* p = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl_.get(), &p, &len);
    return p ? std::string_view(reinterpret_cast<const char*>(p), len) : std::string_view();
}

std::string_view TlsServerSession::server_name() const {
    const char* n = ssl_ ? SSL_get_servername(ssl_.get(), TLSEXT_NAMETYPE_host_name) : nullptr;
    return n ? std::string_view(n) : std::string_view();
}

const char* TlsServerSession::version() const {
    return ssl_ ? SSL_get_version(ssl_.get()) : "";
}

bool TlsServerSession::resumed() const {
    return ssl_ && SSL_session_reused(ssl_.get()) == 1;
}

} // namespace gripd::net
