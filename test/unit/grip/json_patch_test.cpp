#include "gripd/grip/json_patch.hpp"

#include "gripd/core/json.hpp"

#include <catch2/catch.hpp>

#include <string>

using gripd::grip::apply_json_patch;

// body-patch (RFC 6902) as a held long-poll applies it to its own body.

namespace {

std::optional<std::string> patch(std::string_view body, std::string_view ops) {
    std::string why;
    auto r = apply_json_patch(body, ops, why);
    if (!r) CHECK(!why.empty());
    return r;
}

} // namespace

TEST_CASE("json_patch: the RFC 6902 operations", "[grip][json_patch]") {
    CHECK(patch(R"({"a":1})", R"([{"op":"add","path":"/b","value":[1]}])") == R"({"a":1,"b":[1]})");
    CHECK(patch(R"({"a":1})", R"([{"op":"add","path":"/a","value":2}])") == R"({"a":2})");
    CHECK(patch(R"({"l":[1,3]})", R"([{"op":"add","path":"/l/1","value":2}])") == R"({"l":[1,2,3]})");
    CHECK(patch(R"({"l":[1]})", R"([{"op":"add","path":"/l/1","value":2}])") == R"({"l":[1,2]})");
    CHECK(patch(R"({"l":[1]})", R"([{"op":"add","path":"/l/-","value":2}])") == R"({"l":[1,2]})");
    CHECK(patch(R"({"a":1,"b":2,"c":3})", R"([{"op":"remove","path":"/a"}])") == R"({"b":2,"c":3})");
    CHECK(patch(R"([1,2,3])", R"([{"op":"remove","path":"/1"}])") == "[1,3]");
    CHECK(patch(R"({"a":{"b":1}})", R"([{"op":"replace","path":"/a/b","value":null}])") ==
          R"({"a":{"b":null}})");
    CHECK(patch(R"({"a":{"b":1},"c":{}})", R"([{"op":"move","from":"/a/b","path":"/c/d"}])") ==
          R"({"a":{},"c":{"d":1}})");
    CHECK(patch(R"({"a":[1,2]})", R"([{"op":"copy","from":"/a","path":"/b"}])") ==
          R"({"a":[1,2],"b":[1,2]})");
    CHECK(patch(R"({"a":{"x":[1,2.5,"s"]}})", R"([{"op":"test","path":"/a","value":{"x":[1,2.5,"s"]}}])") ==
          R"({"a":{"x":[1,2.5,"s"]}})");
    CHECK(patch(R"({"a":1})", R"([{"op":"replace","path":"","value":[0]}])") == "[0]");
    CHECK(patch(R"({"a/b":1,"m~n":2})",
                R"([{"op":"remove","path":"/a~1b"},{"op":"replace","path":"/m~0n","value":3}])") ==
          R"({"m~n":3})");
    CHECK(patch(R"({"":1})", R"([{"op":"replace","path":"/","value":2}])") == R"({"":2})");
    CHECK(patch(R"({"a":1})", "[]") == R"({"a":1})");
}

TEST_CASE("json_patch: the body's line end is kept", "[grip][json_patch]") {
    CHECK(patch("{ \"a\" : 1 }\n", "[]") == "{\"a\":1}\n");
    CHECK(patch("[1]\r\n", "[]") == "[1]\r\n");
    CHECK(patch("[1]  ", "[]") == "[1]");
}

