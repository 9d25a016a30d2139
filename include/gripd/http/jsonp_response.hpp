// JSON-P answers, and the one place a whole response gets its cross-origin treatment (CORS headers,
// or the JSON-P wrapper) before it is sent. Pushpin 1.36 writes the wrapper in two ways, and gripd
// writes each where Pushpin does, byte for byte:
//   - Relayed (its proxy: a relayed backend response, an error, a GRIP response without a hold):
//     `/**/cb({"code": 201, "reason": "Created", "headers": {...}, "body": "..."});\n` with the
//     backend's headers (first value of each name, names sorted), streamed as the body arrives; the
//     wrapping response carries Content-Type: application/javascript and the Cache-Control header.
//   - Held (its handler: the answer to a held long-poll, by publish or timeout):
//     `/**/cb({"body":"...","code":200,"headers":{...},"reason":"OK"});\n`, compact with sorted
//     keys, each header's values joined ", "; the wrapping response keeps the answer's headers with
//     Content-Type: application/javascript.
// Basic mode writes `/**/cb(<body>);\n` with one trailing newline of the body dropped. Either way the
// wrapping response is 200 OK. Bodies are escaped as JSON strings (Qt's escaping: controls as \uXXXX
// in lower-case hex, non-ASCII as UTF-8); bytes that are not UTF-8 become U+FFFD.
#pragma once

#include "gripd/http/cors.hpp"
#include "gripd/http/headers.hpp"

#include <string>
#include <string_view>

namespace gripd::http {

// A relayed response wrapped as it streams: start(), body() for each piece, end().
class JsonpStream {
  public:
    JsonpStream(const CrossOrigin& co) : callback_(co.jsonp_callback), extended_(co.jsonp_extended) {}
    // The headers of the wrapping response, from the backend's.
    static Headers wrapper_headers(const Headers& response);
    std::string start(int code, std::string_view reason, const Headers& headers) const;
    std::string body(std::string_view data);
    std::string end();

  private:
    std::string callback_;
    bool extended_;
    // Bytes held back until more come: basic mode a trailing newline (dropped if it ends the body),
    // extended mode the start of a UTF-8 sequence cut by the piece's end.
    std::string held_;
};

enum class JsonpStyle : uint8_t { Relayed, Held };

// Prepares a whole response for a request with `co` (nothing if null): JSON-P in `style`, else CORS
// headers. Framing headers in `headers` are dropped from what a wrapper describes.
void finish_cross_origin(const CrossOrigin* co, JsonpStyle style, int& code, std::string& reason,
                         Headers& headers, std::string& body);

} // namespace gripd::http
