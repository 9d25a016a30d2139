// Client side of tls_bench.sh: blocking OpenSSL over loopback TCP, no event loop (the servers are
// what is measured, not this program).
//
//   tls_bench_client hold PORT N [tls|plain [THREADS]]
//       Opens N connections (TLS unless `plain`; THREADS at a time, default 8), each: handshake,
//       one `GET /` read to its end (keep-alive), then left idle. Prints "held N" once all are open, then
//       waits until stdin closes (the script measures the server's RSS meanwhile) and closes them.
//   tls_bench_client rate PORT SECONDS THREADS full|resumed
//       THREADS threads loop for SECONDS: connect, handshake (resuming one session per thread
//       when `resumed`), `GET /`, read the response, close. Prints handshakes per second, the
//       share of them that were resumed, the failures and the total.
//
// SNI is "bench.test"; the certificate is not verified (a test certificate).
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

const char kRequest[] = "GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n";

int connect_to(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Reads one response with a Content-Length body (what every server here answers).
template <class ReadFn> bool read_response(ReadFn read) {
    std::string buf;
    char tmp[4096];
    size_t head_end = std::string::npos;
    size_t want = 0;
    for (;;) {
        int n = read(tmp, sizeof(tmp));
        if (n <= 0) return false;
        buf.append(tmp, static_cast<size_t>(n));
        if (head_end == std::string::npos) {
            head_end = buf.find("\r\n\r\n");
            if (head_end == std::string::npos) continue;
            size_t cl = buf.find("Content-Length:");
            if (cl == std::string::npos) cl = buf.find("content-length:");
            want =
                head_end + 4 +
                (cl != std::string::npos && cl < head_end ? std::strtoul(buf.c_str() + cl + 15, nullptr, 10)
                                                          : 0);
        }
        if (buf.size() >= want) return true;
    }
}

SSL_CTX* make_ctx() {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
    return ctx;
}

struct Conn {
    int fd = -1;
    SSL* ssl = nullptr;
};

// One connection with its request answered; `session` to resume (may be null).
bool open_one(SSL_CTX* ctx, int port, bool tls, SSL_SESSION* session, Conn* c, bool* reused = nullptr) {
    c->fd = connect_to(port);
    if (c->fd < 0) return false;
    if (!tls) {
        if (::send(c->fd, kRequest, sizeof(kRequest) - 1, MSG_NOSIGNAL) < 0) return false;
        return read_response(
            [&](char* b, int n) { return static_cast<int>(::recv(c->fd, b, static_cast<size_t>(n), 0)); });
    }
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "bench.test");
    if (session) SSL_set_session(c->ssl, session);
    if (SSL_connect(c->ssl) != 1) return false;
    if (reused) *reused = SSL_session_reused(c->ssl) == 1;
    if (SSL_write(c->ssl, kRequest, sizeof(kRequest) - 1) <= 0) return false;
    return read_response([&](char* b, int n) { return SSL_read(c->ssl, b, n); });
}

void close_one(Conn& c) {
    if (c.ssl) SSL_free(c.ssl);
    if (c.fd >= 0) ::close(c.fd);
    c = Conn{};
}

int hold(int port, int n, bool tls, int threads) {
    SSL_CTX* ctx = make_ctx();
    std::vector<Conn> conns(static_cast<size_t>(n));
    std::atomic<int> next{0}, failed{0};
    // Opened by several threads at once: each handshake waits on the server, not on this client.
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&] {
            for (int i = next++; i < n && failed == 0; i = next++)
                if (!open_one(ctx, port, tls, nullptr, &conns[static_cast<size_t>(i)])) {
                    if (failed++ == 0) {
                        std::fprintf(stderr, "connection %d failed\n", i);
                        ERR_print_errors_fp(stderr);
                    }
                }
        });
    for (auto& t : ts)
        t.join();
    if (failed > 0) {
        std::printf("held 0 (failed)\n");
        std::fflush(stdout);
        return 1;
    }
    std::printf("held %d\n", n);
    std::fflush(stdout);
    char b[64];
    while (::read(0, b, sizeof(b)) > 0) {
    }
    for (auto& c : conns)
        close_one(c);
    SSL_CTX_free(ctx);
    return 0;
}

int rate(int port, double seconds, int threads, bool resume) {
    SSL_CTX* ctx = make_ctx();
    std::atomic<long> done{0}, reused{0}, failed{0};
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&] {
            SSL_SESSION* session = nullptr;
            while (std::chrono::steady_clock::now() < end) {
                Conn c;
                bool r = false;
                if (!open_one(ctx, port, true, resume ? session : nullptr, &c, &r)) {
                    ++failed;
                    ERR_clear_error();
                    close_one(c);
                    continue;
                }
                ++done;
                if (r) ++reused;
                if (resume) { // TLS 1.3: a resumed connection's new ticket replaces the one it used
                    if (SSL_SESSION* fresh = SSL_get1_session(c.ssl)) {
                        if (session) SSL_SESSION_free(session);
                        session = fresh;
                    }
                }
                SSL_shutdown(c.ssl);
                close_one(c);
            }
            if (session) SSL_SESSION_free(session);
        });
    for (auto& t : ts)
        t.join();
    std::printf("handshakes/s %.0f resumed %.0f%% failed %ld total %ld\n",
                static_cast<double>(done) / seconds,
                done ? 100.0 * static_cast<double>(reused) / static_cast<double>(done) : 0.0, failed.load(),
                done.load());
    SSL_CTX_free(ctx);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc >= 4 && std::strcmp(argv[1], "hold") == 0)
        return hold(std::atoi(argv[2]), std::atoi(argv[3]),
                    !(argc >= 5 && std::strcmp(argv[4], "plain") == 0), argc >= 6 ? std::atoi(argv[5]) : 8);
    if (argc >= 6 && std::strcmp(argv[1], "rate") == 0)
        return rate(std::atoi(argv[2]), std::atof(argv[3]), std::atoi(argv[4]),
                    std::strcmp(argv[5], "resumed") == 0);
    std::fprintf(stderr,
                 "usage: %s hold PORT N [tls|plain [THREADS]] | rate PORT SECONDS THREADS full|resumed\n",
                 argv[0]);
    return 2;
}
