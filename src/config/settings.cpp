#include "gripd/config/settings.hpp"

#include "gripd/config/ini.hpp"
#include "gripd/core/strings.hpp"

#include <climits>
#include <filesystem>
#include <thread>
#include <variant>

namespace gripd::config {

namespace {

// How a row's text becomes a field value.
enum class Kind {
    Int,        // decimal in [min, max]; an empty value keeps the default
    Bool,       // true/false/yes/no/on/off/1/0; empty = false
    String,     // template-expanded text
    Path,       // template-expanded, resolved against the config file's directory
    Key,        // secret: raw, or "base64:..."
    Listeners,  // comma list of [addr:]port
    LocalPorts, // comma list of PATH[?mode=&user=&group=]
    Xff,        // comma list of truncate:N / append
    XfProto,    // true / proto-only / other
    LogLevel,   // "N" or "N,svc:N"
    Metrics,    // "", port, addr:port or ipc://path (kept as text)
    Bytes,      // N, Nk, NM or NG (1024-based); 0 or off = 0; empty or auto = -1 (the caller decides)
    Ignored,    // needed by Pushpin, not by gripd: one INFO notice
    Include,    // [global] include, handled before the table is applied
};

using Field = std::variant<std::monostate, int Settings::*, bool Settings::*, std::string Settings::*,
                           std::vector<ListenAddr> Settings::*, std::vector<LocalPort> Settings::*,
                           XffRule Settings::*, XForwardedProtocol Settings::*, int64_t Settings::*>;

struct Row {
    std::string_view section;
    std::string_view key;
    Kind kind;
    Field field = {};
    std::string_view def = {};  // default, as config text (parsed like a file value); empty = zero value
    int64_t min = 0, max = 0;   // Int only
    std::string_view note = {}; // Ignored: why. Alias rows: "section/key" of the key that wins if present.
    bool alias = false;
};

constexpr std::string_view kNotNeeded = "not needed by gripd";
constexpr std::string_view kZmq = "Pushpin's ZeroMQ wiring is not needed by gripd";
constexpr std::string_view kStats = "ZeroMQ stats are not provided by gripd";
constexpr int64_t kMaxInt = INT_MAX;

#define S(name) &Settings::name

// One row per pushpin.conf key. Order matters only for readability.
const Row kRows[] = {
    // [global]
    {"global", "include", Kind::Include},
    {"global", "libdir", Kind::String, S(libdir), "/usr/lib/gripd"},
    {"global", "rundir", Kind::String, S(rundir), "run"},
    {"global", "ipc_prefix", Kind::String, S(ipc_prefix), "pushpin-"},
    {"global", "port_offset", Kind::Int, S(port_offset), "0", 0, 65535},
    {"global", "workers", Kind::Int, S(workers), {}, 0, 4096, "gripd/workers", true},
    {"global", "stats_connection_ttl", Kind::Ignored, {}, {}, 0, 0, kStats},
    {"global", "stats_connection_send", Kind::Ignored, {}, {}, 0, 0, kStats},

    // [runner]
    {"runner", "rundir", Kind::String, S(rundir), {}, 0, 0, "global/rundir", true},
    {"runner", "services", Kind::Ignored, {}, {}, 0, 0, kNotNeeded},
    {"runner", "http_port", Kind::Listeners, S(http_ports), "7999"},
    {"runner", "https_ports", Kind::Listeners, S(https_ports)},
    {"runner", "local_ports", Kind::LocalPorts, S(local_ports)},
    {"runner", "logdir", Kind::String, S(logdir), "log"},
    {"runner", "log_level", Kind::LogLevel, S(log_level), "2"},
    {"runner", "client_buffer_size", Kind::Int, S(client_buffer_size), "8192", 1024, 64 * 1024 * 1024},
    {"runner", "client_maxconn", Kind::Int, S(client_maxconn), "50000", 1, kMaxInt},
    {"runner",
     "allow_compression",
     Kind::Ignored,
     {},
     {},
     0,
     0,
     "WebSocket compression is not supported by gripd"},
    {"runner", "mongrel2_bin", Kind::Ignored, {}, {}, 0, 0, kNotNeeded},
    {"runner", "m2sh_bin", Kind::Ignored, {}, {}, 0, 0, kNotNeeded},
    {"runner", "zurl_bin", Kind::Ignored, {}, {}, 0, 0, kNotNeeded},
    {"runner", "condure_bin", Kind::Ignored, {}, {}, 0, 0, kNotNeeded},
    {"runner", "connmgr_bin", Kind::Ignored, {}, {}, 0, 0, kNotNeeded},

    // [proxy]
    {"proxy", "routesfile", Kind::Path, S(routes_file), "routes"},
    {"proxy", "debug", Kind::Bool, S(debug), "false"},
    {"proxy", "auto_cross_origin", Kind::Bool, S(auto_cross_origin), "false"},
    {"proxy", "accept_x_forwarded_protocol", Kind::Bool, S(accept_x_forwarded_protocol), "false"},
    {"proxy", "set_x_forwarded_protocol", Kind::XfProto, S(set_x_forwarded_protocol)},
    {"proxy", "x_forwarded_for", Kind::Xff, S(x_forwarded_for)},
    {"proxy", "x_forwarded_for_trusted", Kind::Xff, S(x_forwarded_for_trusted)},
    {"proxy", "accept_pushpin_route", Kind::Bool, S(accept_pushpin_route), "false"},
    {"proxy", "cdn_loop", Kind::String, S(cdn_loop)},
    {"proxy", "log_from", Kind::Bool, S(log_from), "false"},
    {"proxy", "log_user_agent", Kind::Bool, S(log_user_agent), "false"},
    {"proxy", "sig_iss", Kind::String, S(sig_iss), "pushpin"},
    {"proxy", "sig_key", Kind::Key, S(sig_key)},
    {"proxy", "upstream_key", Kind::Key, S(upstream_key)},
    {"proxy", "prometheus_port", Kind::Metrics, S(proxy_prometheus_port)},
    {"proxy", "prometheus_prefix", Kind::String, S(proxy_prometheus_prefix)},
    {"proxy",
     "orig_headers_need_mark",
     Kind::Ignored,
     {},
     {},
     0,
     0,
     "orig_headers is not supported by gripd"},
    {"proxy", "sockjs_url", Kind::Ignored, {}, {}, 0, 0, "SockJS is not supported by gripd"},
    {"proxy", "updates_check", Kind::Ignored, {}, {}, 0, 0, kNotNeeded},
    {"proxy", "organization_name", Kind::Ignored, {}, {}, 0, 0, kNotNeeded},
    {"proxy", "workers", Kind::Ignored, {}, {}, 0, 0, "gripd uses [gripd] workers"},
    {"proxy", "max_open_requests", Kind::Ignored, {}, {}, 0, 0, "gripd is bounded by client_maxconn"},
    {"proxy", "stats_connections_max_ttl", Kind::Ignored, {}, {}, 0, 0, kStats},
    {"proxy",
     "stats_report_interval",
     Kind::Ignored,
     {},
     {},
     0,
     0,
     "gripd uses [handler] stats_report_interval"},
    {"proxy", "ipc_file_mode", Kind::Ignored, {}, {}, 0, 0, kZmq},

    // [handler]
    {"handler", "push_in_http_addr", Kind::String, S(push_in_http_addr), "127.0.0.1"},
    {"handler", "push_in_http_port", Kind::Int, S(push_in_http_port), "5561", 0, 65535},
    {"handler", "push_in_http_max_headers_size", Kind::Int, S(push_in_http_max_headers_size), "10000", 256,
     kMaxInt},
    {"handler", "push_in_http_max_body_size", Kind::Int, S(push_in_http_max_body_size), "1000000", 1,
     kMaxInt},
    // Pushpin before 1.41 read these misspelled names; honored unless the right name is set.
    {"handler",
     "push_in_max_headers_size",
     Kind::Int,
     S(push_in_http_max_headers_size),
     {},
     256,
     kMaxInt,
     "handler/push_in_http_max_headers_size",
     true},
    {"handler",
     "push_in_max_body_size",
     Kind::Int,
     S(push_in_http_max_body_size),
     {},
     1,
     kMaxInt,
     "handler/push_in_http_max_body_size",
     true},
    {"handler", "message_rate", Kind::Int, S(message_rate), "-1", -1, kMaxInt},
    {"handler", "message_hwm", Kind::Int, S(message_hwm), "-1", -1, kMaxInt},
    {"handler", "message_wait", Kind::Int, S(message_wait), "5000", 0, kMaxInt},
    {"handler", "id_cache_ttl", Kind::Int, S(id_cache_ttl), "0", 0, kMaxInt},
    {"handler", "connection_subscription_max", Kind::Int, S(connection_subscription_max), "20", 0, kMaxInt},
    {"handler", "subscription_linger", Kind::Int, S(subscription_linger), "60", 0, kMaxInt},
    {"handler", "stats_report_interval", Kind::Int, S(stats_report_interval), "10", 1, kMaxInt},
    {"handler", "prometheus_port", Kind::Metrics, S(handler_prometheus_port)},
    {"handler", "prometheus_prefix", Kind::String, S(handler_prometheus_prefix)},
    {"handler", "ipc_file_mode", Kind::Ignored, {}, {}, 0, 0, kZmq},
    {"handler", "push_in_sub_connect", Kind::Ignored, {}, {}, 0, 0, kZmq},
    {"handler", "message_block_size", Kind::Ignored, {}, {}, 0, 0, kStats},
    {"handler", "stats_subscription_ttl", Kind::Ignored, {}, {}, 0, 0, kStats},
    {"handler", "stats_format", Kind::Ignored, {}, {}, 0, 0, kStats},
    {"handler", "update_on_first_subscription", Kind::Ignored, {}, {}, 0, 0, kNotNeeded},
    {"handler", "share_all", Kind::Ignored, {}, {}, 0, 0, "request collapsing is not supported by gripd"},

    // [gripd]
    {"gripd", "workers", Kind::Int, S(workers), "0", 0, 4096},
    {"gripd", "bus", Kind::String, S(bus)},
    {"gripd", "header_timeout", Kind::Int, S(header_timeout), "30", 1, 86400},
    {"gripd", "idle_timeout", Kind::Int, S(idle_timeout), "60", 1, 86400},
    {"gripd", "connect_timeout", Kind::Int, S(connect_timeout), "5", 1, 3600},
    {"gripd", "shutdown_grace", Kind::Int, S(shutdown_grace), "10", 0, 3600},
    {"gripd", "max_backend_conns_per_target", Kind::Int, S(max_backend_conns_per_target), "0", 0, kMaxInt},
    {"gripd", "memory_limit", Kind::Bytes, S(memory_limit), "auto"},
};

#undef S

const Row* find_row(std::string_view section, std::string_view key) {
    for (const auto& row : kRows)
        if (row.section == section && row.key == key) return &row;
    return nullptr;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// ZeroMQ socket specs (push_in_spec, stats_spec, internal.conf's *_specs, ...) are all ignored.
bool is_zmq_spec_key(std::string_view section, std::string_view key) {
    return (section == "proxy" || section == "handler") &&
           (ends_with(key, "_spec") || ends_with(key, "_specs"));
}

struct Vars {
    std::string libdir, rundir, ipc_prefix;
};

std::string expand(std::string_view value, const Vars& vars) {
    std::string out;
    for (size_t i = 0; i < value.size();) {
        auto take = [&](std::string_view name, const std::string& repl) {
            if (value.substr(i, name.size()) != name) return false;
            out += repl;
            i += name.size();
            return true;
        };
        if (value[i] == '{' && (take("{libdir}", vars.libdir) || take("{rundir}", vars.rundir) ||
                                take("{ipc_prefix}", vars.ipc_prefix)))
            continue;
        out += value[i++];
    }
    return out;
}

bool parse_listeners(std::string_view text, std::vector<ListenAddr>* out, std::string* error) {
    std::vector<ListenAddr> list;
    for (auto part : core::split_trimmed(text, ',')) {
        ListenAddr addr;
        if (!parse_listen_addr(part, &addr, error)) return false;
        list.push_back(addr);
    }
    *out = std::move(list);
    return true;
}

bool parse_local_ports(std::string_view text, std::vector<LocalPort>* out, std::string* error) {
    std::vector<LocalPort> list;
    for (auto part : core::split_trimmed(text, ',')) {
        LocalPort lp;
        size_t q = part.find('?');
        lp.path = std::string(part.substr(0, q));
        if (lp.path.empty()) {
            *error = "empty unix socket path in '" + std::string(part) + "'";
            return false;
        }
        if (q != std::string_view::npos) {
            for (auto param : core::split_trimmed(part.substr(q + 1), '&')) {
                size_t eq = param.find('=');
                std::string_view name = param.substr(0, eq);
                std::string_view value =
                    eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1);
                if (name == "mode") {
                    int mode = 0;
                    bool ok = !value.empty() && value.size() <= 4;
                    for (char c : value) {
                        if (c < '0' || c > '7') ok = false;
                        mode = mode * 8 + (c - '0');
                    }
                    if (!ok) {
                        *error = "invalid mode '" + std::string(value) + "': expected octal, e.g. 660";
                        return false;
                    }
                    lp.mode = mode;
                } else if (name == "user") {
                    lp.user = std::string(value);
                } else if (name == "group") {
                    lp.group = std::string(value);
                } else {
                    *error = "unknown local port parameter '" + std::string(name) + "'";
                    return false;
                }
            }
        }
        list.push_back(std::move(lp));
    }
    *out = std::move(list);
    return true;
}

bool parse_xff(std::string_view text, XffRule* out, std::string* error) {
    XffRule rule;
    for (auto part : core::split_trimmed(text, ',')) {
        if (part.substr(0, 9) == "truncate:") {
            auto n = core::parse_int(part.substr(9));
            if (!n || *n < 0 || *n > kMaxInt) {
                *error = "bad rule '" + std::string(part) + "': expected truncate:N with N >= 0";
                return false;
            }
            rule.truncate = static_cast<int>(*n);
        } else if (part == "append") {
            rule.append = true;
        } else {
            *error = "unknown rule '" + std::string(part) + "': expected truncate:N or append";
            return false;
        }
    }
    *out = rule;
    return true;
}

// A byte count with an optional k/M/G suffix (1024-based); "off" is 0 and "auto" is -1.
bool parse_bytes(std::string_view text, int64_t* out) {
    if (text.empty() || text == "auto") {
        *out = -1;
        return true;
    }
    if (text == "off") {
        *out = 0;
        return true;
    }
    int64_t mult = 1;
    switch (text.back()) {
    case 'k':
    case 'K':
        mult = int64_t{1} << 10;
        break;
    case 'm':
    case 'M':
        mult = int64_t{1} << 20;
        break;
    case 'g':
    case 'G':
        mult = int64_t{1} << 30;
        break;
    default:
        break;
    }
    if (mult > 1) text.remove_suffix(1);
    auto n = core::parse_int(text);
    if (!n || *n < 0 || *n > (int64_t{1} << 50) / mult) return false;
    *out = *n * mult;
    return true;
}

bool validate_metrics_port(std::string_view text, std::string* error) {
    if (text.empty() || text.substr(0, 6) == "ipc://") return true;
    ListenAddr addr;
    return parse_listen_addr(text, &addr, error);
}

struct Context {
    Vars vars;
    std::filesystem::path config_dir;
};

// Parses `value` per the row into `s`. Returns an error message, or "" on success.
std::string apply_row(const Row& row, std::string_view raw, Settings& s, const Context& ctx) {
    std::string value = expand(core::trim(raw), ctx.vars);
    std::string err;
    auto mismatch = [&] { return "internal error: field type does not match row kind"; };
    switch (row.kind) {
    case Kind::Int: {
        auto f = std::get_if<int Settings::*>(&row.field);
        if (!f) return mismatch();
        if (value.empty()) return ""; // keep the default, like an absent key
        auto v = core::parse_int(value);
        if (!v || *v < row.min || *v > row.max)
            return "invalid value '" + value + "' for " + std::string(row.key) +
                   ": expected an integer from " + std::to_string(row.min) + " to " + std::to_string(row.max);
        s.*(*f) = static_cast<int>(*v);
        return "";
    }
    case Kind::Bool: {
        auto f = std::get_if<bool Settings::*>(&row.field);
        if (!f) return mismatch();
        auto v = value.empty() ? std::optional<bool>(false) : core::parse_bool(value);
        if (!v)
            return "invalid value '" + value + "' for " + std::string(row.key) + ": expected true or false";
        s.*(*f) = *v;
        return "";
    }
    case Kind::String:
    case Kind::Path:
    case Kind::Metrics: {
        auto f = std::get_if<std::string Settings::*>(&row.field);
        if (!f) return mismatch();
        if (row.kind == Kind::Metrics && !validate_metrics_port(value, &err))
            return "invalid value for " + std::string(row.key) + ": " + err;
        if (row.kind == Kind::Path) {
            if (value.empty()) return std::string(row.key) + " cannot be empty";
            std::filesystem::path p(value);
            if (p.is_relative()) p = ctx.config_dir / p;
            value = p.lexically_normal().string();
        }
        s.*(*f) = std::move(value);
        return "";
    }
    case Kind::Key: {
        auto f = std::get_if<std::string Settings::*>(&row.field);
        if (!f) return mismatch();
        if (value.substr(0, 5) == "file:")
            return std::string(row.key) +
                   ": file: keys are not supported by gripd yet (use the secret, or base64:)";
        if (!parse_key_value(value, &(s.*(*f))))
            return "invalid value for " + std::string(row.key) + ": bad base64 after 'base64:'";
        return "";
    }
    case Kind::Listeners: {
        auto f = std::get_if<std::vector<ListenAddr> Settings::*>(&row.field);
        if (!f) return mismatch();
        if (!parse_listeners(value, &(s.*(*f)), &err))
            return "invalid value for " + std::string(row.key) + ": " + err;
        return "";
    }
    case Kind::LocalPorts: {
        auto f = std::get_if<std::vector<LocalPort> Settings::*>(&row.field);
        if (!f) return mismatch();
        if (!parse_local_ports(value, &(s.*(*f)), &err))
            return "invalid value for " + std::string(row.key) + ": " + err;
        return "";
    }
    case Kind::Xff: {
        auto f = std::get_if<XffRule Settings::*>(&row.field);
        if (!f) return mismatch();
        if (!parse_xff(value, &(s.*(*f)), &err))
            return "invalid value for " + std::string(row.key) + ": " + err;
        return "";
    }
    case Kind::XfProto: {
        auto f = std::get_if<XForwardedProtocol Settings::*>(&row.field);
        if (!f) return mismatch();
        s.*(*f) = value == "true"         ? XForwardedProtocol::Both
                  : value == "proto-only" ? XForwardedProtocol::ProtoOnly
                                          : XForwardedProtocol::Off;
        return "";
    }
    case Kind::LogLevel: {
        auto f = std::get_if<int Settings::*>(&row.field);
        if (!f) return mismatch();
        if (value.empty()) return "";
        int level = 0;
        if (!parse_log_level(value, &level, &err))
            return "invalid value for " + std::string(row.key) + ": " + err;
        s.*(*f) = level;
        return "";
    }
    case Kind::Bytes: {
        auto f = std::get_if<int64_t Settings::*>(&row.field);
        if (!f) return mismatch();
        if (!parse_bytes(value, &(s.*(*f))))
            return "invalid value '" + value + "' for " + std::string(row.key) +
                   ": expected bytes with an optional k, M or G suffix, 0/off, or auto";
        return "";
    }
    case Kind::Ignored:
    case Kind::Include:
        return "";
    }
    return "";
}

std::string where(const IniEntry& e) {
    return e.file + ":" + std::to_string(e.line) + ": ";
}

std::string_view raw_value(const IniFile& ini, std::string_view section, std::string_view key) {
    const IniEntry* e = ini.find(section, key);
    return e ? std::string_view(e->value) : std::string_view();
}

bool has_key(const IniFile& ini, std::string_view section_slash_key) {
    size_t slash = section_slash_key.find('/');
    return ini.find(section_slash_key.substr(0, slash), section_slash_key.substr(slash + 1)) != nullptr;
}

void apply_defaults(Settings& s, const Context& ctx) {
    for (const auto& row : kRows)
        if (!row.alias && !row.def.empty()) apply_row(row, row.def, s, ctx);
}

// Handles [global] include: Pushpin's internal.conf is skipped; other files fill in keys not set here.
std::string process_include(IniFile& ini, const Context& ctx, std::vector<Notice>& notices) {
    const IniEntry* inc = ini.find("global", "include");
    if (!inc) return "";
    std::string value = std::string(core::trim(inc->value));
    if (value == "internal.conf") value = "{libdir}/internal.conf"; // as Pushpin does
    value = expand(value, ctx.vars);
    if (value.empty()) return "";
    std::filesystem::path path(value);
    if (path.filename() == "internal.conf") {
        notices.push_back({core::LogLevel::Info, "ignoring [global] include=" + inc->value +
                                                     ": Pushpin's internal wiring, not needed by gripd"});
        return "";
    }
    if (path.is_relative()) path = ctx.config_dir / path;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
        notices.push_back(
            {core::LogLevel::Warn, where(*inc) + "include file " + path.string() + " not found, ignored"});
        return "";
    }
    std::string text, err;
    if (!read_text_file(path.string(), &text, &err)) return where(*inc) + err;
    IniResult included = parse_ini(text, path.string());
    if (!included.ok()) return included.error;
    ini.add_missing(included.ini);
    return "";
}

} // namespace

