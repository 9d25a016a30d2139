// The TLS server layer: certificate choice and the memory-BIO session on their own (an OpenSSL
// client pumped by hand), then TcpConn with TLS on a real loop, the test thread being a blocking
// OpenSSL client over a loopback TCP pair.
#include "../http/loop_pair.hpp"
#include "gripd/loop/worker.hpp"
#include "gripd/net/tcp_conn.hpp"
#include "gripd/net/tls_server.hpp"

#include <catch2/catch.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <unistd.h>

using namespace gripd;
using Status = net::TlsServerSession::Status;

namespace {

constexpr int kPort = 8443;

// Writes <dir>/<name>.crt and .key: a self-signed P-256 certificate whose CN is `cn`.
void write_identity(const std::filesystem::path& dir, const std::string& name, const std::string& cn) {
    std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
    REQUIRE(key);
    std::unique_ptr<X509, void (*)(X509*)> x(X509_new(), X509_free);
    X509_set_version(x.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(x.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400);
    X509_set_pubkey(x.get(), key.get());
    X509_NAME* n = X509_get_subject_name(x.get());
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                               -1, 0);
    X509_set_issuer_name(x.get(), n);
    REQUIRE(X509_sign(x.get(), key.get(), EVP_sha256()) > 0);
    FILE* f = std::fopen((dir / (name + ".crt")).c_str(), "w");
    REQUIRE(f);
    PEM_write_X509(f, x.get());
    std::fclose(f);
    f = std::fopen((dir / (name + ".key")).c_str(), "w");
    REQUIRE(f);
    PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
}

struct CertDir {
    std::filesystem::path dir;
    CertDir() {
        char tmpl[] = "/tmp/gripd-tls-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        write_identity(dir, "default_" + std::to_string(kPort), "default");
        write_identity(dir, "host.test", "exact");
        write_identity(dir, "_.wild.test", "wildcard");
    }
    ~CertDir() { std::filesystem::remove_all(dir); }
};

std::string peer_cn(SSL* ssl) {
    std::unique_ptr<X509, void (*)(X509*)> cert(SSL_get1_peer_certificate(ssl), X509_free);
    if (!cert) return "";
    char buf[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, buf, sizeof(buf));
    return buf;
}

SSL_CTX* client_ctx() {
    static std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT);
    return ctx.get();
}

// A client SSL on memory BIOs, pumped against a server session by hand.
struct MemClient {
    std::unique_ptr<SSL, void (*)(SSL*)> ssl{SSL_new(client_ctx()), SSL_free};
    BIO* in = BIO_new(BIO_s_mem());  // server -> client
    BIO* out = BIO_new(BIO_s_mem()); // client -> server
    explicit MemClient(const char* sni, SSL_SESSION* resume = nullptr) {
        SSL_set_bio(ssl.get(), in, out);
        SSL_set_connect_state(ssl.get());
        if (sni) SSL_set_tlsext_host_name(ssl.get(), sni);
        if (resume) SSL_set_session(ssl.get(), resume);
        static const unsigned char alpn[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        SSL_set_alpn_protos(ssl.get(), alpn, sizeof(alpn));
    }
    std::string take() {
        std::string s(BIO_ctrl_pending(out), '\0');
        if (!s.empty()) BIO_read(out, s.data(), static_cast<int>(s.size()));
        return s;
    }
    void give(const std::string& s) {
        if (!s.empty()) BIO_write(in, s.data(), static_cast<int>(s.size()));
    }
};

// Runs the handshake between `c` and `s`; returns the server's last status.
Status pump_handshake(MemClient& c, net::TlsServerSession& s) {
    Status st = Status::InProgress;
    for (int i = 0; i < 10; ++i) {
        int rc = SSL_do_handshake(c.ssl.get());
        std::string to_server = c.take();
        if (rc == 1 && s.established() && to_server.empty()) break;
        std::string to_client;
        s.set_input(to_server.data(), to_server.size());
        if (!s.established()) {
            st = s.handshake(to_client);
            if (st == Status::Error) return st;
        }
        if (s.established()) { // the client's Finished may follow (and tickets go out)
            char buf[64];
            size_t n = 0;
            st = s.read(buf, sizeof(buf), &n, to_client);
        }
        s.set_input(nullptr, 0);
        c.give(to_client);
    }
    return st;
}

} // namespace

