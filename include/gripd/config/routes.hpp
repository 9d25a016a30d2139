// The routes file (PROTOCOL.md §2): one route per line, `condition target [target...]`, each token
// `value[,prop[=val]]...`, double quotes group text (escapes `\\` and `\"`), `#` starts a comment.
//
// Parsing follows Pushpin's routesfile.cpp/domainmap.cpp: a bad line is skipped with a `FILE:LINE: message`
// error and the other lines still load (the caller decides whether errors are fatal at startup). One
// deliberate difference: a tab separates tokens like a space (Pushpin keeps tabs inside tokens).
//
// A RouteTable is immutable once built and is shared across worker threads as
// std::shared_ptr<const RouteTable>; every method is const and thread-safe.
#pragma once

#include "gripd/core/jwt.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gripd::config {

enum class HostKind { Exact, Any, None }; // "example.com", "*", "" (reachable only by id)
enum class RouteProto { Any, Http, WebSocket };
enum class RouteSsl { Any, Yes, No };
enum class JsonpMode { Basic, Extended };
enum class TargetType { Default, Test, Zhttp, ZhttpReq };

struct RouteHeader {
    std::string name;
    std::string value; // empty = remove the header upstream
};

struct Target {
    TargetType type = TargetType::Default;
    std::string connect_host; // Default: name or IP (IPv6 without brackets)
    int connect_port = 0;
    std::string zhttp_spec; // Zhttp / ZhttpReq: the text after "zhttp/" / "zhttpreq/"
    bool ssl = false;       // https/wss to the backend
    bool over_http = false; // WebSocket-over-HTTP
    bool one_event = false; // with over_http: one event per request
    bool trusted = true;    // false with `untrusted` (apply the outbound access policy)
    bool trust_connect_host = false;
    bool insecure = false;                  // ignore backend TLS errors
    std::string host;                       // host=: Host header to send (empty = unchanged)
    std::vector<std::string> subscriptions; // sub= (repeatable, empties dropped)
    std::string client_cert;                // client_cert= / client_key= (as written)
    std::string client_key;
    // Their PEM text, read when the routes are loaded (as Pushpin reads them), so no loop reads a file.
    std::shared_ptr<const std::string> client_cert_pem;
    std::shared_ptr<const std::string> client_key_pem;
    int ipc_file_mode = -1; // ipc_file_mode= (octal), zhttp targets only

    // "host:port", "[v6]:port", "test", "zhttp/SPEC" or "zhttpreq/SPEC".
    std::string to_string() const;
};

struct Route {
    std::string id;           // id=, or an automatic "host,proto,ssl,path_beg" id (see routes.cpp)
    bool explicit_id = false; // id= was given (Pushpin then keeps separate stats)
    HostKind host_kind = HostKind::Any;
    std::string host; // Exact: the host as written
    RouteProto proto = RouteProto::Any;
    RouteSsl ssl = RouteSsl::Any;
    std::string path_beg; // "" = any path

    std::string sig_iss;     // "" = use [proxy] sig_iss
    core::JwtKeyRef sig_key; // secret or PEM private key; null = use [proxy] sig_key
    std::string prefix;      // channel prefix
    bool orig_headers = false;
    std::string as_host;      // rewrite the request host (host[:port])
    int path_rem = 0;         // leading chars to strip (replace_beg sets it to path_beg's length)
    std::string path_prepend; // replace_beg= value
    bool debug = false;
    bool aco = false; // auto cross-origin
    JsonpMode jsonp_mode = JsonpMode::Extended;
    std::string jsonp_callback_param = "callback"; // jsonp_cb=
    std::string jsonp_body_param;                  // jsonp_body=
    std::string jsonp_default_callback;            // jsonp_defcb=
    std::string jsonp_default_method = "GET";      // jsonp_defmethod= (default POST in basic mode)
    bool session = false;
    std::string sockjs_path;          // sockjs=
    std::string sockjs_as_path;       // sockjs_as_path=
    std::vector<RouteHeader> headers; // header=Name:Value, in file order
    bool grip = true;                 // false with no_grip
    int log_level = -1;               // log_level=N; -1 = the global level
    int history_size = -1;            // history_size=N; -1 = [gripd] history_size
    int history_ttl = -1;             // history_ttl=S; -1 = [gripd] history_ttl
    std::vector<Target> targets;      // at least one; tried in order

    std::string file; // where it was defined, for messages
    int line = 0;
};

class RouteTable {
  public:
    // Picks the route for a request, per Pushpin: rules for the exact host if any exist for it (ASCII
    // case-insensitive), else the `*` rules; among those the first best one where a rule with proto beats
    // one without, then a longer path_beg wins, then a rule with ssl. `path` may include a query (it is
    // ignored). Returns nullptr when nothing matches (Pushpin answers 502).
    const Route* match(std::string_view host_without_port, std::string_view path, bool is_tls,
                       bool is_websocket) const;
    // The route with that id (explicit or automatic); nullptr if unknown or the id is used twice.
    const Route* find_by_id(std::string_view id) const;
    // Every loaded route, in file order.
    const std::vector<Route>& routes() const { return routes_; }
    size_t size() const { return routes_.size(); }
    bool empty() const { return routes_.empty(); }

  private:
    friend class RouteTableBuilder;

    struct CiHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const;
    };
    struct CiEqual {
        using is_transparent = void;
        bool operator()(std::string_view a, std::string_view b) const;
    };
    struct StrHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
    };

    std::vector<Route> routes_;
    // Host ("" for `*`) -> indexes into routes_, in file order.
    std::unordered_map<std::string, std::vector<uint32_t>, CiHash, CiEqual> by_host_;
    // Id -> index into routes_, or -1 when the id is used by more than one route.
    std::unordered_map<std::string, int64_t, StrHash, std::equal_to<>> by_id_;
};

struct RoutesResult {
    std::shared_ptr<const RouteTable> table; // always set; holds every line that parsed
    std::vector<std::string> errors;         // "FILE:LINE: message", one per skipped line
    std::vector<std::string> warnings;       // "FILE:LINE: message" (unknown props, duplicate ids); line kept
    bool key_failed = false; // a sig_key= could not be loaded (in errors): startup stops, a reload is refused
    bool ok() const { return errors.empty(); }
};

// Parses routes file text. `file_name` is used in messages.
RoutesResult parse_routes(std::string_view text, std::string_view file_name);
// Parses --route lines (file name "<route>", line = position starting at 1).
RoutesResult parse_route_lines(const std::vector<std::string>& lines);
// Reads and parses a routes file; an unreadable file is one error and an empty table.
RoutesResult load_routes_file(const std::string& path);

// The upstream path for a request: strips route.path_rem leading characters of the path, prepends
// route.path_prepend, keeps the query. An empty result becomes "/", and a result not starting with '/'
// gets one.
std::string rewrite_path(const Route& route, std::string_view path_and_query);

} // namespace gripd::config
