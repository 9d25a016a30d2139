#include "gripd/config/cli.hpp"

#include "gripd/config/settings.hpp"
#include "gripd/core/strings.hpp"

#include <unistd.h>

namespace gripd::config {

namespace {

constexpr const char* kGripdConfig = "/etc/gripd/gripd.conf";
constexpr const char* kPushpinConfig = "/etc/pushpin/pushpin.conf";

bool parse_non_negative(std::string_view text, int* out) {
    auto v = core::parse_int(core::trim(text));
    if (!v || *v < 0 || *v > 1000000) return false;
    *out = static_cast<int>(*v);
    return true;
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
           "  -m, --merge-output    Accepted for compatibility (gripd is one process).\n"
           "  --port <[addr:]port>  Run a single HTTP server instance.\n"
           "  --id <x>              Set instance ID (needed to run multiple instances).\n"
           "  --route <line>        Add route (overrides routes file).\n"
           "  --workers <n>         Worker threads (default: [gripd] workers; 0 = number of cores).\n"
           "  --print-config-reference\n"
           "                        Print every config key gripd knows, as Markdown, and exit.\n"
           "  -h, --help            Displays this help.\n"
           "  -v, --version         Displays version information.\n";
}

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
        if (arg == "-m") {
            o.merge_output = true;
            continue;
        }
        if (arg == "-h" || arg == "-?") {
            o.help = true;
            continue;
        }
        if (arg == "-v") {
            o.version = true;
            continue;
        }
        std::string_view name = arg.substr(arg[1] == '-' ? 2 : 1);
        std::optional<std::string_view> inline_value;
        if (size_t eq = name.find('='); eq != std::string_view::npos) {
            inline_value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        bool takes_value = name == "config" || name == "logfile" || name == "loglevel" || name == "port" ||
                           name == "id" || name == "route" || name == "workers";
        bool is_flag = name == "verbose" || name == "merge-output" || name == "help" || name == "help-all" ||
                       name == "version" || name == "print-config-reference";
        if (!takes_value && !is_flag) {
            result.error = "unknown option '" + std::string(arg) + "'";
            break;
        }
        if (is_flag) {
            if (inline_value) {
                result.error = "option '" + std::string(name) + "' takes no value";
                break;
            }
            if (name == "verbose")
                verbose = true;
            else if (name == "merge-output")
                o.merge_output = true;
            else if (name == "version")
                o.version = true;
            else if (name == "print-config-reference")
                o.print_config_reference = true;
            else
                o.help = true;
            continue;
        }
        std::string value;
        if (inline_value) {
            value = std::string(*inline_value);
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            result.error = "missing value after '" + std::string(arg) + "'";
            break;
        }
        std::string err;
        if (name == "config") {
            o.config_file = value;
        } else if (name == "logfile") {
            o.log_file = value;
        } else if (name == "loglevel") {
            int level = 0;
            if (!parse_log_level(value, &level, &err)) {
                result.error = "--loglevel: " + err;
                break;
            }
            o.log_level = level;
        } else if (name == "port") {
            ListenAddr addr;
            if (!parse_listen_addr(value, &addr, &err)) {
                result.error = "--port: " + err;
                break;
            }
            o.port = addr;
        } else if (name == "id" || name == "workers") {
            int n = 0;
            if (!parse_non_negative(value, &n)) {
                result.error = "--" + std::string(name) + " must be an integer >= 0";
                break;
            }
            (name == "id" ? o.id : o.workers) = n;
        } else if (name == "route") {
            o.route_lines.push_back(value);
        }
    }
    if (verbose) o.log_level = 3; // as Pushpin: --verbose wins over --loglevel
    return result;
}

} // namespace gripd::config
