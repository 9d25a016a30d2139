#include "gripd/config/routes.hpp"

#include "gripd/config/ini.hpp"
#include "gripd/config/jwt_keys.hpp"
#include "gripd/config/settings.hpp"
#include "gripd/core/strings.hpp"
#include "route_options_internal.hpp"

#include <filesystem>

namespace gripd::config {

// ---------------------------------------------------------------------------------------------------------
// Line tokenizer: a port of Pushpin's RoutesFile::LineParser state machine.

namespace {

struct Prop {
    std::string name;
    std::string value;
};

struct Section {
    std::string value;
    std::vector<Prop> props;

    bool has(std::string_view name) const {
        for (const auto& p : props)
            if (p.name == name) return true;
        return false;
    }
    // The last value given for `name` (Pushpin's QMultiHash::value returns the most recent insert).
    const std::string* get(std::string_view name) const {
        const std::string* out = nullptr;
        for (const auto& p : props)
            if (p.name == name) out = &p.value;
        return out;
    }
    std::vector<std::string> all(std::string_view name) const {
        std::vector<std::string> out;
        for (const auto& p : props)
            if (p.name == name) out.push_back(p.value);
        return out;
    }
};

bool is_separator(char c) {
    return c == ' ' || c == '\t';
}

class LineParser {
  public:
    enum class TokenType { Error, InitialValue, Prop, EndOfLine };
    struct Token {
        TokenType type = TokenType::Error;
        std::string value; // Error: message; InitialValue/Prop: value
        std::string name;  // Prop
    };

    explicit LineParser(std::string_view line) : str_(line) {}

    Token next() {
        size_t start = index_;
        std::string part;
        while (true) {
            if (state_ == State::ReadSeparator) {
                while (index_ < str_.size() && is_separator(str_[index_]))
                    ++index_;
                if (index_ >= str_.size() || str_[index_] == '#') return {TokenType::EndOfLine, {}, {}};
                // Pushpin re-reads from before the blanks, so an indented `id=x ...` line fails there with
                // "expecting prop"; gripd starts after them.
                start = index_;
                state_ = State::ReadInitialValue;
                continue;
            }
            size_t at = str_.find_first_of("\", #\t", index_);
            if (at != std::string_view::npos && str_[at] == '"') {
                part.append(str_.substr(index_, at - index_));
                ++at;
                for (; at < str_.size(); ++at) {
                    char c = str_[at];
                    if (c == '\\') {
                        ++at;
                        if (at >= str_.size()) return {TokenType::Error, "unterminated quoted string", {}};
                        if (str_[at] != '\\' && str_[at] != '"')
                            return {TokenType::Error, "bad escape in quoted string (only \\\\ and \\\")", {}};
                        part += str_[at];
                    } else if (c == '"') {
                        break;
                    } else {
                        part += c;
                    }
                }
                if (at >= str_.size()) return {TokenType::Error, "unterminated quoted string", {}};
                index_ = at + 1;
                continue;
            }
            if (at == std::string_view::npos) at = str_.size();
            part.append(str_.substr(index_, at - index_));

            Token token;
            if (state_ == State::ReadInitialValue) {
                if (part.find('=') != std::string::npos) {
                    // A first token with '=' has an empty value; re-read it as a prop (as Pushpin does).
                    index_ = start;
                    state_ = State::ReadProp;
                    return {TokenType::InitialValue, {}, {}};
                }
                token.type = TokenType::InitialValue;
                token.value = std::move(part);
            } else {
                if (part.empty()) return {TokenType::Error, "expecting prop", {}};
                size_t eq = part.find('=');
                token.name = part.substr(0, eq);
                if (eq != std::string::npos) token.value = part.substr(eq + 1);
                if (token.name.empty()) return {TokenType::Error, "empty prop name", {}};
                token.type = TokenType::Prop;
            }
            if (at < str_.size() && str_[at] == ',') {
                ++at;
                state_ = State::ReadProp;
            } else {
                state_ = State::ReadSeparator;
            }
            index_ = at;
            return token;
        }
    }