TEST_CASE("tls server: certificate chosen by SNI as Pushpin chooses it", "[net][tls]") {
    CertDir d;
    net::TlsCertSource source(d.dir.string());
    REQUIRE(source.reload(true));
    CHECK_FALSE(source.reload(false)); // nothing changed
    std::shared_ptr<const net::TlsCertStore> cache;
    uint64_t gen = 0;
    struct Case {
        const char* sni;
        int port;
        const char* cn; // "" = the handshake fails
    };
    const Case cases[] = {
        {"host.test", kPort, "exact"},
        {"Host.TEST", kPort, "exact"},
        {"a.wild.test", kPort, "wildcard"},
        {"a.b.wild.test", kPort, "default"},
        {"wild.test", kPort, "default"},
        {"other", kPort, "default"},
        {nullptr, kPort, "default"},
        {"host.test", 1, "exact"},
        {"other.test", 1, ""},
        {nullptr, 1, ""},
    };
    for (const auto& c : cases) {
        INFO((c.sni ? c.sni : "(no SNI)") << " on port " << c.port);
        net::TlsServerSession s(source.current(cache, gen), c.port);
        MemClient client(c.sni);
        Status st = pump_handshake(client, s);
        if (*c.cn == 0) {
            CHECK(st == Status::Error);
            CHECK_FALSE(s.established());
            CHECK_FALSE(s.error().empty());
            continue;
        }
        REQUIRE(s.established());
        CHECK(peer_cn(client.ssl.get()) == c.cn);
        CHECK(s.alpn() == "h2"); // the client offers h2 and http/1.1: h2 is our first choice
    }
    ERR_clear_error();
}

TEST_CASE("tls server: data both ways, close_notify, resumption with a ticket", "[net][tls]") {
    CertDir d;
    net::TlsCertSource source(d.dir.string());
    REQUIRE(source.reload(true));
    std::shared_ptr<const net::TlsCertStore> cache;
    uint64_t gen = 0;
    SSL_SESSION* ticket = nullptr;
    {
        net::TlsServerSession s(source.current(cache, gen), kPort);
        MemClient c("host.test");
        REQUIRE(pump_handshake(c, s) == Status::Ready);
        CHECK_FALSE(s.resumed());
        // Server -> client: a large message spans several records.
        std::string big(100000, 'x'), wire;
        REQUIRE(s.encrypt(big, wire));
        CHECK(wire.size() > big.size());
        c.give(wire);
        std::string got(big.size(), '\0');
        size_t total = 0;
        while (total < big.size()) {
            size_t n = 0;
            REQUIRE(SSL_read_ex(c.ssl.get(), got.data() + total, got.size() - total, &n) == 1);
            total += n;
        }
        CHECK(got == big);
        ticket = SSL_get1_session(c.ssl.get());
        CHECK(SSL_SESSION_is_resumable(ticket));
        // Client -> server, then close_notify.
        REQUIRE(SSL_write(c.ssl.get(), "hello", 5) == 5);
        SSL_shutdown(c.ssl.get());
        std::string in = c.take(), out, plain;
        s.set_input(in.data(), in.size());
        char buf[64];
        Status st = Status::Ready;
        for (;;) {
            size_t n = 0;
            st = s.read(buf, sizeof(buf), &n, out);
            if (n == 0) break;
            plain.append(buf, n);
        }
        s.set_input(nullptr, 0);
        CHECK(plain == "hello");
        CHECK(st == Status::Closed);
    }
    // A reload (new contexts) keeps tickets valid: same keys.
    REQUIRE(source.reload(true));
    net::TlsServerSession s(source.current(cache, gen), kPort);
    MemClient c("host.test", ticket);
    REQUIRE(pump_handshake(c, s) == Status::Ready);
    CHECK(s.resumed());
    CHECK(SSL_session_reused(c.ssl.get()) == 1);
    SSL_SESSION_free(ticket);
}

