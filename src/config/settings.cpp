// Loads pushpin.conf into Settings through the settings table (settings_table.cpp): each entry is parsed by
// its row's kind into its row's field, then reported per the row's disposition.
#include "gripd/config/settings.hpp"

#include "gripd/config/ini.hpp"
#include "gripd/config/jwt_keys.hpp"
#include "gripd/core/strings.hpp"
#include "settings_table_internal.hpp"

#include <climits>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sched.h>
#include <thread>
#include <unistd.h>
#include <variant>

namespace gripd::config {

namespace {

using namespace table; // Row and its Kind, Effect, Unless

constexpr int64_t kMaxInt = INT_MAX;

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
        // Pushpin reads each entry as a URL: "unix:" may come first, the query holds the options.
        if (part.substr(0, 5) == "unix:") part.remove_prefix(5);
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
                    auto mode = core::parse_file_mode(value);
                    if (!mode) {
                        *error = "invalid mode '" + std::string(value) + "': expected octal, e.g. 660";
                        return false;
                    }
                    lp.mode = *mode;
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

// Pushpin also takes ipc://PATH (a unix socket); gripd cannot open one yet, so it is refused here
// rather than at startup with a puzzling "bad port".
bool validate_metrics_port(std::string_view text, std::string* error) {
    if (text.empty()) return true;
    if (text.substr(0, 6) == "ipc://") {
        *error = "ipc:// (unix socket) metrics listeners are not supported by gripd yet: use [addr:]port";
        return false;
    }
    ListenAddr addr;
    return parse_listen_addr(text, &addr, error);
}

// A byte count with an optional k/M/G suffix (1024-based); "off" is 0 and "auto" (or empty) is -1.
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

struct Context {
    Vars vars;
    std::filesystem::path config_dir;
};

// Each kind's parser below reads an expanded, trimmed value into its field and returns an error
// message, or "" on success. apply_row() picks the parser and the field.

std::string parse_int_field(const Row& row, const std::string& value, int& out) {
    if (value.empty()) return ""; // keep the default, like an absent key
    auto v = core::parse_int(value);
    if (!v || *v < row.min || *v > row.max)
        return "invalid value '" + value + "' for " + std::string(row.key) + ": expected an integer from " +
               std::to_string(row.min) + " to " + std::to_string(row.max);
    out = static_cast<int>(*v);
    return "";
}

std::string parse_bool_field(const Row& row, const std::string& value, bool& out) {
    auto v = value.empty() ? std::optional<bool>(false) : core::parse_bool(value);
    if (!v) return "invalid value '" + value + "' for " + std::string(row.key) + ": expected true or false";
    out = *v;
    return "";
}

// String, Path and Metrics: text kept as is, a path resolved against the config file's directory, a
// metrics listener checked.
std::string parse_text_field(const Row& row, std::string value, const Context& ctx, std::string& out) {
    std::string err;
    if (row.kind == Kind::Metrics && !validate_metrics_port(value, &err))
        return "invalid value for " + std::string(row.key) + ": " + err;
    if (row.kind == Kind::Path) {
        if (value.empty()) return std::string(row.key) + " cannot be empty";
        std::filesystem::path p(value);
        if (p.is_relative()) p = ctx.config_dir / p;
        value = p.lexically_normal().string();
    }
    out = std::move(value);
    return "";
}

// An empty value is no key (no signing, nobody trusted); a key that cannot be loaded stops startup.
std::string parse_key_field(const Row& row, const std::string& value, const Context& ctx,
                            core::JwtKeyRef& out) {
    out = nullptr;
    if (value.empty()) return "";
    auto use = row.key == "upstream_key" ? core::JwtKey::Use::Verify : core::JwtKey::Use::Sign;
    std::string err;
    out = load_jwt_key(value, ctx.config_dir, use, &err);
    if (!out) return "invalid value for " + std::string(row.key) + ": " + err;
    return "";
}

XForwardedProtocol parse_xf_proto(std::string_view value) {
    return value == "true"         ? XForwardedProtocol::Both
           : value == "proto-only" ? XForwardedProtocol::ProtoOnly
                                   : XForwardedProtocol::Off;
}

// The kinds parsed by a `bool parse(text, T* out, std::string* error)` function (lists, rules, log
// levels): its error is prefixed with the key.
template <class T>
std::string parse_with(const Row& row, const std::string& value,
                       bool (*parse)(std::string_view, T*, std::string*), T& out) {
    std::string err;
    if (!parse(value, &out, &err)) return "invalid value for " + std::string(row.key) + ": " + err;
    return "";
}

std::string parse_bytes_field(const Row& row, const std::string& value, int64_t& out) {
    if (!parse_bytes(value, &out))
        return "invalid value '" + value + "' for " + std::string(row.key) +
               ": expected bytes with an optional k, M or G suffix, 0/off, or auto";
    return "";
}

// Calls `parse` on the row's field of type T. A field of another type is a bug in the table, which
// settings_table_problems() (and its unit test) reports.
template <class T, class Parse> std::string on_field(const Row& row, Settings& s, Parse parse) {
    auto f = std::get_if<T Settings::*>(&row.field);
    if (!f) return "internal error: field type does not match row kind";
    return parse(s.*(*f));
}

// Parses `raw` per the row into `s`. Returns an error message, or "" on success.
std::string apply_row(const Row& row, std::string_view raw, Settings& s, const Context& ctx) {
    std::string value = expand(core::trim(raw), ctx.vars);
    switch (row.kind) {
    case Kind::Int:
        return on_field<int>(row, s, [&](int& f) { return parse_int_field(row, value, f); });
    case Kind::Bool:
        return on_field<bool>(row, s, [&](bool& f) { return parse_bool_field(row, value, f); });
    case Kind::String:
    case Kind::Path:
    case Kind::Metrics:
        return on_field<std::string>(row, s,
                                     [&](std::string& f) { return parse_text_field(row, value, ctx, f); });
    case Kind::Key:
        return on_field<core::JwtKeyRef>(
            row, s, [&](core::JwtKeyRef& f) { return parse_key_field(row, value, ctx, f); });
    case Kind::Listeners:
        return on_field<std::vector<ListenAddr>>(
            row, s, [&](std::vector<ListenAddr>& f) { return parse_with(row, value, parse_listeners, f); });
    case Kind::LocalPorts:
        return on_field<std::vector<LocalPort>>(
            row, s, [&](std::vector<LocalPort>& f) { return parse_with(row, value, parse_local_ports, f); });
    case Kind::Xff:
        return on_field<XffRule>(row, s, [&](XffRule& f) { return parse_with(row, value, parse_xff, f); });
    case Kind::XfProto:
        return on_field<XForwardedProtocol>(row, s, [&](XForwardedProtocol& f) {
            f = parse_xf_proto(value);
            return std::string();
        });
    case Kind::LogLevel:
        return on_field<int>(row, s, [&](int& f) {
            return value.empty() ? std::string() : parse_with(row, value, parse_log_level, f);
        });
    case Kind::Bytes:
        return on_field<int64_t>(row, s, [&](int64_t& f) { return parse_bytes_field(row, value, f); });
    case Kind::Text:
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

// Rows without a default leave their field at its zero value (the brace initializer), which is the default.
void apply_defaults(Settings& s, const Context& ctx) {
    for (const auto& row : table::rows())
        if (row.alias_of.empty() && !row.def.empty()) apply_row(row, row.def, s, ctx);
}

Context default_context() {
    Context ctx;
    ctx.config_dir = "."; // defaults never use templates, so empty vars are fine
    return ctx;
}

// Whether a Warn row's value asks for something gripd does not do. An empty value, the row's `off` value
// (false for booleans) and a command-line option that makes Pushpin ignore the key too ask for nothing.
bool asks_for_something(const Row& row, std::string_view raw, const Context& ctx, const CliOptions& cli) {
    if (row.unless == Unless::MergeOutput && cli.merge_output) return false;
    if (row.unless == Unless::PortOption && cli.port) return false;
    std::string value = expand(core::trim(raw), ctx.vars);
    if (value.empty()) return false;
    if (row.kind == Kind::Bool || row.off == "false") {
        auto b = core::parse_bool(value);
        return !b || *b;
    }
    if (row.off.empty()) return true;
    auto v = core::parse_int(value), off = core::parse_int(row.off);
    if (v && off) return *v != *off;
    return value != row.off;
}

// A row's text for a log line: the Markdown quoting it carries for README is dropped.
std::string plain(std::string_view text) {
    std::string out;
    for (char c : text)
        if (c != '`') out += c;
    return out;
}

std::string section_key(const IniEntry& e) {
    return "[" + e.section + "] " + e.key;
}

// Applies one config entry per its row (nullptr: no row). Returns an error message, or "".
std::string apply_entry(const IniEntry& e, const Row* row, const IniFile& ini, Settings& s,
                        const Context& ctx, const CliOptions& cli, std::vector<Notice>& notices) {
    if (!row) {
        if (table::is_internal_spec_key(e.section, e.key))
            notices.push_back({core::LogLevel::Info,
                               "ignoring " + section_key(e) + ": " + std::string(table::kInternalSpecText)});
        else
            notices.push_back(
                {core::LogLevel::Warn, where(e) + "unknown key " + section_key(e) + ", ignored"});
        return "";
    }
    if (!row->alias_of.empty() && has_key(ini, row->alias_of)) {
        std::string_view other = row->alias_of; // "section/key"
        size_t slash = other.find('/');
        notices.push_back({core::LogLevel::Info, "ignoring " + section_key(e) + ": [" +
                                                     std::string(other.substr(0, slash)) + "] " +
                                                     std::string(other.substr(slash + 1)) + " is set"});
        return "";
    }
    if (!row->deprecated.empty())
        notices.push_back({core::LogLevel::Warn, where(e) + std::string(row->deprecated)});
    // A bad value is an error whatever the row's disposition, so a typo never passes unnoticed.
    if (std::string err = apply_row(*row, e.value, s, ctx); !err.empty()) return where(e) + err;
    if (row->effect == Effect::Info) {
        notices.push_back({core::LogLevel::Info, "ignoring " + section_key(e) + ": " + plain(row->text)});
    } else if (row->effect == Effect::Warn && asks_for_something(*row, e.value, ctx, cli)) {
        notices.push_back(
            {core::LogLevel::Warn,
             where(e) + section_key(e) + "=" + std::string(core::trim(e.value)) + ": " + plain(row->text)});
    }
    return "";
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

Settings::Settings() {
    apply_defaults(*this, default_context());
}

Settings default_settings() {
    return Settings{};
}

namespace {

// Where relative paths resolve: the config file's directory.
Context file_context(const std::string& config_path) {
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(config_path, ec);
    if (ec) abs = config_path;
    Context ctx;
    ctx.config_dir = abs.parent_path();
    return ctx;
}

// Template variables come first: every other value may use them. `s` holds the defaults.
Vars template_vars(const IniFile& ini, const Settings& s, const CliOptions& cli) {
    Vars vars{s.libdir, s.rundir, s.ipc_prefix};
    if (auto v = raw_value(ini, "global", "libdir"); !v.empty()) vars.libdir = std::string(v);
    if (ini.find("global", "rundir"))
        vars.rundir = std::string(raw_value(ini, "global", "rundir"));
    else if (ini.find("runner", "rundir"))
        vars.rundir = std::string(raw_value(ini, "runner", "rundir"));
    if (ini.find("global", "ipc_prefix"))
        vars.ipc_prefix = std::string(raw_value(ini, "global", "ipc_prefix"));
    if (cli.id) vars.ipc_prefix = "p" + std::to_string(*cli.id) + "-";
    return vars;
}

// Applies every entry of the file per its row. Returns the first error, or "".
std::string apply_entries(const IniFile& ini, Settings& s, const Context& ctx, const CliOptions& cli,
                          std::vector<Notice>& notices) {
    for (const IniEntry& e : ini.entries()) {
        const Row* row = table::find_row(e.section, e.key);
        if (std::string err = apply_entry(e, row, ini, s, ctx, cli, notices); !err.empty()) return err;
    }
    return "";
}

// The command line wins over the file. Returns an error message, or "".
std::string apply_cli(Settings& s, const CliOptions& cli, const std::string& config_path) {
    if (cli.id) s.port_offset = *cli.id * 10;
    if (s.push_in_http_port > 0) {
        s.push_in_http_port += s.port_offset;
        if (s.push_in_http_port > 65535)
            return config_path + ": push_in_http_port plus port_offset " + std::to_string(s.port_offset) +
                   " is above 65535";
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
    return "";
}

// [proxy] and [handler] prometheus_port each get a listener; on the same address Pushpin's second process
// fails to bind, and gripd opens it once, serving [handler] prometheus_prefix.
void note_metrics_ports(const IniFile& ini, const Settings& s, std::vector<Notice>& notices) {
    const IniEntry* e = ini.find("proxy", "prometheus_port");
    if (!e || s.proxy_prometheus_port.empty() || s.proxy_prometheus_port != s.handler_prometheus_port) return;
    notices.push_back(
        {core::LogLevel::Warn, where(*e) + section_key(*e) + "=" + s.proxy_prometheus_port +
                                   ": the same as [handler] prometheus_port, which serves it (with "
                                   "[handler] prometheus_prefix); no second listener is opened"});
}

// share_all works, but shares less than Pushpin's (proxy/request_share.hpp): say what will not happen.
void note_share_all(const IniFile& ini, const Settings& s, std::vector<Notice>& notices) {
    const IniEntry* e = ini.find("handler", "share_all");
    if (!e || !s.share_all) return;
    notices.push_back({core::LogLevel::Warn,
                       where(*e) + section_key(*e) + "=" + std::string(core::trim(e->value)) +
                           ": only GETs without a body share a request, and only a GRIP answer is shared; "
                           "other methods and plain answers are not shared (each client's request goes "
                           "to the backend), unlike Pushpin"});
}

// [gripd] instance_id when the file leaves it empty: the host name and the first client listener, which
// tells apart instances on one host too (plus `-pN` with `--id N`, whose instances may share ports).
void default_instance_id(Settings& s, const CliOptions& cli) {
    if (!s.instance_id.empty()) return;
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) != 0 || !host[0])
        std::snprintf(host, sizeof(host), "localhost");
    std::string where;
    if (!s.http_ports.empty())
        where = std::to_string(s.http_ports.front().port);
    else if (!s.https_ports.empty())
        where = std::to_string(s.https_ports.front().port);
    else if (!s.local_ports.empty())
        where = s.local_ports.front().path;
    s.instance_id = std::string(host) + (where.empty() ? "" : ":" + where);
    if (cli.id) s.instance_id += "-p" + std::to_string(*cli.id);
}

// The history byte bounds read "off" as no byte bound and "auto" as their default: parse_bytes gives
// 0 and -1, which the history would take as "keep nothing".
void resolve_history_bytes(Settings& s) {
    const Settings defaults = default_settings();
    for (auto [field, def] : {std::pair{&s.history_channel_bytes, defaults.history_channel_bytes},
                              std::pair{&s.history_max_bytes, defaults.history_max_bytes}}) {
        if (*field < 0) *field = def;
        if (*field == 0) *field = std::numeric_limits<int64_t>::max();
    }
}

// gripd serves clients on http_port, https_ports and local_ports. Returns an error message, or "".
std::string check_listeners(const Settings& s, const std::string& config_path) {
    if (s.http_ports.empty() && s.https_ports.empty() && s.local_ports.empty())
        return config_path + ": no server ports configured (set [runner] http_port)";
    return "";
}

} // namespace

SettingsResult load_settings_text(std::string_view text, const std::string& config_path,
                                  const CliOptions& cli) {
    SettingsResult result;
    Settings& s = result.settings;
    s.config_file = config_path;
    Context ctx = file_context(config_path);
    s.config_dir = ctx.config_dir.string();

    IniResult parsed = parse_ini(text, config_path);
    if (!parsed.ok()) {
        result.error = parsed.error;
        return result;
    }
    IniFile& ini = parsed.ini;
    ctx.vars = template_vars(ini, s, cli);
    result.error = process_include(ini, ctx, result.notices);
    if (!result.error.empty()) return result;

    apply_defaults(s, ctx);
    result.error = apply_entries(ini, s, ctx, cli, result.notices);
    if (!result.error.empty()) return result;
    note_metrics_ports(ini, s, result.notices);
    note_share_all(ini, s, result.notices);
    resolve_history_bytes(s);
    s.ipc_prefix = ctx.vars.ipc_prefix;
    result.error = apply_cli(s, cli, config_path);
    if (result.error.empty()) result.error = check_listeners(s, config_path);
    default_instance_id(s, cli);
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

std::vector<std::string> settings_table_problems() {
    std::vector<std::string> problems;
    auto rows = table::rows();
    Context ctx = default_context();
    for (size_t i = 0; i < rows.size(); ++i) {
        const Row& row = rows[i];
        std::string name = "[" + std::string(row.section) + "] " + std::string(row.key);
        auto problem = [&](std::string_view what) { problems.emplace_back(name).append(": ").append(what); };
        for (size_t j = 0; j < i; ++j)
            if (rows[j].section == row.section && rows[j].key == row.key) problem("declared twice");
        if (row.text.empty()) problem("says nothing about what it does");
        if (row.text.find('|') != std::string_view::npos)
            problem("text has a '|' (breaks the Markdown table)");
        bool has_field = !std::holds_alternative<std::monostate>(row.field);
        bool typed = row.kind != Kind::Text && row.kind != Kind::Include;
        if (has_field != typed) problem(typed ? "has no field" : "has a field but no type");
        if (!typed && !row.def.empty()) problem("has a default but no field");
        if (row.kind == Kind::Int && row.min > row.max) problem("min is above max");
        if (row.kind != Kind::Int && (row.min != 0 || row.max != 0 || !row.unit.empty()))
            problem("has a range or unit but is not an integer");
        if (row.effect != Effect::Warn && (!row.off.empty() || row.unless != Unless::Nothing))
            problem("has an `off` value or a command-line exception but does not warn");
        if (!row.alias_of.empty()) {
            size_t slash = row.alias_of.find('/');
            const Row* target =
                slash == std::string_view::npos
                    ? nullptr
                    : table::find_row(row.alias_of.substr(0, slash), row.alias_of.substr(slash + 1));
            if (!target || target->field != row.field || target->alias_of.size())
                problem("is an alias of " + std::string(row.alias_of) +
                        ", which is not a key with the same field");
            if (!row.def.empty()) problem("is an alias but has its own default");
        }
        if (has_field) {
            // Every default must pass the same checks as a value in a file; an empty value must not fail
            // (it means "default" for integers and "none" for the rest).
            Settings s;
            if (std::string err = apply_row(row, row.def, s, ctx); !err.empty()) problem("default: " + err);
            if (row.kind != Kind::Path)
                if (std::string err = apply_row(row, "", s, ctx); !err.empty())
                    problem("empty value: " + err);
        }
    }
    return problems;
}

int effective_workers(const Settings& settings) {
    if (settings.workers > 0) return settings.workers;
    // The CPUs this process may run on (taskset, a container's cpuset, systemd's CPUAffinity=), not
    // every CPU of the machine: more loops than CPUs only preempt each other mid-turn.
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    unsigned n = std::thread::hardware_concurrency();
    return n > 0 ? static_cast<int>(n) : 1;
}

} // namespace gripd::config
