// The route options table as a whole: every option it lists is accepted, each one it says gripd does not
// support warns exactly once with the routes file and line, and the others stay silent.
#include "gripd/config/routes.hpp"

#include "config/route_options_internal.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace gripd::config;
namespace ro = gripd::config::route_options;

namespace {

// A route line using `o` once (with a value, as options with one need it).
std::string line_with(const ro::Option& o) {
    std::string opt(o.name);
    if (o.name == "proto") opt += "=http";
    if (o.name == "ssl" && o.where == ro::Where::Condition) opt += "=no";
    if (o.name == "jsonp_mode") opt += "=basic";
    if (o.name == "header") opt += "=X-A:1";
    if (o.name == "path_beg" || o.name == "replace_beg" || o.name == "sockjs" || o.name == "sockjs_as_path")
        opt += "=/p";
    if (o.name == "path_rem" || o.name == "log_level" || o.name == "history_size" || o.name == "history_ttl")
        opt += "=1";
    if (o.name == "id" || o.name == "sig_iss" || o.name == "sig_key" || o.name == "prefix" ||
        o.name == "as_host" || o.name == "jsonp_cb" || o.name == "jsonp_body" || o.name == "jsonp_defcb" ||
        o.name == "jsonp_defmethod" || o.name == "host" || o.name == "sub")
        opt += "=x";
    if (o.name == "ipc_file_mode") opt += "=660";
    if (o.where == ro::Where::Condition) return "*," + opt + " backend:443,ssl";
    // client_cert/client_key must come together and name readable files.
    if (o.name == "client_cert" || o.name == "client_key")
        return "* backend:443,ssl,client_cert=/dev/null,client_key=/dev/null";
    return "* backend:443,ssl," + opt;
}

} // namespace

TEST_CASE("route options: the table is sound", "[routes]") {
    auto all = ro::options();
    for (size_t i = 0; i < all.size(); ++i) {
        INFO(all[i].name);
        CHECK_FALSE(all[i].text.empty());
        CHECK(all[i].text.find('|') == std::string_view::npos);
        for (size_t j = 0; j < i; ++j)
            CHECK_FALSE((all[j].where == all[i].where && all[j].name == all[i].name));
    }
}

TEST_CASE("route options: each unsupported option warns once with file:line, the others stay silent",
          "[routes]") {
    for (const auto& o : ro::options()) {
        std::string line = line_with(o);
        INFO(line);
        auto r = parse_routes("# first line\n" + line + "\n", "/etc/pushpin/routes");
        REQUIRE(r.errors.empty());
        REQUIRE(r.table->size() == 1);
        if (o.group ==
            "jsonp_*") { // they work with `aco` (or auto_cross_origin, unseen here): one line says so
            REQUIRE(r.warnings.size() == 1);
            CHECK(r.warnings[0].find("act only with 'aco'") != std::string::npos);
            continue;
        }
        bool warns =
            o.status == ro::Status::Warn || o.status == ro::Status::Partial || o.status == ro::Status::WsOnly;
        if (!warns) {
            CHECK(r.warnings.empty());
            continue;
        }
        REQUIRE(r.warnings.size() == 1);
        const std::string& w = r.warnings[0];
        CHECK(w.rfind("/etc/pushpin/routes:2: ", 0) == 0);
        std::string named = o.group.empty() ? std::string(o.name) : std::string(o.group);
        CHECK(w.find("'" + named + "'") != std::string::npos);
        CHECK(w.find(std::string(o.text)) != std::string::npos);
    }
}

TEST_CASE("route options: sub= works for HTTP and WebSocket routes alike", "[routes]") {
    CHECK(parse_routes("* a:1,sub=x\n", "routes").warnings.empty());
    CHECK(parse_routes("*,proto=ws a:1,sub=x\n", "routes").warnings.empty());
    CHECK(parse_routes("*,aco,jsonp_cb=c a:1,untrusted,trust_connect_host\n", "routes").warnings.empty());
}

TEST_CASE("route options: a group warns once per line, an option given twice once", "[routes]") {
    auto r = parse_routes("*,jsonp_cb=c,jsonp_body=b,jsonp_mode=basic,session,session a:1\n", "routes");
    REQUIRE(r.warnings.size() == 2);
    CHECK(r.warnings[0].rfind("routes:1: route options 'jsonp_*' act only with 'aco'", 0) == 0);
    CHECK(r.warnings[1].rfind("routes:1: route option 'session' is not supported", 0) == 0);
}

TEST_CASE("route options: history_size and history_ttl (gripd)", "[routes]") {
    auto r = parse_routes("a.example,history_size=5,history_ttl=30 backend:80\nb.example b:80\n", "routes");
    REQUIRE(r.errors.empty());
    CHECK(r.table->routes()[0].history_size == 5);
    CHECK(r.table->routes()[0].history_ttl == 30);
    CHECK(r.table->routes()[1].history_size == -1); // the [gripd] default
    CHECK(r.table->routes()[1].history_ttl == -1);
    r = parse_routes("*,history_size=x backend:80\n", "routes");
    CHECK(r.errors.size() == 1);
}
