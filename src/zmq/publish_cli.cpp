#include "gripd/zmq/publish_cli.hpp"

#include "gripd/core/json.hpp"
#include "gripd/core/strings.hpp"
#include "gripd/zmq/tnetstring.hpp"

#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace gripd::zmq {

namespace {

constexpr const char* kUsage =
    "Usage: gripd publish [options] <channel> [--] [content]\n"
    "\n"
    "Publish messages to gripd or Pushpin (the options of pushpin-publish).\n"
    "\n"
    "  <channel>                Channel to send to\n"
    "  <content>                Content to use for HTTP body and WebSocket message (@FILE: the file's "
    "bytes)\n"
    "      --id <id>            Payload ID\n"
    "      --prev-id <id>       Previous payload ID\n"
    "      --sender <sender>    Sender meta value\n"
    "      --code <code>        HTTP response code to use [default: 200]\n"
    "  -H, --header <\"K: V\">    Add HTTP response header (repeatable)\n"
    "  -M, --meta <\"K=V\">       Add meta variable (repeatable)\n"
    "      --hint               Send hint instead of content\n"
    "      --close              Close streaming and WebSocket connections\n"
    "      --patch              Content is JSON patch\n"
    "      --no-seq             Bypass sequencing buffer\n"
    "      --no-eol             Don't add newline to HTTP payloads\n"
    "      --spec <spec>        GRIP URL or ZeroMQ PUSH spec [default: $GRIP_URL or http://localhost:5561]\n"
    "  -u, --user <user:pass>   Authenticate using basic auth (https only)\n"
    "  -B, --bearer <token>     Authenticate with a bearer token (https only)\n"
    "  -h, --help               Prints help information\n"
    "  -V, --version            Prints version information\n";

struct Args {
    std::string channel;
    std::optional<std::string> content;
    std::string id, prev_id, sender;
    std::string code = "200";
    std::vector<std::string> headers, meta;
    bool hint = false, close = false, patch = false, no_seq = false, no_eol = false;
    std::string spec;
    std::optional<std::string> user, bearer;
};

int fail(const std::string& why) {
    std::fprintf(stderr, "Error: %s\n", why.c_str());
    return 1;
}

int usage_error(const std::string& why) {
    std::fprintf(stderr, "error: %s\n\nFor more information try --help\n", why.c_str());
    return 1;
}

// JSON (a patch operation) as TNetString, numbers as integers when they are.
void json_to_tnet(const rapidjson::Value& v, std::string& out) {
    if (v.IsNull()) {
        tnet::put_null(out);
    } else if (v.IsBool()) {
        tnet::put_bool(out, v.GetBool());
    } else if (v.IsInt64()) {
        tnet::put_int(out, v.GetInt64());
    } else if (v.IsNumber()) {
        char buf[64];
        std::snprintf(buf, sizeof(buf), "%.17g", v.GetDouble());
        std::string s = buf;
        out += std::to_string(s.size()) + ":" + s + "^";
    } else if (v.IsString()) {
        tnet::put_string(out, core::json::str(v));
    } else if (v.IsArray()) {
        std::string body;
        for (const auto& e : v.GetArray())
            json_to_tnet(e, body);
        tnet::put_list(out, body);
    } else {
        std::string body;
        for (const auto& m : v.GetObject()) {
            tnet::put_string(body, core::json::str(m.name));
            json_to_tnet(m.value, body);
        }
        tnet::put_dict(out, body);
    }
}

void put_kv(std::string& body, std::string_view key, std::string_view value) {
    tnet::put_string(body, key);
    tnet::put_string(body, value);
}

void put_kdict(std::string& body, std::string_view key, std::string_view dict_body) {
    tnet::put_string(body, key);
    tnet::put_dict(body, dict_body);
}

// The content as pushpin-publish reads it: the argument, or with a leading '@' that file's bytes.
bool read_content(const Args& a, std::string& http, std::string& ws, std::string& error) {
    if (!a.content->empty() && (*a.content)[0] == '@') {
        std::string name = a.content->substr(1);
        std::ifstream f(name, std::ios::binary);
        if (!f) {
            error = "can't read file " + name;
            return false;
        }
        std::ostringstream ss;
        ss << f.rdbuf();
        http = ws = ss.str();
        return true;
    }
    http = ws = *a.content;
    if (!a.no_eol) http += '\n';
    return true;
}

// -H "Name: value" options as the http-response format's headers list (appended to `response`).
bool put_headers(const Args& a, std::string& response, std::string& error) {
    if (a.headers.empty()) return true;
    std::string list;
    for (const auto& h : a.headers) {
        size_t colon = h.find(':');
        if (colon == std::string::npos) {
            error = "header must be in the form \"name: value\"";
            return false;
        }
        std::string pair;
        tnet::put_string(pair, h.substr(0, colon));
        tnet::put_string(pair, core::trim(std::string_view(h).substr(colon + 1)));
        tnet::put_list(list, pair);
    }
    tnet::put_string(response, "headers");
    tnet::put_list(response, list);
    return true;
}

// The formats of an item with content (or a body patch): http-response, and http-stream and
// ws-message unless it is a patch.
bool put_content_formats(const Args& a, std::string& formats, std::string& error) {
    auto code = core::parse_int(a.code);
    if (!code || *code < 0 || *code > 999) {
        error = "code must be an integer between 0 and 999";
        return false;
    }
    if (!a.content) {
        error = "must specify content";
        return false;
    }
    std::string response;
    tnet::put_string(response, "code");
    tnet::put_int(response, *code);
    if (a.patch) {
        rapidjson::Document doc;
        if (!core::json::parse(*a.content, doc) || !doc.IsArray()) {
            error = doc.IsNull() ? "content is not valid JSON" : "patch content must be a JSON array";
            return false;
        }
        tnet::put_string(response, "body-patch");
        json_to_tnet(doc, response);
    } else {
        std::string http, ws;
        if (!read_content(a, http, ws, error)) return false;
        put_kv(response, "body", http);
        std::string stream, message;
        put_kv(stream, "content", http);
        put_kv(message, "content", ws);
        put_kdict(formats, "http-stream", stream);
        put_kdict(formats, "ws-message", message);
    }
    if (!put_headers(a, response, error)) return false;
    put_kdict(formats, "http-response", response);
    return true;
}

// An action (hint or close) in every format that has it.
void put_action_formats(const char* action, bool in_response, std::string& formats) {
    std::string body;
    put_kv(body, "action", action);
    if (in_response) put_kdict(formats, "http-response", body);
    put_kdict(formats, "http-stream", body);
    put_kdict(formats, "ws-message", body);
}

// The item as a TNetString, as pushpin-publish builds it; false with the error text.
bool build_item(const Args& a, std::string& item, std::string& error) {
    std::string formats;
    if (a.hint)
        put_action_formats("hint", true, formats);
    else if (a.close)
        put_action_formats("close", false, formats);
    else if (!put_content_formats(a, formats, error))
        return false;
    std::string meta;
    if (!a.sender.empty()) put_kv(meta, "sender", a.sender);
    for (const auto& m : a.meta) {
        size_t eq = m.find('=');
        if (eq == std::string::npos) {
            error = "meta must be in the form \"name=value\"";
            return false;
        }
        put_kv(meta, m.substr(0, eq), core::trim(std::string_view(m).substr(eq + 1)));
    }
    std::string body;
    put_kv(body, "channel", a.channel);
    if (!a.id.empty()) put_kv(body, "id", a.id);
    if (!a.prev_id.empty()) put_kv(body, "prev-id", a.prev_id);
    put_kdict(body, "formats", formats);
    if (!meta.empty()) put_kdict(body, "meta", meta);
    if (a.no_seq) {
        tnet::put_string(body, "no-seq");
        tnet::put_bool(body, true);
    }
    tnet::put_dict(item, body);
    return true;
}

int publish_zmq(const std::string& spec, const std::string& item) {
    void* ctx = zmq_ctx_new();
    void* sock = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 5000; // give the message time to leave; a PULL that never comes does not hang us
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
    int sndtimeo = 5000;
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof(sndtimeo));
    int rc = 0;
    if (zmq_connect(sock, spec.c_str()) != 0 || zmq_send(sock, item.data(), item.size(), 0) < 0)
        rc = fail(zmq_strerror(errno));
    zmq_close(sock);
    zmq_ctx_term(ctx);
    if (rc == 0) std::printf("Published\n");
    return rc;
}

