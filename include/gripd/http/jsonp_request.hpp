// JSON-P calls (PROTOCOL.md §6.4), read from the request as Pushpin 1.36 reads them when CORS is on
// (`[proxy] auto_cross_origin` or the route's `aco`). A GET is a JSON-P call when it carries the
// route's callback parameter (`jsonp_cb`, default `callback`), or when the route has a default
// callback (`jsonp_defcb`) and a body parameter (`jsonp_body`) and the request carries the latter.
// The call is then rewritten into the request the backend gets:
//   - method: `_method` (any HTTP token), else the route's `jsonp_defmethod` (GET; POST in basic mode);
//   - headers: Host, then the `_headers` JSON object (string values; Host and Accept in it are
//     ignored), Content-Type: application/json when the body came from `jsonp_body`, Accept: */*,
//     then the client's own headers but Host and Accept;
//   - body: the `jsonp_body` parameter if the route names one, else `_body`;
//   - target: the path with those parameters removed (and no `?` when nothing is left).
// Values are percent-decoded (`+` stays `+`; a `%` without two hex digits stays as it is).
// A bad parameter makes the call Invalid, with Pushpin's 400 text. gripd is stricter than Pushpin
// where Pushpin would forward a broken request: `_method` must be a token, `_headers` names tokens
// and values free of CR, LF and NUL, and a JSON-P GET must not carry a body of its own.
#pragma once

#include "gripd/config/routes.hpp"
#include "gripd/http/request_parser.hpp"

#include <string>

namespace gripd::http {

struct JsonpCall {
    enum class Kind : uint8_t {
        None,    // not a JSON-P call: the request goes on unchanged
        Call,    // rewritten: wrap the response in `callback`
        Invalid, // answer 400 with `error`
    };
    Kind kind = Kind::None;
    std::string error; // Invalid: e.g. "Invalid callback parameter."
    std::string callback;
    bool extended = true; // jsonp_mode=extended (the default) rather than basic
    std::string body;     // Call: the request body for the backend
};

// If `head` is a JSON-P call on `route`, rewrites it in place as described above (only when the
// result is Call). The body is returned, not added: the caller sends it as the request body.
JsonpCall rewrite_jsonp_request(RequestHead& head, const config::Route& route);

} // namespace gripd::http
