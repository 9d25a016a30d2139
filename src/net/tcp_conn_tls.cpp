// TcpConn's TLS filter (server side): ciphertext read from the socket is decrypted in place from the
// worker's read buffer into a per-thread plaintext buffer and handed to on_data(); plaintext
// written is encrypted straight into the gather buffer, which flush() sends as it sends any owned
// bytes. A plaintext connection never reaches this file.
#include "gripd/core/assert.hpp"
#include "gripd/core/log.hpp"
#include "gripd/net/tcp_conn.hpp"
#include "gripd/net/tls_server.hpp"

namespace gripd::net {

namespace {
// Plaintext out of one TLS record at most (16 KiB) plus slack; a read delivers as many of these as
// its ciphertext holds, all within the read callback (as a plaintext read delivers its bytes).
constexpr size_t kPlainChunk = 16 * 1024 + 256;
} // namespace

void TcpConn::start_tls(std::unique_ptr<TlsServerSession> session) {
    GRIPD_ASSERT(!tls_ && reading_ == Reading::Stopped);
    tls_ = std::move(session);
}

bool TcpConn::tls_established() const {
    return tls_ && tls_->established();
}

void TcpConn::took_ciphertext(size_t from) {
    size_t n = gather_.size() - from;
    if (n == 0) return;
    if (!segments_.empty() && !segments_.back().keep)
        segments_.back().len += n; // the last owned segment ends where these bytes start
    else
        segments_.push_back(Segment{nullptr, from, n, {}});
    gathered_bytes_ += n;
    schedule_flush();
}

bool TcpConn::write_tls(std::string_view data) {
    if (!tls_->established()) { // nothing may go out in plaintext before the handshake
        fail_tls("sending before the handshake");
        return false;
    }
    // Held until flush(): everything written in one loop turn (a response's head and body, a
    // burst of messages) goes out as one record where it fits, so one seal and one record for the
    // client to open instead of one per write().
    tls_plain_.append(data);
    gathered_bytes_ += data.size();
    schedule_flush();
    return true;
}

bool TcpConn::seal_tls() {
    std::string plain;
    plain.swap(tls_plain_); // emptied first: a failure below flushes (and so seals) again
    gathered_bytes_ -= std::min(gathered_bytes_, plain.size());
    size_t from = gather_.size();
    if (!tls_->encrypt(plain, gather_)) {
        gather_.resize(from);
        fail_tls("sending");
        return false;
    }
    took_ciphertext(from);
    return true;
}

void TcpConn::fail_tls(const char* when) {
    // Scanners, plain HTTP on the TLS port and clients that reject our certificate end here: one
    // debug line each, never more.
    LOG_DEBUG("tls", "TLS with %s failed while %s: %s", peer_ip().c_str(), when, tls_->error().c_str());
    // What the session said last (an alert) goes out before the FIN.
    if (life_ == Life::Open) close_after_flush();
}

void TcpConn::on_ciphertext(const char* data, size_t len) {
    TlsServerSession& t = *tls_;
    t.set_input(data, len);
    if (!t.established()) {
        size_t from = gather_.size();
        TlsServerSession::Status s = t.handshake(gather_);
        took_ciphertext(from);
        if (s == TlsServerSession::Status::Error || s == TlsServerSession::Status::Closed) {
            t.set_input(nullptr, 0);
            fail_tls("shaking hands");
            return;
        }
        if (s == TlsServerSession::Status::InProgress) {
            t.set_input(nullptr, 0);
            // The flight just made (ServerHello to Finished) is all the peer waits for, and nothing
            // else can join it this turn: sent now rather than after every other connection's
            // handshake in this turn (a loop taking several handshakes at once would otherwise hold
            // each client's first flight until the last one's signature is done).
            if (gather_.size() > from && life_ == Life::Open) send_gathered();
            return;
        }
        LOG_TRACE("tls", "%s: %s%s, name \"%.*s\", alpn \"%.*s\"", peer_ip().c_str(), t.version(),
                  t.resumed() ? " (resumed)" : "", static_cast<int>(t.server_name().size()),
                  t.server_name().data(), static_cast<int>(t.alpn().size()), t.alpn().data());
        on_tls_established();
        if (life_ != Life::Open) {
            t.set_input(nullptr, 0);
            return;
        }
    }
    thread_local char plain[kPlainChunk];
    for (;;) {
        size_t n = 0;
        size_t from = gather_.size();
        TlsServerSession::Status s = t.read(plain, sizeof(plain), &n, gather_);
        if (gather_.size() > from && pending_writes_ > 0) {
            // The client makes us answer (key updates, alerts) while it does not read what we
            // already sent: the answers would pile up without bound.
            gather_.resize(from);
            LOG_DEBUG("tls", "TLS with %s: the client asks for answers but reads none: closing",
                      peer_ip().c_str());
            t.set_input(nullptr, 0);
            close();
            return;
        }
        took_ciphertext(from);
        if (n > 0) {
            on_data(plain, n);
            if (life_ != Life::Open) break; // closed, or draining before close: the rest is dropped
            continue;
        }
        if (s == TlsServerSession::Status::Ready) break; // all input consumed
        if (s == TlsServerSession::Status::Closed) {     // close_notify: as a FIN
            stop_reading();
            on_read_end(UV_EOF);
            break;
        }
        fail_tls("receiving");
        break;
    }
    t.set_input(nullptr, 0);
    // What this client's bytes made us answer right away (a response, the session ticket) goes out
    // at the end of its read, still one record for all of it, rather than at the end of the turn
    // after every other connection's work in it (a handshake's key exchange and signature is the
    // bulk of a turn on a TLS port). Writes from elsewhere (other loops, timers) keep the per-turn
    // flush.
    if (life_ == Life::Open && gathered_bytes_ > 0) send_gathered();
}

} // namespace gripd::net
