#include "gripd/config/settings.hpp"

#include "unit/config/config_test_paths.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace gripd::config;
using gripd::core::LogLevel;

namespace {

// Debian's pushpin 1.36 /etc/pushpin/pushpin.conf, verbatim.
constexpr const char* kDebianConf = R"DEBIAN([global]
include={libdir}/internal.conf

# directory to save runtime files
rundir=/var/run/pushpin

# prefix for zmq ipc specs
ipc_prefix=pushpin-

# port offset for zmq tcp specs and http control server
port_offset=0

# TTL (seconds) for connection stats
stats_connection_ttl=120


[runner]
# services to start
services=condure,pushpin-proxy,pushpin-handler

# plain HTTP port to listen on for client connections
http_port=7999

# list of HTTPS ports to listen on for client connections (you must have certs set)
#https_ports=443

# list of unix socket paths to listen on for client connections
#local_ports={rundir}/{ipc_prefix}server

# directory to save log files
logdir=/var/log/pushpin

# logging level. 2 = info, >2 = verbose
log_level=2

# client full request header must fit in this buffer
client_buffer_size=8192

# maximum number of client connections
client_maxconn=50000

# paths
condure_bin=condure
mongrel2_bin=mongrel2
m2sh_bin=m2sh
zurl_bin=zurl


[proxy]
# routes config file (path relative to location of this file)
routesfile=routes

# enable debug mode to get informative error responses
debug=false

# whether to use automatic CORS and JSON-P wrapping
auto_cross_origin=false

# whether to accept x-forwarded-proto
accept_x_forwarded_protocol=false

# whether to assert x-forwarded-proto
set_x_forwarded_protocol=proto-only

# how to treat x-forwarded-for. example: "truncate:0,append"
x_forwarded_for=

# how to treat x-forwarded-for if grip-signed
x_forwarded_for_trusted=

# the following headers must be marked in order to qualify as orig
orig_headers_need_mark=

# whether to accept Pushpin-Route header
accept_pushpin_route=false

# include client IP address in logs
log_from=false

# include client user agent in logs
log_user_agent=false

# for signing proxied requests
sig_iss=pushpin

# for signing proxied requests. use "base64:" prefix for binary key
sig_key=changeme

# use this to allow grip to be forwarded upstream (e.g. to fanout.io)
upstream_key=

# for the sockjs iframe transport
sockjs_url=http://cdn.jsdelivr.net/sockjs/0.3.4/sockjs.min.js

# updates check has three modes:
#   report: check for new pushpin version and report anonymous usage info to
#           the pushpin developers
#   check:  check for new pushpin version only, don't report anything
#   off:    don't do any reporting or checking
# pushpin will output a log message when a new version is available. report
# mode helps the pushpin project build credibility, so please enable it if you
# enjoy this software :)
#
# NOTE: Upstream enables this feature by default. The debian package
# disables it for privacy reasons. please consider to enable it by setting
# updates_check to 'report'.
updates_check=off

# use this field to identify your organization in updates requests. if left
# blank, updates requests will be anonymous
organization_name=


[handler]
# ipc permissions (octal)
#ipc_file_mode=777

# bind PULL for receiving publish commands
push_in_spec=tcp://127.0.0.1:5560

# list of bind SUB for receiving published messages
push_in_sub_specs=tcp://127.0.0.1:5562

# whether the above SUB socket should connect instead of bind
push_in_sub_connect=false

# addr/port to listen on for receiving publish commands via HTTP
push_in_http_addr=127.0.0.1
push_in_http_port=5561

# maximum headers and body size in bytes when receiving publish commands via HTTP
push_in_http_max_headers_size=10000
push_in_http_max_body_size=1000000

# bind PUB for sending stats (metrics, subscription info, etc)
stats_spec=ipc://{rundir}/{ipc_prefix}stats

# bind REP for responding to commands
command_spec=tcp://127.0.0.1:5563

# max messages per second
message_rate=2500

# max rate-limited messages
message_hwm=25000

# set to report blocks counts in stats (content size / block size)
#message_block_size=

# max time (milliseconds) for out-of-order messages to wait
message_wait=5000

# time (seconds) to cache message ids
id_cache_ttl=60

# max subscriptions per connection
connection_subscription_max=20

# time (seconds) to linger response mode subscriptions
subscription_linger=60

# TTL (seconds) for subscription stats
stats_subscription_ttl=60

# interval (seconds) to send report stats
stats_report_interval=10

# stats output format
stats_format=tnetstring
)DEBIAN";

