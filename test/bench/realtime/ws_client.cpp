#include "ws_client.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <random>

namespace rtb {

namespace {

std::mt19937& rng() {
    static std::mt19937 r{std::random_device{}()};
    return r;
}

uint32_t rol(uint32_t v, int n) {
    return (v << n) | (v >> (32 - n));
}

// SHA-1 (FIPS 180-4), only for the handshake's accept value: the program links nothing but libuv.
std::array<uint8_t, 20> sha1(std::string_view data) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    std::string m(data);
    uint64_t bits = static_cast<uint64_t>(data.size()) * 8;
    m.push_back(static_cast<char>(0x80));
    while (m.size() % 64 != 56)
        m.push_back(0);
    for (int i = 7; i >= 0; --i)
        m.push_back(static_cast<char>(bits >> (8 * i)));
    for (size_t off = 0; off < m.size(); off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; ++i) {
            const auto* b = reinterpret_cast<const uint8_t*>(m.data() + off + 4 * i);
            w[i] = (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | b[3];
        }
        for (int i = 16; i < 80; ++i)
            w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; ++i) {
            uint32_t f, k;
            if (i < 20) {
                f = (b & c) | (~b & d), k = 0x5A827999;
            } else if (i < 40) {
                f = b ^ c ^ d, k = 0x6ED9EBA1;
            } else if (i < 60) {
                f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
            } else {
                f = b ^ c ^ d, k = 0xCA62C1D6;
            }
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d, d = c, c = rol(b, 30), b = a, a = t;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    std::array<uint8_t, 20> out;
    for (int i = 0; i < 20; ++i)
        out[i] = static_cast<uint8_t>(h[i / 4] >> (24 - 8 * (i % 4)));
    return out;
}

std::string base64(const uint8_t* p, size_t n) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = uint32_t(p[i]) << 16;
        if (i + 1 < n) v |= uint32_t(p[i + 1]) << 8;
        if (i + 2 < n) v |= p[i + 2];
        out.push_back(kAlphabet[(v >> 18) & 63]);
        out.push_back(kAlphabet[(v >> 12) & 63]);
        out.push_back(i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=');
        out.push_back(i + 2 < n ? kAlphabet[v & 63] : '=');
    }
    return out;
}

} // namespace

std::string ws_new_key() {
    uint8_t nonce[16];
    for (auto& b : nonce)
        b = static_cast<uint8_t>(rng()());
    return base64(nonce, sizeof nonce);
}

std::string ws_accept_for(std::string_view key) {
    auto digest = sha1(std::string(key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    return base64(digest.data(), digest.size());
}

std::string ws_handshake_request(std::string_view path, std::string_view host, std::string_view key) {
    std::string r = "GET ";
    r.append(path).append(" HTTP/1.1\r\nHost: ").append(host);
    r.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ").append(key);
    r.append("\r\nSec-WebSocket-Version: 13\r\nUser-Agent: realtime_bench\r\n\r\n");
    return r;
}

void ws_append_client_frame(std::string& out, uint8_t opcode, std::string_view payload) {
    out.push_back(static_cast<char>(0x80 | opcode));
    size_t len = payload.size();
    if (len < 126) {
        out.push_back(static_cast<char>(0x80 | len));
    } else if (len < 65536) {
        out.push_back(static_cast<char>(0x80 | 126));
        out.push_back(static_cast<char>(len >> 8));
        out.push_back(static_cast<char>(len));
    } else {
        out.push_back(static_cast<char>(0x80 | 127));
        for (int i = 7; i >= 0; --i)
            out.push_back(static_cast<char>(static_cast<uint64_t>(len) >> (8 * i)));
    }
    uint32_t key = rng()();
    uint8_t mask[4];
    std::memcpy(mask, &key, 4);
    out.append(reinterpret_cast<const char*>(mask), 4);
    for (size_t i = 0; i < len; ++i)
        out.push_back(static_cast<char>(payload[i] ^ mask[i & 3]));
}

bool WsFrameReader::feed(const char* p, size_t n, Handler& h) {
    while (n > 0) {
        if (!in_payload_) {
            size_t take = std::min<size_t>(header_need_ - header_len_, n);
            std::memcpy(header_ + header_len_, p, take);
            header_len_ = static_cast<uint8_t>(header_len_ + take);
            p += take;
            n -= take;
            if (header_len_ < header_need_) return true;
            uint8_t len7 = header_[1] & 0x7F;
            if (header_need_ == 2 && len7 >= 126) {
                header_need_ = len7 == 126 ? 4 : 10; // the extended length follows
                continue;
            }
            if (!start_frame()) return false;
        }
        // Runs also for an empty payload whose header ended the input.
        size_t take = static_cast<size_t>(std::min<uint64_t>(left_, n));
        if (take > 0) {
            if (opcode_ & 0x8) {
                control_.append(p, take);
            } else {
                h.on_ws_data(p, take);
            }
            p += take;
            n -= take;
            left_ -= take;
        }
        if (left_ > 0) return true;
        in_payload_ = false;
        if (opcode_ & 0x8) {
            std::string payload;
            payload.swap(control_);
            if (!h.on_ws_control(opcode_, payload)) return fail("");
        }
    }
    return true;
}

bool WsFrameReader::start_frame() {
    bool fin = header_[0] & 0x80;
    opcode_ = header_[0] & 0x0F;
    if (header_[0] & 0x70) return fail("reserved bits set");
    if (header_[1] & 0x80) return fail("masked server frame");
    uint8_t len7 = header_[1] & 0x7F;
    left_ = len7;
    if (len7 >= 126) {
        left_ = 0;
        for (int i = 2; i < header_need_; ++i)
            left_ = (left_ << 8) | header_[i];
        if (left_ >> 63) return fail("length with the most significant bit set");
    }
    header_len_ = 0;
    header_need_ = 2;
    in_payload_ = true;
    switch (opcode_) {
    case ws_op::kClose:
    case ws_op::kPing:
    case ws_op::kPong:
        if (!fin) return fail("fragmented control frame");
        if (left_ > 125) return fail("control frame over 125 bytes");
        return true;
    case ws_op::kContinuation:
        if (!in_message_) return fail("continuation outside a message");
        break;
    case ws_op::kText:
    case ws_op::kBinary:
        if (in_message_) return fail("new message inside a fragmented one");
        break;
    default:
        return fail("reserved opcode");
    }
    in_message_ = !fin;
    return true;
}

} // namespace rtb
