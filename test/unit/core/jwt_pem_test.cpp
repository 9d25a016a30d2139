// ES256 and RS256 Grip-Sig keys: RFC 7515 appendix vectors, round trips, and the tokens that must be
// refused (alg none, algorithm confusion, DER signatures, keys of the wrong kind).
#include "gripd/core/jwt.hpp"
#include "gripd/core/strings.hpp"

#include <catch2/catch.hpp>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

using namespace gripd::core;

namespace {

// RFC 7515 A.2's RSA key (the JWK of the appendix, written as PEM) and A.3's EC P-256 key.
constexpr const char* kRfcRsaPrivate = R"(-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd/wWJcyQoTbji9k0
l8W26mPddxHmfHQp+Vaw+4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL+yRT+SFd2lZS+pC
gNMsD1W/YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb/7OMg0LOL+bSf63kpaSHSX
ndS5z5rexMdbBYUsLA9e+KXBdQOS+UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uD
Zlxvb3qCo5ZwKh9kG4LT6/I5IhlJH7aGhyxXFvUK+DWNmoudF8NAco9/h9iaGNj8
q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQIDAQABAoIBABKucaRpzQorw35S
bEUAVx8dYXUdZOlJcHtiWQ+dC6V8ljxAHj/PLyzTveyI5QO/xkObCyjIL303l2cf
UhPu2MFaJdjVzqACXuOrLot/eSFvxjvqVidTtAZExqFRJ9mylUVAoLvhowVWmC1O
n95fZCXxTUtxNEG1Xcc7m0rtzJKs45J+N/V9DP1edYH6USyPSWGp6wuA+KgHRnKK
Vf9GRx80JQY7nVNkL17eHoTWEwga+lwi0FEoW9Y7lDtWXYmKBWhUE+U8PGxlJf8f
40493HDw1WRQ/aSLoS4QTp3rn7gYgeHEvfJdkkf0UMhlknlo53M09EFPdadQ4TlU
bjqKc50CgYEA4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH/5IB3jw3bcxGn6QLvnE
tfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw/Py5PJdTJNPY8cQn7ouZ2KKDcmnPG
BY5t7yLc1QlQ5xHdwW1VhvKn+nXqhJTBgIPgtldC+KDV5z+y2XDwGUcCgYEAuQPE
fgmVtjL0Uyyx88GZFF1fOunH3+7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYs
p1ZSe7zFYHj7C6ul7TjeLQeZD/YwD66t62wDmpe/HlB+TnBA+njbglfIsRLtXlnD
zQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdcCgYAHAp9XcCSrn8wVkMVkKdb7
DOX4IKjzdahm+ctDAJN4O/y7OW5FKebvUjdAIt2GuoTZ71iTG+7F0F+lP88jtjP4
U4qe7VHoewl4MKOfXZKTe+YCS1XbNvfgwJ3Ltyl1OH9hWvu2yza7q+d5PCsDzqtm
27kxuvULVeya+TEdAB1ijQKBgQCH/3r6YrVH/uCWGy6bzV1nGNOdjKc9tmkfOJmN
54dxdixdpozCQ6U4OxZrsj3FcOhHBsqAHvX2uuYjagqvo3cOj1TRqNocX40omfCC
Mx3bD1yPPf/6TI2XECva/ggqEY2mYzmIiA5LVVmc5nrybr+lssFKneeyxN2Wq93S
0iJMdQKBgCGHewxzoa1r8ZMD0LETNrToK423K377UCYqXfg5XMclbrjPbEC3YI1Z
NqMtuhdBJqUnBi6tjKMF+34Xf0CUN8ncuXGO2CAYvO8PdyCixHX52ybaDjy1FtCE
6yUXjoKNXKvUm7MWGsAYH6f4IegOetN5NvmUMFStCSkh7ixZLkN1
-----END RSA PRIVATE KEY-----
)";

