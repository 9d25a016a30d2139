#include "gripd/config/ini.hpp"

#include <catch2/catch.hpp>

using namespace gripd::config;

TEST_CASE("ini: sections, keys, comments, line numbers", "[config]") {
    auto r = parse_ini("\xEF\xBB\xBF# top comment\n"
                       "; another\n"
                       "orphan = 1\n"
                       "\n"
                       "[global]\r\n"
                       "  rundir = /var/run/x  \r\n"
                       "[ proxy ]   # trailing comment\n"
                       "sig_key=\n"
                       "debug=true ; inline comment\n"
                       "cdn_loop=a#b\n"
                       "eq=a=b\n",
                       "test.conf");
    REQUIRE(r.ok());
    const auto& e = r.ini.entries();
    REQUIRE(e.size() == 6);
    CHECK(e[0].section == "");
    CHECK(e[0].key == "orphan");
    CHECK(e[0].line == 3);
    CHECK(e[1].section == "global");
    CHECK(e[1].value == "/var/run/x");
    CHECK(e[1].line == 6);
    CHECK(e[1].file == "test.conf");
    CHECK(e[2].section == "proxy");
    CHECK(e[2].value == "");
    CHECK(r.ini.find("proxy", "debug")->value == "true");
    CHECK(r.ini.find("proxy", "cdn_loop")->value == "a#b");
    CHECK(r.ini.find("proxy", "eq")->value == "a=b");
    CHECK(r.ini.find("proxy", "missing") == nullptr);
    CHECK(r.ini.find("global", "debug") == nullptr);
}

TEST_CASE("ini: quoted values", "[config]") {
    auto r = parse_ini("[a]\n"
                       "k1=\"  spaced ; not a comment  \"\n"
                       "k2=\"esc \\\" and \\\\\" tail\n"
                       "k3=pre\"mid\"post ; c\n",
                       "q.conf");
    REQUIRE(r.ok());
    CHECK(r.ini.find("a", "k1")->value == "  spaced ; not a comment  ");
    CHECK(r.ini.find("a", "k2")->value == "esc \" and \\ tail");
    CHECK(r.ini.find("a", "k3")->value == "premidpost");
}

TEST_CASE("ini: duplicate keys and sections, last wins", "[config]") {
    auto r = parse_ini("[a]\nk=1\n[b]\nk=2\n[a]\nk=3\n", "d.conf");
    REQUIRE(r.ok());
    CHECK(r.ini.entries().size() == 3);
    CHECK(r.ini.find("a", "k")->value == "3");
    CHECK(r.ini.find("a", "k")->line == 6);
    CHECK(r.ini.find("b", "k")->value == "2");
}

TEST_CASE("ini: keys are case-sensitive like QSettings on Unix", "[config]") {
    auto r = parse_ini("[Proxy]\nDebug=1\n", "c.conf");
    REQUIRE(r.ok());
    CHECK(r.ini.find("proxy", "debug") == nullptr);
    CHECK(r.ini.find("Proxy", "Debug") != nullptr);
}

TEST_CASE("ini: syntax errors carry file:line", "[config]") {
    CHECK(parse_ini("[a]\nk=1\nno equals here\n", "e.conf").error == "e.conf:3: expected key=value");
    CHECK(parse_ini("[abc\n", "e.conf").error == "e.conf:1: section header is missing ']'");
    CHECK(parse_ini("[a] junk\n", "e.conf").error == "e.conf:1: unexpected text after section header");
    CHECK(parse_ini("\n = v\n", "e.conf").error == "e.conf:2: empty key before '='");
    CHECK(parse_ini("k=\"open\n", "e.conf").error == "e.conf:1: unterminated quote in value of k");
}

TEST_CASE("ini: empty text and no trailing newline", "[config]") {
    CHECK(parse_ini("", "x").ok());
    CHECK(parse_ini("", "x").ini.entries().empty());
    auto r = parse_ini("[s]\nk=v", "x");
    REQUIRE(r.ok());
    CHECK(r.ini.find("s", "k")->value == "v");
}

TEST_CASE("ini: add_missing keeps existing keys", "[config]") {
    auto a = parse_ini("[s]\nk=main\n", "a").ini;
    auto b = parse_ini("[s]\nk=inc\nother=x\n", "b").ini;
    a.add_missing(b);
    CHECK(a.find("s", "k")->value == "main");
    CHECK(a.find("s", "other")->value == "x");
    CHECK(a.find("s", "other")->file == "b");
}
