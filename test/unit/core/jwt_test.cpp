#include "gripd/core/jwt.hpp"
#include "gripd/core/strings.hpp"

#include <catch2/catch.hpp>

using namespace gripd::core;

namespace {

// jwt.io's example token (RFC 7519 style HS256), secret "your-256-bit-secret".
constexpr const char* kJwtIoToken =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
constexpr const char* kJwtIoClaims = R"({"sub":"1234567890","name":"John Doe","iat":1516239022})";

std::string b64url(std::string_view s) {
    return base64_encode(s, true, false);
}

JwtKeyRef secret(std::string s) {
    return JwtKey::from_secret(std::move(s));
}

} // namespace

TEST_CASE("jwt: known HS256 vector signs and verifies", "[jwt]") {
    CHECK(jwt_sign_hs256(kJwtIoClaims, "your-256-bit-secret") == kJwtIoToken);
    std::string_view tok = kJwtIoToken;
    std::string sig = *base64_decode(tok.substr(tok.rfind('.') + 1));
    CHECK(secret("your-256-bit-secret")->verify(tok.substr(0, tok.rfind('.')), sig));
    CHECK_FALSE(secret("wrong-secret")->verify(tok.substr(0, tok.rfind('.')), sig));
    // The token has no exp: Pushpin requires one, so it is not accepted as a Grip-Sig.
    CHECK_FALSE(jwt_verify_hs256(kJwtIoToken, "your-256-bit-secret", 1700000000, nullptr));
}

TEST_CASE("jwt: grip sig round trip", "[jwt]") {
    std::string tok = make_grip_sig("pushpin", *secret("changeme"), 1000);
    std::string claims;
    REQUIRE(jwt_verify_hs256(tok, "changeme", 1000, &claims));
    CHECK(claims == R"({"iss":"pushpin","exp":4600})");
    CHECK(jwt_verify_hs256(tok, "changeme", 4599, nullptr));
    // exp at or before now is expired.
    CHECK_FALSE(jwt_verify_hs256(tok, "changeme", 4600, nullptr));
    CHECK_FALSE(jwt_verify_hs256(tok, "changeme", 5000, nullptr));
    // Binary keys and issuers needing JSON escapes.
    std::string key("\x00\x01\xff", 3);
    std::string tok2 = make_grip_sig("a\"b", *secret(key), 0);
    REQUIRE(jwt_verify_hs256(tok2, key, 0, &claims));
    CHECK(claims == R"({"iss":"a\"b","exp":3600})");
    // Empty key still signs deterministically.
    CHECK(jwt_verify_hs256(make_grip_sig("x", *secret(""), 0), "", 0, nullptr));
}

TEST_CASE("jwt: alg none and other algorithms are rejected", "[jwt]") {
    std::string claims = b64url(R"({"iss":"pushpin","exp":9999999999})");
    std::string none = b64url(R"({"alg":"none","typ":"JWT"})") + "." + claims + ".";
    CHECK_FALSE(jwt_verify_hs256(none, "changeme", 0, nullptr));
    CHECK_FALSE(jwt_verify_hs256(none, "", 0, nullptr));
    // A correctly HMAC'd token that claims another algorithm is still rejected.
    std::string good = jwt_sign_hs256(R"({"iss":"x","exp":10})", "k");
    REQUIRE(jwt_verify_hs256(good, "k", 0, nullptr));
    std::string body = good.substr(good.find('.'));
    for (const char* hdr :
         {R"({"alg":"HS512"})", R"({"alg":"hs256"})", R"({"typ":"JWT"})", R"({"alg":1})", "[]"}) {
        std::string t = b64url(hdr) + body;
        CHECK_FALSE(jwt_verify_hs256(t, "k", 0, nullptr));
    }
}

TEST_CASE("jwt: tampered and malformed tokens are rejected", "[jwt]") {
    std::string tok = make_grip_sig("pushpin", *secret("changeme"), 1000);
    size_t dot1 = tok.find('.'), dot2 = tok.rfind('.');
    // Tampered claims: the same header and signature with different claims.
    std::string forged =
        tok.substr(0, dot1 + 1) + b64url(R"({"iss":"pushpin","exp":99999})") + tok.substr(dot2);
    CHECK_FALSE(jwt_verify_hs256(forged, "changeme", 1000, nullptr));
    // Flipped signature character.
    std::string flipped = tok;
    flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
    CHECK_FALSE(jwt_verify_hs256(flipped, "changeme", 1000, nullptr));
    // Truncated signature.
    CHECK_FALSE(jwt_verify_hs256(tok.substr(0, tok.size() - 2), "changeme", 1000, nullptr));
    for (const char* bad : {"", ".", "..", "a.b", "a.b.c.d", "!!!.???.***", "eyJhbGciOiJIUzI1NiJ9..sig"})
        CHECK_FALSE(jwt_verify_hs256(bad, "changeme", 0, nullptr));
    // Padding or standard-alphabet characters are not base64url.
    CHECK_FALSE(jwt_verify_hs256(tok + "=", "changeme", 1000, nullptr));
    // Claims that are not an object, or exp that is not a number.
    CHECK_FALSE(jwt_verify_hs256(jwt_sign_hs256("[1,2]", "k"), "k", 0, nullptr));
    CHECK_FALSE(jwt_verify_hs256(jwt_sign_hs256("not json", "k"), "k", 0, nullptr));
    CHECK_FALSE(jwt_verify_hs256(jwt_sign_hs256(R"({"exp":"99999999999"})", "k"), "k", 0, nullptr));
    // Pushpin 1.36 requires exp, an unsigned integer (serde reads it as u64) after now.
    CHECK_FALSE(jwt_verify_hs256(jwt_sign_hs256(R"({"iss":"x"})", "k"), "k", 0, nullptr));
    CHECK_FALSE(jwt_verify_hs256(jwt_sign_hs256(R"({"exp":99.5})", "k"), "k", 0, nullptr));
    CHECK_FALSE(jwt_verify_hs256(jwt_sign_hs256(R"({"exp":-5})", "k"), "k", -10, nullptr));
    CHECK_FALSE(jwt_verify_hs256(jwt_sign_hs256(R"({"exp":null})", "k"), "k", 0, nullptr));
    CHECK(jwt_verify_hs256(jwt_sign_hs256(R"({"exp":99})", "k"), "k", 98, nullptr));
}