constexpr const char* kRfcRsaPublic = R"(-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAofgWCuLjybRlzo0tZWJj
NiuSfb4p4fAkd/wWJcyQoTbji9k0l8W26mPddxHmfHQp+Vaw+4qPCJrcS2mJPMEz
P1Pt0Bm4d4QlL+yRT+SFd2lZS+pCgNMsD1W/YpRPEwOWvG6b32690r2jZ47soMZo
9wGzjb/7OMg0LOL+bSf63kpaSHSXndS5z5rexMdbBYUsLA9e+KXBdQOS+UTo7WTB
EMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6/I5IhlJH7aGhyxX
FvUK+DWNmoudF8NAco9/h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXp
oQIDAQAB
-----END PUBLIC KEY-----
)";

constexpr const char* kRfcEcPrivate = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjpsQnnGQmL+YBIff
H1136cspYG6+0iY7X1fCE9+E9LKhRANCAAR/zc4ncPbEXUGDy+5v20t7WAczNXvp
7xO6z248e9FURcfxRM0bvZt+hyzf7bnuufSzaV1uqQskrYpGIyiFiOWt
-----END PRIVATE KEY-----
)";

constexpr const char* kRfcEcPublic = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7
6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==
-----END PUBLIC KEY-----
)";

// The payload of RFC 7515 A.1-A.3: {"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}
constexpr std::string_view kRfcPayload =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
constexpr int64_t kRfcExp = 1300819380;

// A.1 (HS256), A.2 (RS256), A.3 (ES256): header.payload.signature.
const std::string kA1 = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." + std::string(kRfcPayload) +
                        ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const std::string kA2 =
    "eyJhbGciOiJSUzI1NiJ9." + std::string(kRfcPayload) +
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5"
    "jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb"
    "1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9Q"
    "OYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
const std::string kA3 =
    "eyJhbGciOiJFUzI1NiJ9." + std::string(kRfcPayload) +
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

std::string b64url(std::string_view s) {
    return base64_encode(s, true, false);
}

std::string_view signing_input(std::string_view token) {
    return token.substr(0, token.rfind('.'));
}

std::string signature(std::string_view token) {
    return *base64_decode(token.substr(token.rfind('.') + 1));
}

JwtKeyRef pem(std::string_view text, JwtKey::Use use = JwtKey::Use::Verify) {
    std::string err;
    JwtKeyRef k = JwtKey::from_pem(text, use, &err);
    INFO(err);
    REQUIRE(k);
    return k;
}

std::string load_error(std::string_view text, JwtKey::Use use) {
    std::string err;
    CHECK_FALSE(JwtKey::from_pem(text, use, &err));
    return err;
}

// A fresh key as PEM (private PKCS#8, or its SubjectPublicKeyInfo).
std::string generate(const char* type, const char* curve, size_t rsa_bits, bool public_only = false) {
    EVP_PKEY* k = curve      ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, curve)
                  : rsa_bits ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, rsa_bits)
                             : EVP_PKEY_Q_keygen(nullptr, nullptr, type);
    REQUIRE(k);
    BIO* bio = BIO_new(BIO_s_mem());
    int ok = public_only ? PEM_write_bio_PUBKEY(bio, k)
                         : PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
    REQUIRE(ok == 1);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<size_t>(len));
    BIO_free(bio);
    EVP_PKEY_free(k);
    return out;
}

// A token with any header over `claims`, signed by `key` whatever the header says.
std::string forge(std::string_view header, std::string_view claims, const JwtKey& key) {
    std::string input = b64url(header) + "." + b64url(claims);
    return input + "." + b64url(key.sign(input));
}

} // namespace