  private:
    enum class State { ReadSeparator, ReadInitialValue, ReadProp };
    State state_ = State::ReadSeparator;
    std::string_view str_;
    size_t index_ = 0;
};

// Splits a line into sections (condition first, then targets). Returns false with *error on bad syntax.
bool parse_line(std::string_view line, std::vector<Section>* out, std::string* error) {
    LineParser parser(line);
    std::vector<Section> sections;
    while (true) {
        LineParser::Token t = parser.next();
        switch (t.type) {
        case LineParser::TokenType::Error:
            *error = t.value;
            return false;
        case LineParser::TokenType::InitialValue:
            sections.push_back({std::move(t.value), {}});
            break;
        case LineParser::TokenType::Prop:
            sections.back().props.push_back({std::move(t.name), std::move(t.value)});
            break;
        case LineParser::TokenType::EndOfLine:
            *out = std::move(sections);
            return true;
        }
    }
}

bool parse_uint(std::string_view text, int max, int* out) {
    auto v = core::parse_int_in(text, 0, max);
    if (v) *out = *v;
    return v.has_value();
}

// Pushpin's Rule::idFromCondition(). Note ssl=no yields "ssl" and ssl=yes "no-ssl": upstream has them
// swapped, and gripd keeps the same ids so stats and Pushpin-Route values match.
std::string id_from_condition(const Route& r) {
    std::string id = r.host_kind == HostKind::Exact ? r.host : "*";
    id += r.proto == RouteProto::Http ? ",http" : r.proto == RouteProto::WebSocket ? ",ws" : ",*";
    id += r.ssl == RouteSsl::No ? ",ssl" : r.ssl == RouteSsl::Yes ? ",no-ssl" : ",*";
    id += ",";
    id += r.path_beg.empty() ? "*" : r.path_beg;
    return id;
}

bool known(route_options::Where where, std::string_view name) {
    return route_options::find(where, name) != nullptr;
}

// Reads `name`, whose value must be `a` or `b`, into `out` (left alone when absent). Returns an error
// message or "".
template <class E>
std::string parse_choice(const Section& c, std::string_view name, std::string_view a, E value_a,
                         std::string_view b, E value_b, E& out) {
    auto v = c.get(name);
    if (!v) return "";
    if (*v == a)
        out = value_a;
    else if (*v == b)
        out = value_b;
    else
        return std::string(name) + " must be set to '" + std::string(a) + "' or '" + std::string(b) + "'";
    return "";
}

// The condition's value: empty (matches by id only), `*` or a host.
void parse_host(const Section& c, Route& r) {
    if (c.value.empty()) {
        r.host_kind = HostKind::None;
    } else if (c.value == "*") {
        r.host_kind = HostKind::Any;
    } else {
        r.host_kind = HostKind::Exact;
        r.host = c.value;
    }
}

// What a request must be to match: proto, ssl, path_beg; and the route's id.
std::string parse_match(const Section& c, Route& r) {
    if (auto err = parse_choice(c, "proto", "http", RouteProto::Http, "ws", RouteProto::WebSocket, r.proto);
        !err.empty())
        return err;
    if (auto err = parse_choice(c, "ssl", "yes", RouteSsl::Yes, "no", RouteSsl::No, r.ssl); !err.empty())
        return err;
    if (auto v = c.get("id")) {
        r.id = *v;
        r.explicit_id = true;
    }
    if (auto v = c.get("path_beg")) {
        if (v->empty()) return "path_beg cannot be empty";
        r.path_beg = *v;
    }
    return "";
}

// What the request becomes on its way to the backend (after parse_match: replace_beg
// uses path_beg).
std::string parse_rewrites(const Section& c, Route& r) {
    if (auto v = c.get("sig_iss")) r.sig_iss = *v;
    if (auto v = c.get("prefix")) r.prefix = *v;
    if (auto v = c.get("history_size")) {
        if (!parse_uint(*v, 1000000, &r.history_size)) return "history_size must be an integer in 0..1000000";
    }
    if (auto v = c.get("history_ttl")) {
        if (!parse_uint(*v, 1 << 30, &r.history_ttl)) return "history_ttl must be an integer >= 0";
    }
    r.orig_headers = c.has("orig_headers");
    if (auto v = c.get("as_host")) r.as_host = *v;
    if (auto v = c.get("path_rem")) {
        if (!parse_uint(*v, 1 << 20, &r.path_rem)) return "path_rem must be an integer >= 0";
    }
    if (auto v = c.get("replace_beg")) {
        r.path_rem = static_cast<int>(r.path_beg.size());
        r.path_prepend = *v;
    }
    return "";
}

std::string parse_jsonp(const Section& c, Route& r) {
    if (auto err = parse_choice(c, "jsonp_mode", "basic", JsonpMode::Basic, "extended", JsonpMode::Extended,
                                r.jsonp_mode);
        !err.empty())
        return err;
    if (auto v = c.get("jsonp_cb")) r.jsonp_callback_param = *v;
    if (auto v = c.get("jsonp_body")) r.jsonp_body_param = *v;
    if (auto v = c.get("jsonp_defcb")) r.jsonp_default_callback = *v;
    r.jsonp_default_method = r.jsonp_mode == JsonpMode::Basic ? "POST" : "GET";
    if (auto v = c.get("jsonp_defmethod")) r.jsonp_default_method = *v;
    return "";
}

// `header=name:value` (repeatable): headers added to responses.
std::string parse_headers(const Section& c, Route& r) {
    for (const auto& h : c.all("header")) {
        size_t at = h.find(':');
        if (at == std::string::npos || at < 1) return "header must use format 'name:value'";
        size_t v = at + 1;
        while (v < h.size() && h[v] == ' ')
            ++v;
        r.headers.push_back({h.substr(0, at), h.substr(v)});
    }
    return "";
}

// Fills `r` from the condition section. Returns an error message or "". The steps run in this order
// so that the first bad option on the line is the one reported.
std::string parse_condition(const Section& c, Route& r, std::vector<std::string>& unknown) {
    parse_host(c, r);
    for (const auto& p : c.props)
        if (!known(route_options::Where::Condition, p.name)) unknown.push_back(p.name);
    if (auto err = parse_match(c, r); !err.empty()) return err;
    if (auto err = parse_rewrites(c, r); !err.empty()) return err;
    r.debug = c.has("debug");
    r.aco = c.has("aco");
    if (auto err = parse_jsonp(c, r); !err.empty()) return err;
    r.session = c.has("session");
    if (auto v = c.get("sockjs")) r.sockjs_path = *v;
    if (auto v = c.get("sockjs_as_path")) r.sockjs_as_path = *v;
    if (auto err = parse_headers(c, r); !err.empty()) return err;
    r.grip = !c.has("no_grip");
    if (auto v = c.get("log_level")) {
        if (!parse_uint(*v, 100, &r.log_level)) return "log_level must be an integer >= 0";
    }
    return "";
}

// What a route asks for that gripd does not do (Pushpin does): one sentence each, naming what will not
// happen, so no option is ignored in silence. The options come from the route options table.
std::vector<std::string> unsupported(const std::vector<Section>& sections, const Route& r) {
    using route_options::Status;
    using route_options::Where;
    std::vector<std::string> out;
    // As in Pushpin, JSON-P is part of CORS: without `aco` the jsonp_* options act only when
    // [proxy] auto_cross_origin is on, which the routes file cannot see: say so.
    for (const char* key : {"jsonp_mode", "jsonp_cb", "jsonp_body", "jsonp_defcb", "jsonp_defmethod"}) {
        if (!r.aco && sections[0].has(key)) {
            out.push_back("route options 'jsonp_*' act only with 'aco' on the route or [proxy] "
                          "auto_cross_origin=true: otherwise JSON-P callbacks are passed to the backend as "
                          "plain query parameters");
            break;
        }
    }
    std::vector<std::string_view> said; // names and groups already warned about on this line
    auto once = [&](std::string_view what) {
        for (auto s : said)
            if (s == what) return false;
        said.push_back(what);
        return true;
    };
    for (const auto& p : sections[0].props) {
        const auto* o = route_options::find(Where::Condition, p.name);
        if (!o || (o->status != Status::Warn && o->status != Status::Partial)) continue;
        if (o->status == Status::Partial) {
            if (once(o->name))
                out.push_back("route option '" + std::string(o->name) +
                              "' is only partly supported by gripd: " + std::string(o->text));
        } else if (!o->group.empty()) {
            if (once(o->group))
                out.push_back("route options '" + std::string(o->group) +
                              "' are not supported by gripd yet: " + std::string(o->text));
        } else if (once(o->name)) {
            out.push_back("route option '" + std::string(o->name) +
                          "' is not supported by gripd yet: " + std::string(o->text));
        }
    }
    for (size_t i = 0; i < r.targets.size(); ++i) {
        const Target& t = r.targets[i];
        const Section& s = sections[i + 1];
        said.clear();
        for (const auto& p : s.props) {
            const auto* o = route_options::find(Where::Target, p.name);
            if (!o || !once(o->name)) continue;
            bool warn = o->status == Status::Warn ||
                        (o->status == Status::WsOnly && r.proto != RouteProto::WebSocket);
            if (warn)
                out.push_back("target '" + s.value + "': option '" + std::string(o->name) +
                              "' is not supported by gripd yet: " + std::string(o->text));
        }
        if (t.type == TargetType::Default && !t.ssl && t.client_cert_pem)
            out.push_back("target '" + s.value +
                          "' has client_cert but not ssl: no client certificate is sent (plain HTTP)");
        if (t.type == TargetType::Zhttp || t.type == TargetType::ZhttpReq)
            out.push_back("target '" + s.value +
                          "' is a ZeroMQ target, which gripd does not support: it is skipped (requests go to "
                          "the route's other targets, or get 502)");
    }
    return out;
}

// client_cert= and client_key= name PEM files (a relative path is relative to the working directory, as in
// Pushpin), read now. A file that cannot be read fails the line, as in Pushpin. Returns an error or "".
std::string read_client_identity(Target& t) {
    if (t.client_cert.empty() && t.client_key.empty()) return "";
    if (t.client_cert.empty() || t.client_key.empty())
        return "client_cert and client_key must be given together";
    std::string cert, key, err;
    if (!read_text_file(t.client_cert, &cert, &err) || !read_text_file(t.client_key, &key, &err)) return err;
    t.client_cert_pem = std::make_shared<const std::string>(std::move(cert));
    t.client_key_pem = std::make_shared<const std::string>(std::move(key));
    return "";
}

std::string parse_target(const Section& s, Target& t, std::vector<std::string>& unknown) {
    const std::string& v = s.value;
    if (v == "test") {
        t.type = TargetType::Test;
    } else if (v.rfind("zhttp/", 0) == 0) {
        t.type = TargetType::Zhttp;
        t.zhttp_spec = v.substr(6);
    } else if (v.rfind("zhttpreq/", 0) == 0) {
        t.type = TargetType::ZhttpReq;
        t.zhttp_spec = v.substr(9);
    } else {
        t.type = TargetType::Default;
        size_t colon;
        if (!v.empty() && v.front() == '[') {
            size_t close = v.find(']');
            if (close == std::string::npos || close + 1 >= v.size() || v[close + 1] != ':')
                return "target bad format";
            t.connect_host = v.substr(1, close - 1);
            colon = close + 1;
        } else {
            colon = v.find(':');
            if (colon == std::string::npos) return "target bad format";
            t.connect_host = v.substr(0, colon);
        }
        if (!parse_uint(std::string_view(v).substr(colon + 1), 65535, &t.connect_port) || t.connect_port < 1)
            return "target invalid port";
        if (t.connect_host.empty()) return "target bad format";
    }
    for (const auto& p : s.props)
        if (!known(route_options::Where::Target, p.name)) unknown.push_back(p.name);
    t.ssl = s.has("ssl");
    t.trusted = !s.has("untrusted");
    t.trust_connect_host = s.has("trust_connect_host");
    t.insecure = s.has("insecure");
    if (auto h = s.get("host")) t.host = *h;
    for (auto& sub : s.all("sub"))
        if (!sub.empty()) t.subscriptions.push_back(std::move(sub));
    t.over_http = s.has("over_http");
    t.one_event = s.has("one_event");
    if (auto m = s.get("ipc_file_mode"))
        if (auto mode = core::parse_file_mode(*m)) t.ipc_file_mode = *mode; // Pushpin ignores a bad mode
    if (auto c = s.get("client_cert")) t.client_cert = *c;
    if (auto k = s.get("client_key")) t.client_key = *k;
    return read_client_identity(t);
}

std::string where(std::string_view file, int line) {
    return std::string(file) + ":" + std::to_string(line) + ": ";
}

std::string_view strip_query(std::string_view path) {
    size_t q = path.find('?');
    return q == std::string_view::npos ? path : path.substr(0, q);
}

bool is_match(const Route& r, std::string_view path, bool tls, bool ws) {
    if (r.proto == RouteProto::Http && ws) return false;
    if (r.proto == RouteProto::WebSocket && !ws) return false;
    if (r.ssl == RouteSsl::Yes && !tls) return false;
    if (r.ssl == RouteSsl::No && tls) return false;
    return r.path_beg.empty() || path.substr(0, r.path_beg.size()) == r.path_beg;
}

// Pushpin's Rule::isMoreSpecificMatch(), kept as is: proto first, then a longer path_beg, then ssl. Note the
// ssl step does not check that the path is at least as long, so a shorter path_beg with ssl beats a longer
// one without; gripd matches that.
bool is_more_specific(const Route& r, const Route& best, std::string_view path, bool tls, bool ws) {
    if (!is_match(r, path, tls, ws)) return false;
    if (best.proto == RouteProto::Any && r.proto != RouteProto::Any) return true;
    if (best.proto != RouteProto::Any && r.proto == RouteProto::Any) return false;
    if (r.path_beg.size() > best.path_beg.size()) return true;
    if (best.ssl == RouteSsl::Any && r.ssl != RouteSsl::Any) return true;
    return false;
}

} // namespace

// ---------------------------------------------------------------------------------------------------------
// RouteTable

size_t RouteTable::CiHash::operator()(std::string_view s) const {
    uint64_t h = 1469598103934665603ull; // FNV-1a over lowercased bytes
    for (char c : s) {
        h ^= static_cast<unsigned char>(core::ascii_lower(c));
        h *= 1099511628211ull;
    }
    return static_cast<size_t>(h);
}

bool RouteTable::CiEqual::operator()(std::string_view a, std::string_view b) const {
    return core::iequals(a, b);
}

const Route* RouteTable::match(std::string_view host, std::string_view path, bool is_tls,
                               bool is_websocket) const {
    auto it = by_host_.find(host);
    if (it == by_host_.end()) it = by_host_.find(std::string_view());
    if (it == by_host_.end()) return nullptr;
    path = strip_query(path);
    const Route* best = nullptr;
    for (uint32_t index : it->second) {
        const Route& r = routes_[index];
        if (best ? is_more_specific(r, *best, path, is_tls, is_websocket)
                 : is_match(r, path, is_tls, is_websocket))
            best = &r;
    }
    return best;
}

const Route* RouteTable::find_by_id(std::string_view id) const {
    auto it = by_id_.find(id);
    if (it == by_id_.end() || it->second < 0) return nullptr;
    return &routes_[static_cast<size_t>(it->second)];
}

std::string Target::to_string() const {
    switch (type) {
    case TargetType::Test:
        return "test";
    case TargetType::Zhttp:
        return "zhttp/" + zhttp_spec;
    case TargetType::ZhttpReq:
        return "zhttpreq/" + zhttp_spec;
    case TargetType::Default:
        break;
    }
    if (connect_host.find(':') != std::string::npos)
        return "[" + connect_host + "]:" + std::to_string(connect_port);
    return connect_host + ":" + std::to_string(connect_port);
}

// Builds a table line by line, applying Pushpin's addRule() duplicate rules.
class RouteTableBuilder {
  public:
    // `base_dir`: where relative sig_key=file: paths resolve (the routes file's directory).
    explicit RouteTableBuilder(std::filesystem::path base_dir)
        : table_(std::make_shared<RouteTable>()), base_dir_(std::move(base_dir)) {}