SettingsResult load(std::string_view text, CliOptions cli = {}) {
    return load_settings_text(text, "/etc/test/pushpin.conf", cli);
}

size_t count_notices(const SettingsResult& r, LogLevel level, std::string_view needle) {
    return std::count_if(r.notices.begin(), r.notices.end(), [&](const Notice& n) {
        return n.level == level && n.message.find(needle) != std::string::npos;
    });
}

} // namespace

TEST_CASE("settings: table defaults equal the struct's field initializers", "[config]") {
    Settings d = default_settings();
    CHECK(d == Settings{});
    CHECK(d.http_ports == std::vector<ListenAddr>{{"0.0.0.0", 7999}});
    CHECK(d.push_in_http_addr == "127.0.0.1");
    CHECK(d.push_in_http_port == 5561);
    CHECK(d.sig_iss == "pushpin");
    CHECK_FALSE(d.sig_key);
    CHECK(d.client_buffer_size == 8192);
    CHECK(d.client_maxconn == 50000);
    CHECK(d.message_wait == 5000);
    CHECK(d.connection_subscription_max == 20);
    CHECK(d.workers == 0);
    CHECK(d.header_timeout == 30);
    CHECK(d.connect_timeout == 5);
}

TEST_CASE("settings: an empty file gives the defaults", "[config]") {
    auto r = load("");
    REQUIRE(r.ok());
    CHECK(r.notices.empty());
    CHECK(r.settings.routes_file == "/etc/test/routes");
    CHECK(r.settings.config_dir == "/etc/test");
    CHECK(r.settings.http_ports == std::vector<ListenAddr>{{"0.0.0.0", 7999}});
}

TEST_CASE("settings: Debian's pushpin.conf loads", "[config]") {
    auto r = load(kDebianConf);
    REQUIRE(r.error == "");
    const Settings& s = r.settings;
    CHECK(s.rundir == "/var/run/pushpin");
    CHECK(s.ipc_prefix == "pushpin-");
    CHECK(s.port_offset == 0);
    CHECK(s.http_ports == std::vector<ListenAddr>{{"0.0.0.0", 7999}});
    CHECK(s.https_ports.empty());
    CHECK(s.local_ports.empty());
    CHECK(s.logdir == "/var/log/pushpin");
    CHECK(s.log_level == 2);
    CHECK(s.client_buffer_size == 8192);
    CHECK(s.client_maxconn == 50000);
    CHECK(s.routes_file == "/etc/test/routes");
    CHECK_FALSE(s.debug);
    CHECK_FALSE(s.auto_cross_origin);
    CHECK_FALSE(s.accept_x_forwarded_protocol);
    CHECK(s.set_x_forwarded_protocol == XForwardedProtocol::ProtoOnly);
    CHECK(s.x_forwarded_for == XffRule{});
    CHECK(s.x_forwarded_for_trusted == XffRule{});
    CHECK_FALSE(s.accept_pushpin_route);
    CHECK_FALSE(s.log_from);
    CHECK_FALSE(s.log_user_agent);
    CHECK(s.sig_iss == "pushpin");
    REQUIRE(s.sig_key);
    CHECK(s.sig_key->secret() == "changeme");
    CHECK_FALSE(s.upstream_key);
    CHECK(s.push_in_http_addr == "127.0.0.1");
    CHECK(s.push_in_http_port == 5561);
    CHECK(s.push_in_http_max_headers_size == 10000);
    CHECK(s.push_in_http_max_body_size == 1000000);
    CHECK(s.message_rate == 2500);
    CHECK(s.message_hwm == 25000);
    CHECK(s.message_wait == 5000);
    CHECK(s.id_cache_ttl == 60);
    CHECK(s.connection_subscription_max == 20);
    CHECK(s.subscription_linger == 60);
    CHECK(s.stats_report_interval == 10);

    // One WARN line per key whose value asks for something gripd does not do, naming it, with file:line.
    CHECK(count_notices(r, LogLevel::Warn, "") == 0); // stats_spec, the last, is implemented
    // One INFO line per key of Pushpin's plumbing, or tuning of a feature warned about.
    CHECK(count_notices(r, LogLevel::Info, "ignoring [global] include={libdir}/internal.conf") == 1);
    CHECK(count_notices(r, LogLevel::Info, "ignoring [runner] services: not needed by gripd") == 1);
    for (const char* key :
         {"[runner] condure_bin", "[runner] mongrel2_bin", "[runner] m2sh_bin", "[runner] zurl_bin",
          "[proxy] orig_headers_need_mark", "[proxy] updates_check", "[proxy] organization_name"}) {
        INFO(key);
        CHECK(count_notices(r, LogLevel::Info, std::string("ignoring ") + key + ":") == 1);
    }
    CHECK(r.notices.size() == 9); // 2 + 7 INFO
    CHECK(r.settings.sockjs_url == "http://cdn.jsdelivr.net/sockjs/0.3.4/sockjs.min.js");
    CHECK(s.push_in_spec == "tcp://127.0.0.1:5560");
    CHECK(s.command_spec == "tcp://127.0.0.1:5563");
    CHECK(s.push_in_sub_specs == "tcp://127.0.0.1:5562");
    CHECK(s.stats_spec.find("stats") != std::string::npos);
    CHECK(s.stats_format == "tnetstring");
    CHECK(s.stats_connection_ttl == 120);
    CHECK(s.stats_subscription_ttl == 60);
    CHECK_FALSE(s.push_in_sub_connect);
}