// A blocking connection, plain or TLS.
class Stream {
  public:
    ~Stream() {
        if (ssl_) SSL_free(ssl_);
        if (ctx_) SSL_CTX_free(ctx_);
        if (fd_ >= 0) ::close(fd_);
    }
    bool connect(const std::string& host, const std::string& port, bool tls, std::string& error) {
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        int r = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
        if (r != 0) {
            error = std::string("failed to lookup address information: ") + gai_strerror(r);
            return false;
        }
        int last = 0;
        for (addrinfo* ai = res; ai; ai = ai->ai_next) {
            fd_ = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
            if (fd_ < 0) continue;
            if (::connect(fd_, ai->ai_addr, ai->ai_addrlen) == 0) break;
            last = errno;
            ::close(fd_);
            fd_ = -1;
        }
        freeaddrinfo(res);
        if (fd_ < 0) {
            error = std::string(std::strerror(last)) + " (os error " + std::to_string(last) + ")";
            return false;
        }
        timeval tv{30, 0};
        setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (!tls) return true;
        ctx_ = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_default_verify_paths(ctx_);
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
        ssl_ = SSL_new(ctx_);
        SSL_set_tlsext_host_name(ssl_, host.c_str());
        SSL_set1_host(ssl_, host.c_str());
        SSL_set_fd(ssl_, fd_);
        if (SSL_connect(ssl_) != 1) {
            char buf[256];
            ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
            error = std::string("TLS: ") + buf;
            return false;
        }
        return true;
    }
    bool write_all(std::string_view data) {
        while (!data.empty()) {
            long n = ssl_ ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                          : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            data.remove_prefix(static_cast<size_t>(n));
        }
        return true;
    }
    // Everything until the peer closes (HTTP/1.0), at most `max` bytes.
    std::string read_all(size_t max) {
        std::string out;
        char buf[16384];
        while (out.size() < max) {
            long n = ssl_ ? SSL_read(ssl_, buf, sizeof(buf)) : ::recv(fd_, buf, sizeof(buf), 0);
            if (n <= 0) break;
            out.append(buf, static_cast<size_t>(n));
        }
        return out;
    }

