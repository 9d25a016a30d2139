// The typed settings gripd runs from, loaded from a pushpin.conf-compatible file plus the command line.
//
// Every key is one row of a declarative table in settings_table.cpp (section, key, type and range, default,
// field, and what gripd does with it), in the spirit of nginx's ngx_command_t: adding a setting costs one
// field, one row and one test. Each row's disposition is one of: works as in Pushpin; accepted with one
// WARN naming what will not happen (when its value asks for something gripd does not do); accepted with
// one INFO because it is Pushpin-internal plumbing with no behaviour a user sees. Unknown keys get one
// WARN each (Pushpin ignores them silently; a typo should show). A bad value is an error
// "FILE:LINE: message" (the caller exits 2).
#pragma once

#include "gripd/config/cli.hpp"
#include "gripd/config/listen_addr.hpp"
#include "gripd/core/jwt.hpp"
#include "gripd/core/log.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace gripd::config {

// A unix socket listener from [runner] local_ports: `[unix:]PATH[?mode=OCTAL&user=U&group=G]`.
struct LocalPort {
    std::string path;
    int mode = -1; // -1 = leave as created
    std::string user;
    std::string group;
    bool operator==(const LocalPort&) const = default;
};

// [proxy] x_forwarded_for / x_forwarded_for_trusted: `truncate:N` keeps the last N entries, `append` adds the
// peer address. Both empty = leave the header alone.
struct XffRule {
    int truncate = -1; // -1 = no truncation
    bool append = false;
    bool operator==(const XffRule&) const = default;
};

// [proxy] set_x_forwarded_protocol: `true` = X-Forwarded-Proto and X-Forwarded-Protocol, `proto-only` = only
// X-Forwarded-Proto, anything else = none. Only added when the client scheme is https/wss.
enum class XForwardedProtocol { Off, ProtoOnly, Both };

// Every field a pushpin.conf key sets starts at the default in that key's row of the settings table
// (src/config/settings_table.cpp), which is the only copy of the defaults: the constructor applies them.
// The brace initializers below only keep the object defined before that.
struct Settings {
    Settings();

    // Where the settings came from.
    std::string config_file; // as given (or the default)
    std::string config_dir;  // its directory; relative paths resolve against it

    // [global]
    std::string libdir;     // only used for {libdir} in values
    std::string rundir;     // [global] rundir, else the deprecated [runner] rundir
    std::string ipc_prefix; // "pN-" with --id N
    int port_offset{};      // added to push_in_http_port; N*10 with --id N

    // [runner]
    std::vector<ListenAddr> http_ports;  // --port replaces every listener
    std::vector<ListenAddr> https_ports; // TLS (certificates from <config_dir>/runner/certs)
    std::vector<LocalPort> local_ports;  // unix sockets; --port replaces them too
    std::string logdir;
    int log_level{};          // 0 error .. 4 trace (the bare number of "N,svc:N")
    int client_buffer_size{}; // a whole request header must fit
    int client_maxconn{};

    // [proxy]
    std::string routes_file; // resolved against config_dir when relative
    bool debug{};
    bool auto_cross_origin{};
    bool accept_x_forwarded_protocol{};
    XForwardedProtocol set_x_forwarded_protocol{};
    XffRule x_forwarded_for;
    XffRule x_forwarded_for_trusted;
    bool accept_pushpin_route{};
    std::string cdn_loop;
    bool log_from{};
    bool log_user_agent{};
    std::string sig_iss;
    core::JwtKeyRef sig_key;           // secret or PEM private key (jwt_keys.hpp); null = don't sign
    core::JwtKeyRef upstream_key;      // secret or PEM key; null = no client is trusted
    std::string proxy_prometheus_port; // "", "port", "addr:port" or "ipc://path"
    std::string proxy_prometheus_prefix;
    std::string sockjs_url; // [proxy] sockjs_url: the script the SockJS iframe page loads

