// The kernel's floor for the fan-out benchmark: what one small write to each of N loopback TCP
// sockets costs with no proxy at all. A writer process holds the accepted sockets and writes one
// 32-byte chunk to every one from W threads (as gripd's W workers would); a reader process (one
// epoll thread, like the load generator) reads them. Each round is timed from the writers' start
// to the reader's last byte, so it is directly comparable to realtime_bench fanout's "time to last
// subscriber": a proxy cannot deliver faster than this on the same machine.
//
//   tcp_fanout_floor [--subs 10000] [--writers 2] [--rounds 20]
// Prints one line: RESULT mode=floor status=ok subs=N writers=W last_p50_ms=... last_p99_ms=...
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

uint64_t now_ns() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "tcp_fanout_floor: %s: %s\n", what, std::strerror(errno));
    std::printf("RESULT mode=floor status=failed reason=%s\n", what);
    std::exit(1);
}

// A round starts when the writer sends one byte on the control pipe and ends when the reader
// answers with one byte; both processes take timestamps from the same monotonic clock.
void write_byte(int fd) {
    char c = 'x';
    if (write(fd, &c, 1) != 1) die("control pipe write");
}
void read_byte(int fd) {
    char c;
    if (read(fd, &c, 1) != 1) die("control pipe read");
}

// The reader: connect N sockets, then per round read until every socket has delivered its chunk
// and report the time of the last read through the pipe.
void run_reader(const sockaddr_in& addr, int subs, int rounds, int start_fd, int done_fd) {
    std::vector<int> fds;
    int ep = epoll_create1(0);
    for (int i = 0; i < subs; ++i) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0) die("socket");
        if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS)
            die("connect");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = static_cast<uint32_t>(i);
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        fds.push_back(fd);
    }
    write_byte(done_fd); // connected
    std::vector<epoll_event> evs(1024);
    char buf[512];
    for (int r = 0; r < rounds; ++r) {
        read_byte(start_fd);
        long got = 0; // bytes: one 32-byte chunk per socket per round
        while (got < 32L * subs) {
            int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 5000);
            if (n <= 0) die("reader timed out");
            for (int j = 0; j < n; ++j) {
                ssize_t k;
                while ((k = read(fds[evs[j].data.u32], buf, sizeof buf)) > 0)
                    got += k;
            }
        }
        uint64_t t = now_ns();
        if (write(done_fd, &t, sizeof t) != sizeof t) die("control pipe write");
    }
}

double pct(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

} // namespace

int main(int argc, char** argv) {
    int subs = 10000, writers = 2, rounds = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        int v = std::atoi(argv[i + 1]);
        if (k == "--subs")
            subs = v;
        else if (k == "--writers")
            writers = std::max(1, v);
        else if (k == "--rounds")
            rounds = std::max(1, v);
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(ls, 4096) != 0)
        die("listen");
    socklen_t alen = sizeof addr;
    getsockname(ls, reinterpret_cast<sockaddr*>(&addr), &alen);

    int to_reader[2], from_reader[2];
    if (pipe(to_reader) != 0 || pipe(from_reader) != 0) die("pipe");
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        close(ls);
        run_reader(addr, subs, rounds, to_reader[0], from_reader[1]);
        _exit(0);
    }
    std::vector<int> conns;
    for (int i = 0; i < subs; ++i) {
        int fd = accept(ls, nullptr, nullptr);
        if (fd < 0) die("accept");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns.push_back(fd);
    }
    read_byte(from_reader[0]);
    // The same bytes a stream subscriber gets for a small publish: one HTTP chunk.
    static const char chunk[] = "1b\r\ndata: 00000000 0000000000\n\r\n";
    static_assert(sizeof chunk - 1 == 32);
    std::vector<double> last_ms, writes_ms;
    for (int r = 0; r < rounds; ++r) {
        usleep(200 * 1000); // the fanout mode's gap between publishes
        uint64_t t0 = now_ns();
        write_byte(to_reader[1]);
        std::vector<std::thread> threads;
        for (int w = 0; w < writers; ++w)
            threads.emplace_back([&, w] {
                for (int i = w; i < subs; i += writers)
                    if (write(conns[i], chunk, sizeof chunk - 1) != sizeof chunk - 1) die("write");
            });
        for (auto& t : threads)
            t.join();
        writes_ms.push_back(static_cast<double>(now_ns() - t0) / 1e6);
        uint64_t t_last = 0;
        if (read(from_reader[0], &t_last, sizeof t_last) != sizeof t_last) die("control pipe read");
        last_ms.push_back(static_cast<double>(t_last - t0) / 1e6);
    }
    waitpid(child, nullptr, 0);
    std::printf("RESULT mode=floor status=ok subs=%d writers=%d rounds=%d last_p50_ms=%.2f last_p99_ms=%.2f "
                "writes_p50_ms=%.2f\n",
                subs, writers, rounds, pct(last_ms, 50), pct(last_ms, 99), pct(writes_ms, 50));
    return 0;
}
