#include "gripd/config/jwt_keys.hpp"

#include "gripd/core/strings.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

namespace gripd::config {

namespace {

// Reads at most kMaxKeyFileBytes of `path`; false with a message naming the file otherwise.
bool read_key_file(const std::filesystem::path& path, std::string* out, std::string* error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        *error = "file " + path.string() + ": cannot open: " + std::strerror(errno);
        return false;
    }
    out->resize(kMaxKeyFileBytes + 1);
    in.read(out->data(), static_cast<std::streamsize>(out->size()));
    if (in.bad()) {
        *error = "file " + path.string() + ": read error";
        return false;
    }
    out->resize(static_cast<size_t>(in.gcount()));
    if (out->size() > kMaxKeyFileBytes) {
        *error = "file " + path.string() + ": larger than " + std::to_string(kMaxKeyFileBytes) +
                 " bytes, not a key";
        return false;
    }
    return true;
}

} // namespace

core::JwtKeyRef load_jwt_key(std::string_view text, const std::filesystem::path& base_dir,
                             core::JwtKey::Use use, std::string* error) {
    if (text.substr(0, 5) == "file:") {
        std::filesystem::path path(text.substr(5));
        if (path.empty()) {
            *error = "file: needs a path";
            return nullptr;
        }
        if (path.is_relative()) path = base_dir / path;
        path = path.lexically_normal();
        std::string pem, why;
        if (!read_key_file(path, &pem, error)) return nullptr;
        core::JwtKeyRef key = core::JwtKey::from_pem(pem, use, &why);
        if (!key) *error = "file " + path.string() + ": " + why;
        return key;
    }
    if (text.substr(0, 7) == "base64:") {
        auto decoded = core::base64_decode(core::trim(text.substr(7)));
        if (!decoded) {
            *error = "bad base64 after 'base64:'";
            return nullptr;
        }
        return core::JwtKey::from_secret(std::move(*decoded));
    }
    return core::JwtKey::from_secret(std::string(text));
}

} // namespace gripd::config
