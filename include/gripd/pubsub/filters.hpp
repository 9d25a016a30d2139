// Subscription filters (PROTOCOL.md §4.5), one implementation for HTTP holds and WebSocket
// sessions. Pushpin sorts filters by what they act on:
//  - delivery filters decide whether an item reaches a subscription: skip-self (the subscriber's
//    meta `user` equals the item's meta `sender`), skip-users (`user` is in the item's
//    comma-separated `skip_users`), require-sub (the subscriber also holds the channel named by
//    the item's `require_sub`);
//  - content filters (build-id, var-subst) would rewrite the content; an item that names
//    `content-filters` only reaches subscriptions whose content filters are exactly those.
// Empty meta values count as absent, as in Pushpin.
#pragma once

#include "gripd/pubsub/broker.hpp"
#include "gripd/pubsub/message.hpp"

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

// True when every delivery filter named on `sub` lets `msg` through to a subscriber with meta
// `meta`. require-sub asks `sub.owner->has_subscription()`.
bool passes_delivery_filters(const Subscription& sub, const Meta& meta, const Message& msg);

} // namespace gripd::pubsub