TEST_CASE("settings: bad values are file:line errors", "[config]") {
    CHECK(load("[runner]\nhttp_port=abc\n").error ==
          "/etc/test/pushpin.conf:2: invalid value for http_port: bad port 'abc': expected 0-65535");
    CHECK(load("\n[runner]\nclient_buffer_size=-1\n").error ==
          "/etc/test/pushpin.conf:3: invalid value '-1' for client_buffer_size: expected an integer from "
          "1024 to "
          "67108864");
    CHECK(load("[proxy]\ndebug=maybe\n").error ==
          "/etc/test/pushpin.conf:2: invalid value 'maybe' for debug: expected true or false");
    CHECK(load("[proxy]\nsig_key=base64:!!!\n").error ==
          "/etc/test/pushpin.conf:2: invalid value for sig_key: bad base64 after 'base64:'");
    CHECK(load("[proxy]\nx_forwarded_for=truncate:x\n").error.rfind("/etc/test/pushpin.conf:2: ", 0) == 0);
    CHECK(load("[proxy]\nx_forwarded_for=prepend\n").error.rfind("/etc/test/pushpin.conf:2: ", 0) == 0);
    CHECK(load("[runner]\nlog_level=x\n").error.rfind("/etc/test/pushpin.conf:2: ", 0) == 0);
    CHECK(load("[runner]\nhttps_ports=1.2.3:443\n").error.rfind("/etc/test/pushpin.conf:2: ", 0) == 0);
    CHECK(load("[runner]\nlocal_ports=/tmp/s?mode=999\n").error.rfind("/etc/test/pushpin.conf:2: ", 0) == 0);
    CHECK(load("[handler]\npush_in_http_port=65536\n").error.rfind("/etc/test/pushpin.conf:2: ", 0) == 0);
    CHECK(load("[handler]\nprometheus_port=nope\n").error.rfind("/etc/test/pushpin.conf:2: ", 0) == 0);
    CHECK(
        load("[handler]\nprometheus_port=ipc:///tmp/m\n").error ==
        "/etc/test/pushpin.conf:2: invalid value for prometheus_port: ipc:// (unix socket) metrics listeners "
        "are not supported by gripd yet: use [addr:]port");
    CHECK(load("[gripd]\nworkers=-1\n").error.rfind("/etc/test/pushpin.conf:2: ", 0) == 0);
    CHECK(load("[proxy]\nroutesfile=\n").error == "/etc/test/pushpin.conf:2: routesfile cannot be empty");
    CHECK(load("[proxy]\nsig_key=file:/nonexistent/key.pem\n").error ==
          "/etc/test/pushpin.conf:2: invalid value for sig_key: file /nonexistent/key.pem: cannot open: No "
          "such "
          "file or directory");
    // Relative key files resolve against the config file's directory.
    CHECK(load("[proxy]\nupstream_key=file:keys/up.pem\n").error ==
          "/etc/test/pushpin.conf:2: invalid value for upstream_key: file /etc/test/keys/up.pem: cannot "
          "open: No "
          "such file or directory");
    // Syntax errors too.
    CHECK(load("[runner\n").error == "/etc/test/pushpin.conf:1: section header is missing ']'");
    // No listeners at all.
    CHECK(load("[runner]\nhttp_port=\n").error.find("no server ports configured") != std::string::npos);
    // Only listeners gripd cannot open yet: refused, saying why (not a silent start with none).
    CHECK(load("[runner]\nhttp_port=\nhttps_ports=443\n").ok()); // TLS ports alone are enough
    // local_ports alone is enough.
    auto only_local = load("[runner]\nhttp_port=\nlocal_ports=unix:/tmp/s?mode=0600\n");
    CHECK(only_local.error == "");
    CHECK(only_local.settings.local_ports == std::vector<LocalPort>{{"/tmp/s", 0600, "", ""}});
}

