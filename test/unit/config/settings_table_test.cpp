// The settings table as a whole: sound, complete against Pushpin's shipped config, rendered into README.md,
// and each disposition (works / warns / informs) doing what the table says.
#include "gripd/config/settings.hpp"

#include "config/settings_table_internal.hpp"

#include "unit/config/config_test_paths.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>

using namespace gripd::config;
using gripd::core::LogLevel;

namespace {

SettingsResult load(std::string_view text, CliOptions cli = {}) {
    return load_settings_text(text, "/etc/test/pushpin.conf", cli);
}

std::vector<std::string> messages(const SettingsResult& r, LogLevel level) {
    std::vector<std::string> out;
    for (const auto& n : r.notices)
        if (n.level == level) out.push_back(n.message);
    return out;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace

TEST_CASE("settings table: every row is sound", "[config]") {
    for (const auto& p : settings_table_problems())
        FAIL_CHECK(p);
}

TEST_CASE("settings table: README's configuration reference is the table's", "[config]") {
    std::string readme = read_file(GRIPD_SOURCE_DIR "/README.md");
    const std::string begin = "<!-- BEGIN config-reference";
    const std::string end = "<!-- END config-reference -->";
    size_t b = readme.find(begin);
    REQUIRE(b != std::string::npos);
    b = readme.find('\n', b) + 1;
    size_t e = readme.find(end, b);
    REQUIRE(e != std::string::npos);
    INFO("regenerate with: build/gripd --print-config-reference");
    CHECK(readme.substr(b, e - b) == config_reference_markdown());
}

TEST_CASE("settings table: every key of Debian's pushpin 1.36 config is known, commented ones too",
          "[config]") {
    // The shipped file, with its commented-out keys (#https_ports=443, #ipc_file_mode=777, ...) turned on.
    std::string text = read_file(GRIPD_SOURCE_DIR "/test/integration/data/debian-pushpin.conf");
    REQUIRE(!text.empty());
    text = std::regex_replace(text, std::regex("^#([a-z_]+=)", std::regex::multiline), "$1");
    REQUIRE(text.find("\nhttps_ports=443") != std::string::npos);
    auto r = load(text);
    REQUIRE(r.error == "");
    for (const auto& m : messages(r, LogLevel::Warn))
        CHECK(m.find("unknown key") == std::string::npos);
    // The keys that were commented out and ask for something gripd does not do say so (https_ports
    // is served).
    CHECK(std::count_if(r.notices.begin(), r.notices.end(), [](const Notice& n) {
              return n.level == LogLevel::Warn &&
                     (n.message.find("[runner] https_ports=") != std::string::npos ||
                      n.message.find("[runner] local_ports=") != std::string::npos);
          }) == 0); // both are served now
}

TEST_CASE("settings table: every key of PROTOCOL.md 1.3 is known", "[config]") {
    // Keys of Pushpin 1.36 to 1.41 that Debian's file does not carry.
    auto r =
        load("[global]\nstats_connection_send=true\n"
             "[runner]\nallow_compression=true\nconnmgr_bin=pushpin-connmgr\n"
             "[proxy]\nworkers=2\nmax_open_requests=100\nstats_connections_max_ttl=60\n"
             "stats_report_interval=10\nprometheus_port=9100\nprometheus_prefix=p_\nipc_file_mode=777\n"
             "[handler]\nupdate_on_first_subscription=true\nshare_all=true\nstate_spec=tcp://127.0.0.1:1\n"
             "push_in_sub_spec=tcp://127.0.0.1:2\npush_in_max_headers_size=9000\n"
             "push_in_max_body_size=9000\nprometheus_port=9101\nprometheus_prefix=h_\n");
    REQUIRE(r.error == "");
    for (const auto& m : messages(r, LogLevel::Warn))
        CHECK(m.find("unknown key") == std::string::npos);
    // max_open_requests, share_all, state_spec (push_in_sub_spec works: the SUB input)
    CHECK(messages(r, LogLevel::Warn).size() == 3);
    CHECK(r.settings.push_in_sub_specs == "tcp://127.0.0.1:2");
}

TEST_CASE("settings table: a warn row warns only when its value asks for something", "[config]") {
    struct Case {
        const char* conf;
        const char* warning; // "" = no notice at all
    };
    const Case cases[] = {
        {"[proxy]\nauto_cross_origin=false\n", ""},
        {"[proxy]\nauto_cross_origin=no\n", ""},
        {"[proxy]\nauto_cross_origin=true\n", ""},
        {"[proxy]\nlog_from=true\n", ""},
        {"[proxy]\nlog_user_agent=on\n", ""},
        {"[handler]\nmessage_rate=-1\n", ""},
        {"[handler]\nmessage_rate=\n", ""},
        {"[handler]\nmessage_rate=10\n", ""}, // implemented (control/publish_gate.hpp)
        {"[handler]\nshare_all=false\n", ""},
        {"[handler]\nshare_all=true\n", ":2: [handler] share_all=true: only GETs without a body share"},
        {"[handler]\npush_in_spec=\n", ""},
        {"[handler]\nstats_spec=ipc://x\n", ""}, // implemented (zmq/stats_service.hpp)
        {"[gripd]\nmax_backend_conns_per_target=0\n", ""},
        {"[gripd]\nmax_backend_conns_per_target=4\n", ""}, // implemented (http/backend_pool.hpp)
        {"[runner]\nhttps_ports=\n", ""},
        {"[runner]\nhttps_ports=443\n", ""},    // served
        {"[runner]\nlocal_ports=/tmp/s\n", ""}, // served
        {"[runner]\nlogdir=/var/log/x\n", ""},
    };
    for (const auto& c : cases) {
        INFO(c.conf);
        auto r = load(c.conf);
        REQUIRE(r.error == "");
        if (*c.warning == 0) {
            CHECK(r.notices.empty());
            continue;
        }
        REQUIRE(r.notices.size() == 1);
        CHECK(r.notices[0].level == LogLevel::Warn);
        CHECK(r.notices[0].message.find(c.warning) != std::string::npos);
        CHECK(r.notices[0].message.find('`') == std::string::npos); // README's quoting stays out of logs
    }
}

TEST_CASE("settings table: command-line options that make Pushpin ignore a key too", "[config]") {
    CliOptions port;
    port.port = ListenAddr{"127.0.0.1", 9999};
    CHECK(load("[runner]\nhttps_ports=443\nlocal_ports=/tmp/s\n", port).notices.empty());
}

TEST_CASE("settings table: info rows still check their values", "[config]") {
    auto r = load("[handler]\nmessage_block_size=60\n[proxy]\nstats_report_interval=10\n");
    REQUIRE(r.ok());
    CHECK(messages(r, LogLevel::Info).size() == 2);
    CHECK(load("[handler]\nsubscription_linger=30\n").settings.subscription_linger == 30);
    CHECK(
        load("[handler]\n\nsubscription_linger=soon\n").error ==
        "/etc/test/pushpin.conf:3: invalid value 'soon' for subscription_linger: expected an integer from 0 "
        "to 2147483647");
    CHECK(load("[handler]\nstats_report_interval=0\n").error.rfind("/etc/test/pushpin.conf:2: ", 0) == 0);
}

TEST_CASE("settings table: a default-constructed Settings holds the table's defaults", "[config]") {
    Settings s;
    CHECK(s.http_ports == std::vector<ListenAddr>{{"0.0.0.0", 7999}});
    CHECK(s.routes_file == "routes");
    CHECK(s.libdir == "/usr/lib/gripd");
    CHECK(s.message_rate == -1);
    CHECK(s.stats_report_interval == 10);
    CHECK(s.idle_timeout == 60);
    CHECK(s.shutdown_grace == 10);
    CHECK(s == default_settings());
}

TEST_CASE("settings table: --print-config-reference", "[config]") {
    const char* argv[] = {"gripd", "--print-config-reference"};
    auto r = parse_cli(2, const_cast<char**>(argv));
    REQUIRE(r.ok());
    CHECK(r.options.print_config_reference);
    CHECK(cli_usage().find("--print-config-reference") != std::string::npos);
}

namespace {

// A value for `row` that asks for something (so a Warn row warns).
std::string asking_value(const table::Row& row) {
    using table::Kind;
    switch (row.kind) {
    case Kind::Int:
        if (!row.off.empty() && std::to_string(row.min) == row.off) return std::to_string(row.min + 1);
        return row.def.empty() ? std::to_string(row.min) : std::string(row.def);
    case Kind::Bool:
        return "true";
    case Kind::Listeners:
        return "127.0.0.1:7999";
    case Kind::LocalPorts:
        return "/tmp/gripd-test.sock";
    case Kind::Xff:
        return "append";
    case Kind::XfProto:
        return "true";
    case Kind::LogLevel:
        return "2";
    case Kind::Metrics:
        return row.section == "proxy" ? "127.0.0.1:9100" : "127.0.0.1:9101";
    case Kind::Bytes:
        return "1G";
    case Kind::Path:
        return "routes";
    case Kind::Key:
    case Kind::String:
    case Kind::Text:
    case Kind::Include:
        return row.off == "false" ? "true" : "x";
    }
    return "x";
}

} // namespace

TEST_CASE("settings table: a config setting every key once warns exactly for the unsupported ones",
          "[config]") {
    // Every key of the table once (sections in order), [global] include left out (it reads a file).
    std::string text, section;
    std::vector<std::string> warn_keys;
    int line = 0;
    for (const auto& row : table::rows()) {
        if (row.kind == table::Kind::Include) continue;
        if (row.section != section) {
            section = std::string(row.section);
            text += "[" + section + "]\n";
            ++line;
        }
        text += std::string(row.key) + "=" + asking_value(row) + "\n";
        ++line;
        // share_all works, but warns about what it shares less than Pushpin (settings.cpp note_share_all).
        bool partial = row.section == "handler" && row.key == "share_all";
        if (row.effect == table::Effect::Warn || partial)
            warn_keys.push_back("/etc/test/pushpin.conf:" + std::to_string(line) + ": [" + section + "] " +
                                std::string(row.key) + "=");
    }
    INFO(text);
    auto r = load(text);
    REQUIRE(r.error == "");
    auto warnings = messages(r, LogLevel::Warn);
    CHECK(warnings.size() == warn_keys.size());
    for (const auto& key : warn_keys) {
        INFO(key);
        CHECK(std::count_if(warnings.begin(), warnings.end(),
                            [&](const std::string& w) { return w.rfind(key, 0) == 0; }) == 1);
    }
}
