#include "gripd/core/jwt.hpp"

#include "gripd/core/json.hpp"
#include "gripd/core/strings.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <array>

namespace gripd::core {

namespace {

constexpr int64_t kGripSigLifetime = 3600;
constexpr int kEcCoordBytes = 32; // P-256
constexpr int kMinRsaBits = 2048; // the range Pushpin's signing library (ring) accepts
constexpr int kMaxRsaBits = 8192;

template <class T, void (*Free)(T*)> struct Deleter {
    void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using EcSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using DecoderPtr = std::unique_ptr<OSSL_DECODER_CTX, Deleter<OSSL_DECODER_CTX, OSSL_DECODER_CTX_free>>;

} // namespace

struct JwtKey::Pkey {
    PkeyPtr pkey;
    EVP_PKEY* get() const { return pkey.get(); }
};

namespace {

const unsigned char* bytes(std::string_view s) {
    static const unsigned char kEmpty = 0;
    return s.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int out_len = 0;
    if (!HMAC(EVP_sha256(), bytes(key), static_cast<int>(key.size()), bytes(data), data.size(), out,
              &out_len))
        return {};
    return std::string(reinterpret_cast<const char*>(out), out_len);
}

// An encrypted PEM key would otherwise make OpenSSL prompt on the terminal: refuse instead.
int no_passphrase(char*, int, int, void*) {
    return -1;
}

// Decodes the first key in `pem` (any PEM key form OpenSSL knows), or null.
PkeyPtr decode_pem(std::string_view pem) {
    EVP_PKEY* pkey = nullptr;
    DecoderPtr dctx(OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", nullptr, nullptr, 0, nullptr, nullptr));
    if (!dctx) return nullptr;
    OSSL_DECODER_CTX_set_pem_password_cb(dctx.get(), no_passphrase, nullptr);
    const unsigned char* data = bytes(pem);
    size_t len = pem.size();
    bool ok = OSSL_DECODER_from_data(dctx.get(), &data, &len) == 1;
    ERR_clear_error();
    PkeyPtr out(pkey);
    return ok ? std::move(out) : nullptr;
}

bool has_private_part(EVP_PKEY* pkey) {
    BIGNUM* bn = nullptr;
    const char* name = EVP_PKEY_is_a(pkey, "RSA") ? OSSL_PKEY_PARAM_RSA_D : OSSL_PKEY_PARAM_PRIV_KEY;
    bool has = EVP_PKEY_get_bn_param(pkey, name, &bn) == 1;
    BN_clear_free(bn);
    ERR_clear_error();
    return has;
}

// The key's type for JWT, or an error naming what it is instead.
bool classify(EVP_PKEY* pkey, JwtKey::Type* type, std::string* error) {
    if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64] = {};
        size_t len = 0;
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &len) != 1) {
            *error = "EC key with unnamed curve parameters: ES256 needs P-256";
            return false;
        }
        if (std::string_view(group) != "prime256v1") {
            *error = "EC key on curve " + std::string(group) + ": ES256 needs P-256 (prime256v1)";
            return false;
        }
        *type = JwtKey::Type::Ec;
        return true;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < kMinRsaBits || bits > kMaxRsaBits) {
            *error = "RSA key of " + std::to_string(bits) + " bits: RS256 needs 2048 to 8192";
            return false;
        }
        *type = JwtKey::Type::Rsa;
        return true;
    }
    const char* name = EVP_PKEY_get0_type_name(pkey);
    *error = std::string(name ? name : "unknown") +
             " key: Grip-Sig keys are EC P-256 (ES256) or RSA (RS256) PEM keys, or secrets";
    return false;
}

// ECDSA in JWS (RFC 7518 3.4) is the raw r||s pair, each left-padded to the curve size; OpenSSL
// speaks DER ECDSA-Sig-Value. These two convert.
std::string ecdsa_der_to_raw(const unsigned char* der, size_t len) {
    EcSigPtr sig(d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(len)));
    if (!sig) return {};
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(sig.get(), &r, &s);
    std::string out(2 * kEcCoordBytes, '\0');
    auto* p = reinterpret_cast<unsigned char*>(out.data());
    if (BN_bn2binpad(r, p, kEcCoordBytes) != kEcCoordBytes ||
        BN_bn2binpad(s, p + kEcCoordBytes, kEcCoordBytes) != kEcCoordBytes)
        return {};
    return out;
}