TEST_CASE("settings: empty int value keeps the default", "[config]") {
    auto r = load("[handler]\nmessage_rate=\nmessage_block_size=\n");
    REQUIRE(r.ok());
    CHECK(r.settings.message_rate == -1);
}

TEST_CASE("settings: unknown keys warn once each, ignored keys inform once each", "[config]") {
    auto r =
        load("[proxy]\nbogus=1\n[nosuch]\nx=2\n[handler]\nfoo_spec=tcp://x\nproxy_intreq_in_specs=ipc://y\n"
             "[runner]\nservices=connmgr\nallow_compression=true\n");
    REQUIRE(r.ok());
    CHECK(count_notices(r, LogLevel::Warn, "/etc/test/pushpin.conf:2: unknown key [proxy] bogus") == 1);
    CHECK(count_notices(r, LogLevel::Warn, "/etc/test/pushpin.conf:4: unknown key [nosuch] x") == 1);
    CHECK(count_notices(r, LogLevel::Info, "ignoring [handler] foo_spec:") == 1);
    CHECK(count_notices(r, LogLevel::Info, "ignoring [handler] proxy_intreq_in_specs:") == 1);
    CHECK(count_notices(r, LogLevel::Info, "ignoring [runner] services: not needed by gripd") == 1);
    CHECK(count_notices(r, LogLevel::Info, "ignoring [runner] allow_compression:") == 1);
    CHECK(r.notices.size() == 6);
}

