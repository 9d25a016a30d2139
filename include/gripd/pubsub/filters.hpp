// Subscription filters (PROTOCOL.md §4.5), one implementation for HTTP holds and WebSocket
// sessions. Pushpin sorts filters by what they act on:
//  - delivery filters decide whether an item reaches a subscription: skip-self (the subscriber's
//    meta `user` equals the item's meta `sender`), skip-users (`user` is in the item's
//    comma-separated `skip_users`), require-sub (the subscriber also holds the channel named by
//    the item's `require_sub`);
//  - content filters rewrite the content (apply_content_filters): var-subst replaces `%(name)s`
//    with the subscriber's meta value; build-id replaces `%I` with the subscriber's ID (its meta
//    `id_format` rendered with `%(channel)s` = that channel's last id; `id_encoding=hex` hex-encodes
//    it) and `%(text)I` with `text`. An item that names `content-filters` only reaches subscriptions
//    whose content filters are exactly those.
// Empty meta values count as absent, as in Pushpin.
#pragma once

#include "gripd/pubsub/broker.hpp"
#include "gripd/pubsub/message.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gripd::pubsub {

// A subscriber's meta (Grip-Set-Meta / instruct hold.meta for holds, set-meta control messages for
// WebSocket sessions), in the order it was set.
using Meta = std::vector<std::pair<std::string, std::string>>;

// The value named `name` (case-sensitive), or nullptr.
const std::string* find_meta(const Meta& meta, std::string_view name);

// Whether `name` is a content filter (build-id, var-subst).
bool is_content_filter(std::string_view name);

// True when the item's `content-filters` equal the content filters among `sub_filters` (in
// order); delivery filters on the subscription take no part in the comparison.
bool content_filters_match(const std::vector<std::string>& sub_filters,
                           const std::vector<std::string>& wanted);

// What content filters read besides the subscriber's meta: the subscriber's channels with their
// last ids (build-id's `%(channel)s`); a channel with no id is named with nullopt.
using ChannelIds = std::vector<std::pair<std::string, std::optional<std::string>>>;

// Whether `filters` name a content filter (for a fast path: no copy of the content otherwise).
bool has_content_filter(const std::vector<std::string>& filters);
// Whether `filters` name a filter that also rewrites the proxied body (build-id: the initial
// response of a stream and next-link answers, as Pushpin's ProxyContent filters).
bool has_proxy_content_filter(const std::vector<std::string>& filters);

// Runs `content` through the content filters among `filters`, in order, as Pushpin 1.36's filters
// do (a `%` that starts no known directive is an error, `%%` is a `%`). Returns the rewritten
// content, or nullopt with Pushpin's reason in `error` ("var-subst: No such variable 'x' at
// position 9"). `proxy_only`: only the filters that rewrite proxied bodies (build-id).
std::optional<std::string> apply_content_filters(const std::vector<std::string>& filters, const Meta& meta,
                                                 const ChannelIds* ids, std::string_view content,
                                                 std::string& error, bool proxy_only = false);

// True when every delivery filter named on `sub` lets `msg` through to a subscriber with meta
// `meta`. require-sub asks `sub.owner->has_subscription()`.
bool passes_delivery_filters(const Subscription& sub, const Meta& meta, const Message& msg);

} // namespace gripd::pubsub