bool parse_key_value(std::string_view text, std::string* out) {
    if (text.substr(0, 7) == "base64:") {
        auto decoded = core::base64_decode(core::trim(text.substr(7)));
        if (!decoded) return false;
        *out = std::move(*decoded);
        return true;
    }
    *out = std::string(text);
    return true;
}

Settings default_settings() {
    Settings s;
    Context ctx;
    ctx.config_dir = ".";
    // Defaults never use templates, so empty vars are fine here.
    apply_defaults(s, ctx);
    return s;
}

SettingsResult load_settings_text(std::string_view text, const std::string& config_path,
                                  const CliOptions& cli) {
    SettingsResult result;
    Settings& s = result.settings;
    s.config_file = config_path;
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(config_path, ec);
    if (ec) abs = config_path;
    Context ctx;
    ctx.config_dir = abs.parent_path();
    s.config_dir = ctx.config_dir.string();

    IniResult parsed = parse_ini(text, config_path);
    if (!parsed.ok()) {
        result.error = parsed.error;
        return result;
    }
    IniFile& ini = parsed.ini;

    // Template variables come first: every other value may use them.
    Settings tmp = default_settings();
    ctx.vars.libdir = tmp.libdir;
    ctx.vars.rundir = tmp.rundir;
    ctx.vars.ipc_prefix = tmp.ipc_prefix;
    if (auto v = raw_value(ini, "global", "libdir"); !v.empty()) ctx.vars.libdir = std::string(v);
    if (ini.find("global", "rundir"))
        ctx.vars.rundir = std::string(raw_value(ini, "global", "rundir"));
    else if (ini.find("runner", "rundir"))
        ctx.vars.rundir = std::string(raw_value(ini, "runner", "rundir"));
    if (ini.find("global", "ipc_prefix"))
        ctx.vars.ipc_prefix = std::string(raw_value(ini, "global", "ipc_prefix"));
    if (cli.id) ctx.vars.ipc_prefix = "p" + std::to_string(*cli.id) + "-";

    if (std::string err = process_include(ini, ctx, result.notices); !err.empty()) {
        result.error = err;
        return result;
    }

    apply_defaults(s, ctx);
    for (const IniEntry& e : ini.entries()) {
        const Row* row = find_row(e.section, e.key);
        if (!row) {
            if (is_zmq_spec_key(e.section, e.key)) {
                result.notices.push_back({core::LogLevel::Info, "ignoring [" + e.section + "] " + e.key +
                                                                    ": " + std::string(kZmq)});
            } else {
                result.notices.push_back({core::LogLevel::Warn, where(e) + "unknown key [" + e.section +
                                                                    "] " + e.key + ", ignored"});
            }
            continue;
        }
        if (row->kind == Kind::Ignored) {
            result.notices.push_back({core::LogLevel::Info, "ignoring [" + e.section + "] " + e.key + ": " +
                                                                std::string(row->note)});
            continue;
        }
        if (row->alias && has_key(ini, row->note)) {
            result.notices.push_back({core::LogLevel::Info, "ignoring [" + e.section + "] " + e.key + ": " +
                                                                std::string(row->note) + " is set"});
            continue;
        }
        if (row->section == "runner" && row->key == "rundir")
            result.notices.push_back(
                {core::LogLevel::Warn,
                 where(e) + "rundir in [runner] section is deprecated. put in [global]"});
        if (std::string err = apply_row(*row, e.value, s, ctx); !err.empty()) {
            result.error = where(e) + err;
            return result;
        }
    }
    s.ipc_prefix = ctx.vars.ipc_prefix;

    // The command line wins over the file.
    if (cli.id) s.port_offset = *cli.id * 10;
    if (s.push_in_http_port > 0) {
        s.push_in_http_port += s.port_offset;
        if (s.push_in_http_port > 65535) {
            result.error = config_path + ": push_in_http_port plus port_offset " +
                           std::to_string(s.port_offset) + " is above 65535";
            return result;
        }
    }
    if (cli.port) {
        s.http_ports = {*cli.port};
        s.https_ports.clear();
        s.local_ports.clear();
    }
    if (cli.workers) s.workers = *cli.workers;
    if (cli.log_level) s.log_level = *cli.log_level;
    s.log_file = cli.log_file;
    s.route_lines = cli.route_lines;

    if (s.http_ports.empty() && s.https_ports.empty() && s.local_ports.empty()) {
        result.error = config_path + ": no server ports configured (set [runner] http_port)";
        return result;
    }
    if (s.http_ports.empty()) {
        result.error = config_path + ": no http_port configured; gripd does not support https_ports or " +
                       "local_ports yet (terminate TLS in front of it)";
        return result;
    }
    return result;
}

SettingsResult load_settings(const CliOptions& cli) {
    std::string path = cli.config_file.empty() ? default_config_file() : cli.config_file;
    std::string text, err;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        SettingsResult r;
        r.error = path + ": is a directory";
        return r;
    }
    if (!read_text_file(path, &text, &err)) {
        SettingsResult r;
        r.error = err;
        return r;
    }
    SettingsResult r = load_settings_text(text, path, cli);
    if (cli.config_file.empty())
        r.notices.insert(r.notices.begin(), {core::LogLevel::Info, "using config: " + path});
    return r;
}

void log_notices(const std::vector<Notice>& notices) {
    for (const auto& n : notices)
        GRIPD_LOG(n.level, "config", "%s", n.message.c_str());
}

int effective_workers(const Settings& settings) {
    if (settings.workers > 0) return settings.workers;
    unsigned n = std::thread::hardware_concurrency();
    return n > 0 ? static_cast<int>(n) : 1;
}

} // namespace gripd::config