TEST_CASE("settings: every typed key", "[config]") {
    auto r = load("[global]\n"
                  "rundir=/run/g\n"
                  "ipc_prefix=g-\n"
                  "port_offset=3\n"
                  "[runner]\n"
                  "http_port=7999, 127.0.0.1:8000,[::1]:8001\n"
                  "https_ports=443,[::]:8443\n"
                  "local_ports={rundir}/{ipc_prefix}server?mode=660&user=www&group=web,/tmp/b\n"
                  "logdir={rundir}/log\n"
                  "log_level=3,proxy:4\n"
                  "client_buffer_size=16384\n"
                  "client_maxconn=100\n"
                  "[proxy]\n"
                  "routesfile=../routes.d/main\n"
                  "debug=true\n"
                  "auto_cross_origin=yes\n"
                  "accept_x_forwarded_protocol=1\n"
                  "set_x_forwarded_protocol=true\n"
                  "x_forwarded_for=truncate:0,append\n"
                  "x_forwarded_for_trusted=append\n"
                  "accept_pushpin_route=true\n"
                  "cdn_loop=gripd-cdn\n"
                  "log_from=true\n"
                  "log_user_agent=true\n"
                  "sig_iss=me\n"
                  "sig_key=base64:AAEC/w==\n"
                  "upstream_key=secret\n"
                  "prometheus_port=127.0.0.1:9000\n"
                  "prometheus_prefix=pp_\n"
                  "[handler]\n"
                  "push_in_http_addr=0.0.0.0\n"
                  "push_in_http_port=6000\n"
                  "push_in_http_max_headers_size=20000\n"
                  "push_in_http_max_body_size=2000000\n"
                  "message_rate=10\n"
                  "message_hwm=20\n"
                  "message_wait=100\n"
                  "id_cache_ttl=5\n"
                  "connection_subscription_max=7\n"
                  "subscription_linger=9\n"
                  "stats_report_interval=11\n"
                  "prometheus_port=[::1]:9101\n"
                  "prometheus_prefix=hh_\n"
                  "[gripd]\n"
                  "workers=4\n"
                  "bus=redis://127.0.0.1:6379\n"
                  "header_timeout=12\n"
                  "idle_timeout=13\n"
                  "connect_timeout=14\n"
                  "shutdown_grace=15\n"
                  "max_backend_conns_per_target=16\n");
    REQUIRE(r.error == "");
    const Settings& s = r.settings;
    CHECK(s.rundir == "/run/g");
    CHECK(s.ipc_prefix == "g-");
    CHECK(s.port_offset == 3);
    CHECK(s.http_ports == std::vector<ListenAddr>{{"0.0.0.0", 7999}, {"127.0.0.1", 8000}, {"::1", 8001}});
    CHECK(s.https_ports == std::vector<ListenAddr>{{"0.0.0.0", 443}, {"::", 8443}});
    CHECK(s.local_ports ==
          std::vector<LocalPort>{{"/run/g/g-server", 0660, "www", "web"}, {"/tmp/b", -1, "", ""}});
    CHECK(s.logdir == "/run/g/log");
    CHECK(s.log_level == 3);
    CHECK(s.client_buffer_size == 16384);
    CHECK(s.client_maxconn == 100);
    CHECK(s.routes_file == "/etc/routes.d/main");
    CHECK(s.debug);
    CHECK(s.auto_cross_origin);
    CHECK(s.accept_x_forwarded_protocol);
    CHECK(s.set_x_forwarded_protocol == XForwardedProtocol::Both);
    CHECK(s.x_forwarded_for == XffRule{0, true});
    CHECK(s.x_forwarded_for_trusted == XffRule{-1, true});
    CHECK(s.accept_pushpin_route);
    CHECK(s.cdn_loop == "gripd-cdn");
    CHECK(s.log_from);
    CHECK(s.log_user_agent);
    CHECK(s.sig_iss == "me");
    REQUIRE(s.sig_key);
    CHECK(s.sig_key->secret() == std::string("\x00\x01\x02\xff", 4));
    REQUIRE(s.upstream_key);
    CHECK(s.upstream_key->secret() == "secret");
    CHECK(s.proxy_prometheus_port == "127.0.0.1:9000");
    CHECK(s.proxy_prometheus_prefix == "pp_");
    CHECK(s.push_in_http_addr == "0.0.0.0");
    CHECK(s.push_in_http_port == 6003); // port_offset added
    CHECK(s.push_in_http_max_headers_size == 20000);
    CHECK(s.push_in_http_max_body_size == 2000000);
    CHECK(s.message_rate == 10);
    CHECK(s.message_hwm == 20);
    CHECK(s.message_wait == 100);
    CHECK(s.id_cache_ttl == 5);
    CHECK(s.connection_subscription_max == 7);
    CHECK(s.subscription_linger == 9);
    CHECK(s.stats_report_interval == 11);
    CHECK(s.handler_prometheus_port == "[::1]:9101");
    CHECK(s.handler_prometheus_prefix == "hh_");
    CHECK(s.workers == 4);
    CHECK(effective_workers(s) == 4);
    CHECK(s.bus == "redis://127.0.0.1:6379");
    CHECK(s.header_timeout == 12);
    CHECK(s.idle_timeout == 13);
    CHECK(s.connect_timeout == 14);
    CHECK(s.shutdown_grace == 15);
    CHECK(s.max_backend_conns_per_target == 16);
}

