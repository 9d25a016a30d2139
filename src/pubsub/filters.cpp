#include "gripd/pubsub/filters.hpp"

#include "gripd/core/strings.hpp"

namespace gripd::pubsub {

namespace {
// Pushpin's filters treat an empty value like a missing one.
const std::string* non_empty(const std::string* v) {
    return v && !v->empty() ? v : nullptr;
}
} // namespace

const std::string* find_meta(const Meta& meta, std::string_view name) {
    for (const auto& [k, v] : meta)
        if (k == name) return &v;
    return nullptr;
}

bool is_content_filter(std::string_view name) {
    return name == "build-id" || name == "var-subst";
}

bool has_content_filter(const std::vector<std::string>& filters) {
    for (const auto& f : filters)
        if (is_content_filter(f)) return true;
    return false;
}

bool has_proxy_content_filter(const std::vector<std::string>& filters) {
    for (const auto& f : filters)
        if (f == "build-id") return true;
    return false;
}

namespace {

// What one subscriber's filtered content may grow to: `%(name)s` of a few bytes can expand to a
// long meta value, so a publish could otherwise make each subscriber allocate without bound.
// Past it the filter fails (as an unknown variable does). Pushpin has no such bound.
constexpr size_t kMaxFilteredBytes = 1'000'000;

// Pushpin's format language (src/handler/format.cpp): `%%` is '%', `%X` (X a letter) and
// `%(arg)X` (backslash escapes the next character of arg) call `directive(X, arg)`; anything else
// after a '%' is an error. Returns false with the error text, which names the position.
template <class Directive>
bool run_format(std::string_view in, std::string& out, std::string& error, Directive&& directive) {
    auto fail = [&](std::string why) {
        error = std::move(why);
        return false;
    };
    for (size_t n = 0; n < in.size(); ++n) {
        char c = in[n];
        if (c != '%') {
            out += c;
            continue;
        }
        if (n + 1 >= in.size()) return fail("Expected directive after '%' at position " + std::to_string(n));
        c = in[++n];
        if (c == '%') {
            out += '%';
            continue;
        }
        std::optional<std::string> arg;
        if (c == '(') {
            size_t field_start = n;
            if (n + 1 >= in.size())
                return fail("Expected character after '(' at position " + std::to_string(n));
            ++n;
            arg.emplace();
            bool closed = false;
            for (; n < in.size(); ++n) {
                if (in[n] == '\\') {
                    if (n + 1 >= in.size())
                        return fail("Expected character after '\\' at position " + std::to_string(n));
                    *arg += in[++n];
                } else if (in[n] == ')') {
                    closed = true;
                    break;
                } else {
                    *arg += in[n];
                }
            }
            if (!closed)
                return fail("Unterminated field starting at position " + std::to_string(field_start));
            if (n + 1 >= in.size())
                return fail("Expected directive after ')' at position " + std::to_string(n));
            c = in[++n];
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            return fail(std::string("Unknown directive '") + c + "' at position " + std::to_string(n));
        }
        std::string why;
        if (!directive(c, arg, out, why)) return fail(why + " at position " + std::to_string(n));
        if (out.size() > kMaxFilteredBytes)
            return fail("output over " + std::to_string(kMaxFilteredBytes) + " bytes");
    }
    return true;
}

bool var_subst(const Meta& meta, std::string_view in, std::string& out, std::string& error) {
    return run_format(
        in, out, error,
        [&](char type, const std::optional<std::string>& arg, std::string& o, std::string& why) {
            if (type != 's') {
                why = std::string("Unknown directive '") + type + "'";
                return false;
            }
            if (!arg) {
                why = "Directive 's' requires argument";
                return false;
            }
            const std::string* v = find_meta(meta, *arg);
            if (!v) {
                why = "No such variable '" + *arg + "'";
                return false;
            }
            o += *v;
            return true;
        });
}

bool build_id(const Meta& meta, const ChannelIds* ids, std::string_view in, std::string& out,
              std::string& error) {
    const std::string* format = find_meta(meta, "id_format");
    if (!format) {
        error = "no sub meta 'id_format'";
        return false;
    }
    // The subscriber's ID: id_format with `%(channel)s` = that channel's last id. Without channels
    // (a proxied body) there is none, and `%I` is an error.
    std::optional<std::string> id;
    if (ids && !ids->empty()) {
        id.emplace();
        std::string why;
        bool ok =
            run_format(*format, *id, why,
                       [&](char type, const std::optional<std::string>& arg, std::string& o, std::string& w) {
                           if (type != 's') {
                               w = std::string("Unknown directive '") + type + "'";
                               return false;
                           }
                           if (!arg) {
                               w = "Directive 's' requires argument";
                               return false;
                           }
                           for (const auto& [channel, last] : *ids)
                               if (channel == *arg && last) {
                                   o += *last;
                                   return true;
                               }
                           w = "No such variable '" + *arg + "'";
                           return false;
                       });
        if (!ok) {
            error = "failed to render ID: " + why;
            return false;
        }
    }
    bool hex = false;
    if (const std::string* enc = find_meta(meta, "id_encoding")) {
        if (*enc != "hex") {
            error = "unsupported encoding: " + *enc;
            return false;
        }
        hex = true;
    }
    return run_format(
        in, out, error,
        [&](char type, const std::optional<std::string>& arg, std::string& o, std::string& why) {
            if (type != 'I') {
                why = std::string("Unknown directive '") + type + "'";
                return false;
            }
            const std::string* v = arg ? &*arg : id ? &*id : nullptr;
            if (!v) {
                why = "No ID specified and no default ID in context";
                return false;
            }
            if (!hex) {
                o += *v;
                return true;
            }
            static const char kDigits[] = "0123456789abcdef";
            for (unsigned char ch : *v) {
                o += kDigits[ch >> 4];
                o += kDigits[ch & 15];
            }
            return true;
        });
}

} // namespace

std::optional<std::string> apply_content_filters(const std::vector<std::string>& filters, const Meta& meta,
                                                 const ChannelIds* ids, std::string_view content,
                                                 std::string& error, bool proxy_only) {
    std::string cur(content), next;
    for (const auto& f : filters) {
        bool ok = true;
        if (f == "build-id")
            ok = build_id(meta, ids, cur, next, error);
        else if (f == "var-subst" && !proxy_only)
            ok = var_subst(meta, cur, next, error);
        else
            continue;
        if (!ok) {
            std::string why(f);
            why += ": ";
            why += error;
            error = std::move(why);
            return std::nullopt;
        }
        cur.swap(next);
        next.clear();
    }
    return cur;
}

bool content_filters_match(const std::vector<std::string>& sub_filters,
                           const std::vector<std::string>& wanted) {
    size_t next = 0; // index into `wanted`
    for (const std::string& f : sub_filters) {
        if (!is_content_filter(f)) continue;
        if (next == wanted.size() || wanted[next] != f) return false;
        ++next;
    }
    return next == wanted.size();
}

bool passes_delivery_filters(const Subscription& sub, const Meta& meta, const Message& msg) {
    for (const std::string& f : sub.filters) {
        if (f == "skip-self") {
            const std::string* user = non_empty(find_meta(meta, "user"));
            const std::string* sender = non_empty(msg.meta_value("sender"));
            if (user && sender && *user == *sender) return false;
        } else if (f == "skip-users") {
            const std::string* user = non_empty(find_meta(meta, "user"));
            const std::string* skip = msg.meta_value("skip_users");
            if (user && skip)
                for (auto u : core::split_trimmed(*skip, ','))
                    if (u == *user) return false;
        } else if (f == "require-sub") {
            // Published channel names are full names (route prefix included), as are the owner's.
            const std::string* required = non_empty(msg.meta_value("require_sub"));
            if (required && !(sub.owner && sub.owner->has_subscription(*required))) return false;
        }
    }
    return true;
}

} // namespace gripd::pubsub
