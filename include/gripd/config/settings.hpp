// The typed settings gripd runs from, loaded from a pushpin.conf-compatible file plus the command line.
//
// Every key is one row of a declarative table in settings.cpp (section, key, type, field, default), in the
// spirit of nginx's ngx_command_t: adding a setting costs one field, one row and one test. Keys Pushpin
// needs but gripd does not (services, *_bin, ZMQ specs, stats_*, ...) are accepted with one INFO notice each;
// unknown keys get one WARN notice; a bad value is an error "FILE:LINE: message" (the caller exits 2).
#pragma once

#include "gripd/config/cli.hpp"
#include "gripd/config/listen_addr.hpp"
#include "gripd/core/log.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace gripd::config {

// A unix socket listener from [runner] local_ports: `PATH[?mode=OCTAL&user=U&group=G]`.
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

struct Settings {
    // Where the settings came from.
    std::string config_file; // as given (or the default)
    std::string config_dir;  // its directory; relative paths resolve against it

    // [global]
    std::string libdir = "/usr/lib/gripd"; // only used for {libdir} in values
    std::string rundir = "run";            // [global] rundir, else the deprecated [runner] rundir
    std::string ipc_prefix = "pushpin-";   // "pN-" with --id N
    int port_offset = 0;                   // added to push_in_http_port; N*10 with --id N

    // [runner]
    std::vector<ListenAddr> http_ports = {{"0.0.0.0", 7999}}; // --port replaces every listener
    std::vector<ListenAddr> https_ports;                      // TLS; certs in <config_dir>/runner/certs
    std::vector<LocalPort> local_ports;                       // unix sockets
    std::string logdir = "log";
    int log_level = 2;             // 0 error .. 4 trace (the bare number of "N,svc:N")
    int client_buffer_size = 8192; // a whole request header must fit
    int client_maxconn = 50000;

    // [proxy]
    std::string routes_file = "routes"; // resolved against config_dir when relative
    bool debug = false;
    bool auto_cross_origin = false;
    bool accept_x_forwarded_protocol = false;
    XForwardedProtocol set_x_forwarded_protocol = XForwardedProtocol::Off;
    XffRule x_forwarded_for;
    XffRule x_forwarded_for_trusted;
    bool accept_pushpin_route = false;
    std::string cdn_loop;
    bool log_from = false;
    bool log_user_agent = false;
    std::string sig_iss = "pushpin";
    std::string sig_key;               // raw secret bytes (base64: decoded); empty = don't sign
    std::string upstream_key;          // raw secret bytes; empty = no client is trusted
    std::string proxy_prometheus_port; // "", "port", "addr:port" or "ipc://path"
    std::string proxy_prometheus_prefix;

    // [handler]
    std::string push_in_http_addr = "127.0.0.1";
    int push_in_http_port = 5561; // port_offset already added; 0 = control API disabled
    int push_in_http_max_headers_size = 10000;
    int push_in_http_max_body_size = 1000000;
    int message_rate = -1;   // deliveries/second; -1 = unlimited
    int message_hwm = -1;    // queued rate-limited deliveries; -1 = unlimited
    int message_wait = 5000; // ms an out-of-order item waits for its prev-id
    int id_cache_ttl = 0;    // seconds; 0 = off
    int connection_subscription_max = 20;
    int subscription_linger = 60;   // seconds
    int stats_report_interval = 10; // seconds
    std::string handler_prometheus_port;
    std::string handler_prometheus_prefix;

    // [gripd] (gripd's own keys; Pushpin ignores this section)
    int workers = 0;                      // 0 = number of cores; see effective_workers()
    std::string bus;                      // "" = in-process only; "redis://host:port"
    int header_timeout = 30;              // seconds to receive a whole request header
    int idle_timeout = 60;                // seconds a keep-alive connection may sit idle between requests
    int connect_timeout = 5;              // seconds to connect to a backend
    int shutdown_grace = 10;              // seconds held connections get on SIGTERM/SIGINT
    int max_backend_conns_per_target = 0; // per worker; 0 = unlimited
    int64_t memory_limit = -1;            // bytes; -1 = from the machine (see README), 0 = off

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

// Settings with every table default applied, as if the config file were empty. Equal to Settings{} (the
// field initializers above repeat the table's defaults for readers; a unit test keeps them in step).
Settings default_settings();

// Reads cli.config_file (or default_config_file()) and applies the command line on top.
SettingsResult load_settings(const CliOptions& cli);

// Same, from text already in memory; `config_path` names the file for messages and relative paths.
// Only `include=` files are read from disk.
SettingsResult load_settings_text(std::string_view text, const std::string& config_path,
                                  const CliOptions& cli);

// Writes each notice with LOG_INFO/LOG_WARN under target "config".
void log_notices(const std::vector<Notice>& notices);

// settings.workers, or the number of CPU cores when it is 0 (at least 1).
int effective_workers(const Settings& settings);

// A key as written in the config: raw secret, or "base64:..." decoded. Returns false on bad base64.
bool parse_key_value(std::string_view text, std::string* out);

} // namespace gripd::config
