#include "gripd/config/cli.hpp"

#include "gripd/config/settings.hpp"
#include "gripd/core/strings.hpp"

#include <unistd.h>

namespace gripd::config {

namespace {

constexpr const char* kGripdConfig = "/etc/gripd/gripd.conf";
constexpr const char* kPushpinConfig = "/etc/pushpin/pushpin.conf";

bool parse_non_negative(std::string_view text, int* out) {
    auto v = core::parse_int_in(text, 0, 1000000);
    if (v) *out = *v;
    return v.has_value();
}

} // namespace

bool parse_log_level(std::string_view text, int* level, std::string* error) {
    std::optional<int> bare, first;
    size_t start = 0;
    while (true) {
        size_t comma = text.find(',', start);
        std::string_view part =
            core::trim(text.substr(start, comma == std::string_view::npos ? text.npos : comma - start));
        if (part.empty()) {
            *error = "log level component cannot be empty";
            return false;
        }
        size_t colon = part.find(':');
        if (colon == 0) {
            *error = "log level component name cannot be empty";
            return false;
        }
        int value = 0;
        if (!parse_non_negative(colon == std::string_view::npos ? part : part.substr(colon + 1), &value)) {
            *error = "log level must be an integer >= 0: '" + std::string(part) + "'";
            return false;
        }
        if (!first) first = value;
        if (colon == std::string_view::npos) bare = value;
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    *level = bare ? *bare : *first;
    return true;
}

std::string default_config_file() {
    if (access(kGripdConfig, F_OK) == 0) return kGripdConfig;
    return kPushpinConfig;
}

std::string cli_usage() {
    // Defaults come from where they are declared (the settings table, the config paths above).
    return std::string("Usage: gripd [options]\n"
                       "Reverse proxy for realtime web services (Pushpin compatible).\n"
                       "\n"
                       "Options:\n"
                       "  --config <file>       Config file (default: ") +
           kGripdConfig + " if it exists,\n                        else " + kPushpinConfig +
           ").\n"
           "  --logfile <file>      File to log to.\n"
           "  --loglevel <x>        Log level (default: [runner] log_level, else " +
           std::to_string(Settings{}.log_level) +
           "). 0 error .. 4 trace;\n"
           "                        \"N,svc:N\" accepted.\n"
           "  --verbose             Verbose output. Same as --loglevel=3.\n"
           "  -m, --merge-output    Log everything to stderr, no files in [runner] logdir.\n"
           "  --port <[addr:]port>  Run a single HTTP server instance.\n"
           "  --id <x>              Set instance ID (needed to run multiple instances).\n"
           "  --route <line>        Add route (overrides routes file).\n"
           "  --workers <n>         Worker threads (default: [gripd] workers; 0 = number of cores).\n"
           "  --check-config        Check the config file, routes, key files and certificates,\n"
           "                        print what is wrong (FILE:LINE), exit 1 if anything is.\n"
           "  --print-config-reference\n"
           "                        Print every config key gripd knows, as Markdown, and exit.\n"
           "  -h, --help            Displays this help.\n"
           "  -v, --version         Displays version information.\n";
}

namespace {

// Pushpin's short flags (-m, -h, -?, -v). Returns false when `arg` is not one of them.
bool apply_short_flag(std::string_view arg, CliOptions& o) {
    if (arg == "-m")
        o.merge_output = true;
    else if (arg == "-h" || arg == "-?")
        o.help = true;
    else if (arg == "-v")
        o.version = true;
    else
        return false;
    return true;
}

enum class OptionKind { Unknown, Flag, TakesValue };

OptionKind option_kind(std::string_view name) {
    if (name == "config" || name == "logfile" || name == "loglevel" || name == "port" || name == "id" ||
        name == "route" || name == "workers")
        return OptionKind::TakesValue;
    if (name == "verbose" || name == "merge-output" || name == "help" || name == "help-all" ||
        name == "version" || name == "print-config-reference" || name == "check-config")
        return OptionKind::Flag;
    return OptionKind::Unknown;
}

// A long option without a value (option_kind() said Flag).
void apply_flag(std::string_view name, CliOptions& o, bool& verbose) {
    if (name == "verbose")
        verbose = true;
    else if (name == "merge-output")
        o.merge_output = true;
    else if (name == "version")
        o.version = true;
    else if (name == "print-config-reference")
        o.print_config_reference = true;
    else if (name == "check-config")
        o.check_config = true;
    else
        o.help = true;
}

// A long option with its value (option_kind() said TakesValue). Returns an error message, or "".
std::string apply_value(std::string_view name, const std::string& value, CliOptions& o) {
    std::string err;
    if (name == "config") {
        o.config_file = value;
    } else if (name == "logfile") {
        o.log_file = value;
    } else if (name == "loglevel") {
        int level = 0;
        if (!parse_log_level(value, &level, &err)) return "--loglevel: " + err;
        o.log_level = level;
    } else if (name == "port") {
        ListenAddr addr;
        if (!parse_listen_addr(value, &addr, &err)) return "--port: " + err;
        o.port = addr;
    } else if (name == "id" || name == "workers") {
        int n = 0;
        if (!parse_non_negative(value, &n)) return "--" + std::string(name) + " must be an integer >= 0";
        (name == "id" ? o.id : o.workers) = n;
    } else if (name == "route") {
        o.route_lines.push_back(value);
    }
    return "";
}

// Applies the option at argv[*i] (a dash argument that is not a short flag), moving *i past a value
// given as the next argument. Returns an error message, or "".
std::string apply_long_option(int argc, char** argv, int* i, CliOptions& o, bool& verbose) {
    std::string_view arg = argv[*i];
    std::string_view name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string_view> inline_value;
    if (size_t eq = name.find('='); eq != std::string_view::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
    }
    OptionKind kind = option_kind(name);
    if (kind == OptionKind::Unknown) return "unknown option '" + std::string(arg) + "'";
    if (kind == OptionKind::Flag) {
        if (inline_value) return "option '" + std::string(name) + "' takes no value";
        apply_flag(name, o, verbose);
        return "";
    }
    std::string value;
    if (inline_value)
        value = std::string(*inline_value);
    else if (*i + 1 < argc)
        value = argv[++*i];
    else
        return "missing value after '" + std::string(arg) + "'";
    return apply_value(name, value, o);
}

} // namespace

CliResult parse_cli(int argc, char** argv) {
    CliResult result;
    CliOptions& o = result.options;
    bool verbose = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--") {
            if (i + 1 < argc) result.error = std::string("unexpected argument '") + argv[i + 1] + "'";
            break;
        }
        if (arg.size() < 2 || arg[0] != '-') {
            result.error = "unexpected argument '" + std::string(arg) + "'";
            break;
        }
        // Short flags first, then long names with one or two dashes (Qt's ParseAsLongOptions).
        if (apply_short_flag(arg, o)) continue;
        result.error = apply_long_option(argc, argv, &i, o, verbose);
        if (!result.error.empty()) break;
    }
    if (verbose) o.log_level = 3; // as Pushpin: --verbose wins over --loglevel
    return result;
}

} // namespace gripd::config
