// GET /history/<channel>?after=<id>&limit=N on the control API (README "History and resume"): the
// channel's kept items as JSON, asked of the channel's shard owner (pubsub::Broker::fetch_history).
#pragma once

#include "gripd/http/client_stream.hpp"
#include "gripd/http/server_conn.hpp"
#include "gripd/pubsub/broker.hpp"

#include <memory>

namespace gripd::control {

// Whether `path` (no query) names the history endpoint.
bool is_history_path(std::string_view path);
// The exchange for one GET /history request (answers 400 for a bad query at once: nullptr).
std::unique_ptr<http::Exchange> start_history(pubsub::Broker& broker, http::ClientStream& conn,
                                              const http::RequestHead& head);

} // namespace gripd::control