TEST_CASE("settings: set_x_forwarded_protocol values", "[config]") {
    CHECK(load("[proxy]\nset_x_forwarded_protocol=true\n").settings.set_x_forwarded_protocol ==
          XForwardedProtocol::Both);
    CHECK(load("[proxy]\nset_x_forwarded_protocol=proto-only\n").settings.set_x_forwarded_protocol ==
          XForwardedProtocol::ProtoOnly);
    CHECK(load("[proxy]\nset_x_forwarded_protocol=false\n").settings.set_x_forwarded_protocol ==
          XForwardedProtocol::Off);
    CHECK(load("[proxy]\nset_x_forwarded_protocol=whatever\n").settings.set_x_forwarded_protocol ==
          XForwardedProtocol::Off);
}

TEST_CASE("settings: command line overrides", "[config]") {
    CliOptions cli;
    cli.port = ListenAddr{"127.0.0.1", 9999};
    cli.workers = 2;
    cli.log_level = 4;
    cli.log_file = "/tmp/x.log";
    cli.route_lines = {"* test"};
    auto r = load(
        "[runner]\nhttp_port=7999\nhttps_ports=443\nlocal_ports=/tmp/s\nlog_level=1\n[gripd]\nworkers=8\n",
        cli);
    REQUIRE(r.ok());
    CHECK(r.settings.http_ports == std::vector<ListenAddr>{{"127.0.0.1", 9999}});
    CHECK(r.settings.https_ports.empty());
    CHECK(r.settings.local_ports.empty());
    CHECK(r.settings.workers == 2);
    CHECK(r.settings.log_level == 4);
    CHECK(r.settings.log_file == "/tmp/x.log");
    CHECK(r.settings.route_lines == std::vector<std::string>{"* test"});
}

TEST_CASE("settings: --id sets ipc_prefix and port offset", "[config]") {
    CliOptions cli;
    cli.id = 2;
    auto r = load("[global]\nrundir=/run\nport_offset=5\n[runner]\nlocal_ports={rundir}/{ipc_prefix}server\n",
                  cli);
    REQUIRE(r.ok());
    CHECK(r.settings.ipc_prefix == "p2-");
    CHECK(r.settings.port_offset == 20);
    CHECK(r.settings.push_in_http_port == 5581);
    CHECK(r.settings.local_ports[0].path == "/run/p2-server");
    // Without --id, port_offset from the file applies.
    CHECK(load("[global]\nport_offset=5\n").settings.push_in_http_port == 5566);
    // A disabled control port stays disabled.
    CHECK(load("[global]\nport_offset=5\n[handler]\npush_in_http_port=0\n").settings.push_in_http_port == 0);
    CHECK_FALSE(load("[global]\nport_offset=65000\n").ok());
}

TEST_CASE("settings: aliases and deprecated keys", "[config]") {
    auto r = load("[runner]\nrundir=/old\n[handler]\npush_in_max_body_size=5\n[global]\nworkers=3\n");
    REQUIRE(r.ok());
    CHECK(r.settings.rundir == "/old");
    CHECK(count_notices(r, LogLevel::Warn, "deprecated") == 1);
    CHECK(r.settings.push_in_http_max_body_size == 5);
    CHECK(r.settings.workers == 3);

    r = load("[global]\nrundir=/new\nworkers=3\n[runner]\nrundir=/old\n[handler]\npush_in_max_body_size=5\n"
             "push_in_http_max_body_size=6\n[gripd]\nworkers=1\n");
    REQUIRE(r.ok());
    CHECK(r.settings.rundir == "/new");
    CHECK(r.settings.push_in_http_max_body_size == 6);
    CHECK(r.settings.workers == 1);
    CHECK(count_notices(r, LogLevel::Info, "ignoring [runner] rundir: [global] rundir is set") == 1);
}

