#include "wslay_util.hpp"

#include <cstring>

namespace wstest {

namespace {
struct Io {
    std::string out;
    std::string_view in;
    size_t pos = 0;
};

ssize_t send_cb(const uint8_t* data, size_t len, int, void* user) {
    static_cast<Io*>(user)->out.append(reinterpret_cast<const char*>(data), len);
    return static_cast<ssize_t>(len);
}

ssize_t recv_cb(uint8_t* buf, size_t len, int, void* user) {
    auto* io = static_cast<Io*>(user);
    size_t n = std::min(len, io->in.size() - io->pos);
    if (n == 0) return WSLAY_ERR_WANT_READ;
    std::memcpy(buf, io->in.data() + io->pos, n);
    io->pos += n;
    return static_cast<ssize_t>(n);
}

int genmask_cb(uint8_t* buf, size_t len, void*) {
    for (size_t i = 0; i < len; ++i)
        buf[i] = static_cast<uint8_t>(0x37 + 13 * i);
    return 0;
}
} // namespace

std::string wslay_render(uint8_t opcode, std::string_view payload, bool fin, bool masked, uint8_t rsv) {
    Io io;
    wslay_frame_callbacks cbs{send_cb, recv_cb, genmask_cb};
    wslay_frame_context_ptr ctx = nullptr;
    wslay_frame_context_init(&ctx, &cbs, &io);
    wslay_frame_iocb iocb{};
    iocb.fin = fin ? 1 : 0;
    iocb.rsv = rsv;
    iocb.opcode = opcode;
    iocb.payload_length = payload.size();
    iocb.mask = masked ? 1 : 0;
    iocb.data = reinterpret_cast<const uint8_t*>(payload.data());
    iocb.data_length = payload.size();
    size_t sent = 0;
    while (true) {
        ssize_t r = wslay_frame_send(ctx, &iocb);
        if (r < 0) break;
        sent += static_cast<size_t>(r);
        if (sent >= payload.size()) break;
        iocb.data += r;
        iocb.data_length -= static_cast<size_t>(r);
    }
    wslay_frame_context_free(ctx);
    return io.out;
}

std::vector<WslayFrame> wslay_read(std::string_view bytes) {
    Io io;
    io.in = bytes;
    wslay_frame_callbacks cbs{send_cb, recv_cb, genmask_cb};
    wslay_frame_context_ptr ctx = nullptr;
    wslay_frame_context_init(&ctx, &cbs, &io);
    std::vector<WslayFrame> out;
    WslayFrame cur{};
    uint64_t got = 0;
    bool in_frame = false;
    while (true) {
        wslay_frame_iocb iocb{};
        ssize_t r = wslay_frame_recv(ctx, &iocb);
        if (r < 0) break;
        if (!in_frame) {
            cur = WslayFrame{iocb.fin != 0, iocb.rsv, iocb.opcode, iocb.mask != 0, {}};
            got = 0;
            in_frame = true;
        }
        cur.payload.append(reinterpret_cast<const char*>(iocb.data), iocb.data_length);
        got += iocb.data_length;
        if (got == iocb.payload_length) {
            out.push_back(cur);
            in_frame = false;
        }
    }
    wslay_frame_context_free(ctx);
    return out;
}

} // namespace wstest