    void add_line(std::string_view line, std::string_view file, int line_no, RoutesResult& result) {
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        std::vector<Section> sections;
        std::string err;
        if (!parse_line(line, &sections, &err)) {
            result.errors.push_back(where(file, line_no) + err);
            return;
        }
        if (sections.empty()) return; // blank or comment
        if (sections.size() < 2) {
            result.errors.push_back(where(file, line_no) + "must specify condition and at least one target");
            return;
        }
        Route r;
        r.file = std::string(file);
        r.line = line_no;
        std::vector<std::string> unknown;
        if (err = parse_condition(sections[0], r, unknown); !err.empty()) {
            result.errors.push_back(where(file, line_no) + err);
            return;
        }
        if (auto v = sections[0].get("sig_key")) {
            r.sig_key = load_key(*v, &err);
            if (!r.sig_key) {
                result.errors.push_back(where(file, line_no) + "sig_key: " + err);
                result.key_failed = true;
                return;
            }
        }
        for (size_t i = 1; i < sections.size(); ++i) {
            Target t;
            if (err = parse_target(sections[i], t, unknown); !err.empty()) {
                result.errors.push_back(where(file, line_no) + err);
                return;
            }
            r.targets.push_back(std::move(t));
        }
        for (const auto& name : unknown)
            result.warnings.push_back(where(file, line_no) + "unknown route option '" + name + "', ignored");
        for (const auto& what : unsupported(sections, r))
            result.warnings.push_back(where(file, line_no) + what);
        if (r.id.empty()) r.id = id_from_condition(r);
        add(std::move(r), result);
    }

