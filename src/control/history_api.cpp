#include "history_api.hpp"

#include "gripd/core/json.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/core/url_query.hpp"

#include <charconv>
#include <memory>

namespace gripd::control {

namespace {

constexpr std::string_view kPrefix = "/history/";
constexpr size_t kMaxLimit = 10000;

bool is_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
        i += n;
    }
    return true;
}

// "content" when the bytes are UTF-8 text, else "content-bin" (base64), as a publish gives them.
void append_content(std::string& out, std::string_view key, std::string_view bytes) {
    out += '"';
    out += key;
    if (is_utf8(bytes)) {
        out += "\":";
        core::json::append_string(out, bytes);
    } else {
        out += "-bin\":";
        core::json::append_string(out, core::base64_encode(bytes));
    }
}

void append_item(std::string& out, const pubsub::Message& m) {
    out += "{\"id\":";
    core::json::append_string(out, m.id() ? *m.id() : std::string());
    if (m.prev_id()) {
        out += ",\"prev-id\":";
        core::json::append_string(out, *m.prev_id());
    }
    out += ",\"formats\":{";
    bool first = true;
    auto sep = [&] {
        if (!first) out += ',';
        first = false;
    };
    if (auto* s = m.http_stream()) {
        sep();
        out += "\"http-stream\":{";
        append_content(out, "content", s->content());
        out += '}';
    }
    if (auto* r = m.http_response()) {
        sep();
        out += "\"http-response\":{\"code\":" + std::to_string(r->code) + ',';
        append_content(out, "body", r->body);
        out += '}';
    }
    if (auto* w = m.ws_message()) {
        sep();
        out += "\"ws-message\":{";
        append_content(out, "content", w->payload());
        out += '}';
    }
    out += "}}";
}

const char* status_name(pubsub::ReplayStatus s) {
    switch (s) {
    case pubsub::ReplayStatus::Covered:
        return "covered";
    case pubsub::ReplayStatus::Gap:
        return "gap";
    case pubsub::ReplayStatus::Unknown:
    case pubsub::ReplayStatus::Unavailable: // answered 503 (HistoryExchange::answer)
        break;
    }
    return "unknown";
}

// A short text answer: a bad request, or the bus down.
void respond_text(http::ClientStream& conn, int code, std::string_view message) {
    http::Headers h;
    h.add("Content-Type", "text/plain");
    std::string body(message);
    body += '\n';
    conn.respond(code, {}, h, body);
}

// Waits for the owner's answer; the connection may go first.
class HistoryExchange final : public http::Exchange {
  public:
    HistoryExchange(pubsub::Broker& broker, http::ClientStream& conn, std::string channel,
                    std::optional<std::string> after, size_t limit)
        : broker_(broker), conn_(&conn), channel_(std::move(channel)), after_(std::move(after)),
          limit_(limit), alive_(std::make_shared<HistoryExchange*>(this)) {}
    ~HistoryExchange() override { *alive_ = nullptr; }
    void on_request_body(std::string_view) override {}
    void on_request_end() override {}
    void on_client_gone() override { conn_ = nullptr; }
    // Asked once installed: the owner may be this worker, and then answers at once.
    void on_start() override {
        broker_.fetch_history(
            channel_, after_ ? *after_ : std::string(), !after_, limit_,
            [alive = alive_](pubsub::ReplayStatus status, const std::vector<pubsub::MessageRef>& items) {
                if (*alive) (*alive)->answer(status, items);
            });
    }

  private:
    void answer(pubsub::ReplayStatus status, const std::vector<pubsub::MessageRef>& items) {
        if (!conn_) return;
        http::ClientStream* c = conn_;
        conn_ = nullptr;
        if (status == pubsub::ReplayStatus::Unavailable) {
            respond_text(*c, 503, "Bus unavailable."); // the bus is down: as a publish answers then
            return;
        }
        std::string body = "{\"channel\":";
        core::json::append_string(body, channel_);
        body += ",\"status\":\"";
        body += status_name(status);
        body += "\",\"items\":[";
        for (size_t i = 0; i < items.size(); ++i) {
            if (i) body += ',';
            append_item(body, *items[i]);
        }
        body += "]}\n";
        http::Headers h;
        h.add("Content-Type", "application/json");
        c->respond(200, {}, h, body);
    }

    pubsub::Broker& broker_;
    http::ClientStream* conn_;
    std::string channel_;
    std::optional<std::string> after_;
    size_t limit_;
    std::shared_ptr<HistoryExchange*> alive_; // the answer may come after the exchange went
};

} // namespace

bool is_history_path(std::string_view path) {
    return path.size() > kPrefix.size() && path.starts_with(kPrefix);
}

std::unique_ptr<http::Exchange> start_history(pubsub::Broker& broker, http::ClientStream& conn,
                                              const http::RequestHead& head) {
    std::string_view target = head.target;
    std::string_view path = target.substr(0, target.find('?'));
    std::string channel = core::query_decode(path.substr(kPrefix.size()));
    size_t limit = 0;
    if (auto v = core::query_param(target, "limit")) {
        auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), limit);
        if (ec != std::errc() || p != v->data() + v->size() || limit == 0 || limit > kMaxLimit) {
            respond_text(conn, 400, "limit must be an integer in 1..10000.");
            return nullptr;
        }
    }
    auto after = core::query_param(target, "after");
    return std::make_unique<HistoryExchange>(broker, conn, std::move(channel), std::move(after), limit);
}

} // namespace gripd::control
