// A loopback TCP pair for loop-level tests: the server end goes to a connection on a worker's loop,
// the client end stays with the test thread, which speaks plain blocking socket calls (each bounded by
// a receive timeout, so a broken server fails the test instead of hanging it).
#pragma once

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace gripd::test {

struct LoopPair {
    int client = -1;
    int server = -1; // handed over to uv_tcp_open / uv_pipe_open (the connection owns it then)

    // unix_socket: a connected AF_UNIX pair instead (for a unix-socket connection).
    explicit LoopPair(bool unix_socket = false) {
        if (unix_socket) {
            int fds[2];
            REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
            client = fds[0];
            server = fds[1];
            set_timeouts();
            return;
        }
        int listener = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(listener >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
        REQUIRE(::listen(listener, 1) == 0);
        socklen_t len = sizeof(addr);
        REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        client = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(::connect(client, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
        server = ::accept(listener, nullptr, nullptr);
        ::close(listener);
        REQUIRE(server >= 0);
        set_timeouts();
    }
    void set_timeouts() const {
        timeval tv{5, 0};
        ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        ::setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    ~LoopPair() {
        if (client >= 0) ::close(client);
    }
    LoopPair(const LoopPair&) = delete;
    LoopPair& operator=(const LoopPair&) = delete;

    void send(std::string_view data) const {
        while (!data.empty()) {
            ssize_t n = ::send(client, data.data(), data.size(), MSG_NOSIGNAL);
            REQUIRE(n > 0);
            data.remove_prefix(static_cast<size_t>(n));
        }
    }
    // Half-closes the client's side (the server reads EOF).
    void shutdown_write() const { ::shutdown(client, SHUT_WR); }
    // Reads until the server closes (or a read times out: `timed_out` is set then).
    std::string read_to_eof(bool* timed_out = nullptr) const {
        std::string out;
        char buf[16384];
        for (;;) {
            ssize_t n = ::recv(client, buf, sizeof(buf), 0);
            if (n > 0) {
                out.append(buf, static_cast<size_t>(n));
                continue;
            }
            if (n < 0 && timed_out) *timed_out = true;
            return out;
        }
    }
    // Reads until `out` holds at least `want` bytes (or EOF / a timeout).
    std::string read_at_least(size_t want) const {
        std::string out;
        char buf[16384];
        while (out.size() < want) {
            ssize_t n = ::recv(client, buf, sizeof(buf), 0);
            if (n <= 0) break;
            out.append(buf, static_cast<size_t>(n));
        }
        return out;
    }
};

} // namespace gripd::test
