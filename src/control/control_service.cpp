#include "gripd/control/control_service.hpp"

#include "history_api.hpp"
#include "publish_queue.hpp"

#include "gripd/control/publish_gate.hpp"

#include "gripd/core/log.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/pubsub/broker.hpp"

#include <cstdlib>
#include <memory>

namespace gripd::control {

namespace {

enum class Endpoint { Root, Publish, Recover, Unknown };

Endpoint endpoint_of(std::string_view target) {
    size_t q = target.find('?');
    std::string_view path = q == std::string_view::npos ? target : target.substr(0, q);
    if (path == "/") return Endpoint::Root;
    if (path == "/publish" || path == "/publish/") return Endpoint::Publish;
    if (path == "/recover" || path == "/recover/") return Endpoint::Recover;
    return Endpoint::Unknown;
}

// Pushpin answers text/plain unless the client prefers JSON; anything it cannot produce is 406.
enum class Reply { Text, Json, Unacceptable };

// The supported type with the highest q (the first listed on a tie).
Reply negotiate(const http::Headers& headers) {
    auto accepts = headers.get_list("Accept");
    if (accepts.empty()) return Reply::Text;
    Reply best = Reply::Unacceptable;
    double best_q = 0;
    for (auto a : accepts) {
        std::string_view type = core::trim(a.substr(0, a.find(';')));
        double q = 1.0;
        size_t qpos = a.find(";q=");
        if (qpos == std::string_view::npos) qpos = a.find("; q=");
        if (qpos != std::string_view::npos) {
            std::string qs(core::trim(a.substr(a.find('=', qpos) + 1)));
            q = std::strtod(qs.c_str(), nullptr);
        }
        Reply r = Reply::Unacceptable;
        if (core::iequals(type, "text/plain") || core::iequals(type, "text/*") || core::iequals(type, "*/*"))
            r = Reply::Text;
        else if (core::iequals(type, "application/json") || core::iequals(type, "application/*"))
            r = Reply::Json;
        if (r != Reply::Unacceptable && q > best_q) {
            best = r;
            best_q = q;
        }
    }
    return best;
}

void reply(http::ClientStream& conn, int status, Reply format, std::string_view message) {
    http::Headers h;
    if (format == Reply::Json && status == 200) {
        h.add("Content-Type", "application/json");
        std::string body = "{\"message\":\"";
        body += message;
        body += "\"}\n";
        conn.respond(status, {}, h, body);
        return;
    }
    h.add("Content-Type", "text/plain");
    std::string body(message);
    body += '\n';
    conn.respond(status, {}, h, body);
}

// One control request whose body is being read.
class ControlExchange final : public http::Exchange {
  public:
    ControlExchange(ControlService& service, http::ClientStream& conn, Endpoint endpoint, Reply format)
        : service_(service), conn_(&conn), endpoint_(endpoint), format_(format) {}
    ~ControlExchange() override {
        if (job_) service_.publishes().cancel(job_);
    }

    void on_request_body(std::string_view data) override {
        if (!conn_ || too_large_) return;
        if (body_.size() + data.size() >
            static_cast<size_t>(service_.settings().push_in_http_max_body_size)) {
            too_large_ = true;
            body_.clear();
            http::ClientStream* c = conn_;
            conn_ = nullptr;
            reply(*c, 400, Reply::Text, "Request body too large.");
            return;
        }
        body_.append(data);
    }

    void on_request_end() override {
        if (!conn_) return;
        if (endpoint_ == Endpoint::Recover) {
            service_.broker().recover();
            finish(200, "Updated");
            return;
        }
        // Validated and handed over in slices, in arrival order (see publish_queue.hpp).
        job_ = service_.publishes().submit(std::move(body_), service_.broker().has_bus(),
                                           [this](int status, std::string_view message) {
                                               job_ = 0;
                                               finish(status, message);
                                           });
    }

    void on_client_gone() override { conn_ = nullptr; }

  private:
    void finish(int status, std::string_view message) {
        if (!conn_) return;
        http::ClientStream* c = conn_;
        conn_ = nullptr;
        reply(*c, status, status == 200 ? format_ : Reply::Text, message);
    }

    ControlService& service_;
    http::ClientStream* conn_;
    Endpoint endpoint_;
    Reply format_;
    std::string body_;
    bool too_large_ = false;
    uint64_t job_ = 0; // in the worker's PublishQueue until answered
};

} // namespace

ControlService::ControlService(const config::Settings& settings, pubsub::Broker& broker, uv_loop_t* loop)
    : settings_(settings), broker_(broker),
      publishes_(std::make_unique<PublishQueue>(loop, broker, &PublishGate::instance())) {}

ControlService::~ControlService() = default;

void ControlService::rejection(int* status, std::string* message) const {
    if (*status == 431) {
        *status = 400; // Pushpin's words for the control API
        *message = "Request header too large.";
    }
}

std::unique_ptr<http::Exchange> ControlService::start_exchange(http::ClientStream& conn,
                                                               http::RequestHead& head) {
    // Pushpin requires a length before anything else when a body is announced (chunked) or the
    // method may carry one: any method but GET, HEAD, DELETE and OPTIONS, extension methods too.
    const bool method_assumes_body =
        head.method != "GET" && head.method != "HEAD" && head.method != "DELETE" && head.method != "OPTIONS";
    if (head.content_length < 0 && (head.chunked || method_assumes_body)) {
        reply(conn, 411, Reply::Text, "Request requires Content-Length.");
        return nullptr;
    }
    Endpoint ep = endpoint_of(head.target);
    if (ep == Endpoint::Unknown && head.method == "GET" &&
        is_history_path(std::string_view(head.target).substr(0, head.target.find('?'))))
        return start_history(broker_, conn, head); // gripd: README "History and resume"
    if (ep == Endpoint::Unknown) {
        reply(conn, 404, Reply::Text, "Not Found");
        return nullptr;
    }
    if (ep == Endpoint::Root) {
        reply(conn, 200, Reply::Text, "Pushpin API");
        return nullptr;
    }
    if (head.method != "POST") {
        http::Headers h;
        h.add("Allow", "POST");
        h.add("Content-Type", "text/plain");
        conn.respond(405, {}, h, "Method not allowed: " + head.method + ".\n");
        return nullptr;
    }
    Reply format = negotiate(head.headers);
    if (format == Reply::Unacceptable) {
        reply(conn, 406, Reply::Text,
              "Not Acceptable. Supported formats are text/plain and application/json.");
        return nullptr;
    }
    if (head.content_length > settings_.push_in_http_max_body_size) {
        reply(conn, 400, Reply::Text, "Request body too large.");
        return nullptr;
    }
    return std::make_unique<ControlExchange>(*this, conn, ep, format);
}

} // namespace gripd::control
