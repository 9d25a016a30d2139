// An ordered HTTP header list with case-insensitive lookups. Order and duplicates are kept because
// proxies must forward headers as they came.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gripd::http {

struct Header {
    std::string name;
    std::string value;
};

class Headers {
  public:
    using List = std::vector<Header>;

    void add(std::string_view name, std::string_view value) {
        items_.push_back({std::string(name), std::string(value)});
    }
    // Replaces every header of that name with one.
    void set(std::string_view name, std::string_view value);
    // Removes every header of that name; returns how many were removed.
    size_t remove(std::string_view name);
    // Removes every header whose name starts with `prefix` (case-insensitive).
    size_t remove_prefix(std::string_view prefix);
    bool has(std::string_view name) const { return get(name) != nullptr; }
    // First value of that name, or nullptr.
    const std::string* get(std::string_view name) const;
    std::vector<std::string_view> get_all(std::string_view name) const;
    // Values of every header of that name, joined and split on commas (for list-valued headers).
    std::vector<std::string_view> get_list(std::string_view name) const;
    // True if a comma-separated token list header contains `token` (case-insensitive), e.g. Connection:
    // close.
    bool has_token(std::string_view name, std::string_view token) const;

    size_t size() const { return items_.size(); }
    bool empty() const { return items_.empty(); }
    void clear() { items_.clear(); }
    List::const_iterator begin() const { return items_.begin(); }
    List::const_iterator end() const { return items_.end(); }
    List& items() { return items_; }
    const List& items() const { return items_; }

  private:
    List items_;
};

// Hop-by-hop and framing headers a proxy must not forward (RFC 9110 §7.6.1 plus Pushpin's list, §3.4).
bool is_hop_by_hop(std::string_view name);

// True for headers a published or instruct response must not carry to the client as-is because the
// server sets them (framing and connection management): Content-Length, Transfer-Encoding,
// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade.
bool is_framing_header(std::string_view name);

// Standard reason phrase for a status code ("" if unknown).
std::string_view reason_phrase(int status);

} // namespace gripd::http