TEST_CASE("json_patch: failures", "[grip][json_patch]") {
    const char* body = R"({"a":1,"l":[1,2],"s":"x"})";
    for (const char* ops : {
             R"([{"op":"test","path":"/a","value":2}])",
             R"([{"op":"test","path":"/missing","value":null}])",
             R"([{"op":"replace","path":"/missing","value":1}])",
             R"([{"op":"remove","path":"/missing"}])",
             R"([{"op":"remove","path":""}])",
             R"([{"op":"remove","path":"/l/2"}])",
             R"([{"op":"remove","path":"/l/01"}])",
             R"([{"op":"add","path":"/l/3","value":1}])",
             R"([{"op":"add","path":"/l/x","value":1}])",
             R"([{"op":"add","path":"/s/x","value":1}])",
             R"([{"op":"add","path":"/missing/x","value":1}])",
             R"([{"op":"add","path":"/a"}])",
             R"([{"op":"add","path":"a","value":1}])",
             R"([{"op":"add","path":"/~2","value":1}])",
             R"([{"op":"move","from":"/l","path":"/l/0"}])",
             R"([{"op":"move","from":"/missing","path":"/b"}])",
             R"([{"op":"copy","path":"/b"}])",
             R"([{"op":"nope","path":"/a"}])",
             R"([{"path":"/a"}])",
             R"([1])",
             R"([{"op":"replace","path":"","value":1}])",
             R"({"op":"add"})",
             "not json",
         })
        CHECK_FALSE(patch(body, ops));
    CHECK_FALSE(patch("", "[]"));
    CHECK_FALSE(patch("text", "[]"));
    CHECK_FALSE(patch("\"s\"", "[]"));
    // A failing op leaves no partial result: the whole patch fails.
    CHECK_FALSE(patch(body, R"([{"op":"add","path":"/b","value":1},{"op":"test","path":"/b","value":2}])"));
}

TEST_CASE("json_patch: copies and nesting are bounded", "[grip][json_patch]") {
    // Each copy doubles the document: refused once the copies pass the byte budget.
    std::string big = "{\"a\":\"" + std::string(100'000, 'x') + "\"}";
    std::string ops = "[";
    for (int i = 0; i < 30; ++i)
        ops += std::string(i ? "," : "") + R"({"op":"copy","from":"","path":"/c)" + std::to_string(i) + "\"}";
    ops += "]";
    CHECK_FALSE(patch(big, ops));

    // A copy that would nest past kMaxDepth fails; one level less passes.
    size_t d = static_cast<size_t>(gripd::core::json::kMaxDepth);
    std::string deep = "{\"a\":" + std::string(d - 1, '[') + std::string(d - 1, ']') + "}";
    CHECK_FALSE(patch(deep, R"([{"op":"copy","from":"","path":"/b"}])"));
    CHECK(patch(deep, R"([{"op":"copy","from":"/a","path":"/b"}])"));
    CHECK_FALSE(patch(deep, R"([{"op":"copy","from":"/a","path":"/a/0"}])"));
}

TEST_CASE("json_patch: bounded in operations and in work", "[grip][json_patch]") {
    std::string error;
    auto ops = [](size_t n, const std::string& op) {
        std::string p = "[";
        for (size_t i = 0; i < n; ++i)
            p += (i ? "," : "") + op;
        return p + "]";
    };
    const std::string set_a = R"({"op":"add","path":"/a","value":1})";
    CHECK(gripd::grip::apply_json_patch(R"({"a":0})", ops(gripd::grip::kMaxPatchOps, set_a), error) ==
          R"({"a":1})");
    CHECK_FALSE(
        gripd::grip::apply_json_patch(R"({"a":0})", ops(gripd::grip::kMaxPatchOps + 1, set_a), error));
    CHECK(error.find("more than 1000 operations") != std::string::npos);
    // Each insert at the front of a 100,000-element array shifts every element: 50 of them fit the
    // work budget, 150 do not (the patch fails as any failing patch does).
    std::string body = "[";
    for (int i = 0; i < 100000; ++i)
        body += i ? ",0" : "0";
    body += "]";
    const std::string front = R"({"op":"add","path":"/0","value":1})";
    auto ok = gripd::grip::apply_json_patch(body, ops(50, front), error);
    REQUIRE(ok);
    CHECK(ok->starts_with("[1,1,"));
    CHECK_FALSE(gripd::grip::apply_json_patch(body, ops(150, front), error));
    CHECK(error == "the patch takes too much work");
}
