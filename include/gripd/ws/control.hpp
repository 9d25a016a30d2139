// GRIP control messages (PROTOCOL.md §5.3): the JSON object after `c:` in a text message from the
// backend, once the `grip` WebSocket extension is negotiated. Parsing is pure; the session applies
// the result.
#pragma once

#include "gripd/pubsub/publish.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gripd::ws {

struct ControlMessage {
    enum class Type : uint8_t {
        Subscribe,
        Unsubscribe,
        Detach,
        Session,
        SetMeta,
        KeepAlive,
        SendDelayed,
        FlushDelayed
    };
    Type type = Type::Detach;
    std::string channel;                // subscribe, unsubscribe (non-empty)
    std::vector<std::string> filters;   // subscribe
    std::optional<std::string> last_id; // subscribe: gripd's resume point (`last-id`, README History)
    // subscribe: gripd's `ids` (README History): each item with an id is preceded by a `gripd-id`
    // message naming it. Absent: an existing subscription keeps its setting (a new one: off).
    std::optional<bool> ids;
    std::string name;                 // set-meta (non-empty)
    std::optional<std::string> value; // set-meta (absent: delete); session id
    // keep-alive, send-delayed
    std::optional<std::string> content; // content, or decoded content-bin; absent: disable
    pubsub::WsType message_type = pubsub::WsType::Text;
    int timeout = -1;      // seconds; -1 when absent
    bool interval = false; // keep-alive mode=interval (default idle)
};

// Default keep-alive timeout (seconds) when the message gives none.
constexpr int kDefaultKeepAliveTimeout = 55;
// Default send-delayed timeout (seconds).
constexpr int kDefaultSendDelayedTimeout = 1;

// Parses the JSON text of a control message; nullopt (with a reason) when it is not valid.
std::optional<ControlMessage> parse_control_message(std::string_view json, std::string* error);

} // namespace gripd::ws