std::string ecdsa_raw_to_der(std::string_view raw) {
    if (raw.size() != 2 * kEcCoordBytes) return {};
    BnPtr r(BN_bin2bn(bytes(raw), kEcCoordBytes, nullptr));
    BnPtr s(BN_bin2bn(bytes(raw) + kEcCoordBytes, kEcCoordBytes, nullptr));
    EcSigPtr sig(ECDSA_SIG_new());
    if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return {};
    (void)r.release(); // owned by sig now
    (void)s.release();
    unsigned char* der = nullptr;
    int len = i2d_ECDSA_SIG(sig.get(), &der);
    if (len <= 0) return {};
    std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
    return out;
}

bool is_b64url(std::string_view s) {
    for (char c : s) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_';
        if (!ok) return false;
    }
    return true;
}

std::optional<std::string> decode_part(std::string_view part) {
    if (part.empty() || !is_b64url(part)) return std::nullopt;
    return base64_decode(part);
}

// Pushpin reads `exp` as an unsigned integer (serde) and requires it to be after now.
bool exp_is_valid(const rapidjson::Value& claims, int64_t now_unix) {
    const rapidjson::Value* exp = json::find_member(claims, "exp");
    if (!exp || !exp->IsUint64()) return false;
    return now_unix < 0 || exp->GetUint64() > static_cast<uint64_t>(now_unix);
}

} // namespace

JwtKey::JwtKey(Tag) {}
JwtKey::~JwtKey() = default;

std::shared_ptr<const JwtKey> JwtKey::from_secret(std::string secret) {
    auto k = std::make_shared<JwtKey>(Tag{});
    k->type_ = Type::Secret;
    k->has_private_ = true;
    k->secret_ = std::move(secret);
    return k;
}

std::shared_ptr<const JwtKey> JwtKey::from_pem(std::string_view pem, Use use, std::string* error) {
    std::string ignored;
    if (!error) error = &ignored;
    if (pem.find("-----BEGIN ") == std::string_view::npos) {
        *error = "not a PEM key (no -----BEGIN line)";
        return nullptr;
    }
    if (pem.find("ENCRYPTED") != std::string_view::npos) {
        *error = "encrypted PEM keys are not supported (no passphrase can be given)";
        return nullptr;
    }
    PkeyPtr pkey = decode_pem(pem);
    if (!pkey) {
        *error = "not a PEM key OpenSSL can read";
        return nullptr;
    }
    Type type{};
    if (!classify(pkey.get(), &type, error)) return nullptr;
    bool priv = has_private_part(pkey.get());
    if (use == Use::Sign && !priv) {
        *error = "a public key cannot sign: sig_key needs the private key";
        return nullptr;
    }
    auto k = std::make_shared<JwtKey>(Tag{});
    k->type_ = type;
    k->has_private_ = priv;
    k->pkey_ = std::make_unique<Pkey>(Pkey{std::move(pkey)});
    // One signature now: a key OpenSSL reads but cannot use fails at startup, not per request.
    if (use == Use::Sign && k->sign("gripd key check").empty()) {
        *error = "OpenSSL could not sign with this key";
        return nullptr;
    }
    return k;
}

std::string_view JwtKey::alg() const {
    switch (type_) {
    case Type::Secret:
        return "HS256";
    case Type::Ec:
        return "ES256";
    case Type::Rsa:
        return "RS256";
    }
    return "";
}

std::string JwtKey::sign(std::string_view data) const {
    if (type_ == Type::Secret) return hmac_sha256(secret_, data);
    if (!pkey_ || !has_private_) return {};
    MdCtxPtr ctx(EVP_MD_CTX_new());
    size_t len = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey_->get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, bytes(data), data.size()) != 1) {
        ERR_clear_error();
        return {};
    }
    std::string out(len, '\0');
    auto* p = reinterpret_cast<unsigned char*>(out.data());
    if (EVP_DigestSign(ctx.get(), p, &len, bytes(data), data.size()) != 1) {
        ERR_clear_error();
        return {};
    }
    out.resize(len);
    if (type_ == Type::Ec) return ecdsa_der_to_raw(p, len);
    return out;
}

bool JwtKey::verify(std::string_view data, std::string_view sig) const {
    if (type_ == Type::Secret) {
        std::string expected = hmac_sha256(secret_, data);
        return !expected.empty() && sig.size() == expected.size() &&
               CRYPTO_memcmp(sig.data(), expected.data(), expected.size()) == 0;
    }
    if (!pkey_) return false;
    std::string der;
    if (type_ == Type::Ec) {
        der = ecdsa_raw_to_der(sig);
        if (der.empty()) return false;
        sig = der;
    } else if (sig.size() != static_cast<size_t>(EVP_PKEY_get_size(pkey_->get()))) {
        return false;
    }
    MdCtxPtr ctx(EVP_MD_CTX_new());
    bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey_->get()) == 1 &&
              EVP_DigestVerify(ctx.get(), bytes(sig), sig.size(), bytes(data), data.size()) == 1;
    ERR_clear_error();
    return ok;
}

