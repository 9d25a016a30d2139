#include "gripd/config/routes.hpp"

#include "unit/config/config_test_paths.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace gripd::config;

namespace {

RoutesResult parse(std::string_view text) {
    return parse_routes(text, "routes");
}

// Parses one line that must be valid and returns its route.
Route one(std::string_view line) {
    auto r = parse(line);
    INFO(line);
    REQUIRE(r.errors.empty());
    REQUIRE(r.table->size() == 1);
    return r.table->routes()[0];
}

std::string error_of(std::string_view text) {
    auto r = parse(text);
    return r.errors.empty() ? std::string() : r.errors[0];
}

} // namespace

TEST_CASE("routes: Pushpin's default and simple lines", "[routes]") {
    auto r = parse("# comment\n\n* test\n   # indented comment\n");
    REQUIRE(r.ok());
    REQUIRE(r.table->size() == 1);
    const Route& route = r.table->routes()[0];
    CHECK(route.host_kind == HostKind::Any);
    REQUIRE(route.targets.size() == 1);
    CHECK(route.targets[0].type == TargetType::Test);
    CHECK(route.line == 3);
    CHECK(route.file == "routes");
    CHECK(route.id == "*,*,*,*");
    CHECK_FALSE(route.explicit_id);

    Route b = one("example.com 127.0.0.1:8080 backup:80  # trailing comment");
    CHECK(b.host_kind == HostKind::Exact);
    CHECK(b.host == "example.com");
    REQUIRE(b.targets.size() == 2);
    CHECK(b.targets[0].connect_host == "127.0.0.1");
    CHECK(b.targets[0].connect_port == 8080);
    CHECK(b.targets[0].trusted);
    CHECK(b.targets[1].to_string() == "backup:80");
    CHECK(b.id == "example.com,*,*,*");
}

TEST_CASE("routes: every condition prop", "[routes]") {
    Route r =
        one("example.com,proto=ws,ssl=yes,path_beg=/api/,id=main,sig_iss=iss1,sig_key=base64:aGk=,"
            "prefix=pre-,orig_headers,as_host=backend.local:81,replace_beg=/v2/,debug,aco,jsonp_mode=basic,"
            "jsonp_cb=cb,jsonp_body=bd,jsonp_defcb=dcb,session,sockjs=/sock,sockjs_as_path=/ws,"
            "header=\"X-A:  one\",header=X-B:,no_grip,log_level=3 localhost:80");
    CHECK(r.proto == RouteProto::WebSocket);
    CHECK(r.ssl == RouteSsl::Yes);
    CHECK(r.path_beg == "/api/");
    CHECK(r.id == "main");
    CHECK(r.explicit_id);
    CHECK(r.sig_iss == "iss1");
    REQUIRE(r.sig_key);
    CHECK(r.sig_key->secret() == "hi");
    CHECK(r.prefix == "pre-");
    CHECK(r.orig_headers);
    CHECK(r.as_host == "backend.local:81");
    CHECK(r.path_rem == 5);
    CHECK(r.path_prepend == "/v2/");
    CHECK(r.debug);
    CHECK(r.aco);
    CHECK(r.jsonp_mode == JsonpMode::Basic);
    CHECK(r.jsonp_callback_param == "cb");
    CHECK(r.jsonp_body_param == "bd");
    CHECK(r.jsonp_default_callback == "dcb");
    CHECK(r.jsonp_default_method == "POST"); // basic mode default
    CHECK(r.session);
    CHECK(r.sockjs_path == "/sock");
    CHECK(r.sockjs_as_path == "/ws");
    REQUIRE(r.headers.size() == 2);
    CHECK(r.headers[0].name == "X-A");
    CHECK(r.headers[0].value == "one");
    CHECK(r.headers[1].name == "X-B");
    CHECK(r.headers[1].value == "");
    CHECK_FALSE(r.grip);
    CHECK(r.log_level == 3);

    Route d = one("* localhost:80");
    CHECK(d.proto == RouteProto::Any);
    CHECK(d.ssl == RouteSsl::Any);
    CHECK(d.path_beg.empty());
    CHECK_FALSE(d.sig_key);
    CHECK(d.path_rem == 0);
    CHECK(d.jsonp_mode == JsonpMode::Extended);
    CHECK(d.jsonp_callback_param == "callback");
    CHECK(d.jsonp_default_method == "GET");
    CHECK(d.grip);
    CHECK(d.log_level == -1);
    CHECK_FALSE(d.debug);

    CHECK(one("*,proto=http,ssl=no,path_rem=3,jsonp_defmethod=PUT localhost:80").path_rem == 3);
    CHECK(one("*,jsonp_mode=extended,jsonp_defmethod=PUT localhost:80").jsonp_default_method == "PUT");
    CHECK(one("*,ssl=no localhost:80").ssl == RouteSsl::No);
    CHECK(one("*,proto=http localhost:80").proto == RouteProto::Http);
    // Later duplicates of a single-valued prop win, as with Pushpin's QMultiHash::value().
    CHECK(one("*,prefix=a,prefix=b localhost:80").prefix == "b");
}