TEST_CASE("settings: templates and absolute routes file", "[config]") {
    auto r = load(
        "[global]\nlibdir=/lib/x\nrundir=/r\n[proxy]\nroutesfile={libdir}/routes\ncdn_loop={rundir}{nope}\n");
    REQUIRE(r.ok());
    CHECK(r.settings.routes_file == "/lib/x/routes");
    CHECK(r.settings.cdn_loop == "/r{nope}");
}

TEST_CASE("settings: include files", "[config]") {
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / ("gripd_settings_test_" + std::to_string(getpid()));
    fs::create_directories(dir);
    {
        std::ofstream(dir / "extra.conf")
            << "[proxy]\ndebug=true\nsig_iss=from-include\n[handler]\nmessage_wait=7\n";
        std::ofstream(dir / "bad.conf") << "[proxy\n";
    }
    std::string main_path = (dir / "gripd.conf").string();
    auto r = load_settings_text("[global]\ninclude=extra.conf\n[proxy]\nsig_iss=main\n", main_path, {});
    REQUIRE(r.ok());
    CHECK(r.settings.debug);
    CHECK(r.settings.sig_iss == "main"); // the main file wins
    CHECK(r.settings.message_wait == 7);

    r = load_settings_text("[global]\ninclude=missing.conf\n", main_path, {});
    REQUIRE(r.ok());
    CHECK(count_notices(r, LogLevel::Warn, "missing.conf not found") == 1);

    r = load_settings_text("[global]\ninclude=bad.conf\n", main_path, {});
    CHECK(r.error == (dir / "bad.conf").string() + ":1: section header is missing ']'");

    // Pushpin's internal.conf is never read, whatever the path.
    r = load_settings_text("[global]\ninclude=internal.conf\n", main_path, {});
    REQUIRE(r.ok());
    CHECK(r.notices.size() == 1);
    CHECK(count_notices(r, LogLevel::Info, "ignoring [global] include=internal.conf") == 1);

    // load_settings reads the file and says which default it used only when --config was not given.
    { std::ofstream(main_path) << "[runner]\nhttp_port=1234\n"; }
    CliOptions cli;
    cli.config_file = main_path;
    r = load_settings(cli);
    REQUIRE(r.ok());
    CHECK(r.settings.http_ports == std::vector<ListenAddr>{{"0.0.0.0", 1234}});
    CHECK(r.settings.routes_file == (dir / "routes").string());
    CHECK(r.notices.empty());

    cli.config_file = (dir / "nope.conf").string();
    r = load_settings(cli);
    CHECK(r.error.rfind(cli.config_file + ": cannot open", 0) == 0);
    cli.config_file = dir.string();
    CHECK_FALSE(load_settings(cli).ok());

    fs::remove_all(dir);
}

TEST_CASE("settings: an empty key is no key", "[config]") {
    auto r = load("[proxy]\nsig_key=\nupstream_key=\n");
    REQUIRE(r.ok());
    CHECK_FALSE(r.settings.sig_key);
    CHECK_FALSE(r.settings.upstream_key);
}

TEST_CASE("settings: listen addresses", "[config]") {
    ListenAddr a;
    std::string err;
    CHECK(parse_listen_addr("*:80", &a, &err));
    CHECK(a == ListenAddr{"0.0.0.0", 80});
    CHECK(parse_listen_addr("localhost:80", &a, &err));
    CHECK(a == ListenAddr{"127.0.0.1", 80});
    CHECK(parse_listen_addr("[::]:80", &a, &err));
    CHECK(a.is_ipv6());
    CHECK(a.to_string() == "[::]:80");
    CHECK(ListenAddr{"10.0.0.1", 5}.to_string() == "10.0.0.1:5");
    CHECK_FALSE(parse_listen_addr("::1:80", &a, &err));
    CHECK_FALSE(parse_listen_addr("[::1]80", &a, &err));
    CHECK_FALSE(parse_listen_addr("[1.2.3.4]:80", &a, &err));
    CHECK_FALSE(parse_listen_addr("", &a, &err));
    CHECK_FALSE(parse_listen_addr("-1", &a, &err));
}

