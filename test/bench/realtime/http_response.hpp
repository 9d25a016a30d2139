// A small HTTP/1.1 response parser for the load generator's clients, and header helpers shared with
// the built-in backend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rtb {

// Whether `line` starts with `name` (given in lower case), ignoring case.
bool iequals_prefix(std::string_view line, std::string_view name);
std::string lower(std::string_view s);
// A Connection header's effect on `close` (which starts as the protocol version's default).
void apply_connection_header(std::string_view value, bool& close);
// Calls fn(line, value) for each header line of a message head (after its start line); value is
// what follows the colon, leading blanks removed.
template <class F> void for_each_header(std::string_view head, F&& fn) {
    size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
        pos += 2;
        size_t end = head.find("\r\n", pos);
        if (end == pos) break; // the blank line ending the head
        std::string_view line = head.substr(pos, end == std::string_view::npos ? end : end - pos);
        pos = end;
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
            value.remove_prefix(1);
        fn(line, value);
    }
}
// The value of the first header `lname:` (lower case, without the colon) in a message head, leading
// blanks removed; empty when absent.
std::string_view find_header(std::string_view head, std::string_view lname);

class ResponseSink {
  public:
    virtual ~ResponseSink() = default;
    // `head` is the whole head (status line and headers), valid during the call. Return false to stop
    // parsing (the sink is closing the connection).
    virtual bool on_head(int status, bool conn_close, std::string_view head) = 0;
    virtual void on_body(const char* p, size_t n) = 0;
    virtual void on_end() = 0;
};

// Content-Length, chunked and close-delimited bodies; keep-alive (parses response after response).
// After a 101 every further byte belongs to the new protocol and goes to on_body.
class ResponseParser {
  public:
    // False on a protocol error or when the sink asked to stop.
    bool feed(const char* p, size_t n, ResponseSink& sink);
    // True while a close-delimited body (or an upgraded connection) is being read.
    bool until_close() const { return st_ == St::UntilClose; }

  private:
    enum class St : uint8_t {
        Head,
        Length,
        UntilClose,
        ChunkSize,
        ChunkExt,
        ChunkData,
        ChunkDataEnd,
        Trailer
    };

    // Hands up to remaining_ bytes of body to the sink; true when none remain.
    bool take_body(const char*& p, size_t& n, ResponseSink& sink);
    void chunk_size_done();
    void finish(ResponseSink& sink);
    bool parse_head(ResponseSink& sink);

    St st_ = St::Head;
    uint32_t line_len_ = 0;
    uint64_t remaining_ = 0;
    std::string head_; // only while reading a response head
};

} // namespace rtb