    std::shared_ptr<const RouteTable> finish() { return std::move(table_); }

  private:
    void add(Route&& r, RoutesResult& result) {
        RouteTable& t = *table_;
        std::string host_key = r.host_kind == HostKind::Exact ? r.host : std::string();
        if (r.host_kind != HostKind::None) {
            auto it = t.by_host_.find(host_key);
            if (it != t.by_host_.end()) {
                for (uint32_t index : it->second) {
                    const Route& b = t.routes_[index];
                    if (b.proto == r.proto && b.ssl == r.ssl && b.path_beg == r.path_beg) {
                        result.errors.push_back(where(r.file, r.line) +
                                                "skipping duplicate condition (same as line " +
                                                std::to_string(b.line) + ")");
                        return;
                    }
                }
            }
        }
        uint32_t index = static_cast<uint32_t>(t.routes_.size());
        auto id_it = t.by_id_.find(r.id);
        if (id_it == t.by_id_.end()) {
            t.by_id_.emplace(r.id, index);
        } else {
            if (id_it->second >= 0)
                result.warnings.push_back(where(r.file, r.line) + "route id '" + r.id +
                                          "' is used more than once; it cannot be selected by id");
            id_it->second = -1; // as Pushpin: a duplicated id selects nothing
        }
        if (r.host_kind != HostKind::None) t.by_host_[host_key].push_back(index);
        t.routes_.push_back(std::move(r));
    }

