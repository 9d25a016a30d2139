// Grip-Sig keys as pushpin.conf (`[proxy] sig_key`, `upstream_key`) and routes (`sig_key=`) write them,
// read the way Pushpin 1.36 reads them (corelib/jwt.cpp fromConfigString):
//   - "file:PATH": a PEM key file (EC P-256 => ES256, RSA => RS256); a relative PATH is resolved
//     against the directory of the file that names it (pushpin.conf, or the routes file);
//   - "base64:TEXT": an HMAC secret (HS256), base64-decoded;
//   - anything else: the text itself is the HMAC secret.
// A file: value is never used as a secret. Where Pushpin silently drops a key it cannot load (no
// Grip-Sig, or nobody trusted), gripd refuses it with an error naming the file.
#pragma once

#include "gripd/core/jwt.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace gripd::config {

// Key files larger than this are refused (a PEM RSA 8192-bit private key is about 6.5 KiB).
inline constexpr size_t kMaxKeyFileBytes = 64 * 1024;

// Parses a key value. `use` says whether the key signs (sig_key: needs a private key) or verifies
// (upstream_key: a public key, or a private key's public half). Returns null with a message in *error
// ("file /etc/pushpin/k.pem: cannot open: No such file or directory", "bad base64 after 'base64:'").
core::JwtKeyRef load_jwt_key(std::string_view text, const std::filesystem::path& base_dir,
                             core::JwtKey::Use use, std::string* error);

} // namespace gripd::config