TEST_CASE("routes: client_cert and client_key go together and must be readable", "[routes]") {
    auto r = parse_routes("* a:443,ssl,client_cert=/nonexistent/c.pem\n", "routes");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0] == "routes:1: client_cert and client_key must be given together");
    r = parse_routes("* a:443,ssl,client_cert=/nonexistent/c.pem,client_key=/nonexistent/k.pem\n", "routes");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].rfind("routes:1: ", 0) == 0);
    CHECK(r.errors[0].find("/nonexistent/c.pem") != std::string::npos);
    CHECK(r.table->empty());
}

TEST_CASE("routes: every target prop and target form", "[routes]") {
    // client_cert/client_key are read when the routes load.
    std::string dir = std::filesystem::temp_directory_path() / ("gripd-routes-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/c.pem") << "CERT";
    std::ofstream(dir + "/k.pem") << "KEY";
    Route r = one(
        "* backend:443,ssl,over_http,one_event,untrusted,trust_connect_host,insecure,host=api.example.com,"
        "sub=a,sub=,sub=b,client_cert=" +
        dir + "/c.pem,client_key=" + dir +
        "/k.pem [::1]:8080 [2001:db8::1]:9000,ssl test "
        "zhttp/tcp://127.0.0.1:10000 zhttpreq/ipc:///tmp/x,ipc_file_mode=660");
    std::filesystem::remove_all(dir);
    REQUIRE(r.targets.size() == 6);
    const Target& t = r.targets[0];
    CHECK(t.type == TargetType::Default);
    CHECK(t.connect_host == "backend");
    CHECK(t.connect_port == 443);
    CHECK(t.ssl);
    CHECK(t.over_http);
    CHECK(t.one_event);
    CHECK_FALSE(t.trusted);
    CHECK(t.trust_connect_host);
    CHECK(t.insecure);
    CHECK(t.host == "api.example.com");
    CHECK(t.subscriptions == std::vector<std::string>{"a", "b"});
    CHECK(t.client_cert == dir + "/c.pem");
    CHECK(t.client_key == dir + "/k.pem");
    REQUIRE(t.client_cert_pem);
    CHECK(*t.client_cert_pem == "CERT");
    CHECK(*t.client_key_pem == "KEY");
    CHECK(r.targets[1].connect_host == "::1");
    CHECK(r.targets[1].connect_port == 8080);
    CHECK_FALSE(r.targets[1].ssl);
    CHECK(r.targets[1].to_string() == "[::1]:8080");
    CHECK(r.targets[2].connect_host == "2001:db8::1");
    CHECK(r.targets[2].ssl);
    CHECK(r.targets[3].type == TargetType::Test);
    CHECK(r.targets[4].type == TargetType::Zhttp);
    CHECK(r.targets[4].zhttp_spec == "tcp://127.0.0.1:10000");
    CHECK(r.targets[4].to_string() == "zhttp/tcp://127.0.0.1:10000");
    CHECK(r.targets[5].type == TargetType::ZhttpReq);
    CHECK(r.targets[5].zhttp_spec == "ipc:///tmp/x");
    CHECK(r.targets[5].ipc_file_mode == 0660);
    // Flags are presence-based (Pushpin checks props.contains()).
    CHECK(one("* a:1,ssl=no").targets[0].ssl);
}