std::string jwt_sign(std::string_view claims_json, const JwtKey& key) {
    std::string header = R"({"alg":")";
    header += key.alg();
    header += R"(","typ":"JWT"})";
    std::string signing_input = base64_encode(header, true, false);
    signing_input += '.';
    signing_input += base64_encode(claims_json, true, false);
    std::string sig = key.sign(signing_input);
    if (sig.empty()) return {};
    signing_input += '.';
    signing_input += base64_encode(sig, true, false);
    return signing_input;
}

bool jwt_verify(std::string_view token, const JwtKey& key, int64_t now_unix, std::string* claims_json_out) {
    size_t dot1 = token.find('.');
    if (dot1 == std::string_view::npos) return false;
    size_t dot2 = token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) return false;

    auto header = decode_part(token.substr(0, dot1));
    auto claims = decode_part(token.substr(dot1 + 1, dot2 - dot1 - 1));
    auto sig = decode_part(token.substr(dot2 + 1));
    if (!header || !claims || !sig) return false;

    // Header and claims come from the client: read through json::parse (depth-limited, UTF-8
    // checked); anything it refuses makes the token untrusted. The header must name the key's own
    // algorithm: never "none", never HS256 for a PEM key (whose public text is no secret).
    rapidjson::Document hdoc;
    if (!json::parse(*header, hdoc, kJwtMaxDepth) || !hdoc.IsObject()) return false;
    const rapidjson::Value* alg = json::find_member(hdoc, "alg");
    if (!alg || !alg->IsString() || json::str(*alg) != key.alg()) return false;

    if (!key.verify(token.substr(0, dot2), *sig)) return false;

    rapidjson::Document cdoc;
    if (!json::parse(*claims, cdoc, kJwtMaxDepth) || !cdoc.IsObject()) return false;
    if (!exp_is_valid(cdoc, now_unix)) return false;
    if (claims_json_out) *claims_json_out = std::move(*claims);
    return true;
}

std::string jwt_sign_hs256(std::string_view claims_json, std::string_view secret) {
    return jwt_sign(claims_json, *JwtKey::from_secret(std::string(secret)));
}

bool jwt_verify_hs256(std::string_view token, std::string_view secret, int64_t now_unix,
                      std::string* claims_json_out) {
    return jwt_verify(token, *JwtKey::from_secret(std::string(secret)), now_unix, claims_json_out);
}

std::string make_grip_sig(std::string_view iss, const JwtKey& key, int64_t now_unix) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("iss");
    w.String(iss.empty() ? "" : iss.data(), static_cast<rapidjson::SizeType>(iss.size()));
    w.Key("exp");
    w.Int64(now_unix + kGripSigLifetime);
    w.EndObject();
    return jwt_sign(std::string_view(buf.GetString(), buf.GetSize()), key);
}

const std::string& cached_grip_sig(const std::string& iss, const JwtKeyRef& key, int64_t now_unix) {
    // A few (key, iss) pairs: routes with their own keys alternate with the global one, and an RSA
    // signature per request would cost far more than the lookup. Replaced round robin.
    struct Entry {
        JwtKeyRef key;
        std::string iss, token;
        int64_t now = -1;
    };
    constexpr size_t kEntries = 8;
    thread_local std::array<Entry, kEntries> cache;
    thread_local size_t next = 0;
    for (Entry& e : cache) {
        if (e.key != key || e.iss != iss) continue;
        if (e.now != now_unix) {
            e.token = make_grip_sig(iss, *key, now_unix);
            e.now = now_unix;
        }
        return e.token;
    }
    Entry& e = cache[next];
    next = (next + 1) % kEntries;
    e.key = key;
    e.iss = iss;
    e.token = make_grip_sig(iss, *key, now_unix);
    e.now = now_unix;
    return e.token;
}

bool cached_jwt_verify(std::string_view token, const JwtKeyRef& key, int64_t now_unix) {
    struct Last {
        JwtKeyRef key;
        std::string token;
        uint64_t exp = 0;
    };
    thread_local Last last;
    if (last.key == key && last.token == token)
        return now_unix < 0 || last.exp > static_cast<uint64_t>(now_unix);
    std::string claims;
    if (!jwt_verify(token, *key, now_unix, &claims)) return false;
    rapidjson::Document doc;
    if (json::parse(claims, doc, kJwtMaxDepth) && doc.IsObject()) {
        if (const rapidjson::Value* exp = json::find_member(doc, "exp"); exp && exp->IsUint64()) {
            last.key = key;
            last.token = std::string(token);
            last.exp = exp->GetUint64();
        }
    }
    return true;
}

} // namespace gripd::core
