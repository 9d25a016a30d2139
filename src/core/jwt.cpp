#include "gripd/core/jwt.hpp"

#include "gripd/core/json.hpp"
#include "gripd/core/strings.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace gripd::core {

namespace {

constexpr std::string_view kHeader = R"({"alg":"HS256","typ":"JWT"})";
constexpr int64_t kGripSigLifetime = 3600;

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int out_len = 0;
    static const unsigned char kEmpty = 0;
    const void* key_ptr = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
    const unsigned char* data_ptr =
        data.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(data.data());
    if (!HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()), data_ptr, data.size(), out, &out_len))
        return {};
    return std::string(reinterpret_cast<const char*>(out), out_len);
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

} // namespace

std::string jwt_sign_hs256(std::string_view claims_json, std::string_view key) {
    std::string signing_input = base64_encode(kHeader, true, false);
    signing_input += '.';
    signing_input += base64_encode(claims_json, true, false);
    std::string sig = hmac_sha256(key, signing_input);
    signing_input += '.';
    signing_input += base64_encode(sig, true, false);
    return signing_input;
}

bool jwt_verify_hs256(std::string_view token, std::string_view key, int64_t now_unix,
                      std::string* claims_json_out) {
    size_t dot1 = token.find('.');
    if (dot1 == std::string_view::npos) return false;
    size_t dot2 = token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) return false;

    auto header = decode_part(token.substr(0, dot1));
    auto claims = decode_part(token.substr(dot1 + 1, dot2 - dot1 - 1));
    auto sig = decode_part(token.substr(dot2 + 1));
    if (!header || !claims || !sig) return false;

    // Header and claims come from the client: read through json::parse (depth-limited, UTF-8
    // checked); anything it refuses makes the token untrusted.
    rapidjson::Document hdoc;
    if (!json::parse(*header, hdoc) || !hdoc.IsObject()) return false;
    const rapidjson::Value* alg = json::find_member(hdoc, "alg");
    if (!alg || !alg->IsString() || json::str(*alg) != "HS256") return false;

    std::string expected = hmac_sha256(key, token.substr(0, dot2));
    if (expected.empty() || sig->size() != expected.size() ||
        CRYPTO_memcmp(sig->data(), expected.data(), expected.size()) != 0)
        return false;

    rapidjson::Document cdoc;
    if (!json::parse(*claims, cdoc) || !cdoc.IsObject()) return false;
    if (const rapidjson::Value* exp = json::find_member(cdoc, "exp")) {
        if (!exp->IsNumber()) return false;
        if (exp->GetDouble() <= static_cast<double>(now_unix)) return false;
    }
    if (claims_json_out) *claims_json_out = std::move(*claims);
    return true;
}

std::string make_grip_sig(std::string_view iss, std::string_view key, int64_t now_unix) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("iss");
    w.String(iss.empty() ? "" : iss.data(), static_cast<rapidjson::SizeType>(iss.size()));
    w.Key("exp");
    w.Int64(now_unix + kGripSigLifetime);
    w.EndObject();
    return jwt_sign_hs256(std::string_view(buf.GetString(), buf.GetSize()), key);
}

const std::string& cached_grip_sig(const std::string& iss, const std::string& key, int64_t now_unix) {
    struct Cache {
        std::string iss, key, token;
        int64_t now = -1;
    };
    thread_local Cache cache;
    if (cache.now != now_unix || cache.key != key || cache.iss != iss) {
        cache.token = make_grip_sig(iss, key, now_unix);
        cache.iss = iss;
        cache.key = key;
        cache.now = now_unix;
    }
    return cache.token;
}

} // namespace gripd::core
