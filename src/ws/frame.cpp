#include "gripd/ws/frame.hpp"

#include <cstring>
#include <openssl/rand.h>
#include <random>

namespace gripd::ws {

bool is_valid_close_code(int code) {
    if (code >= 1000 && code <= 1003) return true;
    if (code >= 1007 && code <= 1014) return true;
    return code >= 3000 && code <= 4999;
}

// ---- UTF-8 ----

bool Utf8Validator::feed(std::string_view data) {
    for (unsigned char b : data) {
        if (need_ == 0) {
            if (b < 0x80) continue;
            lower_ = 0x80;
            upper_ = 0xBF;
            if (b >= 0xC2 && b <= 0xDF) {
                need_ = 1;
            } else if (b == 0xE0) {
                need_ = 2, lower_ = 0xA0;
            } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
                need_ = 2;
            } else if (b == 0xED) {
                need_ = 2, upper_ = 0x9F; // no surrogates
            } else if (b == 0xF0) {
                need_ = 3, lower_ = 0x90;
            } else if (b >= 0xF1 && b <= 0xF3) {
                need_ = 3;
            } else if (b == 0xF4) {
                need_ = 3, upper_ = 0x8F; // <= U+10FFFF
            } else {
                return false;
            }
            continue;
        }
        if (b < lower_ || b > upper_) return false;
        lower_ = 0x80;
        upper_ = 0xBF;
        --need_;
    }
    return true;
}

bool is_valid_utf8(std::string_view data) {
    Utf8Validator v;
    return v.feed(data) && v.complete();
}

