// The settings table: one row per pushpin.conf key gripd knows, and what gripd does with it. Private to the
// config module; settings.cpp parses with it, config_reference.cpp renders README's reference from it.
#pragma once

#include "gripd/config/settings.hpp"

#include <cstdint>
#include <span>
#include <string_view>
#include <variant>

namespace gripd::config::table {

// How a row's text becomes a field value.
enum class Kind {
    Int,        // decimal in [min, max]; an empty value keeps the default
    Bool,       // true/false/yes/no/on/off/1/0; empty = false
    String,     // template-expanded text
    Path,       // template-expanded, resolved against the config file's directory
    Key,        // Grip-Sig key: secret, "base64:..." or "file:PEM" (jwt_keys.hpp)
    Listeners,  // comma list of [addr:]port
    LocalPorts, // comma list of PATH[?mode=&user=&group=]
    Xff,        // comma list of truncate:N / append
    XfProto,    // true / proto-only / other
    LogLevel,   // "N" or "N,svc:N"
    Metrics,    // "", port or addr:port (kept as text); Pushpin's ipc://path is refused
    Bytes,      // N, Nk, NM or NG (1024-based); 0 or off = 0; empty or auto = -1 (the caller decides)
    Text,       // not parsed: the key has no field
    Include,    // [global] include, handled before the table is applied
};

// What gripd does with a key.
enum class Effect {
    Works, // as in Pushpin
    Warn,  // accepted; a value that asks for something logs one WARN naming what will not happen
    Info,  // accepted with one INFO: Pushpin-internal plumbing, or tuning of a feature gripd warns about
           // elsewhere; its absence of effect is invisible to users
};

// A command-line option under which a Warn row's key asks for nothing, as in Pushpin.
enum class Unless {
    Nothing,
    MergeOutput, // -m: Pushpin writes no log files either
    PortOption,  // --port: Pushpin opens only that listener
};

using Field =
    std::variant<std::monostate, int Settings::*, bool Settings::*, std::string Settings::*,
                 std::vector<ListenAddr> Settings::*, std::vector<LocalPort> Settings::*, XffRule Settings::*,
                 XForwardedProtocol Settings::*, int64_t Settings::*, core::JwtKeyRef Settings::*>;

struct Row {
    std::string_view section;
    std::string_view key;
    Kind kind = Kind::Text;
    Field field = {};
    std::string_view def = {}; // default, as config text (parsed like a file value); empty = zero value
    int64_t min = 0;           // Int only
    int64_t max = 0;
    std::string_view unit = {}; // Int only: "s", "ms", "bytes", ... (shown in the reference)
    Effect effect = Effect::Works;
    std::string_view text = {}; // Works: what it does; Warn: what will not happen; Info: why nobody sees it
    std::string_view off = {};  // Warn: a value that asks for nothing, besides an empty one
    Unless unless = Unless::Nothing;
    std::string_view alias_of = {};   // "section/key" that wins when both are set
    std::string_view deprecated = {}; // WARN message when the key is used at all
};

// Every row, in reference order (section by section).
std::span<const Row> rows();

// The row for [section] key, or nullptr.
const Row* find_row(std::string_view section, std::string_view key);

// ZeroMQ socket specs no row names ([proxy]/[handler] *_spec and *_specs, as in Pushpin's internal.conf):
// internal wiring between Pushpin's own processes, logged with one INFO line (kInternalSpecText).
bool is_internal_spec_key(std::string_view section, std::string_view key);
extern const std::string_view kInternalSpecText;

} // namespace gripd::config::table
