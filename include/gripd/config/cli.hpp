// gripd's command line, shaped like Pushpin's runner (`pushpin --help`) plus `--workers`.
#pragma once

#include "gripd/config/listen_addr.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gripd::config {

struct CliOptions {
    std::string config_file;              // --config; empty = default_config_file()
    std::string log_file;                 // --logfile
    std::optional<int> log_level;         // --loglevel N (or Pushpin's "N,svc:N"), --verbose = 3
    std::optional<ListenAddr> port;       // --port [addr:]port: the only client listener
    std::optional<int> id;                // --id N: ipc_prefix "pN-", port_offset N*10
    std::optional<int> workers;           // --workers N (0 = number of cores)
    std::vector<std::string> route_lines; // --route LINE (repeatable; replaces the routes file)
    bool merge_output = false;            // -m/--merge-output: no log files in logdir (all to stderr)
    bool help = false;                    // -h/--help/--help-all: print cli_usage(), exit 0
    bool version = false;                 // -v/--version: print "gripd VERSION", exit 0
    bool print_config_reference =
        false;                 // --print-config-reference: print config_reference_markdown(), exit 0
    bool check_config = false; // --check-config: check config, routes, keys, certificates; exit 0 or 1
};

struct CliResult {
    CliOptions options;
    std::string error; // e.g. "unknown option '--foo'"; the caller prints it with cli_usage() and exits 2
    bool ok() const { return error.empty(); }
};

// Parses argv[1..argc). Accepts `--opt VALUE`, `--opt=VALUE` and Qt's single-dash long forms (`-config`).
CliResult parse_cli(int argc, char** argv);

// Usage text for --help (ends with a newline).
std::string cli_usage();

// Parses Pushpin's log level syntax "N" or "N,svc:N,...": the bare number if there is one, else the first
// service's number. Returns false and sets *error on bad input.
bool parse_log_level(std::string_view text, int* level, std::string* error);

// /etc/gripd/gripd.conf if it exists, else /etc/pushpin/pushpin.conf.
std::string default_config_file();

} // namespace gripd::config
