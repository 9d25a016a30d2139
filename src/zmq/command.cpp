// The command socket (`command_spec`): Pushpin's ZRPC server on a ROUTER socket. A request is
// [envelope..., "", TNetString {id?, method, args?}], the reply [envelope..., "", {id?, success,
// value | condition[, value]}] (Pushpin's ZrpcManager and ZrpcRequestPacket framing).
#include "gripd/core/log.hpp"
#include "gripd/pubsub/broker.hpp"
#include "gripd/zmq/stats_service.hpp"
#include "gripd/zmq/tnetstring.hpp"
#include "gripd/zmq/zmq_service.hpp"

#include <memory>

namespace gripd::zmq {

void ZmqService::reply(const Caller& c, bool success, std::string_view value_tnet,
                       std::string_view condition) {
    std::string body;
    if (c.has_id) {
        tnet::put_string(body, "id");
        tnet::put_string(body, c.rid);
    }
    tnet::put_string(body, "success");
    tnet::put_bool(body, success);
    if (!success) {
        tnet::put_string(body, "condition");
        tnet::put_string(body, condition);
    }
    if (success || !value_tnet.empty()) {
        tnet::put_string(body, "value");
        if (value_tnet.empty())
            tnet::put_null(body);
        else
            body.append(value_tnet);
    }
    std::string packet;
    tnet::put_dict(packet, body);
    std::vector<std::string_view> parts;
    parts.reserve(c.envelope.size() + 2);
    for (const auto& e : c.envelope)
        parts.emplace_back(e);
    parts.emplace_back();
    parts.emplace_back(packet);
    stats_.commands.add();
    // ROUTER drops a reply to a peer that is gone or over its hwm; nothing waits on it.
    if (command_ && !command_->send(parts)) warn(Warn::Command, "command: reply could not be sent, dropped");
}

void ZmqService::on_command(const std::vector<std::string_view>& parts, bool truncated) {
    // The envelope ends at the first empty part (REQ and DEALER clients send one).
    size_t delim = 0;
    while (delim < parts.size() && !parts[delim].empty())
        ++delim;
    if (delim == 0 || delim == parts.size() || truncated) {
        stats_.rejected.add();
        warn(Warn::Command, "zrpc server: received message without an envelope, skipping");
        return;
    }
    Caller c;
    c.envelope.assign(parts.begin(), parts.begin() + static_cast<ptrdiff_t>(delim));
    if (parts.size() - delim - 1 != 1) {
        stats_.rejected.add();
        warn(Warn::Command, "zrpc server: received message with parts != 1, skipping");
        reply(c, false, {}, "bad-format");
        return;
    }
    std::string_view content = parts[delim + 1];
    if (content.size() > static_cast<size_t>(settings_.push_in_http_max_body_size)) {
        stats_.rejected.add();
        warn(Warn::Size, "zrpc server: request of %zu bytes over the %d-byte limit, refused", content.size(),
             settings_.push_in_http_max_body_size);
        reply(c, false, {}, "bad-format");
        return;
    }
    tnet::Value req;
    std::string why;
    const tnet::Value* method = nullptr;
    const tnet::Value* id = nullptr;
    const tnet::Value* args = nullptr;
    bool ok = tnet::parse(content, req, &why) && req.type == tnet::Type::Dict;
    if (ok) {
        method = req.find("method");
        id = req.find("id");
        args = req.find("args");
        ok = method && method->is_string() && (!id || id->is_string()) &&
             (!args || args->type == tnet::Type::Dict);
    }
    if (!ok) {
        // Pushpin skips these, leaving a REQ client waiting forever; gripd answers.
        stats_.rejected.add();
        warn(Warn::Command, "zrpc server: received message with invalid format, refused");
        reply(c, false, {}, "bad-format");
        return;
    }
    if (id) c.rid = std::string(id->text);
    c.has_id = id != nullptr;
    std::string_view m = method->text;
    tnet::Value empty;
    empty.type = tnet::Type::Dict;
    const tnet::Value& a = args ? *args : empty;
    LOG_DEBUG("zmq", "IN command: %.*s", static_cast<int>(m.size()), m.data());

    if (m == "get-zmq-uris") {
        command_get_zmq_uris(c);
    } else if (m == "recover") {
        broker_.recover();
        reply(c, true, {}, {});
    } else if (m == "publish") {
        command_publish(std::move(c), a);
    } else if (m == "refresh") {
        command_refresh(std::move(c), a);
    } else if (m == "conncheck") {
        command_conncheck(c, a);
    } else {
        reply(c, false, {}, "method-not-found");
    }
}

void ZmqService::command_get_zmq_uris(const Caller& c) {
    std::string v;
    if (!command_spec_.empty()) {
        tnet::put_string(v, "command");
        tnet::put_string(v, command_spec_);
    }
    if (!pull_spec_.empty()) {
        tnet::put_string(v, "publish-pull");
        tnet::put_string(v, pull_spec_);
    }
    if (!sub_specs_.empty() && !settings_.push_in_sub_connect) {
        tnet::put_string(v, "publish-sub");
        tnet::put_string(v, sub_specs_[0]);
    }
    std::string value;
    tnet::put_dict(value, v);
    reply(c, true, value, {});
}

void ZmqService::command_publish(Caller c, const tnet::Value& args) {
    const tnet::Value* items = args.find("items");
    if (!items || items->type != tnet::Type::List) {
        reply(c, false, "", "bad-request");
        return;
    }
    std::string body = "{\"items\":[";
    for (size_t i = 0; i < items->list.size(); ++i) {
        if (i) body += ',';
        std::string e;
        if (!tnet::item_to_json(items->list[i], {}, body, &e)) {
            std::string value;
            tnet::put_string(value, "Invalid format: " + e);
            reply(c, false, value, "bad-request");
            return;
        }
    }
    body += "]}";
    submit_command(std::move(c), std::move(body));
}

void ZmqService::command_refresh(Caller c, const tnet::Value& args) {
    // refresh {cid}: that WebSocket session (Pushpin looks the cid up first).
    if (const tnet::Value* cid = args.find("cid")) {
        if (!cid->is_string()) {
            reply(c, false, {}, "bad-request");
            return;
        }
        refresh_connection(std::move(c), std::string(cid->text));
        return;
    }
    // refresh {channel}: the WebSocket-over-HTTP sessions on the channel ask their backend again,
    // which is what a `ws-message` item with action `refresh` does.
    const tnet::Value* channel = args.find("channel");
    if (!channel || !channel->is_string()) {
        reply(c, false, {}, "bad-request");
        return;
    }
    tnet::Value item;
    item.type = tnet::Type::Dict;
    tnet::Value fmt, ws, action;
    action.type = tnet::Type::String;
    action.text = "refresh";
    ws.type = tnet::Type::Dict;
    ws.dict.emplace_back("action", action);
    fmt.type = tnet::Type::Dict;
    fmt.dict.emplace_back("ws-message", ws);
    item.dict.emplace_back("formats", fmt);
    std::string body = "{\"items\":[", e;
    if (!tnet::item_to_json(item, channel->text, body, &e)) {
        reply(c, false, {}, "bad-request");
        return;
    }
    body += "]}";
    submit_command(std::move(c), std::move(body));
}

void ZmqService::submit_command(Caller c, std::string body) {
    submit(std::move(body), "command", [this, c = std::move(c)](int status, std::string_view message) {
        if (status == 200) {
            reply(c, true, {}, {});
            return;
        }
        std::string value;
        tnet::put_string(value, message);
        reply(c, false, value, status == 400 ? "bad-request" : "service-unavailable");
    });
}

void ZmqService::command_conncheck(const Caller& c, const tnet::Value& args) {
    const tnet::Value* ids = args.find("ids");
    if (!ids || ids->type != tnet::Type::List) {
        reply(c, false, {}, "bad-request");
        return;
    }
    for (const tnet::Value& v : ids->list)
        if (!v.is_string()) {
            reply(c, false, {}, "bad-request");
            return;
        }
    if (!conns_) {
        // The connection registry is the stats socket's (stats_spec): without it gripd cannot say.
        reply(c, false, {}, "not-supported");
        return;
    }
    // As Pushpin: the asked ids that are open connections of this instance.
    std::string found;
    for (const tnet::Value& v : ids->list)
        if (conns_->has_connection(std::string(v.text))) tnet::put_string(found, v.text);
    std::string value;
    tnet::put_list(value, found);
    reply(c, true, value, {});
}

void ZmqService::refresh_connection(Caller c, const std::string& cid) {
    if (refreshing_.size() >= kMaxRefreshing) {
        warn(Warn::Command, "command: %zu refresh requests already wait for the workers, refused",
             refreshing_.size());
        reply(c, false, {}, "service-unavailable");
        return;
    }
    uint64_t token = ++next_refresh_token_;
    size_t asked = refresher_ ? refresher_(token, cid) : 0;
    if (asked == 0) {
        reply(c, false, {}, "item-not-found");
        return;
    }
    refreshing_.emplace(token, Refreshing{std::move(c), asked, false});
}

void ZmqService::on_conn_refresh_reply(uint64_t token, bool found) {
    auto it = refreshing_.find(token);
    if (it == refreshing_.end()) return; // stopped meanwhile
    Refreshing& r = it->second;
    r.found = r.found || found;
    if (--r.waiting > 0) return;
    // As Pushpin's proxy: a connection it does not have is `item-not-found`; one it has is refreshed
    // (a passthrough WebSocket has nothing to refresh, and is still a success).
    if (r.found)
        reply(r.caller, true, {}, {});
    else
        reply(r.caller, false, {}, "item-not-found");
    refreshing_.erase(it);
}

} // namespace gripd::zmq