TEST_CASE("tls server: one copy per worker, each its own contexts; a ticket from one resumes on another",
          "[net][tls]") {
    CertDir d;
    net::TlsCertSource source(d.dir.string(), 2);
    REQUIRE(source.reload(true));
    std::shared_ptr<const net::TlsCertStore> cache0, cache1;
    uint64_t gen0 = 0, gen1 = 0;
    const net::TlsCertStore* w0 = source.current(cache0, gen0, 0).get();
    const net::TlsCertStore* w1 = source.current(cache1, gen1, 1).get();
    REQUIRE(w0);
    REQUIRE(w1);
    CHECK(w0 != w1); // each worker its own contexts
    SSL_SESSION* ticket = nullptr;
    {
        net::TlsServerSession s(cache0, kPort);
        MemClient c("host.test");
        REQUIRE(pump_handshake(c, s) == Status::Ready);
        CHECK(s.server_name() == "host.test");
        CHECK(peer_cn(c.ssl.get()) == "exact");
        std::string wire; // the client takes the ticket (TLS 1.3: after the handshake) as it reads
        REQUIRE(s.encrypt("x", wire));
        c.give(wire);
        char x = 0;
        REQUIRE(SSL_read(c.ssl.get(), &x, 1) == 1);
        ticket = SSL_get1_session(c.ssl.get());
        REQUIRE(SSL_SESSION_is_resumable(ticket));
        SSL_shutdown(c.ssl.get()); // freed without it, the client marks the session not resumable
    }
    net::TlsServerSession s(cache1, kPort);
    MemClient c("host.test", ticket);
    REQUIRE(pump_handshake(c, s) == Status::Ready);
    CHECK(s.resumed());
    SSL_SESSION_free(ticket);
}

TEST_CASE("tls server: reloads pick up changes; a file that fails to load keeps the one before",
          "[net][tls]") {
    CertDir d;
    net::TlsCertSource source(d.dir.string());
    REQUIRE(source.reload(true));
    std::shared_ptr<const net::TlsCertStore> cache;
    uint64_t gen = 0;
    auto cn_for = [&](const char* sni) {
        net::TlsServerSession s(source.current(cache, gen), kPort);
        MemClient c(sni);
        if (pump_handshake(c, s) != Status::Ready) return std::string("(failed)");
        return peer_cn(c.ssl.get());
    };
    CHECK(cn_for("host.test") == "exact");
    write_identity(d.dir, "host.test", "exact, renewed");
    write_identity(d.dir, "new.test", "added");
    REQUIRE(source.reload(false)); // files changed: a new store
    CHECK(cn_for("host.test") == "exact, renewed");
    CHECK(cn_for("new.test") == "added");
    // Caught half written: the key no longer matches. The renewed certificate stays in use.
    FILE* f = std::fopen((d.dir / "host.test.key").c_str(), "w");
    REQUIRE(f);
    std::fputs("-----BEGIN PRIVATE KEY-----\n", f);
    std::fclose(f);
    REQUIRE(source.reload(false));
    CHECK(cn_for("host.test") == "exact, renewed");
    // Removed files are gone at the next reload.
    std::filesystem::remove(d.dir / "new.test.crt");
    std::filesystem::remove(d.dir / "new.test.key");
    REQUIRE(source.reload(false));
    CHECK(cn_for("new.test") == "default");
    ERR_clear_error();
}

TEST_CASE("tls server: garbage fails the handshake at once", "[net][tls]") {
    CertDir d;
    net::TlsCertSource source(d.dir.string());
    REQUIRE(source.reload(true));
    std::shared_ptr<const net::TlsCertStore> cache;
    uint64_t gen = 0;
    net::TlsServerSession s(source.current(cache, gen), kPort);
    std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n", out;
    s.set_input(junk.data(), junk.size());
    CHECK(s.handshake(out) == Status::Error);
    CHECK_FALSE(s.error().empty());
    char buf[16];
    size_t n = 1;
    CHECK(s.read(buf, sizeof(buf), &n, out) == Status::Error);
    CHECK(n == 0);
    CHECK_FALSE(s.encrypt("x", out));
}

namespace {

struct Counts {
    int data = 0, read_ends = 0, established = 0, closes = 0, freed = 0;
    std::string received;
};

// Echoes plaintext over TLS; "BIG" makes it send `big` bytes and close after flushing.
class TlsEchoConn final : public net::TcpConn {
  public:
    TlsEchoConn(loop::Worker& w, Counts& c, size_t big) : TcpConn(w), c_(c), big_(big) {}

