// The HTTP/2 session on a real loop, as server_conn_test does it for HTTP/1.1: a worker thread runs
// one ServerConn over a loopback TCP pair and hands it to h2::Session on the preface; the test
// thread is an nghttp2 client (blocking, bounded reads). After the loop ends every handle is closed,
// every exchange and stream deleted and the gauges are back to zero.
#include "gripd/h2/session.hpp"
#include "gripd/http/listener.hpp"
#include "gripd/http/server_conn.hpp"
#include "gripd/loop/worker.hpp"
#include "h2/session_internal.hpp"

#include "../http/loop_pair.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <nghttp2/nghttp2.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

using namespace gripd;

namespace {

struct Recorder {
    int heads = 0, ends = 0, gone = 0, deleted = 0;
    std::vector<std::string> targets;
};

// Answers "<target> <body>" at the end of the request; /hold never answers.
class EchoExchange final : public http::Exchange {
  public:
    EchoExchange(http::ClientStream& s, Recorder& rec, std::string target)
        : s_(&s), rec_(rec), target_(std::move(target)) {}
    ~EchoExchange() override { ++rec_.deleted; }
    void on_request_body(std::string_view data) override { body_.append(data); }
    void on_request_end() override {
        ++rec_.ends;
        if (target_ == "/hold") return;
        s_->respond_text(200, target_ + " " + body_);
    }
    void on_client_gone() override {
        ++rec_.gone;
        s_ = nullptr;
    }

  private:
    http::ClientStream* s_;
    Recorder& rec_;
    std::string target_, body_;
};

class EchoService final : public http::Service {
  public:
    explicit EchoService(Recorder& rec) : rec_(rec) { h2_factory = &h2::start_session; }
    std::unique_ptr<http::Exchange> start_exchange(http::ClientStream& s, http::RequestHead& head) override {
        ++rec_.heads;
        rec_.targets.push_back(head.target);
        return std::make_unique<EchoExchange>(s, rec_, head.target);
    }
    size_t max_header_bytes() const override { return 8192; }
    uint64_t idle_timeout_ms() const override { return 10000; }
    uint64_t header_timeout_ms() const override { return 10000; }

  private:
    Recorder& rec_;
};

// A blocking nghttp2 client on the test thread.
struct Client {
    struct Stream {
        int status = 0;
        std::string body;
        bool closed = false;
        uint32_t error = 0;
    };
    nghttp2_session* ng = nullptr;
    std::map<int32_t, Stream> streams;
    test::LoopPair& pair;

    explicit Client(test::LoopPair& p) : pair(p) {
        nghttp2_session_callbacks* cbs;
        nghttp2_session_callbacks_new(&cbs);
        nghttp2_session_callbacks_set_on_header_callback(
            cbs, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl, const uint8_t* v,
                    size_t vl, uint8_t, void* u) {
                if (std::string_view(reinterpret_cast<const char*>(n), nl) == ":status")
                    static_cast<Client*>(u)->streams[f->hd.stream_id].status =
                        std::stoi(std::string(reinterpret_cast<const char*>(v), vl));
                return 0;
            });
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
            cbs, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t len, void* u) {
                static_cast<Client*>(u)->streams[id].body.append(reinterpret_cast<const char*>(d), len);
                return 0;
            });
        nghttp2_session_callbacks_set_on_stream_close_callback(
            cbs, [](nghttp2_session*, int32_t id, uint32_t err, void* u) {
                auto& s = static_cast<Client*>(u)->streams[id];
                s.closed = true;
                s.error = err;
                return 0;
            });
        nghttp2_session_client_new(&ng, cbs, this);
        nghttp2_session_callbacks_del(cbs);
        nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, nullptr, 0);
    }
    ~Client() { nghttp2_session_del(ng); }

    int32_t request(const char* path, const std::string* body = nullptr) {
        auto nv = [](const char* n, const char* v) {
            return nghttp2_nv{(uint8_t*)n, (uint8_t*)v, strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE};
        };
        nghttp2_nv hdrs[] = {nv(":method", body ? "POST" : "GET"), nv(":path", path), nv(":scheme", "http"),
                             nv(":authority", "x")};
        nghttp2_data_provider prd{};
        if (body) {
            prd.source.ptr = const_cast<std::string*>(body);
            prd.read_callback = [](nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* flags,
                                   nghttp2_data_source* src, void*) -> ssize_t {
                auto* b = static_cast<std::string*>(src->ptr);
                size_t n = std::min(len, b->size());
                memcpy(buf, b->data(), n);
                b->erase(0, n);
                if (b->empty()) *flags |= NGHTTP2_DATA_FLAG_EOF;
                return static_cast<ssize_t>(n);
            };
        }
        int32_t id = nghttp2_submit_request(ng, nullptr, hdrs, 4, body ? &prd : nullptr, nullptr);
        flush();
        return id;
    }
    void flush() {
        const uint8_t* p;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(ng, &p)) > 0)
            pair.send(std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n)));
    }
    // Reads until `done` holds (each read bounded by the pair's socket timeouts).
    bool run_until(const std::function<bool()>& done) {
        for (int i = 0; i < 200 && !done(); ++i) {
            std::string got = pair.read_at_least(1);
            if (got.empty()) return done();
            if (nghttp2_session_mem_recv(ng, reinterpret_cast<const uint8_t*>(got.data()), got.size()) < 0)
                return false;
            flush();
        }
        return done();
    }
};

