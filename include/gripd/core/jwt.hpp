// JSON Web Tokens (RFC 7519, JWS compact form) for Grip-Sig: signing proxied requests and verifying an
// upstream's signature. The algorithm follows from the key, as in Pushpin 1.36: an HMAC secret is
// HS256, an EC P-256 key ES256, an RSA key RS256. A token is accepted only when its header names the
// key's own algorithm, so `alg: none` and algorithm confusion (an HS256 token "signed" with the text
// of a public key, an RS256 token for an EC key) are rejected.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace gripd::core {

// Nesting limit for a token's header and claims: Pushpin 1.36 reads them with serde_json, whose
// recursion limit (128) refuses the 128th nested array/object.
inline constexpr int kJwtMaxDepth = 127;

// A Grip-Sig key. Immutable once made, so one key is shared by every worker (OpenSSL 3 signs and
// verifies with a shared EVP_PKEY; each call makes its own context).
class JwtKey {
  public:
    enum class Type : uint8_t { Secret, Ec, Rsa };
    enum class Use : uint8_t { Sign, Verify };

    // An HMAC secret (HS256); any bytes, empty included.
    static std::shared_ptr<const JwtKey> from_secret(std::string secret);

    // A PEM key: PKCS#8 or SEC1 EC P-256, PKCS#8 or PKCS#1 RSA (2048 to 8192 bits) private keys, and for
    // Use::Verify also their public keys (SubjectPublicKeyInfo, PKCS#1 RSA public key); verifying with a
    // private key uses its public half. On failure returns null with a short reason in *error ("not a PEM
    // key", "a public key cannot sign", "EC key on curve secp384r1: ES256 needs P-256", ...).
    static std::shared_ptr<const JwtKey> from_pem(std::string_view pem, Use use, std::string* error);

    ~JwtKey();
    JwtKey(const JwtKey&) = delete;
    JwtKey& operator=(const JwtKey&) = delete;

    Type type() const { return type_; }
    // "HS256", "ES256" or "RS256".
    std::string_view alg() const;
    // Secret keys: the secret bytes (empty for other types).
    const std::string& secret() const { return secret_; }
    // True for a Secret key with no bytes: gripd then does not sign (Pushpin would, with an empty key).
    bool is_empty_secret() const { return type_ == Type::Secret && secret_.empty(); }

    // Signs `data` (the JWS signing input) with this key's algorithm: 32 bytes of HMAC, 64 bytes of
    // ECDSA r||s (not DER), or the RSA modulus size. Empty on failure (not a private key, OpenSSL error).
    std::string sign(std::string_view data) const;
    // Checks `sig` over `data` in constant time for secrets; false on any mismatch or malformed signature.
    bool verify(std::string_view data, std::string_view sig) const;

  private:
    struct Pkey; // the EVP_PKEY, kept out of this header
    struct Tag {};

  public:
    explicit JwtKey(Tag); // only from_secret() and from_pem() make keys

  private:
    Type type_ = Type::Secret;
    bool has_private_ = false;
    std::string secret_;
    std::unique_ptr<Pkey> pkey_; // null for secrets
};

using JwtKeyRef = std::shared_ptr<const JwtKey>;

// Returns "<b64url(header)>.<b64url(claims)>.<b64url(signature)>" with header {"alg":<key's>,"typ":"JWT"}.
// `claims_json` is used byte for byte (the caller supplies valid JSON). Empty if the key cannot sign.
std::string jwt_sign(std::string_view claims_json, const JwtKey& key);

// True if `token` is a well-formed JWT whose header is a JSON object with "alg" equal to the key's
// algorithm, whose signature verifies with `key`, and whose claims are a JSON object with an integer
// `exp` greater than `now_unix` (Pushpin requires `exp`). Header and claims nesting at most
// kJwtMaxDepth. On success the decoded claims JSON is stored in *claims_json_out (if not null).
bool jwt_verify(std::string_view token, const JwtKey& key, int64_t now_unix, std::string* claims_json_out);

// HS256 shorthands (tests and callers that hold a secret).
std::string jwt_sign_hs256(std::string_view claims_json, std::string_view secret);
bool jwt_verify_hs256(std::string_view token, std::string_view secret, int64_t now_unix,
                      std::string* claims_json_out);

// A Grip-Sig value: claims {"iss":"<iss>","exp":now_unix+3600} signed with `key`.
std::string make_grip_sig(std::string_view iss, const JwtKey& key, int64_t now_unix);

// make_grip_sig for the calling thread, remembered: an RSA signature costs about a millisecond, and
// the token only changes with the second, so each thread keeps the last token per (key, iss) for a few
// pairs. The reference is valid until the thread's next call.
const std::string& cached_grip_sig(const std::string& iss, const JwtKeyRef& key, int64_t now_unix);

// jwt_verify for the calling thread, remembered: a trusted upstream sends the same token for up to an
// hour, and an EC verification costs ~100 us, so each thread remembers the last token that verified
// (and its exp). Only successes are remembered.
bool cached_jwt_verify(std::string_view token, const JwtKeyRef& key, int64_t now_unix);

} // namespace gripd::core