  protected:
    ~TlsEchoConn() override { ++c_.freed; }
    void on_data(const char* data, size_t len) override {
        ++c_.data;
        c_.received.append(data, len);
        if (c_.received.find("BIG") != std::string::npos) {
            write(std::string(big_, 'x'));
            close_after_flush();
            return;
        }
        if (std::string_view(data, len) == "SPLIT") { // one answer in three writes
            write("head;");
            write("body;");
            write("tail");
            return;
        }
        write(std::string_view(data, len));
    }
    void on_read_end(int) override {
        ++c_.read_ends;
        close();
    }
    void on_tls_established() override { ++c_.established; }
    void on_close() override { ++c_.closes; }

  private:
    Counts& c_;
    size_t big_;
};

struct TlsHarness {
    CertDir certs;
    net::TlsCertSource source{certs.dir.string()};
    Counts counts;
    loop::Worker worker{0, 1};
    test::LoopPair pair;
    size_t big = 0;

    void run(const std::function<void(test::LoopPair&)>& peer) {
        REQUIRE(source.reload(true));
        TlsEchoConn* conn = nullptr;
        bool opened = false; // checked after join(): Catch2 is not thread-safe (TSan)
        worker.on_start([&](loop::Worker& w) {
            conn = new TlsEchoConn(w, counts, big); // frees itself in its close callback
            opened = uv_tcp_open(conn->tcp(), pair.server) == 0;
            std::shared_ptr<const net::TlsCertStore> cache;
            uint64_t gen = 0;
            conn->start_tls(std::make_unique<net::TlsServerSession>(source.current(cache, gen), kPort));
            conn->start_reading();
        });
        worker.on_close_all([&](loop::Worker&) {
            if (counts.closes == 0) conn->close();
        });
        worker.start();
        peer(pair);
        worker.request_stop(0);
        worker.join();
        CHECK(opened);
        CHECK(counts.closes == 1);
        CHECK(counts.freed == 1);
        CHECK(worker.open_handles_for_test() == 0);
    }
};

// A blocking OpenSSL client on the pair's client socket.
std::unique_ptr<SSL, void (*)(SSL*)> blocking_client(int fd, const char* sni) {
    std::unique_ptr<SSL, void (*)(SSL*)> ssl(SSL_new(client_ctx()), SSL_free);
    SSL_set_fd(ssl.get(), fd);
    if (sni) SSL_set_tlsext_host_name(ssl.get(), sni);
    return ssl;
}

} // namespace

TEST_CASE("tls conn: echoes over TLS on a real loop, big output then close_notify and FIN",
          "[net][tls][loop]") {
    TlsHarness h;
    h.big = 1 << 20; // more than the kernel takes at once
    std::string echoed, got, cn;
    int last = 0;
    h.run([&](test::LoopPair& p) {
        auto ssl = blocking_client(p.client, "a.wild.test");
        REQUIRE(SSL_connect(ssl.get()) == 1);
        cn = peer_cn(ssl.get());
        REQUIRE(SSL_write(ssl.get(), "ping", 4) == 4);
        char buf[16384];
        int n = SSL_read(ssl.get(), buf, sizeof(buf));
        if (n > 0) echoed.assign(buf, static_cast<size_t>(n));
        REQUIRE(SSL_write(ssl.get(), "BIG", 3) == 3);
        for (;;) {
            n = SSL_read(ssl.get(), buf, sizeof(buf));
            if (n <= 0) {
                last = SSL_get_error(ssl.get(), n);
                break;
            }
            got.append(buf, static_cast<size_t>(n));
        }
        ::close(p.client); // the server, draining, sees our FIN and closes
        p.client = -1;
    });
    CHECK(cn == "wildcard");
    CHECK(echoed == "ping");
    CHECK(got.size() == h.big);
    CHECK(last == SSL_ERROR_ZERO_RETURN); // a clean close_notify, not a truncation
    CHECK(h.counts.established == 1);
    ERR_clear_error();
}

TEST_CASE("tls conn: the writes of one loop turn go out as one record", "[net][tls][loop]") {
    TlsHarness h;
    std::string first;
    h.run([&](test::LoopPair& p) {
        auto ssl = blocking_client(p.client, nullptr);
        REQUIRE(SSL_connect(ssl.get()) == 1);
        REQUIRE(SSL_write(ssl.get(), "SPLIT", 5) == 5);
        char buf[256];
        // SSL_read returns one record's plaintext at most: all three writes, or only the first.
        int n = SSL_read(ssl.get(), buf, sizeof(buf));
        if (n > 0) first.assign(buf, static_cast<size_t>(n));
        SSL_shutdown(ssl.get());
    });
    CHECK(first == "head;body;tail");
    ERR_clear_error();
}