TEST_CASE("routes: quoting", "[routes]") {
    Route r = one(R"(*,header="X-Note: a, b # c",prefix="sp ace" "local"host:80,host="q\"uo\\te")");
    REQUIRE(r.headers.size() == 1);
    CHECK(r.headers[0].name == "X-Note");
    CHECK(r.headers[0].value == "a, b # c");
    CHECK(r.prefix == "sp ace");
    CHECK(r.targets[0].connect_host == "localhost");
    CHECK(r.targets[0].host == "q\"uo\\te");
    CHECK(one(R"("*" test)").host_kind == HostKind::Any);

    CHECK(error_of(R"(* "unterminated)") == "routes:1: unterminated quoted string");
    CHECK(error_of(R"(* "bad\n")") == "routes:1: bad escape in quoted string (only \\\\ and \\\")");
    CHECK(error_of("* \"end\\") == "routes:1: unterminated quoted string");
}

TEST_CASE("routes: empty host routes are reachable only by id", "[routes]") {
    auto r = parse("id=internal localhost:80\n,id=other localhost:81\n* test\n");
    REQUIRE(r.ok());
    REQUIRE(r.table->size() == 3);
    CHECK(r.table->routes()[0].host_kind == HostKind::None);
    CHECK(r.table->routes()[1].host_kind == HostKind::None);
    const Route* byid = r.table->find_by_id("internal");
    REQUIRE(byid);
    CHECK(byid->targets[0].connect_port == 80);
    REQUIRE(r.table->find_by_id("other"));
    const Route* m = r.table->match("anything", "/", false, false);
    REQUIRE(m);
    CHECK(m->targets[0].type == TargetType::Test);
    // Pushpin re-reads a first token with '=' from the line start, so this needs no leading blanks there;
    // gripd also accepts it indented.
    CHECK(parse("   id=x localhost:80").ok());
}

TEST_CASE("routes: syntax and value errors are file:line and skip only that line", "[routes]") {
    auto r = parse("* test\nexample.com\nbad,proto=ftp a:1\nok.com a:1\n");
    REQUIRE(r.errors.size() == 2);
    CHECK(r.errors[0] == "routes:2: must specify condition and at least one target");
    CHECK(r.errors[1] == "routes:3: proto must be set to 'http' or 'ws'");
    CHECK(r.table->size() == 2);

    CHECK(error_of("*,ssl=maybe a:1") == "routes:1: ssl must be set to 'yes' or 'no'");
    CHECK(error_of("*,path_beg= a:1") == "routes:1: path_beg cannot be empty");
    CHECK(error_of("*,jsonp_mode=x a:1") == "routes:1: jsonp_mode must be set to 'basic' or 'extended'");
    CHECK(error_of("*,header=novalue a:1") == "routes:1: header must use format 'name:value'");
    CHECK(error_of("*,header=:v a:1") == "routes:1: header must use format 'name:value'");
    CHECK(error_of("*,path_rem=x a:1") == "routes:1: path_rem must be an integer >= 0");
    CHECK(error_of("*,log_level=x a:1") == "routes:1: log_level must be an integer >= 0");
    CHECK(error_of("*,sig_key=base64:*** a:1") == "routes:1: sig_key: bad base64 after 'base64:'");
    CHECK(error_of("* nocolon") == "routes:1: target bad format");
    CHECK(error_of("* host:0") == "routes:1: target invalid port");
    CHECK(error_of("* host:65536") == "routes:1: target invalid port");
    CHECK(error_of("* host:http") == "routes:1: target invalid port");
    CHECK(error_of("* [::1]8080") == "routes:1: target bad format");
    CHECK(error_of("* :80") == "routes:1: target bad format");
    CHECK(error_of("*,,debug a:1") == "routes:1: expecting prop");
    CHECK(error_of("*,=x a:1") == "routes:1: empty prop name");
    // A target whose value has '=' is read as props with an empty value.
    CHECK(error_of("* host=a:80") == "routes:1: target bad format");
}

TEST_CASE("routes: unknown props are warnings", "[routes]") {
    auto r = parse("*,trust,aud=x a:1,weird\n");
    REQUIRE(r.ok());
    CHECK(r.table->size() == 1);
    REQUIRE(r.warnings.size() == 3);
    CHECK(r.warnings[0] == "routes:1: unknown route option 'trust', ignored");
}

TEST_CASE("routes: duplicates are rejected as Pushpin does", "[routes]") {
    auto r = parse("* a:1\n* b:2\nexample.com a:1\nexample.com,path_beg=/x a:1\nexample.com,path_beg=/x b:1\n"
                   "example.com,path_beg=/x,ssl=yes a:1\nexample.com,path_beg=/x,proto=ws a:1\n");
    REQUIRE(r.errors.size() == 2);
    CHECK(r.errors[0] == "routes:2: skipping duplicate condition (same as line 1)");
    CHECK(r.errors[1] == "routes:5: skipping duplicate condition (same as line 4)");
    CHECK(r.table->size() == 5);
    // The first of the duplicates stays.
    CHECK(r.table->match("other", "/", false, false)->targets[0].connect_host == "a");
}

TEST_CASE("routes: ids", "[routes]") {
    auto r =
        parse("a.com,id=x t:1\nb.com,id=x t:2\nc.com,proto=http,ssl=yes,path_beg=/p t:3\nd.com,ssl=no t:4\n");
    REQUIRE(r.ok());
    CHECK(r.table->find_by_id("x") == nullptr); // used twice
    REQUIRE(r.warnings.size() == 1);
    CHECK(r.table->match("a.com", "/", false, false)->id == "x"); // still routable by host
    // Automatic ids follow Pushpin's idFromCondition (including its swapped ssl words).
    const Route* c = r.table->find_by_id("c.com,http,no-ssl,/p");
    REQUIRE(c);
    CHECK(c->targets[0].connect_port == 3);
    REQUIRE(r.table->find_by_id("d.com,*,ssl,*"));
    CHECK(r.table->find_by_id("nope") == nullptr);
}

TEST_CASE("routes: host matching", "[routes]") {
    auto r = parse("* any:1\nexample.com,path_beg=/api ex:1\n");
    REQUIRE(r.ok());
    const RouteTable& t = *r.table;
    CHECK(t.match("example.com", "/api/x", false, false)->targets[0].connect_host == "ex");
    CHECK(t.match("EXAMPLE.com", "/api", false, false)->targets[0].connect_host == "ex");
    // The host has rules, none match: no fallback to `*`.
    CHECK(t.match("example.com", "/other", false, false) == nullptr);
    CHECK(t.match("other.com", "/other", false, false)->targets[0].connect_host == "any");
    CHECK(t.match("", "/", false, false)->targets[0].connect_host == "any");
    // Partial wildcards are plain names.
    auto w = parse("example.* x:1\n");
    CHECK(w.table->match("example.com", "/", false, false) == nullptr);
    CHECK(w.table->match("example.*", "/", false, false) != nullptr);
    // No `*` rule: unknown hosts get nothing.
    CHECK(parse("a.com x:1").table->match("b.com", "/", false, false) == nullptr);
    CHECK(parse("").table->match("b.com", "/", false, false) == nullptr);
}

TEST_CASE("routes: matching precedence", "[routes]") {
    auto r = parse("* base:1\n"
                   "*,path_beg=/a long:1\n"
                   "*,path_beg=/a/b longer:1\n"
                   "*,proto=ws ws:1\n"
                   "*,path_beg=/a,ssl=yes tls:1\n"
                   "*,proto=http,path_beg=/h http:1\n");
    REQUIRE(r.ok());
    auto host = [&](std::string_view path, bool tls, bool ws) {
        const Route* m = r.table->match("h", path, tls, ws);
        return m ? m->targets[0].connect_host : std::string("none");
    };
    CHECK(host("/", false, false) == "base");
    CHECK(host("/a", false, false) == "long");
    CHECK(host("/a/b/c", false, false) == "longer");
    CHECK(host("/a/b?x=1", false, false) == "longer"); // query ignored
    CHECK(host("/a?b", false, false) == "long");
    // proto beats path_beg.
    CHECK(host("/a/b", false, true) == "ws");
    // ssl beats no ssl at equal path.
    CHECK(host("/a", true, false) == "tls");
    // Pushpin quirk, kept: once the path is not longer, an ssl rule still beats a non-ssl best.
    CHECK(host("/a/b", true, false) == "tls");
    // ssl=yes never matches plain requests.
    CHECK(host("/a/x", false, false) == "long");
    CHECK(host("/h/x", false, false) == "http");
    CHECK(host("/h/x", false, true) == "ws");

    // File order breaks ties.
    auto t = parse("*,path_beg=/x first:1\n*,path_beg=/y,ssl=no second:1\n");
    CHECK(t.table->match("h", "/x", false, false)->targets[0].connect_host == "first");

    // ssl=no only plain.
    auto s = parse("*,ssl=no plain:1\n");
    CHECK(s.table->match("h", "/", true, false) == nullptr);
    CHECK(s.table->match("h", "/", false, false) != nullptr);
}

TEST_CASE("routes: rewrites", "[routes]") {
    Route rem = one("*,path_rem=4 a:1");
    CHECK(rewrite_path(rem, "/api/items?x=1") == "/items?x=1");
    CHECK(rewrite_path(rem, "/api") == "/");
    CHECK(rewrite_path(rem, "/a") == "/");
    CHECK(rewrite_path(rem, "/apixyz") == "/xyz");

    Route rep = one("*,path_beg=/api/,replace_beg=/v2/ a:1");
    CHECK(rep.path_rem == 5);
    CHECK(rewrite_path(rep, "/api/items?q") == "/v2/items?q");
    CHECK(rewrite_path(rep, "/api/") == "/v2/");

    Route empty_rep = one("*,path_beg=/api,replace_beg= a:1");
    CHECK(rewrite_path(empty_rep, "/api/x") == "/x");
    CHECK(rewrite_path(empty_rep, "/api") == "/");
    CHECK(rewrite_path(empty_rep, "/api?z") == "/?z");

    Route none = one("* a:1");
    CHECK(rewrite_path(none, "/p?q") == "/p?q");
    CHECK(rewrite_path(none, "") == "/");
}

TEST_CASE("routes: --route lines and files", "[routes]") {
    auto r = parse_route_lines({"* test", "bad", "api.example.com,id=api localhost:80"});
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0] == "<route>:2: must specify condition and at least one target");
    CHECK(r.table->size() == 2);
    CHECK(r.table->find_by_id("api") != nullptr);

    namespace fs = std::filesystem;
    fs::path p = fs::temp_directory_path() / ("gripd_routes_test_" + std::to_string(getpid()));
    { std::ofstream(p) << "# routes\r\n* 127.0.0.1:8080\r\n"; }
    auto f = load_routes_file(p.string());
    REQUIRE(f.ok());
    REQUIRE(f.table->size() == 1);
    CHECK(f.table->routes()[0].targets[0].connect_port == 8080);
    CHECK(f.table->routes()[0].line == 2);
    fs::remove(p);
    auto missing = load_routes_file(p.string());
    REQUIRE(missing.errors.size() == 1);
    CHECK(missing.errors[0].rfind(p.string() + ": cannot open", 0) == 0);
    REQUIRE(missing.table);
    CHECK(missing.table->empty());
}