struct Harness {
    Recorder rec;
    EchoService service{rec};
    loop::Worker worker{0, 1};
    http::ConnSet conns;
    test::LoopPair pair;

    // Set on the worker's thread, checked on this one after join (Catch2's assertions are not
    // thread-safe: an assertion on the worker thread races with the client's, as TSan shows).
    std::atomic<int> open_rc{0};

    void run(const std::function<void(test::LoopPair&)>& client) {
        worker.on_start([this](loop::Worker& w) {
            auto* conn = new http::ServerConn(w, service);
            open_rc = uv_tcp_open(conn->tcp(), pair.server);
            w.on_client_opened();
            conns.add(*conn);
            conn->start();
        });
        worker.on_close_all([this](loop::Worker&) { conns.close_all(); });
        worker.start();
        client(pair);
        worker.request_stop(0);
        worker.join();
        REQUIRE(open_rc == 0);
    }
    void check_clean() {
        CHECK(worker.open_handles_for_test() == 0);
        CHECK(conns.size() == 0);
        CHECK(service.connections.get() == 0);
        CHECK(rec.deleted == rec.heads);
    }
};

} // namespace

TEST_CASE("h2 session: streams on one h2c connection are answered, bodies both ways", "[h2][loop]") {
    Harness h;
    std::map<int32_t, Client::Stream> got;
    h.run([&](test::LoopPair& p) {
        Client c(p); // its first bytes are the preface, which hands the connection to HTTP/2
        std::string body = "hello";
        int32_t a = c.request("/a");
        int32_t b = c.request("/b", &body);
        CHECK(c.run_until([&] { return c.streams[a].closed && c.streams[b].closed; }));
        got = c.streams;
        CHECK(got[a].status == 200);
        CHECK(got[a].body == "/a ");
        CHECK(got[b].body == "/b hello");
    });
    CHECK(h.rec.heads == 2);
    CHECK(h.rec.ends == 2);
    CHECK(h.rec.gone == 0);
    h.check_clean();
}

TEST_CASE("h2 session: a stream the client resets tells its exchange; the others go on", "[h2][loop]") {
    Harness h;
    h.run([&](test::LoopPair& p) {
        Client c(p); // its first bytes are the preface, which hands the connection to HTTP/2
        int32_t held = c.request("/hold");
        int32_t a = c.request("/a");
        CHECK(c.run_until([&] { return c.streams[a].closed; }));
        nghttp2_submit_rst_stream(c.ng, NGHTTP2_FLAG_NONE, held, NGHTTP2_CANCEL);
        c.flush();
        int32_t b = c.request("/b");
        CHECK(c.run_until([&] { return c.streams[b].closed; }));
        CHECK(c.streams[b].body == "/b ");
    });
    CHECK(h.rec.heads == 3);
    CHECK(h.rec.gone == 1); // /hold's exchange heard its client go
    h.check_clean();
}

TEST_CASE("h2 session: a stream is much smaller than a connection", "[h2]") {
    // An idle held stream is this object (its request head freed), the exchange and nghttp2's own
    // stream record; an HTTP/1.1 client costs a ServerConn and its socket.
    // 208: the stats socket's per-request `conn` tracking (stats::ConnTrack) added 8 bytes to 192.
    CHECK(sizeof(h2::Stream) <= 208);
    CHECK(sizeof(h2::Stream) * 2 < sizeof(http::ServerConn));
}