  private:
    int fd_ = -1;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
};

int publish_http(const Args& a, const std::string& item_tnet) {
    const std::string& url = a.spec;
    size_t colon = url.find(':');
    std::string scheme = url.substr(0, colon);
    if (url.compare(colon + 1, 2, "//") != 0) return fail("invalid URL");
    std::string rest = url.substr(colon + 3);
    size_t slash = rest.find('/');
    std::string host = rest.substr(0, slash);
    std::string path = slash == std::string::npos ? "" : rest.substr(slash);
    std::string connect_host = host, port = scheme == "https" ? "443" : "80";
    if (size_t c = host.rfind(':'); c != std::string::npos && host.find(']', c) == std::string::npos) {
        connect_host = host.substr(0, c);
        port = host.substr(c + 1);
        auto p = core::parse_int(port);
        if (!p || *p < 0 || *p > 65535) return fail("invalid URL");
    }
    if (connect_host.size() > 2 && connect_host.front() == '[' && connect_host.back() == ']')
        connect_host = connect_host.substr(1, connect_host.size() - 2);
    tnet::Value v;
    std::string err;
    std::string item_json;
    if (!tnet::parse(item_tnet, v, &err) || !tnet::item_to_json(v, {}, item_json, &err))
        return fail("content is not UTF-8: " + err);
    std::string body = "{\"items\":[" + item_json + "]}";
    std::string req = "POST " + path + "/publish/ HTTP/1.0\r\nHost: " + host +
                      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\n";
    if (a.user || a.bearer) {
        if (scheme != "https") return fail("Authentication requires https");
        if (a.user)
            req += "Authorization: Basic " + core::base64_encode(*a.user) + "\r\n";
        else
            req += "Authorization: Bearer " + *a.bearer + "\r\n";
    }
    req += "\r\n";
    Stream s;
    if (!s.connect(connect_host, port, scheme == "https", err)) return fail(err);
    if (!s.write_all(req) || !s.write_all(body)) return fail("connection closed while sending");
    std::string resp = s.read_all(1 << 20);
    size_t eol = resp.find("\r\n");
    if (eol == std::string::npos) return fail("unexpected end of file");
    std::string status_line = resp.substr(0, eol);
    size_t sp = status_line.find(' ');
    if (sp == std::string::npos) return fail("invalid data");
    auto code = core::parse_int(status_line.substr(sp + 1, 3));
    if (!code) return fail("invalid data");
    size_t head_end = resp.find("\r\n\r\n");
    std::string resp_body = head_end == std::string::npos ? "" : resp.substr(head_end + 4);
    if (*code != 200) return fail(std::string(core::trim(resp_body)));
    std::printf("Published\n");
    return 0;
}

