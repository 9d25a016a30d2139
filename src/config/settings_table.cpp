// The settings table: every pushpin.conf key gripd knows, its type, default, field and disposition. This is
// the only copy of the defaults (Settings' constructor applies them) and the source of README.md's
// configuration reference. Checked against Debian's pushpin 1.36 pushpin.conf and PROTOCOL.md 1.3.
#include "settings_table_internal.hpp"

#include <climits>

namespace gripd::config::table {

namespace {

constexpr int64_t kMaxInt = INT_MAX;

// Shared texts.
constexpr std::string_view kOneProcess =
    "not needed by gripd, which is one process and starts no helper programs";
constexpr std::string_view kStatsTuning =
    "tunes Pushpin's ZeroMQ stats events, which gripd does not publish (`stats_spec` warns)";
constexpr std::string_view kIpcMode =
    "permissions of Pushpin's internal ZeroMQ IPC sockets, which gripd does not "
    "create";

// A key of Pushpin's that gripd accepts and ignores with one INFO line.
constexpr Row info(std::string_view section, std::string_view key, std::string_view why) {
    return Row{.section = section, .key = key, .effect = Effect::Info, .text = why};
}

// A key of Pushpin's that gripd does not act on: one WARN line when its value asks for something.
constexpr Row warn(std::string_view section, std::string_view key, std::string_view what_not) {
    return Row{.section = section, .key = key, .effect = Effect::Warn, .text = what_not};
}

#define S(name) &Settings::name

const Row kRows[] = {
    // [global]
    {.section = "global",
     .key = "include",
     .kind = Kind::Include,
     .text = "another config file whose keys fill in those not set here; Pushpin's `internal.conf` (its "
             "internal ZeroMQ wiring) is skipped with one info line"},
    {.section = "global",
     .key = "libdir",
     .kind = Kind::String,
     .field = S(libdir),
     .def = "/usr/lib/gripd",
     .text = "value of `{libdir}` in other values"},
    {.section = "global",
     .key = "rundir",
     .kind = Kind::String,
     .field = S(rundir),
     .def = "run",
     .text = "value of `{rundir}` in other values (gripd writes no runtime files)"},
    {.section = "global",
     .key = "ipc_prefix",
     .kind = Kind::String,
     .field = S(ipc_prefix),
     .def = "pushpin-",
     .text = "value of `{ipc_prefix}` in other values; `--id N` makes it `pN-`"},
    {.section = "global",
     .key = "port_offset",
     .kind = Kind::Int,
     .field = S(port_offset),
     .def = "0",
     .min = 0,
     .max = 65535,
     .text = "added to `push_in_http_port`; `--id N` makes it N×10"},
    {.section = "global",
     .key = "workers",
     .kind = Kind::Int,
     .field = S(workers),
     .min = 0,
     .max = 4096,
     .text = "older spelling of `[gripd] workers`",
     .alias_of = "gripd/workers"},
    info("global", "stats_connection_ttl", kStatsTuning),
    info("global", "stats_connection_send", kStatsTuning),

    // [runner]
    {.section = "runner",
     .key = "rundir",
     .kind = Kind::String,
     .field = S(rundir),
     .text = "deprecated spelling of `[global] rundir`",
     .alias_of = "global/rundir",
     .deprecated = "rundir in [runner] section is deprecated. put in [global]"},
    info("runner", "services", kOneProcess),
    {.section = "runner",
     .key = "http_port",
     .kind = Kind::Listeners,
     .field = S(http_ports),
     .def = "7999",
     .text = "client listeners; `--port` replaces them"},
    {.section = "runner",
     .key = "https_ports",
     .kind = Kind::Listeners,
     .field = S(https_ports),
     .text = "TLS client listeners; certificates from `runner/certs` next to the config file, chosen by SNI "
             "(`<host>.crt`/`.key`, `_.<domain>` wildcard, `default_<port>`), reloaded on change and SIGHUP; "
             "`--port` replaces them"},
    {.section = "runner",
     .key = "local_ports",
     .kind = Kind::LocalPorts,
     .field = S(local_ports),
     .text = "client listeners on unix sockets (HTTP and WebSocket, e.g. behind nginx); `mode` (octal), "
             "`user`, `group` are applied to the socket file; a stale socket file is replaced, another file "
             "at the path is an error; the file is removed at exit; `--port` replaces them"},
    {.section = "runner",
     .key = "logdir",
     .kind = Kind::String,
     .field = S(logdir),
     .text = "log files, as Pushpin's: access lines in `pushpin-proxy.log`, publishes and GRIP errors in "
             "`pushpin-handler.log` (`pN-` first with `--id N`), the rest on stderr; created at start; "
             "relative to the working directory; not used with `-m` or `--logfile`; unset: all on stderr "
             "(Pushpin "
             "writes the files in the working directory)"},
    {.section = "runner",
     .key = "log_level",
     .kind = Kind::LogLevel,
     .field = S(log_level),
     .def = "2",
     .text = "0 error, 1 warning, 2 info (one access line per request), 3 debug, 4 trace; `--loglevel` "
             "overrides it"},
    {.section = "runner",
     .key = "client_buffer_size",
     .kind = Kind::Int,
     .field = S(client_buffer_size),
     .def = "8192",
     .min = 1024,
     .max = 64 * 1024 * 1024,
     .unit = "bytes",
     .text = "a request's whole header must fit (431 otherwise)"},
    {.section = "runner",
     .key = "client_maxconn",
     .kind = Kind::Int,
     .field = S(client_maxconn),
     .def = "50000",
     .min = 1,
     .max = kMaxInt,
     .text = "client connections; over it new ones get 503 and are closed"},
    info("runner", "allow_compression",
         "Pushpin 1.37+; like 1.36, gripd does not negotiate WebSocket compression, and clients use "
         "uncompressed frames"),
    info("runner", "mongrel2_bin", kOneProcess),
    info("runner", "m2sh_bin", kOneProcess),
    info("runner", "zurl_bin", kOneProcess),
    info("runner", "condure_bin", kOneProcess),
    info("runner", "connmgr_bin", kOneProcess),

    // [proxy]
    {.section = "proxy",
     .key = "routesfile",
     .kind = Kind::Path,
     .field = S(routes_file),
     .def = "routes",
     .text = "the routes file, reloaded when it changes and on SIGHUP"},
    {.section = "proxy",
     .key = "debug",
     .kind = Kind::Bool,
     .field = S(debug),
     .def = "false",
     .text =
         "Pushpin's detailed error texts in responses (e.g. `Unable to connect to any targets. Tried: ...`); "
         "the route option `debug` does the same for one route"},
    {.section = "proxy",
     .key = "auto_cross_origin",
     .kind = Kind::Bool,
     .field = S(auto_cross_origin),
     .def = "false",
     .text = "CORS headers and JSON-P on every route, as the route option `aco` does"},
    {.section = "proxy",
     .key = "accept_x_forwarded_protocol",
     .kind = Kind::Bool,
     .field = S(accept_x_forwarded_protocol),
     .def = "false",
     .text = "an inbound `X-Forwarded-Proto: https` marks the request as TLS"},
    {.section = "proxy",
     .key = "set_x_forwarded_protocol",
     .kind = Kind::XfProto,
     .field = S(set_x_forwarded_protocol),
     .text = "`true`: X-Forwarded-Proto and X-Forwarded-Protocol on TLS requests; `proto-only`: only the "
             "first"},
    {.section = "proxy",
     .key = "x_forwarded_for",
     .kind = Kind::Xff,
     .field = S(x_forwarded_for),
     .text = "X-Forwarded-For rules: `truncate:N` keeps the last N, `append` adds the peer address"},
    {.section = "proxy",
     .key = "x_forwarded_for_trusted",
     .kind = Kind::Xff,
     .field = S(x_forwarded_for_trusted),
     .text = "the same, for clients trusted through `upstream_key`"},
    info("proxy", "orig_headers_need_mark",
         "only used by routes with `orig_headers`, which gripd does not support"),
    {.section = "proxy",
     .key = "accept_pushpin_route",
     .kind = Kind::Bool,
     .field = S(accept_pushpin_route),
     .def = "false",
     .text = "a `Pushpin-Route: <id>` request header picks the route"},
    {.section = "proxy",
     .key = "cdn_loop",
     .kind = Kind::String,
     .field = S(cdn_loop),
     .text = "value appended to the `CDN-Loop` header"},
    {.section = "proxy",
     .key = "log_from",
     .kind = Kind::Bool,
     .field = S(log_from),
     .def = "false",
     .text = "access log lines show the client address (`from=`)"},
    {.section = "proxy",
     .key = "log_user_agent",
     .kind = Kind::Bool,
     .field = S(log_user_agent),
     .def = "false",
     .text = "access log lines show the User-Agent (`ua=`)"},
    {.section = "proxy",
     .key = "sig_iss",
     .kind = Kind::String,
     .field = S(sig_iss),
     .def = "pushpin",
     .text = "`iss` of the Grip-Sig JWT"},
    {.section = "proxy",
     .key = "sig_key",
     .kind = Kind::Key,
     .field = S(sig_key),
     .text =
         "Grip-Sig JWT on requests to GRIP routes: HS256 with a secret, ES256 with an EC P-256 and RS256 "
         "with an RSA private key in `file:PATH` (relative to this file's directory); empty = no signing; "
         "a key file that cannot be loaded stops startup"},
    {.section = "proxy",
     .key = "upstream_key",
     .kind = Kind::Key,
     .field = S(upstream_key),
     .text =
         "a client whose Grip-Sig verifies with it (and has an unexpired `exp`) is trusted: GRIP passes "
         "through; a secret (HS256) or a `file:` PEM EC P-256 (ES256) or RSA (RS256) key, public or private"},
    {.section = "proxy",
     .key = "prometheus_port",
     .kind = Kind::Metrics,
     .field = S(proxy_prometheus_port),
     .text = "a second Prometheus metrics listener (Pushpin's proxy process has its own), serving the same "
             "metrics as `[handler] prometheus_port` with `[proxy] prometheus_prefix`"},
    {.section = "proxy",
     .key = "prometheus_prefix",
     .kind = Kind::String,
     .field = S(proxy_prometheus_prefix),
     .text = "prefix of metric names on `[proxy] prometheus_port`"},
    {.section = "proxy",
     .key = "sockjs_url",
     .kind = Kind::String,
     .field = S(sockjs_url),
     .text = "the sockjs-client script the SockJS iframe page (`iframe.html` under a route's `sockjs` path) "
             "loads"},
    info("proxy", "updates_check", "Pushpin's update check; gripd never contacts anyone"),
    info("proxy", "organization_name", "Pushpin's update check; gripd never contacts anyone"),
    info("proxy", "workers", "threads of Pushpin's proxy process; gripd's event loops are `[gripd] workers`"),
    {.section = "proxy",
     .key = "max_open_requests",
     .effect = Effect::Warn,
     .text = "concurrent proxied requests are not capped separately (only `client_maxconn` applies)"},
    info("proxy", "stats_connections_max_ttl", kStatsTuning),
    info("proxy", "stats_report_interval", kStatsTuning),
    info("proxy", "ipc_file_mode", kIpcMode),

    // [handler]
    warn("handler", "ipc_file_mode",
         "the ZeroMQ IPC socket files gripd binds (`ipc://` in `push_in_spec`, `push_in_sub_specs`, "
         "`command_spec`) keep the umask's permissions"),
    {.section = "handler",
     .key = "push_in_spec",
     .kind = Kind::String,
     .field = S(push_in_spec),
     .text =
         "ZeroMQ PULL socket bound for publishes (`tcp://` plus `port_offset`, or `ipc://`): one-part "
         "messages, a TNetString item (optional leading `T`) or `J` + JSON; the same validation and "
         "order as `/publish/`; a message over `push_in_http_max_body_size` is dropped (counted, logged)"},
    {.section = "handler",
     .key = "push_in_sub_specs",
     .kind = Kind::String,
     .field = S(push_in_sub_specs),
     .text =
         "ZeroMQ SUB socket for publishes, bound to each spec of the comma list (`tcp://` plus "
         "`port_offset`, or `ipc://`): two-part messages `[channel, item]`, encoded as on `push_in_spec`; "
         "gripd subscribes to a channel's topic while this instance has subscribers on it (until "
         "`subscription_linger` after a long-poll left), so an XPUB publisher sees the interest"},
    {.section = "handler",
     .key = "push_in_sub_spec",
     .kind = Kind::String,
     .field = S(push_in_sub_specs),
     .text = "older spelling of `push_in_sub_specs`",
     .alias_of = "handler/push_in_sub_specs"},
    {.section = "handler",
     .key = "push_in_sub_connect",
     .kind = Kind::Bool,
     .field = S(push_in_sub_connect),
     .def = "false",
     .text = "the SUB socket connects to `push_in_sub_specs` instead of binding (TCP keep-alive on)"},
    {.section = "handler",
     .key = "push_in_http_addr",
     .kind = Kind::String,
     .field = S(push_in_http_addr),
     .def = "127.0.0.1",
     .text = "control API address (`/publish/`, `/recover`)"},
    {.section = "handler",
     .key = "push_in_http_port",
     .kind = Kind::Int,
     .field = S(push_in_http_port),
     .def = "5561",
     .min = 0,
     .max = 65535,
     .text = "control API port, plus `port_offset`; 0 = no control API"},
    {.section = "handler",
     .key = "push_in_http_max_headers_size",
     .kind = Kind::Int,
     .field = S(push_in_http_max_headers_size),
     .def = "10000",
     .min = 256,
     .max = kMaxInt,
     .unit = "bytes",
     .text = "control API request header limit"},
    {.section = "handler",
     .key = "push_in_http_max_body_size",
     .kind = Kind::Int,
     .field = S(push_in_http_max_body_size),
     .def = "1000000",
     .min = 1,
     .max = kMaxInt,
     .unit = "bytes",
     .text = "publish body limit (400 over it)"},
    // Pushpin before 1.41 read these misspelled names; honored unless the right name is set.
    {.section = "handler",
     .key = "push_in_max_headers_size",
     .kind = Kind::Int,
     .field = S(push_in_http_max_headers_size),
     .min = 256,
     .max = kMaxInt,
     .unit = "bytes",
     .text = "older spelling of `push_in_http_max_headers_size`",
     .alias_of = "handler/push_in_http_max_headers_size"},
    {.section = "handler",
     .key = "push_in_max_body_size",
     .kind = Kind::Int,
     .field = S(push_in_http_max_body_size),
     .min = 1,
     .max = kMaxInt,
     .unit = "bytes",
     .text = "older spelling of `push_in_http_max_body_size`",
     .alias_of = "handler/push_in_http_max_body_size"},
    warn("handler", "stats_spec", "no ZeroMQ stats events are published (metrics: `prometheus_port`)"),
    {.section = "handler",
     .key = "command_spec",
     .kind = Kind::String,
     .field = S(command_spec),
     .text = "ZeroMQ ROUTER socket bound for ZRPC commands (REQ/DEALER clients): `publish`, `recover`, "
             "`get-zmq-uris`, `refresh` and `conncheck` (see README's ZeroMQ section)"},
    warn("handler", "state_spec", "no external session-state service is used"),
    {.section = "handler",
     .key = "message_rate",
     .kind = Kind::Int,
     .field = S(message_rate),
     .def = "-1",
     .min = -1,
     .max = kMaxInt,
     .unit = "per second",
     .text = "published items handed to subscribers per second, across the process (Pushpin counts "
             "deliveries per route); an idle limiter lets the first item through at once; -1 = no limit"},
    {.section = "handler",
     .key = "message_hwm",
     .kind = Kind::Int,
     .field = S(message_hwm),
     .def = "-1",
     .min = -1,
     .max = kMaxInt,
     .text = "with `message_rate`: items that may wait for it; past it new items are dropped, logged "
             "and counted (`gripd_messages_dropped_total`), and the publish is still answered 200; "
             "-1 = no bound (publishes then wait their turn)"},
    info("handler", "message_block_size", kStatsTuning),
    {.section = "handler",
     .key = "message_wait",
     .kind = Kind::Int,
     .field = S(message_wait),
     .def = "5000",
     .min = 0,
     .max = kMaxInt,
     .unit = "ms",
     .text = "how long an item waits for the item its `prev-id` names"},
    {.section = "handler",
     .key = "id_cache_ttl",
     .kind = Kind::Int,
     .field = S(id_cache_ttl),
     .def = "0",
     .min = 0,
     .max = kMaxInt,
     .unit = "s",
     .text = "how long item ids are remembered to drop duplicates; 0 = off"},
    {.section = "handler",
     .key = "connection_subscription_max",
     .kind = Kind::Int,
     .field = S(connection_subscription_max),
     .def = "20",
     .min = 0,
     .max = kMaxInt,
     .text = "channels per connection"},
    {.section = "handler",
     .key = "subscription_linger",
     .kind = Kind::Int,
     .field = S(subscription_linger),
     .def = "60",
     .min = 0,
     .max = kMaxInt,
     .unit = "s",
     .text = "how long a channel keeps its last id and pending items (and its bus subscription) after its "
             "last long-poll left, so a long-poller back with an old `prev-id` is re-requested at once; "
             "streams and WebSockets forget at once, as in Pushpin (whose stats events it also tunes, "
             "which gripd does not publish)"},
    info("handler", "stats_subscription_ttl", kStatsTuning),
    {.section = "handler",
     .key = "stats_report_interval",
     .kind = Kind::Int,
     .field = S(stats_report_interval),
     .def = "10",
     .min = 1,
     .max = kMaxInt,
     .unit = "s",
     .effect = Effect::Info,
     .text = kStatsTuning},
    info("handler", "stats_format", kStatsTuning),
    {.section = "handler",
     .key = "prometheus_port",
     .kind = Kind::Metrics,
     .field = S(handler_prometheus_port),
     .text = "Prometheus metrics listener (any path)"},
    {.section = "handler",
     .key = "prometheus_prefix",
     .kind = Kind::String,
     .field = S(handler_prometheus_prefix),
     .text = "prefix of metric names"},
    info("handler", "update_on_first_subscription",
         "Pushpin 1.41+; gripd behaves as 1.36, which has no such re-check"),
    {.section = "handler",
     .key = "share_all",
     .kind = Kind::Bool,
     .field = S(share_all),
     .def = "false",
     .text =
         "identical GETs (same route, host and target) while one is out share it: a GRIP answer is given to "
         "every waiting client, anything else makes each send its own (next links are always shared)"},

    // [gripd]: gripd's own keys (Pushpin ignores this section).
    {.section = "gripd",
     .key = "workers",
     .kind = Kind::Int,
     .field = S(workers),
     .def = "0",
     .min = 0,
     .max = 4096,
     .text = "event loops (threads); 0 = one per CPU this process may run on (its affinity: taskset, cpuset); `--workers` overrides it"},
    {.section = "gripd",
     .key = "bus",
     .kind = Kind::String,
     .field = S(bus),
     .text = "`redis://host:port` joins instances through Redis, `redis-sentinel://host:port[,host:port...]/<master>` "
             "through the master a set of Redis Sentinels names (failovers followed), `redis-cluster://host:port[,...]` "
             "through a Redis Cluster with sharded pub/sub; empty = this instance only"},
    {.section = "gripd",
     .key = "instance_id",
     .kind = Kind::String,
     .field = S(instance_id),
     .text = "this instance's name: in the startup line, in `gripd_instance_info{instance_id=...}` on the "
             "metrics "
             "listeners and, with log_instance, in every log line; empty = `<hostname>:<first client port>` "
             "(`-p<N>` added with `--id N`)"},
    {.section = "gripd",
     .key = "log_instance",
     .kind = Kind::Bool,
     .field = S(log_instance),
     .def = "false",
     .text = "every log line, access lines included, carries `[instance_id]` after the time (off: Pushpin's "
             "line format)"},
    {.section = "gripd",
     .key = "header_timeout",
     .kind = Kind::Int,
     .field = S(header_timeout),
     .def = "30",
     .min = 1,
     .max = 86400,
     .unit = "s",
     .text = "time a client has to send a whole request header (and a TLS client to finish its handshake)"},
    {.section = "gripd",
     .key = "idle_timeout",
     .kind = Kind::Int,
     .field = S(idle_timeout),
     .def = "60",
     .min = 1,
     .max = 86400,
     .unit = "s",
     .text = "time a keep-alive connection may sit idle between requests"},
    {.section = "gripd",
     .key = "connect_timeout",
     .kind = Kind::Int,
     .field = S(connect_timeout),
     .def = "5",
     .min = 1,
     .max = 3600,
     .unit = "s",
     .text = "time to connect to a backend"},
    {.section = "gripd",
     .key = "body_timeout",
     .kind = Kind::Int,
     .field = S(body_timeout),
     .def = "60",
     .min = 1,
     .max = 86400,
     .unit = "s",
     .text = "a request body that stalls this long is cut off (408, or a close once the response started)"},
    {.section = "gripd",
     .key = "send_timeout",
     .kind = Kind::Int,
     .field = S(send_timeout),
     .def = "60",
     .min = 1,
     .max = 86400,
     .unit = "s",
     .text = "a client that takes no byte of its pending output this long is cut off"},
    {.section = "gripd",
     .key = "response_timeout",
     .kind = Kind::Int,
     .field = S(response_timeout),
     .def = "60",
     .min = 1,
     .max = 86400,
     .unit = "s",
     .text = "a backend silent this long after the request before its response head gets the client a 504"},
    {.section = "gripd",
     .key = "memory_limit",
     .kind = Kind::Bytes,
     .field = S(memory_limit),
     .def = "auto",
     .text = "memory ceiling; near it new clients get 503, then the slowest consumers are cut (see Memory "
             "ceiling); `auto` = 80% of the cgroup's memory limit if set, else 50% of RAM"},
    {.section = "gripd",
     .key = "http2",
     .kind = Kind::Bool,
     .field = S(http2),
     .def = "true",
     .text = "HTTP/2 for clients: ALPN `h2` on `https_ports` and h2c with prior knowledge on `http_port`; "
             "`false` = HTTP/1.1 only, as Pushpin (ALPN offers only `http/1.1`; an h2c preface is closed "
             "unanswered, as pushpin 1.36 does)"},
    {.section = "gripd",
     .key = "history_size",
     .kind = Kind::Int,
     .field = S(history_size),
     .def = "0",
     .min = 0,
     .max = 1000000,
     .text =
         "items with an `id` kept per channel for resume (prev-id, Last-Event-ID, WebSocket `last-id`); 0 = "
         "no history (a route's `history_size` overrides it)"},
    {.section = "gripd",
     .key = "history_ttl",
     .kind = Kind::Int,
     .field = S(history_ttl),
     .def = "0",
     .min = 0,
     .max = kMaxInt,
     .unit = "s",
     .text = "history items older than this are dropped; 0 = no age limit (a route's `history_ttl` overrides "
             "it)"},
    {.section = "gripd",
     .key = "history_channel_bytes",
     .kind = Kind::Bytes,
     .field = S(history_channel_bytes),
     .def = "1048576",
     .text = "bytes of history (all formats of its items) one channel keeps; over it the oldest go"},
    {.section = "gripd",
     .key = "history_max_bytes",
     .kind = Kind::Bytes,
     .field = S(history_max_bytes),
     .def = "67108864",
     .text = "bytes of history the whole instance keeps; over it the channels published to least recently "
             "lose theirs first"},
    {.section = "gripd",
     .key = "history_assign_ids",
     .kind = Kind::Bool,
     .field = S(history_assign_ids),
     .def = "false",
     .text = "give each published item without an `id` one: `<ms>-<n>`, increasing per channel (with the "
             "Redis bus, the item's stream id), used as its id everywhere (history, prev-id, SSE `id:`)"},
    {.section = "gripd",
     .key = "shutdown_grace",
     .kind = Kind::Int,
     .field = S(shutdown_grace),
     .def = "10",
     .min = 0,
     .max = 3600,
     .unit = "s",
     .text = "time held connections get to finish on SIGTERM/SIGINT"},
    {.section = "gripd",
     .key = "max_backend_conns_per_target",
     .kind = Kind::Int,
     .field = S(max_backend_conns_per_target),
     .def = "0",
     .min = 0,
     .max = kMaxInt,
     .text = "open connections to one backend target, per worker; a request beyond it waits (FIFO, at most "
             "4x the cap or 64) up to `connect_timeout` for one to come back, else it fails like a connect "
             "failure (the route's next target, else 502); 0 = no cap"},
};

#undef S

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

} // namespace

const std::string_view kInternalSpecText = "Pushpin's internal ZeroMQ wiring, not needed by gripd";

std::span<const Row> rows() {
    return kRows;
}

const Row* find_row(std::string_view section, std::string_view key) {
    for (const auto& row : kRows)
        if (row.section == section && row.key == key) return &row;
    return nullptr;
}

bool is_internal_spec_key(std::string_view section, std::string_view key) {
    return (section == "proxy" || section == "handler") &&
           (ends_with(key, "_spec") || ends_with(key, "_specs"));
}

} // namespace gripd::config::table