bool parse_close_payload(std::string_view payload, ClosePayload* out, int* error_code) {
    *out = ClosePayload{};
    if (payload.empty()) return true;
    if (payload.size() == 1) {
        *error_code = kCloseProtocolError;
        return false;
    }
    int code = (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
    if (!is_valid_close_code(code)) {
        *error_code = kCloseProtocolError;
        return false;
    }
    std::string_view reason = payload.substr(2);
    if (!is_valid_utf8(reason)) {
        *error_code = kCloseInvalidData;
        return false;
    }
    out->code = code;
    out->reason = reason;
    return true;
}

// ---- parser ----

bool FrameParser::fail(int code, const char* message) {
    state_ = State::Error;
    error_code_ = code;
    error_message_ = message;
    release_buffer();
    return false;
}

void FrameParser::release_buffer() {
    std::string().swap(buffer_); // give the memory back: an idle connection keeps no buffer
}

size_t FrameParser::feed(const char* data, size_t len) {
    if (state_ != State::Ok) return 0;
    size_t pos = 0;
    while (pos < len) {
        if (!in_payload_) {
            while (header_len_ < header_need_ && pos < len)
                header_[header_len_++] = static_cast<uint8_t>(data[pos++]);
            if (header_len_ < header_need_) break;
            if (header_need_ == 2) {
                // First two bytes: now we know how long the header is.
                uint8_t len7 = header_[1] & 0x7F;
                uint8_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((header_[1] & 0x80) ? 4 : 0);
                if (need > 2) {
                    header_need_ = need;
                    continue;
                }
            }
            if (!start_frame()) return pos;
            if (length_ == 0) {
                if (!finish_frame({})) return pos;
                if (state_ != State::Ok) return pos;
                continue;
            }
            in_payload_ = true;
            received_ = 0;
            continue;
        }
        size_t avail = len - pos;
        uint64_t remaining = length_ - received_;
        size_t take = remaining < avail ? static_cast<size_t>(remaining) : avail;
        if (!masked_ && received_ == 0 && take == length_) {
            // The whole unmasked frame is in the input: no copy.
            pos += take;
            in_payload_ = false;
            if (!finish_frame(std::string_view(data + pos - take, take))) return pos;
            if (state_ != State::Ok) return pos;
            continue;
        }
        // The buffer grows with the bytes that arrive, never to the length the header announces: a
        // peer announcing a big frame and sending little must not make us hold (or, with no frame
        // limit, try to allocate) that much.
        size_t base = buffer_.size();
        buffer_.append(data + pos, take);
        if (masked_) {
            char* p = buffer_.data() + base;
            for (size_t i = 0; i < take; ++i)
                p[i] = static_cast<char>(p[i] ^ mask_[(received_ + i) & 3]);
        }
        pos += take;
        received_ += take;
        if (received_ < length_) break;
        in_payload_ = false;
        std::string payload = std::move(buffer_);
        release_buffer();
        if (!finish_frame(payload)) return pos;
        if (state_ != State::Ok) return pos;
    }
    return pos;
}

bool FrameParser::start_frame() {
    const uint8_t* h = header_;
    fin_ = (h[0] & 0x80) != 0;
    uint8_t rsv = h[0] & 0x70;
    opcode_ = h[0] & 0x0F;
    masked_ = (h[1] & 0x80) != 0;
    uint8_t len7 = h[1] & 0x7F;
    size_t at = 2;
    if (len7 == 126) {
        length_ = (uint64_t(h[2]) << 8) | h[3];
        at = 4;
        if (length_ < 126) return fail(kCloseProtocolError, "non-minimal length");
    } else if (len7 == 127) {
        length_ = 0;
        for (int i = 0; i < 8; ++i)
            length_ = (length_ << 8) | h[2 + i];
        at = 10;
        if (length_ >> 63) return fail(kCloseProtocolError, "length has the most significant bit set");
        if (length_ < 65536) return fail(kCloseProtocolError, "non-minimal length");
    } else {
        length_ = len7;
    }
    if (masked_) std::memcpy(mask_, h + at, 4);
    header_len_ = 0;
    header_need_ = 2;

    if (rsv != 0) return fail(kCloseProtocolError, "reserved bits set");
    if (role_ == Role::Server && !masked_) return fail(kCloseProtocolError, "client frame not masked");
    if (role_ == Role::Client && masked_) return fail(kCloseProtocolError, "server frame masked");
    bool control = (opcode_ & 0x08) != 0;
    if (control) {
        if (opcode_ != 0x8 && opcode_ != 0x9 && opcode_ != 0xA)
            return fail(kCloseProtocolError, "reserved opcode");
        if (!fin_) return fail(kCloseProtocolError, "fragmented control frame");
        if (length_ > 125) return fail(kCloseProtocolError, "control frame too long");
        return true;
    }
    if (opcode_ != 0x0 && opcode_ != 0x1 && opcode_ != 0x2)
        return fail(kCloseProtocolError, "reserved opcode");
    if (opcode_ == 0x0 && message_type_ == 0)
        return fail(kCloseProtocolError, "continuation outside a message");
    if (opcode_ != 0x0 && message_type_ != 0)
        return fail(kCloseProtocolError, "new message inside a fragmented one");
    if (limits_.max_frame && length_ > limits_.max_frame) return fail(kCloseTooBig, "frame too big");
    uint64_t so_far = opcode_ == 0x0 ? message_bytes_ : 0;
    if (limits_.max_message && so_far + length_ > limits_.max_message)
        return fail(kCloseTooBig, "message too big");
    return true;
}

bool FrameParser::finish_frame(std::string_view payload) {
    Frame f;
    f.opcode = static_cast<WsOpcode>(opcode_);
    f.fin = fin_;
    f.payload = payload;
    bool control = (opcode_ & 0x08) != 0;
    if (control) {
        f.message_type = f.opcode;
        f.first = true;
        if (f.opcode == WsOpcode::Close) {
            ClosePayload cp;
            int code = 0;
            if (!parse_close_payload(payload, &cp, &code)) return fail(code, "bad close frame");
            state_ = State::Closed;
        }
    } else {
        f.first = opcode_ != 0x0;
        if (f.first) {
            message_type_ = opcode_;
            message_bytes_ = 0;
            utf8_.reset();
        }
        f.message_type = static_cast<WsOpcode>(message_type_);
        message_bytes_ += payload.size();
        if (message_type_ == 0x1) {
            if (!utf8_.feed(payload) || (fin_ && !utf8_.complete()))
                return fail(kCloseInvalidData, "text is not UTF-8");
        }
        if (fin_) {
            message_type_ = 0;
            message_bytes_ = 0;
        }
    }
    stop_requested_ = false;
    handler_.on_frame(f);
    if (stop_requested_ && state_ == State::Ok) state_ = State::Stopped;
    stop_requested_ = false;
    return true;
}

// ---- rendering ----

void append_frame(std::string& out, WsOpcode opcode, std::string_view payload, bool fin,
                  const uint8_t* mask) {
    uint8_t h[14];
    size_t n = 0;
    h[n++] = static_cast<uint8_t>((fin ? 0x80 : 0) | static_cast<uint8_t>(opcode));
    uint8_t mbit = mask ? 0x80 : 0;
    uint64_t len = payload.size();
    if (len < 126) {
        h[n++] = static_cast<uint8_t>(mbit | len);
    } else if (len < 65536) {
        h[n++] = static_cast<uint8_t>(mbit | 126);
        h[n++] = static_cast<uint8_t>(len >> 8);
        h[n++] = static_cast<uint8_t>(len);
    } else {
        h[n++] = static_cast<uint8_t>(mbit | 127);
        for (int i = 7; i >= 0; --i)
            h[n++] = static_cast<uint8_t>(len >> (8 * i));
    }
    if (mask) {
        std::memcpy(h + n, mask, 4);
        n += 4;
    }
    out.append(reinterpret_cast<const char*>(h), n);
    size_t base = out.size();
    out.append(payload);
    if (mask) {
        char* p = out.data() + base;
        for (size_t i = 0; i < payload.size(); ++i)
            p[i] = static_cast<char>(p[i] ^ mask[i & 3]);
    }
}

void append_message(std::string& out, WsOpcode type, std::string_view data, size_t max_frame,
                    const uint8_t* mask) {
    if (max_frame == 0) max_frame = data.size() ? data.size() : 1;
    size_t pos = 0;
    bool first = true;
    do {
        size_t n = data.size() - pos < max_frame ? data.size() - pos : max_frame;
        bool fin = pos + n >= data.size();
        append_frame(out, first ? type : WsOpcode::Continuation, data.substr(pos, n), fin, mask);
        pos += n;
        first = false;
    } while (pos < data.size());
}

std::string close_payload(int code, std::string_view reason) {
    std::string p;
    if (code < 0) return p;
    p.push_back(static_cast<char>((code >> 8) & 0xFF));
    p.push_back(static_cast<char>(code & 0xFF));
    if (reason.size() > 123) {
        // Cut on a character boundary so the reason stays UTF-8.
        size_t n = 123;
        while (n > 0 && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80)
            --n;
        reason = reason.substr(0, n);
    }
    if (is_valid_utf8(reason)) p.append(reason);
    return p;
}

void append_close_frame(std::string& out, int code, std::string_view reason, const uint8_t* mask) {
    append_frame(out, WsOpcode::Close, close_payload(code, reason), true, mask);
}

void random_mask(uint8_t mask[4]) {
    thread_local std::mt19937 rng = [] {
        uint32_t seed = 0;
        if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof(seed)) != 1)
            seed = std::random_device{}();
        return std::mt19937(seed);
    }();
    uint32_t v = rng();
    std::memcpy(mask, &v, 4);
}

} // namespace gripd::ws