    // [handler]
    std::string push_in_http_addr;
    int push_in_http_port{}; // port_offset already added; 0 = control API disabled
    int push_in_http_max_headers_size{};
    int push_in_http_max_body_size{};
    int message_rate{}; // deliveries/second; -1 = unlimited
    int message_hwm{};  // queued rate-limited deliveries; -1 = unlimited
    int message_wait{}; // ms an out-of-order item waits for its prev-id
    int id_cache_ttl{}; // seconds; 0 = off
    int connection_subscription_max{};
    int subscription_linger{};    // seconds
    bool share_all{};             // identical GETs share one backend request (proxy/request_share.hpp)
    int stats_report_interval{};  // seconds
    int stats_connection_ttl{};   // seconds ([global])
    int stats_subscription_ttl{}; // seconds
    std::string stats_spec;       // PUB bind for stats events; "" = none
    std::string stats_format;     // "json" or tnetstring
    std::string handler_prometheus_port;
    std::string handler_prometheus_prefix;
    // ZeroMQ specs as written (templates expanded); port_offset is applied when binding (zmq/spec).
    std::string push_in_spec;      // PULL bind; "" = none
    std::string command_spec;      // ROUTER bind (ZRPC); "" = none
    std::string push_in_sub_specs; // comma list for the SUB socket; "" = none
    bool push_in_sub_connect{};    // connect instead of bind

    // [gripd] (gripd's own keys; Pushpin ignores this section)
    int workers{};                      // 0 = number of cores; see effective_workers()
    std::string bus;                    // "" = in-process only; "redis://host:port"
    std::string instance_id;            // names this instance in metrics and logs; "" in the file = host:port
    bool log_instance{};                // every log line (access lines too) carries [instance_id]
    int header_timeout{};               // seconds to receive a whole request header
    int idle_timeout{};                 // seconds a keep-alive connection may sit idle between requests
    int connect_timeout{};              // seconds to connect to a backend
    int body_timeout{};                 // seconds a request body may pause before the client is cut off
    int send_timeout{};                 // seconds a client may take no response byte before it is cut off
    int response_timeout{};             // seconds a backend may be silent before its response starts
    int shutdown_grace{};               // seconds held connections get on SIGTERM/SIGINT
    int max_backend_conns_per_target{}; // per worker; 0 = unlimited
    int64_t memory_limit{};             // bytes; -1 = from the machine (see README), 0 = off
    bool http2{true};                   // HTTP/2 for clients (h2c prior knowledge, ALPN h2)
    int history_size{};                 // items kept per channel; 0 = no history (pubsub/history.hpp)
    int history_ttl{};                  // seconds; 0 = no age limit
    int64_t history_channel_bytes{};    // bytes kept per channel
    int64_t history_max_bytes{};        // bytes kept by the whole instance
    bool history_assign_ids{};          // ids for items published without one (README "History")

    // From the command line only.
    std::vector<std::string> route_lines; // --route; non-empty = use these instead of routes_file
    std::string log_file;                 // --logfile; empty = stderr

    bool operator==(const Settings&) const = default;
};

// A message for the log, produced while loading (the caller logs them once the log level is known).
struct Notice {
    core::LogLevel level;
    std::string message;
};

struct SettingsResult {
    Settings settings;
    std::vector<Notice> notices;
    std::string error; // "FILE:LINE: message" or "FILE: message"; empty on success
    bool ok() const { return error.empty(); }
};

// Settings with every table default applied, as if the config file were empty: the same as Settings{}.
Settings default_settings();

// Reads cli.config_file (or default_config_file()) and applies the command line on top.
SettingsResult load_settings(const CliOptions& cli);

// Same, from text already in memory; `config_path` names the file for messages and relative paths.
// Only `include=` files are read from disk.
SettingsResult load_settings_text(std::string_view text, const std::string& config_path,
                                  const CliOptions& cli);

// Writes each notice with LOG_INFO/LOG_WARN under target "config".
void log_notices(const std::vector<Notice>& notices);

// README.md's "Configuration reference" section, rendered from the settings table (Markdown, ending with a
// newline). `gripd --print-config-reference` prints it; a unit test checks README.md holds exactly this.
std::string config_reference_markdown();

// Self-checks of the settings table: every default parses and is in range, no key is declared twice, every
// row says what it does. Empty when the table is sound (a unit test requires that).
std::vector<std::string> settings_table_problems();

// settings.workers, or the number of CPU cores when it is 0 (at least 1).
int effective_workers(const Settings& settings);

} // namespace gripd::config
