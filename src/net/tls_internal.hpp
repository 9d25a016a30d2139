// Private to net/: what the certificate store (tls_certs.cpp) and the sessions (tls_server.cpp)
// share.
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gripd::net {

using CtxPtr = std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)>;

// The reason of the last OpenSSL error on this thread (clearing the queue), for one log line.
inline std::string openssl_error() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "TLS protocol error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    return buf;
}

// An immutable set of contexts: one per identity, by lower-case name, and a base without a
// certificate for ports without a default_<port>. A session starts on its port's default (else the
// base); the SNI callback switches it to the identity its name picks. All share one configuration.
class TlsCertStore {
  public:
    TlsCertStore() : base_(nullptr, SSL_CTX_free) {}
    SSL_CTX* base() const { return base_.get(); }
    // Pushpin's choice: the exact name, else `_` + the name from its first dot, else (and without
    // a name) `default_<port>`. Null if none applies.
    SSL_CTX* pick(std::string_view server_name, int port) const {
        if (!server_name.empty()) {
            std::string name(server_name);
            std::transform(name.begin(), name.end(), name.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            if (SSL_CTX* c = find(name)) return c;
            size_t dot = name.find('.');
            if (dot != std::string::npos)
                if (SSL_CTX* c = find("_" + name.substr(dot))) return c;
        }
        return find("default_" + std::to_string(port));
    }
    SSL_CTX* find(const std::string& name) const {
        auto it = by_name_.find(name);
        return it == by_name_.end() ? nullptr : it->second.get();
    }

    CtxPtr base_;
    std::unordered_map<std::string, CtxPtr> by_name_;
    std::vector<std::string> names_;
};

} // namespace gripd::net
