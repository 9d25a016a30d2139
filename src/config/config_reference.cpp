// README.md's configuration reference, rendered from the settings table so the two cannot drift apart.
#include "gripd/config/settings.hpp"

#include "route_options_internal.hpp"
#include "settings_table_internal.hpp"

#include <climits>

namespace gripd::config {

namespace {

using namespace table; // Row and its Kind, Effect, Unless

std::string range(const Row& row) {
    std::string lo = std::to_string(row.min);
    if (row.max == INT_MAX) return lo + " or more";
    return lo + "–" + std::to_string(row.max);
}

std::string type_of(const Row& row) {
    switch (row.kind) {
    case Kind::Int:
        if (row.unit == "s") return "seconds, " + range(row);
        if (row.unit == "ms") return "milliseconds, " + range(row);
        if (!row.unit.empty()) return std::string(row.unit) + ", " + range(row);
        return "integer, " + range(row);
    case Kind::Bool:
        return "boolean";
    case Kind::String:
        return "text";
    case Kind::Path:
    case Kind::Include:
        return "path";
    case Kind::Key:
        return "secret, `base64:`, or `file:` PEM key";
    case Kind::Listeners:
        return "list of `[addr:]port`";
    case Kind::LocalPorts:
        return "list of `[unix:]path[?mode=&user=&group=]`";
    case Kind::Xff:
        return "`truncate:N`, `append`";
    case Kind::XfProto:
        return "`true`, `proto-only`";
    case Kind::LogLevel:
        return "`N` or `N,svc:N`";
    case Kind::Metrics:
        return "`[addr:]port`";
    case Kind::Bytes:
        return "bytes (`k`, `M`, `G`), `off`, `auto`";
    case Kind::Text:
        return "any";
    }
    return "";
}

std::string default_of(const Row& row) {
    if (!row.def.empty()) return "`" + std::string(row.def) + "`";
    if (row.kind == Kind::Bool) return "`false`";
    return "–";
}

std::string warns_when(const Row& row) {
    std::string when = row.kind == Kind::Bool || row.off == "false" ? "true"
                       : row.off.empty()                            ? "set"
                                                                    : "not `" + std::string(row.off) + "`";
    if (row.unless == Unless::PortOption) when += ", without `--port`";
    if (row.unless == Unless::MergeOutput) when += ", without `-m`";
    return when;
}

std::string cells(std::initializer_list<std::string> values) {
    std::string line = "|";
    for (const auto& v : values)
        line += " " + v + " |";
    return line + "\n";
}

std::string key_cell(const Row& row) {
    return "`" + std::string(row.key) + "`";
}

// The routes file's options, one row each, from the route options table.
std::string route_options_markdown() {
    using route_options::Status;
    using route_options::Where;
    std::string rows;
    for (const auto& o : route_options::options()) {
        std::string status;
        switch (o.status) {
        case Status::Works:
            status = "works";
            break;
        case Status::Warn:
            status = "not supported: a route line using it logs one `[WARN]`";
            break;
        case Status::Partial:
            status = "in part: a route line using it logs one `[WARN]` naming what does not work";
            break;
        case Status::WsOnly:
            status = "WebSocket only: a route that takes HTTP requests too logs one `[WARN]`";
            break;
        case Status::Inert:
            status = "no effect, no warning";
            break;
        }
        rows += cells({o.where == Where::Condition ? "condition" : "target", "`" + std::string(o.name) + "`",
                       status, std::string(o.text)});
    }
    return "Route options (the routes file; the first token of a line is the condition, the others are "
           "targets). Warnings name the routes file and line:\n"
           "\n"
           "| Where | Option | In gripd | What it does, or what does not happen |\n"
           "|---|---|---|---|\n" +
           rows +
           cells({"target", "`zhttp/...`, `zhttpreq/...`", "not supported: one `[WARN]`",
                  "ZeroMQ targets are skipped: requests go to the route's other targets, or get 502"}) +
           cells({"both", "any other", "one `[WARN]`", "`unknown route option 'NAME', ignored`"});
}

} // namespace

std::string config_reference_markdown() {
    std::string works, warns, infos;
    for (const Row& row : table::rows()) {
        std::string section(row.section), text(row.text);
        switch (row.effect) {
        case Effect::Works:
            works += cells({section, key_cell(row), type_of(row), default_of(row), text});
            break;
        case Effect::Warn:
            warns += cells({section, key_cell(row), type_of(row), default_of(row), warns_when(row), text});
            break;
        case Effect::Info:
            infos += cells({section, key_cell(row), text});
            break;
        }
    }
    infos += cells({"proxy, handler", "other `*_spec`, `*_specs`", std::string(table::kInternalSpecText)});
    return "Keys gripd acts on, as Pushpin does:\n"
           "\n"
           "| Section | Key | Type | Default | Meaning |\n"
           "|---|---|---|---|---|\n" +
           works +
           "\n"
           "Keys gripd accepts but does not act on. Each logs one `[WARN]` line at startup, naming what will "
           "not happen, when its value asks for something:\n"
           "\n"
           "| Section | Key | Type | Default | Warns when | What does not happen |\n"
           "|---|---|---|---|---|---|\n" +
           warns +
           "\n"
           "Keys of Pushpin's internal plumbing, or tuning of a feature warned about above: each logs one "
           "`[INFO]` line, as no user sees a difference:\n"
           "\n"
           "| Section | Key | Why |\n"
           "|---|---|---|\n" +
           infos +
           "\n"
           "Any other key logs `[WARN] FILE:LINE: unknown key [section] key, ignored` (Pushpin ignores "
           "unknown "
           "keys silently). A bad value stops gripd with `FILE:LINE: message` and exit status 2.\n"
           "\n" +
           route_options_markdown();
}

} // namespace gripd::config