TEST_CASE("tls conn: plaintext on the TLS port is closed without reaching on_data", "[net][tls][loop]") {
    TlsHarness h;
    std::string answer;
    bool timed_out = false;
    h.run([&](test::LoopPair& p) {
        p.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        answer = p.read_to_eof(&timed_out);
    });
    CHECK_FALSE(timed_out);
    CHECK(answer.rfind("HTTP/", 0) == std::string::npos);
    CHECK(h.counts.data == 0);
    CHECK(h.counts.established == 0);
}

TEST_CASE("tls conn: the client's close_notify reads as one EOF", "[net][tls][loop]") {
    TlsHarness h;
    bool timed_out = false;
    h.run([&](test::LoopPair& p) {
        auto ssl = blocking_client(p.client, nullptr);
        REQUIRE(SSL_connect(ssl.get()) == 1);
        REQUIRE(SSL_write(ssl.get(), "x", 1) == 1);
        char c;
        REQUIRE(SSL_read(ssl.get(), &c, 1) == 1);
        SSL_shutdown(ssl.get());
        p.read_to_eof(&timed_out);
    });
    CHECK_FALSE(timed_out);
    CHECK(h.counts.read_ends == 1);
    CHECK(h.counts.received == "x");
    ERR_clear_error();
}

namespace {

// A full or resumed handshake against `store`; returns the client's session (with the ticket the
// server sent) and whether the server resumed.
SSL_SESSION* ticket_from(const std::shared_ptr<const net::TlsCertStore>& store, SSL_SESSION* resume,
                         int max_version, bool* resumed) {
    net::TlsServerSession s(store, kPort);
    MemClient c("host.test", resume);
    SSL_set_max_proto_version(c.ssl.get(), max_version);
    if (pump_handshake(c, s) != Status::Ready) return nullptr;
    *resumed = s.resumed();
    std::string wire; // TLS 1.3: the ticket reaches the client as it reads
    if (!s.encrypt("x", wire)) return nullptr;
    c.give(wire);
    char x = 0;
    if (SSL_read(c.ssl.get(), &x, 1) != 1) return nullptr;
    SSL_SESSION* out = SSL_get1_session(c.ssl.get());
    SSL_shutdown(c.ssl.get());
    return out;
}

} // namespace

TEST_CASE("tls server: ticket keys rotate; tickets under the two keys before resume, older ones do not",
          "[net][tls]") {
    for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        CAPTURE(version);
        CertDir d;
        net::TlsCertSource source(d.dir.string(), 2);
        REQUIRE(source.reload(true));
        std::shared_ptr<const net::TlsCertStore> cache0, cache1;
        uint64_t gen0 = 0, gen1 = 0;
        bool resumed = true;
        SSL_SESSION* old = ticket_from(source.current(cache0, gen0, 0), nullptr, version, &resumed);
        REQUIRE(old);
        CHECK_FALSE(resumed);
        for (int rotations = 1; rotations <= 3; ++rotations) {
            CAPTURE(rotations);
            REQUIRE(source.rotate_ticket_keys());
            // On the other worker's copy: the keys are the same everywhere.
            // A copy each time: a client drops the session it resumed once a new ticket replaces it.
            SSL_SESSION* copy = SSL_SESSION_dup(old);
            SSL_SESSION* next = ticket_from(source.current(cache1, gen1, 1), copy, version, &resumed);
            SSL_SESSION_free(copy);
            REQUIRE(next);
            CHECK(resumed == (rotations < 3)); // 3 keys kept: the current one and the two before
            if (rotations < 3) {
                // Opened with an old key, the session comes back with a ticket under the current one,
                // which resumes after the next rotation too.
                bool again = false;
                SSL_SESSION* renewed = ticket_from(source.current(cache0, gen0, 0), next, version, &again);
                REQUIRE(renewed);
                CHECK(again);
                SSL_SESSION_free(renewed);
            }
            SSL_SESSION_free(next);
        }
        SSL_SESSION_free(old);
    }
}
