#include "gripd/ws/handshake.hpp"

#include "gripd/core/strings.hpp"

#include <cstdlib>
#include <openssl/rand.h>
#include <openssl/sha.h>

namespace gripd::ws {

namespace {
constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

UpgradeCheck refuse(int status, std::string message) {
    return UpgradeCheck{status, std::move(message)};
}

// Splits a header value on `sep` outside double quotes.
std::vector<std::string_view> split_outside_quotes(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    bool quoted = false;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (quoted && c == '\\') {
            ++i;
            continue;
        }
        if (c == '"') quoted = !quoted;
        if (!quoted && c == sep) {
            out.push_back(core::trim(s.substr(start, i - start)));
            start = i + 1;
        }
    }
    out.push_back(core::trim(s.substr(start)));
    return out;
}

std::string unquote(std::string_view v) {
    if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::string(v);
    std::string out;
    for (size_t i = 1; i + 1 < v.size(); ++i) {
        if (v[i] == '\\' && i + 2 < v.size()) ++i;
        out.push_back(v[i]);
    }
    return out;
}
} // namespace

UpgradeCheck check_upgrade(const http::RequestHead& head) {
    if (head.method != "GET") return refuse(400, "WebSocket upgrade requires GET.\n");
    if (head.version_major != 1 || head.version_minor < 1)
        return refuse(400, "WebSocket upgrade requires HTTP/1.1.\n");
    if (!head.headers.has_token("Upgrade", "websocket") || !head.headers.has_token("Connection", "upgrade"))
        return refuse(400, "Not a WebSocket upgrade.\n");
    auto keys = head.headers.get_all("Sec-WebSocket-Key");
    if (keys.size() != 1) return refuse(400, "Missing or repeated Sec-WebSocket-Key.\n");
    auto decoded = core::base64_decode(core::trim(keys[0]));
    if (!decoded || decoded->size() != 16) return refuse(400, "Invalid Sec-WebSocket-Key.\n");
    const std::string* version = head.headers.get("Sec-WebSocket-Version");
    if (!version || core::trim(*version) != "13") return refuse(426, "Unsupported WebSocket version.\n");
    return {};
}

std::string accept_key(std::string_view client_key) {
    std::string input(core::trim(client_key));
    input.append(kGuid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    return core::base64_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

std::string make_client_key() {
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        for (auto& b : raw)
            b = static_cast<unsigned char>(std::rand());
    }
    return core::base64_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
}

const std::string* Extension::param(std::string_view n) const {
    for (const auto& [k, v] : params)
        if (k == n) return &v;
    return nullptr;
}

std::optional<Extension> find_extension(const http::Headers& headers, std::string_view name) {
    for (auto value : headers.get_all("Sec-WebSocket-Extensions")) {
        for (auto item : split_outside_quotes(value, ',')) {
            auto parts = split_outside_quotes(item, ';');
            if (parts.empty() || parts[0] != name) continue;
            Extension ext;
            ext.name = std::string(name);
            for (size_t i = 1; i < parts.size(); ++i) {
                if (parts[i].empty()) continue;
                size_t eq = parts[i].find('=');
                if (eq == std::string_view::npos) {
                    ext.params.emplace_back(std::string(parts[i]), std::string());
                    continue;
                }
                std::string_view k = core::trim(parts[i].substr(0, eq));
                std::string_view v = core::trim(parts[i].substr(eq + 1));
                if (k.empty()) return std::nullopt;
                ext.params.emplace_back(std::string(k), unquote(v));
            }
            return ext;
        }
    }
    return std::nullopt;
}

} // namespace gripd::ws
