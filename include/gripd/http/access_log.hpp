// The access log line, in Pushpin's format (its LogUtil::logRequest), written once per proxied request
// or WebSocket at info level:
//
//   METHOD URI [-> TARGET[http]] [from=IP] [ref=REFERER] [route=ID] code=N BYTES|accept|error [retry] [ua=UA]
//
// URI is the absolute URI Pushpin rebuilds (scheme://host/path?query); `[http]` marks a WebSocket sent
// over HTTP; `from=` needs [proxy] log_from, `ua=` needs [proxy] log_user_agent; `route=` is shown only
// for routes with an explicit `id`. `accept` means the request was held (GRIP). Unlike Pushpin, control
// bytes in client-given values (URI, Referer, User-Agent) are escaped, so a client cannot forge lines.
#pragma once

#include "gripd/config/settings.hpp"
#include "gripd/http/request_parser.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace gripd::http {

class AccessLog {
  public:
    enum class Outcome : uint8_t { Response, Accept, Error };

    AccessLog() = default;
    // Keeps what the line needs of the request (its head is freed before the response ends).
    // `scheme` is http, https, ws or wss; `peer` the client's address.
    AccessLog(const RequestHead& head, std::string_view scheme, std::string_view peer,
              const config::Settings& settings);

    // The line, without the log prefix. `target` is empty when no target was tried.
    std::string format(std::string_view target, bool over_http, std::string_view route_id, Outcome outcome,
                       int code = 0, int64_t body_bytes = 0, bool retry = false) const;

    // Writes format(...) at info level under log target `log_target` (nothing below info).
    void write(const char* log_target, std::string_view target, bool over_http, std::string_view route_id,
               Outcome outcome, int code = 0, int64_t body_bytes = 0, bool retry = false) const;

  private:
    std::string request_;           // "METHOD URI"
    std::string from_;              // empty unless log_from
    std::string ref_;               // empty when no Referer
    std::string ua_;                // empty unless log_user_agent
    bool over_http_scheme_ = false; // ws/wss: a target over HTTP is shown as TARGET[http]
};

// Appends `text` percent-encoded as Qt's QUrl::FullyEncoded leaves a URL: bytes outside printable ASCII,
// space and "<>\^`{|} become %XX; everything else (including '%') is kept.
void append_url_encoded(std::string& out, std::string_view text);

} // namespace gripd::http
