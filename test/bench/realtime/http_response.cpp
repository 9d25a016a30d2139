#include "http_response.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>

namespace rtb {

bool iequals_prefix(std::string_view line, std::string_view name) {
    if (line.size() < name.size()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
    }
    return true;
}

std::string lower(std::string_view s) {
    std::string o(s);
    for (auto& c : o)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return o;
}

void apply_connection_header(std::string_view value, bool& close) {
    std::string v = lower(value);
    if (v.find("close") != std::string::npos) close = true;
    if (v.find("keep-alive") != std::string::npos) close = false;
}

std::string_view find_header(std::string_view head, std::string_view lname) {
    std::string_view found;
    bool seen = false;
    for_each_header(head, [&](std::string_view line, std::string_view value) {
        if (!seen && line.size() > lname.size() && line[lname.size()] == ':' && iequals_prefix(line, lname)) {
            found = value;
            seen = true;
        }
    });
    return found;
}

bool ResponseParser::feed(const char* p, size_t n, ResponseSink& sink) {
    while (n > 0) {
        switch (st_) {
        case St::Head: {
            size_t old = head_.size();
            head_.append(p, n);
            size_t pos = head_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
            if (pos == std::string::npos) return head_.size() <= 65536;
            size_t used = pos + 4 - old;
            p += used;
            n -= used;
            head_.resize(pos + 4);
            if (!parse_head(sink)) return false;
            std::string().swap(head_);
            if (st_ == St::Head) sink.on_end(); // no body
            break;
        }
        case St::Length:
            if (take_body(p, n, sink)) finish(sink);
            break;
        case St::UntilClose:
            sink.on_body(p, n);
            return true;
        case St::ChunkSize: {
            char c = *p++;
            --n;
            unsigned v = 0;
            if (std::from_chars(&c, &c + 1, v, 16).ec == std::errc()) {
                remaining_ = remaining_ * 16 + v;
            } else if (c == ';' || c == ' ' || c == '\t') {
                st_ = St::ChunkExt;
            } else if (c == '\n') {
                chunk_size_done();
            } else if (c != '\r') {
                return false;
            }
            break;
        }
        case St::ChunkExt:
            if (*p == '\n') chunk_size_done();
            ++p;
            --n;
            break;
        case St::ChunkData:
            if (take_body(p, n, sink)) st_ = St::ChunkDataEnd;
            break;
        case St::ChunkDataEnd:
            if (*p == '\n') {
                st_ = St::ChunkSize;
                remaining_ = 0;
            }
            ++p;
            --n;
            break;
        case St::Trailer:
            if (*p == '\n') {
                if (line_len_ == 0) {
                    finish(sink);
                } else {
                    line_len_ = 0;
                }
            } else if (*p != '\r') {
                ++line_len_;
            }
            ++p;
            --n;
            break;
        }
    }
    return true;
}

bool ResponseParser::take_body(const char*& p, size_t& n, ResponseSink& sink) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n));
    sink.on_body(p, take);
    p += take;
    n -= take;
    remaining_ -= take;
    return remaining_ == 0;
}

void ResponseParser::chunk_size_done() {
    if (remaining_ == 0) {
        st_ = St::Trailer;
        line_len_ = 0;
    } else {
        st_ = St::ChunkData;
    }
}

void ResponseParser::finish(ResponseSink& sink) {
    st_ = St::Head;
    remaining_ = 0;
    sink.on_end();
}

bool ResponseParser::parse_head(ResponseSink& sink) {
    std::string_view h(head_);
    if (!h.starts_with("HTTP/1.") || h.size() < 12) return false;
    bool http10 = h[7] == '0';
    int status = std::atoi(std::string(h.substr(9, 3)).c_str());
    bool chunked = false, conn_close = http10, has_len = false;
    uint64_t len = 0;
    for_each_header(h, [&](std::string_view line, std::string_view value) {
        if (iequals_prefix(line, "content-length:")) {
            has_len = true;
            len = std::strtoull(std::string(value).c_str(), nullptr, 10);
        } else if (iequals_prefix(line, "transfer-encoding:")) {
            chunked = lower(value).find("chunked") != std::string::npos;
        } else if (iequals_prefix(line, "connection:")) {
            apply_connection_header(value, conn_close);
        }
    });
    if (!sink.on_head(status, conn_close, h)) return false;
    if (status == 101) {
        st_ = St::UntilClose; // switched protocols: the rest is not HTTP (RFC 9110 §15.2.2)
    } else if (status / 100 == 1 || status == 204 || status == 304) {
        st_ = St::Head;
    } else if (chunked) {
        st_ = St::ChunkSize;
        remaining_ = 0;
    } else if (has_len) {
        st_ = len == 0 ? St::Head : St::Length;
        remaining_ = len;
    } else {
        st_ = St::UntilClose;
    }
    return true;
}

} // namespace rtb