TEST_CASE("routes: shipped conf/routes parses", "[routes]") {
    auto r = load_routes_file(GRIPD_SOURCE_DIR "/conf/routes");
    REQUIRE(r.ok());
    REQUIRE(r.table->size() == 1);
    CHECK(r.table->routes()[0].targets[0].type == TargetType::Test);
}

TEST_CASE("routes: options gripd does not do yet are warnings that say what will not happen", "[routes]") {
    auto r =
        parse("*,jsonp_cb=c,jsonp_mode=basic,session,sockjs=/s,orig_headers a:1 zhttp/tcp://127.0.0.1:9 b:2\n"
              "*,path_beg=/plain a:1\n"
              "*,path_beg=/aco,aco,jsonp_cb=c a:1\n");
    REQUIRE(r.ok());
    REQUIRE(r.warnings.size() == 4); // aco, jsonp_* with aco (line 3) and sockjs work: no warning
    CHECK(r.warnings[0].rfind("routes:1: route options 'jsonp_*' act only with 'aco' on the route or [proxy] "
                              "auto_cross_origin=true",
                              0) == 0); // once for all
    CHECK(r.warnings[1].rfind("routes:1: route option 'session' is not supported", 0) == 0);
    CHECK(r.warnings[2].rfind("routes:1: route option 'orig_headers' is not supported", 0) == 0);
    CHECK(r.warnings[3] ==
          "routes:1: target 'zhttp/tcp://127.0.0.1:9' is a ZeroMQ target, which gripd does not "
          "support: it is skipped (requests go to the route's other targets, or get 502)");
}