// Where an option's value goes: exactly one of these is set (none: not an option of ours).
struct OptionSlot {
    bool* flag = nullptr;                     // takes no value
    std::string* value = nullptr;             // the last one given wins
    std::vector<std::string>* list = nullptr; // repeatable
    std::optional<std::string>* opt = nullptr;
    bool known() const { return flag != nullptr || value != nullptr || list != nullptr || opt != nullptr; }
};

OptionSlot slot_for(Args& a, const std::string& name) {
    OptionSlot s;
    if (name == "--hint")
        s.flag = &a.hint;
    else if (name == "--close")
        s.flag = &a.close;
    else if (name == "--patch")
        s.flag = &a.patch;
    else if (name == "--no-seq")
        s.flag = &a.no_seq;
    else if (name == "--no-eol")
        s.flag = &a.no_eol;
    else if (name == "--id")
        s.value = &a.id;
    else if (name == "--prev-id")
        s.value = &a.prev_id;
    else if (name == "--sender")
        s.value = &a.sender;
    else if (name == "--code")
        s.value = &a.code;
    else if (name == "--spec")
        s.value = &a.spec;
    else if (name == "-H" || name == "--header")
        s.list = &a.headers;
    else if (name == "-M" || name == "--meta")
        s.list = &a.meta;
    else if (name == "-u" || name == "--user")
        s.opt = &a.user;
    else if (name == "-B" || name == "--bearer")
        s.opt = &a.bearer;
    return s;
}

// Splits "--name=value" and "-Xvalue" (pushpin-publish's clap accepts both); sets has_value.
void split_option(const std::string& arg, std::string& name, std::string& value, bool& has_value) {
    name = arg;
    has_value = false;
    if (arg.rfind("--", 0) == 0) {
        size_t eq = arg.find('=');
        if (eq == std::string::npos) return;
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        has_value = true;
    } else if (arg.size() > 2) {
        name = arg.substr(0, 2);
        value = arg.substr(2);
        has_value = true;
    }
}

// Reads the command line into `a`, with pushpin-publish's messages for what is wrong. Returns the
// exit status when the command is done here (help, version, a usage error), nothing to go on.
std::optional<int> parse_args(int argc, char** argv, Args& a) {
    std::vector<std::string> positional;
    bool options_done = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (options_done || arg.size() < 2 || arg[0] != '-') {
            positional.push_back(arg);
            continue;
        }
        if (arg == "--") {
            options_done = true;
            continue;
        }
        std::string name, value;
        bool has_value = false;
        split_option(arg, name, value, has_value);
        if (name == "-h" || name == "--help") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (name == "-V" || name == "--version") {
            std::printf("gripd-publish %s\n", GRIPD_VERSION);
            return 0;
        }
        OptionSlot slot = slot_for(a, name);
        if (!slot.known() || (slot.flag != nullptr && has_value))
            return usage_error("Found argument '" + arg + "' which wasn't expected");
        if (slot.flag != nullptr) {
            *slot.flag = true;
            continue;
        }
        if (!has_value) {
            if (i + 1 >= argc)
                return usage_error("The argument '" + name + "' requires a value but none was supplied");
            value = argv[++i];
        }
        if (slot.value) *slot.value = value;
        if (slot.list) slot.list->push_back(value);
        if (slot.opt) *slot.opt = value;
    }
    if (positional.empty())
        return usage_error("The following required arguments were not provided:\n    <channel>");
    if (positional.size() > 2)
        return usage_error("Found argument '" + positional[2] + "' which wasn't expected");
    a.channel = positional[0];
    if (positional.size() > 1) a.content = positional[1];
    return std::nullopt;
}

} // namespace

int run_publish_cli(int argc, char** argv) {
    Args a;
    const char* env = std::getenv("GRIP_URL");
    a.spec = env && *env ? env : "http://localhost:5561";
    if (std::optional<int> done = parse_args(argc, argv, a)) return *done;
    std::string item, error;
    if (!build_item(a, item, error)) return fail(error);
    if (a.spec.rfind("http:", 0) == 0 || a.spec.rfind("https:", 0) == 0) return publish_http(a, item);
    return publish_zmq(a.spec, item);
}

} // namespace gripd::zmq
