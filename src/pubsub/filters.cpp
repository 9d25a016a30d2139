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
