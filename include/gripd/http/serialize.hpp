// HTTP/1.1 message heads and chunked framing, appended to a caller-owned string.
//
// Output is always well-formed: headers whose name is not a token are skipped, and control
// characters (CR, LF, NUL...) in values, the target and the reason are replaced by a space, so
// untrusted strings (e.g. GRIP instructions) cannot split a message.
#pragma once

#include "gripd/http/headers.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace gripd::http {

// Appends "HTTP/1.1 status reason\r\n"; reason_phrase(status) when `reason` is empty. A status
// outside 100..999 (not three digits) is sent as 500.
void append_status_line(int status, std::string_view reason, std::string& out);

// Appends "name: value\r\n", or nothing when `name` is not a token.
void append_header_line(std::string_view name, std::string_view value, std::string& out);

// Appends every header as append_header_line does (no blank line after them).
void serialize_headers(const Headers& headers, std::string& out);

// Appends "METHOD target HTTP/1.1\r\n", the headers and the blank line.
void serialize_request_head(std::string_view method, std::string_view target, const Headers& headers,
                            std::string& out);

// Appends "HTTP/1.1 status reason\r\n", the headers and the blank line; reason_phrase(status) when
// `reason` is empty.
void serialize_response_head(int status, std::string_view reason, const Headers& headers, std::string& out);

// Appends one chunk: hex size CRLF data CRLF. Appends nothing for empty data (that would end the body).
// Returns where `data` starts in `out`.
size_t append_chunk(std::string& out, std::string_view data);

// Appends the last chunk and an empty trailer section: "0\r\n\r\n".
void append_last_chunk(std::string& out);

// Bytes append_chunk adds around `len` bytes of data (0 for len == 0).
size_t chunk_overhead(size_t len);

} // namespace gripd::http