    // A route's sig_key, loaded once per table even when many routes name the same value (a file
    // is read once per load, so a reload picks up a replaced key file).
    core::JwtKeyRef load_key(const std::string& text, std::string* error) {
        if (auto it = keys_.find(text); it != keys_.end()) return it->second;
        core::JwtKeyRef key = load_jwt_key(text, base_dir_, core::JwtKey::Use::Sign, error);
        if (key) keys_.emplace(text, key);
        return key;
    }

    std::shared_ptr<RouteTable> table_;
    std::filesystem::path base_dir_;
    std::unordered_map<std::string, core::JwtKeyRef> keys_;
};

std::filesystem::path directory_of(std::string_view file_name) {
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(std::filesystem::path(file_name), ec);
    return ec ? std::filesystem::path(file_name).parent_path() : abs.parent_path();
}

RoutesResult parse_routes(std::string_view text, std::string_view file_name) {
    RoutesResult result;
    RouteTableBuilder builder(directory_of(file_name));
    int line_no = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        builder.add_line(text.substr(pos, nl - pos), file_name, ++line_no, result);
        pos = nl + 1;
    }
    result.table = builder.finish();
    return result;
}

RoutesResult parse_route_lines(const std::vector<std::string>& lines) {
    RoutesResult result;
    // As Pushpin: relative key files of --route lines resolve against the current directory.
    RouteTableBuilder builder(std::filesystem::current_path());
    int line_no = 0;
    for (const auto& line : lines)
        builder.add_line(line, "<route>", ++line_no, result);
    result.table = builder.finish();
    return result;
}

RoutesResult load_routes_file(const std::string& path) {
    std::string text, err;
    if (!read_text_file(path, &text, &err)) {
        RoutesResult result;
        result.table = std::make_shared<RouteTable>();
        result.errors.push_back(err);
        return result;
    }
    return parse_routes(text, path);
}

std::string rewrite_path(const Route& route, std::string_view path_and_query) {
    size_t q = path_and_query.find('?');
    std::string_view path = path_and_query.substr(0, q);
    std::string_view query = q == std::string_view::npos ? std::string_view() : path_and_query.substr(q);
    size_t rem = std::min(path.size(), static_cast<size_t>(std::max(route.path_rem, 0)));
    std::string out = route.path_prepend;
    out.append(path.substr(rem));
    if (out.empty() || out.front() != '/') out.insert(out.begin(), '/');
    out.append(query);
    return out;
}

} // namespace gripd::config