TEST_CASE("settings: shipped conf/gripd.conf loads without warnings", "[config]") {
    CliOptions cli;
    cli.config_file = GRIPD_SOURCE_DIR "/conf/gripd.conf";
    auto r = load_settings(cli);
    REQUIRE(r.error == "");
    CHECK(r.notices.empty());
    CHECK(r.settings.http_ports == std::vector<ListenAddr>{{"0.0.0.0", 7999}});
    CHECK(r.settings.push_in_http_addr == "127.0.0.1");
    CHECK(r.settings.push_in_http_port == 5561);
    CHECK(r.settings.routes_file == GRIPD_SOURCE_DIR "/conf/routes");
    CHECK(r.settings.log_level == 2);
    CHECK(r.settings.workers == 0);
    REQUIRE(r.settings.sig_key);
    CHECK(r.settings.sig_key->secret() == "changeme");
}

TEST_CASE("settings: [gripd] memory_limit", "[config]") {
    CHECK(load("").settings.memory_limit == -1); // from the machine
    CHECK(load("[gripd]\nmemory_limit=auto\n").settings.memory_limit == -1);
    CHECK(load("[gripd]\nmemory_limit=0\n").settings.memory_limit == 0);
    CHECK(load("[gripd]\nmemory_limit=off\n").settings.memory_limit == 0);
    CHECK(load("[gripd]\nmemory_limit=123456\n").settings.memory_limit == 123456);
    CHECK(load("[gripd]\nmemory_limit=64k\n").settings.memory_limit == 64 * 1024);
    CHECK(load("[gripd]\nmemory_limit=512M\n").settings.memory_limit == 512LL << 20);
    CHECK(load("[gripd]\nmemory_limit=2G\n").settings.memory_limit == 2LL << 30);
    auto bad = load("[gripd]\nmemory_limit=lots\n");
    CHECK(bad.error.find("invalid value 'lots' for memory_limit") != std::string::npos);
    CHECK_FALSE(load("[gripd]\nmemory_limit=-5M\n").error.empty());
}

TEST_CASE("settings: [gripd] history byte bounds: off is no bound, auto the default", "[config]") {
    constexpr int64_t kNoBound = std::numeric_limits<int64_t>::max();
    const auto defaults = load("").settings;
    CHECK(defaults.history_channel_bytes == 1048576);
    CHECK(defaults.history_max_bytes == 67108864);
    for (const char* key : {"history_channel_bytes", "history_max_bytes"}) {
        auto value = [&](const std::string& v) {
            auto s = load(std::string("[gripd]\n") + key + "=" + v + "\n").settings;
            return std::string(key) == "history_channel_bytes" ? s.history_channel_bytes
                                                               : s.history_max_bytes;
        };
        CHECK(value("off") == kNoBound);
        CHECK(value("0") == kNoBound);
        CHECK(value("auto") == (std::string(key) == "history_channel_bytes" ? 1048576 : 67108864));
        CHECK(value("2M") == 2LL << 20);
    }
}

TEST_CASE("settings: [proxy] prometheus_port opens beside [handler]'s; the same address warns", "[config]") {
    auto both = load("[proxy]\nprometheus_port=127.0.0.1:9000\n[handler]\nprometheus_port=9100\n");
    REQUIRE(both.ok());
    CHECK(both.notices.empty());
    CHECK(both.settings.proxy_prometheus_port == "127.0.0.1:9000");
    CHECK(both.settings.handler_prometheus_port == "9100");
    auto same = load("[proxy]\nprometheus_port=9100\n[handler]\nprometheus_port=9100\n");
    REQUIRE(same.ok());
    CHECK(count_notices(same, LogLevel::Warn,
                        "/etc/test/pushpin.conf:2: [proxy] prometheus_port=9100: the same as [handler] "
                        "prometheus_port, which serves it (with [handler] prometheus_prefix); no second "
                        "listener is opened") == 1);
    CHECK(load("[proxy]\nprometheus_port=9000\n").notices.empty());
    CHECK(load("[handler]\nprometheus_port=9100\n").notices.empty());
}
