#include "gripd/config/cli.hpp"

#include <catch2/catch.hpp>

#include <initializer_list>
#include <string>
#include <vector>

using namespace gripd::config;

namespace {

CliResult parse(std::initializer_list<const char*> args) {
    std::vector<std::string> storage{"gripd"};
    for (auto a : args)
        storage.emplace_back(a);
    std::vector<char*> argv;
    for (auto& s : storage)
        argv.push_back(s.data());
    argv.push_back(nullptr);
    return parse_cli(static_cast<int>(storage.size()), argv.data());
}

} // namespace

TEST_CASE("cli: no arguments", "[cli]") {
    auto r = parse({});
    REQUIRE(r.ok());
    CHECK(r.options.config_file.empty());
    CHECK_FALSE(r.options.port);
    CHECK_FALSE(r.options.log_level);
    CHECK(r.options.route_lines.empty());
}

TEST_CASE("cli: option value forms", "[cli]") {
    auto a = parse({"--config", "/tmp/a.conf"});
    auto b = parse({"--config=/tmp/a.conf"});
    auto c = parse({"-config", "/tmp/a.conf"});
    auto d = parse({"-config=/tmp/a.conf"});
    for (auto* r : {&a, &b, &c, &d}) {
        REQUIRE(r->ok());
        CHECK(r->options.config_file == "/tmp/a.conf");
    }
    CHECK(parse({"--config="}).options.config_file.empty());
}

TEST_CASE("cli: every option", "[cli]") {
    auto r = parse({"--port", "127.0.0.1:8000", "--route", "* localhost:80", "--route=api.example.com test",
                    "--workers", "3", "--loglevel=4", "--logfile", "/tmp/g.log", "--id", "2", "-m"});
    REQUIRE(r.ok());
    const auto& o = r.options;
    REQUIRE(o.port);
    CHECK(o.port->addr == "127.0.0.1");
    CHECK(o.port->port == 8000);
    CHECK(o.route_lines == std::vector<std::string>{"* localhost:80", "api.example.com test"});
    CHECK(o.workers == 3);
    CHECK(o.log_level == 4);
    CHECK(o.log_file == "/tmp/g.log");
    CHECK(o.id == 2);
    CHECK(o.merge_output);
    CHECK(parse({"--merge-output"}).options.merge_output);
}

TEST_CASE("cli: port forms", "[cli]") {
    CHECK(parse({"--port", "7999"}).options.port == ListenAddr{"0.0.0.0", 7999});
    CHECK(parse({"--port=[::1]:7999"}).options.port == ListenAddr{"::1", 7999});
    CHECK(parse({"--port", "0"}).options.port == ListenAddr{"0.0.0.0", 0});
    CHECK_FALSE(parse({"--port", "abc"}).ok());
    CHECK_FALSE(parse({"--port", "70000"}).ok());
    CHECK_FALSE(parse({"--port", "example.com:80"}).ok());
}

TEST_CASE("cli: log levels", "[cli]") {
    CHECK(parse({"--loglevel", "3"}).options.log_level == 3);
    CHECK(parse({"--loglevel", "2,proxy:3"}).options.log_level == 2);
    CHECK(parse({"--loglevel", "proxy:3,1"}).options.log_level == 1);
    CHECK(parse({"--loglevel", "proxy:4"}).options.log_level == 4);
    CHECK(parse({"--verbose"}).options.log_level == 3);
    CHECK(parse({"--loglevel", "1", "--verbose"}).options.log_level == 3);
    CHECK(parse({"--verbose", "--loglevel", "1"}).options.log_level == 3);
    CHECK_FALSE(parse({"--loglevel", "-1"}).ok());
    CHECK_FALSE(parse({"--loglevel", "x"}).ok());
    CHECK_FALSE(parse({"--loglevel", "2,"}).ok());
    CHECK_FALSE(parse({"--loglevel", ":3"}).ok());
}

TEST_CASE("cli: help and version", "[cli]") {
    CHECK(parse({"--help"}).options.help);
    CHECK(parse({"-h"}).options.help);
    CHECK(parse({"--help-all"}).options.help);
    CHECK(parse({"--version"}).options.version);
    CHECK(parse({"-v"}).options.version);
    std::string usage = cli_usage();
    for (const char* opt : {"--config", "--logfile", "--loglevel", "--verbose", "--merge-output", "--port",
                            "--id", "--route", "--workers", "--help", "--version"})
        CHECK(usage.find(opt) != std::string::npos);
}

TEST_CASE("cli: errors", "[cli]") {
    CHECK(parse({"--bogus"}).error == "unknown option '--bogus'");
    CHECK(parse({"-x"}).error == "unknown option '-x'");
    CHECK(parse({"--config"}).error == "missing value after '--config'");
    CHECK(parse({"stray"}).error == "unexpected argument 'stray'");
    CHECK(parse({"--verbose=1"}).error == "option 'verbose' takes no value");
    CHECK_FALSE(parse({"--workers", "-2"}).ok());
    CHECK_FALSE(parse({"--id", "x"}).ok());
    CHECK(parse({"--"}).ok());
    CHECK_FALSE(parse({"--", "x"}).ok());
}

TEST_CASE("cli: default config file", "[cli]") {
    std::string f = default_config_file();
    CHECK((f == "/etc/gripd/gripd.conf" || f == "/etc/pushpin/pushpin.conf"));
}
