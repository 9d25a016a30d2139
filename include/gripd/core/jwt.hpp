// HS256 JSON Web Tokens (RFC 7519) for Grip-Sig: signing proxied requests and verifying an upstream's
// signature. Only HMAC-SHA256 is supported; `alg: none` and every other algorithm are rejected.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gripd::core {

// Returns "<b64url(header)>.<b64url(claims)>.<b64url(HMAC-SHA256)>" with header {"alg":"HS256","typ":"JWT"}.
// `claims_json` is used byte for byte (the caller supplies valid JSON).
std::string jwt_sign_hs256(std::string_view claims_json, std::string_view key);

// True if `token` is a well-formed HS256 JWT signed with `key` (constant-time comparison), its header and
// claims are JSON objects, and any `exp` claim is a number greater than `now_unix`. On success the decoded
// claims JSON is stored in *claims_json_out (if not null).
bool jwt_verify_hs256(std::string_view token, std::string_view key, int64_t now_unix,
                      std::string* claims_json_out);

// A Grip-Sig value: claims {"iss":"<iss>","exp":now_unix+3600} signed with `key`.
std::string make_grip_sig(std::string_view iss, std::string_view key, int64_t now_unix);

// make_grip_sig for the calling thread, remembered: signing costs an HMAC per request, and the token
// only changes with the second, so each thread keeps the last one it made. The reference is valid
// until the thread's next call.
const std::string& cached_grip_sig(const std::string& iss, const std::string& key, int64_t now_unix);

} // namespace gripd::core
