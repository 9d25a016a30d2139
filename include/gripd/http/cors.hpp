// CORS as Pushpin 1.36 adds it when `[proxy] auto_cross_origin` or the route option `aco` is on
// (PROTOCOL.md §6.4). Nothing is answered locally: a preflight OPTIONS goes to the backend like any
// request, and its response (like every other) gets the Access-Control-* headers it lacks.
//
// A CrossOrigin is what a response needs of its request for that: three request headers and, when
// the request was a JSON-P call (http/jsonp_request.hpp), the callback that wraps the response. It
// is made once per request and shared (immutable) by the proxy session, a hold and a retry.
#pragma once

#include "gripd/http/headers.hpp"

#include <string>

namespace gripd::http {

struct CrossOrigin {
    std::string origin;          // the request's Origin ("" if none: the answer allows "*")
    std::string request_method;  // Access-Control-Request-Method
    std::string request_headers; // Access-Control-Request-Headers, every value split and rejoined ", "
    // JSON-P: when set, the response is wrapped in a call to this function instead of getting CORS
    // headers (http/jsonp_response.hpp).
    std::string jsonp_callback;
    bool jsonp_extended = true; // the wrapper carries code, reason, headers and body
    bool is_jsonp() const { return !jsonp_callback.empty(); }
};

// The CORS facts of a request (JSON-P not set).
CrossOrigin cross_origin_of(const Headers& request);

// Adds, each only if the response lacks it: Access-Control-Allow-Methods (the requested method, or
// "OPTIONS, HEAD, GET, POST, PUT, DELETE"), -Allow-Headers (the requested ones, if any),
// -Expose-Headers (the response's non-simple headers but Access-Control-* and Grip-*, if any),
// -Allow-Credentials: true, -Allow-Origin (the Origin, or "*") and -Max-Age: 3600.
void apply_cors_headers(const CrossOrigin& co, Headers& response);

// Whether a backend or instruct response header describes the response to a script (CORS exposure,
// the JSON-P header map): all but the connection-management ones; Content-Length counts.
bool is_response_header(std::string_view name);

} // namespace gripd::http