TEST_CASE("jwt pem: RFC 7515 A.1 HS256 vector", "[jwt]") {
    std::string k = *base64_decode(
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow");
    auto key = JwtKey::from_secret(k);
    CHECK(key->sign(signing_input(kA1)) == signature(kA1));
    CHECK(jwt_verify(kA1, *key, kRfcExp - 1, nullptr));
    CHECK_FALSE(jwt_verify(kA1, *key, kRfcExp, nullptr)); // expired
}

TEST_CASE("jwt pem: RFC 7515 A.2 RS256 vector", "[jwt]") {
    auto priv = pem(kRfcRsaPrivate, JwtKey::Use::Sign);
    CHECK(priv->type() == JwtKey::Type::Rsa);
    CHECK(priv->alg() == "RS256");
    // RSASSA-PKCS1-v1_5 is deterministic: the RFC's exact signature.
    CHECK(priv->sign(signing_input(kA2)) == signature(kA2));
    std::string claims;
    CHECK(jwt_verify(kA2, *pem(kRfcRsaPublic), kRfcExp - 1, &claims));
    CHECK(claims == *base64_decode(kRfcPayload));
    // Verifying with the private key uses its public half.
    CHECK(jwt_verify(kA2, *pem(kRfcRsaPrivate), kRfcExp - 1, nullptr));
    CHECK_FALSE(jwt_verify(kA2, *pem(kRfcRsaPublic), kRfcExp, nullptr));
}

TEST_CASE("jwt pem: RFC 7515 A.3 ES256 vector and round trip", "[jwt]") {
    auto pub = pem(kRfcEcPublic);
    CHECK(pub->type() == JwtKey::Type::Ec);
    CHECK(jwt_verify(kA3, *pub, kRfcExp - 1, nullptr));
    CHECK(jwt_verify(kA3, *pem(kRfcEcPrivate), kRfcExp - 1, nullptr));
    // ECDSA is randomized: our signature differs from the RFC's but is 64 raw bytes (r||s) that verify.
    auto priv = pem(kRfcEcPrivate, JwtKey::Use::Sign);
    std::string sig = priv->sign(signing_input(kA3));
    CHECK(sig.size() == 64);
    CHECK(pub->verify(signing_input(kA3), sig));
    std::string tok = make_grip_sig("pushpin", *priv, 1000);
    CHECK(tok.substr(0, tok.find('.')) == b64url(R"({"alg":"ES256","typ":"JWT"})"));
    std::string claims;
    CHECK(jwt_verify(tok, *pub, 1000, &claims));
    CHECK(claims == R"({"iss":"pushpin","exp":4600})");
}

TEST_CASE("jwt pem: key forms OpenSSL writes are read", "[jwt]") {
    // PKCS#8 private keys (openssl genpkey), their SubjectPublicKeyInfo, SEC1 and PKCS#1 private keys.
    auto ec = generate("EC", "P-256", 0);
    auto ec_pub = generate("EC", "P-256", 0, true);
    CHECK(pem(ec, JwtKey::Use::Sign)->alg() == "ES256");
    CHECK(pem(ec_pub)->alg() == "ES256");
    auto rsa = generate("RSA", nullptr, 2048);
    auto rsa_key = pem(rsa, JwtKey::Use::Sign);
    CHECK(rsa_key->alg() == "RS256");
    std::string tok = make_grip_sig("me", *rsa_key, 50);
    CHECK(jwt_verify(tok, *rsa_key, 50, nullptr));
    CHECK(pem(kRfcRsaPrivate, JwtKey::Use::Sign)->type() == JwtKey::Type::Rsa); // PKCS#1
    // Text around the PEM block (comments, a certificate-style preamble) is allowed, as OpenSSL does.
    CHECK(pem("# our key\n" + std::string(kRfcEcPublic)));
}

TEST_CASE("jwt pem: keys that cannot do the job are refused", "[jwt]") {
    using Use = JwtKey::Use;
    CHECK(load_error(kRfcEcPublic, Use::Sign) == "a public key cannot sign: sig_key needs the private key");
    CHECK(load_error(kRfcRsaPublic, Use::Sign) == "a public key cannot sign: sig_key needs the private key");
    CHECK(load_error(generate("EC", "P-384", 0), Use::Sign) ==
          "EC key on curve secp384r1: ES256 needs P-256 (prime256v1)");
    CHECK(load_error(generate("RSA", nullptr, 1024), Use::Verify) ==
          "RSA key of 1024 bits: RS256 needs 2048 to 8192");
    CHECK(load_error(generate("ED25519", nullptr, 0), Use::Sign).rfind("ED25519 key: ", 0) == 0);
    CHECK(load_error("changeme", Use::Sign) == "not a PEM key (no -----BEGIN line)");
    CHECK(load_error("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", Use::Sign) ==
          "not a PEM key OpenSSL can read");
    CHECK(load_error("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                     Use::Sign)
              .rfind("encrypted PEM keys are not supported", 0) == 0);
}

TEST_CASE("jwt pem: alg none and algorithm confusion are rejected", "[jwt]") {
    auto ec = pem(kRfcEcPrivate, JwtKey::Use::Sign);
    auto ec_pub = pem(kRfcEcPublic);
    auto rsa = pem(kRfcRsaPrivate, JwtKey::Use::Sign);
    auto rsa_pub = pem(kRfcRsaPublic);
    std::string claims = R"({"iss":"x","exp":100})";
    // Control: the right algorithm verifies.
    REQUIRE(jwt_verify(forge(R"({"alg":"ES256"})", claims, *ec), *ec_pub, 0, nullptr));
    REQUIRE(jwt_verify(forge(R"({"alg":"RS256"})", claims, *rsa), *rsa_pub, 0, nullptr));
    // alg none, unsigned.
    std::string none = b64url(R"({"alg":"none"})") + "." + b64url(claims) + ".";
    CHECK_FALSE(jwt_verify(none, *ec_pub, 0, nullptr));
    CHECK_FALSE(jwt_verify(none, *rsa_pub, 0, nullptr));
    // HS256 "signed" with the public key's PEM text (or its DER) as the HMAC secret.
    for (std::string_view text : {std::string_view(kRfcEcPublic), std::string_view(kRfcRsaPublic)}) {
        auto as_secret = JwtKey::from_secret(std::string(text));
        std::string hs = forge(R"({"alg":"HS256"})", claims, *as_secret);
        CHECK_FALSE(jwt_verify(hs, *ec_pub, 0, nullptr));
        CHECK_FALSE(jwt_verify(hs, *rsa_pub, 0, nullptr));
    }
    // RS vs ES: an RSA signature labelled ES256 or RS256 for an EC key, and the reverse.
    CHECK_FALSE(jwt_verify(forge(R"({"alg":"RS256"})", claims, *rsa), *ec_pub, 0, nullptr));
    CHECK_FALSE(jwt_verify(forge(R"({"alg":"ES256"})", claims, *rsa), *ec_pub, 0, nullptr));
    CHECK_FALSE(jwt_verify(forge(R"({"alg":"ES256"})", claims, *ec), *rsa_pub, 0, nullptr));
    CHECK_FALSE(jwt_verify(forge(R"({"alg":"RS256"})", claims, *ec), *rsa_pub, 0, nullptr));
    // A secret key refuses ES256/RS256 tokens even when the header is all that differs.
    auto s = JwtKey::from_secret("k");
    CHECK_FALSE(jwt_verify(forge(R"({"alg":"ES256"})", claims, *s), *s, 0, nullptr));
    // Other ECDSA/RSA algorithms the key could technically verify are not ES256/RS256.
    CHECK_FALSE(jwt_verify(forge(R"({"alg":"ES384"})", claims, *ec), *ec_pub, 0, nullptr));
    CHECK_FALSE(jwt_verify(forge(R"({"alg":"PS256"})", claims, *rsa), *rsa_pub, 0, nullptr));
}

TEST_CASE("jwt pem: malformed ECDSA and RSA signatures are rejected", "[jwt]") {
    auto pub = pem(kRfcEcPublic);
    std::string_view input = signing_input(kA3);
    std::string sig = signature(kA3);
    REQUIRE(pub->verify(input, sig));
    CHECK_FALSE(pub->verify(input, sig.substr(0, 63)));
    CHECK_FALSE(pub->verify(input, sig + '\0'));
    CHECK_FALSE(pub->verify(input, std::string(64, '\0'))); // r = s = 0
    std::string flipped = sig;
    flipped[40] ^= 1;
    CHECK_FALSE(pub->verify(input, flipped));
    // A DER-length signature (what OpenSSL's ECDSA produces) is not JWS's r||s.
    CHECK_FALSE(pub->verify(input, std::string(72, '\x30')));
    auto rsa_pub = pem(kRfcRsaPublic);
    std::string rsig = signature(kA2);
    REQUIRE(rsa_pub->verify(signing_input(kA2), rsig));
    CHECK_FALSE(rsa_pub->verify(signing_input(kA2), rsig.substr(1)));
    CHECK_FALSE(rsa_pub->verify(signing_input(kA2), rsig + "x"));
    CHECK_FALSE(rsa_pub->verify(signing_input(kA2), ""));
}

TEST_CASE("jwt pem: header and claims nest at most 127 deep (serde_json's limit)", "[jwt]") {
    auto key = JwtKey::from_secret("k");
    auto nested = [](int arrays) {
        return R"({"exp":100,"x":)" + std::string(static_cast<size_t>(arrays), '[') +
               std::string(static_cast<size_t>(arrays), ']') + "}";
    };
    // The claims object is one level: 126 arrays inside make 127.
    CHECK(jwt_verify(jwt_sign(nested(kJwtMaxDepth - 1), *key), *key, 0, nullptr));
    CHECK_FALSE(jwt_verify(jwt_sign(nested(kJwtMaxDepth), *key), *key, 0, nullptr));
    std::string deep_header =
        R"({"alg":"HS256","x":)" + std::string(kJwtMaxDepth, '[') + std::string(kJwtMaxDepth, ']') + "}";
    CHECK_FALSE(jwt_verify(forge(deep_header, R"({"exp":100})", *key), *key, 0, nullptr));
}

TEST_CASE("jwt pem: cached Grip-Sig per key and issuer", "[jwt]") {
    auto a = JwtKey::from_secret("a");
    auto b = JwtKey::from_secret("b");
    auto ec = pem(kRfcEcPrivate, JwtKey::Use::Sign);
    std::string ta = cached_grip_sig("iss", a, 10);
    std::string tb = cached_grip_sig("iss", b, 10);
    std::string te = cached_grip_sig("iss", ec, 10);
    CHECK(jwt_verify(ta, *a, 10, nullptr));
    CHECK(jwt_verify(tb, *b, 10, nullptr));
    CHECK(jwt_verify(te, *ec, 10, nullptr));
    // The same second: the remembered token (an ECDSA signature would differ if it were made again).
    CHECK(cached_grip_sig("iss", ec, 10) == te);
    CHECK(cached_grip_sig("other", a, 10) != ta);
    CHECK(cached_grip_sig("iss", a, 11) != ta);
}

TEST_CASE("jwt pem: cached verification remembers only successes and honours exp", "[jwt]") {
    auto ec = pem(kRfcEcPrivate, JwtKey::Use::Sign);
    auto pub = pem(kRfcEcPublic);
    std::string tok = make_grip_sig("up", *ec, 1000); // exp 4600
    CHECK(cached_jwt_verify(tok, pub, 1000));
    CHECK(cached_jwt_verify(tok, pub, 4599));
    CHECK_FALSE(cached_jwt_verify(tok, pub, 4600));
    // Another key with the same token is checked, not taken from the cache.
    CHECK_FALSE(cached_jwt_verify(tok, pem(kRfcRsaPublic), 1000));
    std::string bad = tok;
    char& c = bad[bad.size() - 10]; // inside the signature (the last character may hold only padding bits)
    c = c == 'A' ? 'B' : 'A';
    CHECK_FALSE(cached_jwt_verify(bad, pub, 1000));
}
