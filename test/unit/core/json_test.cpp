#include "gripd/core/json.hpp"

#include "unit/config/config_test_paths.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

using namespace gripd::core;
using json::Error;

namespace {

// `depth` nested arrays: "[[...]]".
std::string arrays(size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
}

// `depth` nested objects: {"a":{"a":...{}...}}.
std::string objects(size_t depth) {
    std::string s;
    for (size_t i = 1; i < depth; ++i)
        s += "{\"a\":";
    s += "{}";
    s += std::string(depth - 1, '}');
    return s;
}

Error parse_error(std::string_view text) {
    rapidjson::Document doc;
    return json::parse(text, doc).error;
}

} // namespace

TEST_CASE("json: nesting up to kMaxDepth parses, one more is refused", "[json]") {
    STATIC_REQUIRE(json::kMaxDepth == 1024); // Qt 5's nestingLimit, as pushpin 1.36 enforces it
    rapidjson::Document doc;
    CHECK(json::parse(arrays(json::kMaxDepth), doc));
    CHECK(doc.IsArray());
    CHECK(parse_error(arrays(json::kMaxDepth + 1)) == Error::TooDeep);
    CHECK(parse_error(objects(json::kMaxDepth)) == Error::None);
    CHECK(parse_error(objects(json::kMaxDepth + 1)) == Error::TooDeep);
    // Mixed, and deep inside a field nobody reads: still refused.
    std::string mixed = "{\"items\":[],\"x\":" + arrays(json::kMaxDepth) + "}";
    CHECK(parse_error(mixed) == Error::TooDeep);
    std::string ok = "{\"items\":[],\"x\":" + arrays(json::kMaxDepth - 1) + "}";
    CHECK(parse_error(ok) == Error::None);
}

TEST_CASE("json: hostile depth is refused without recursion", "[json]") {
    rapidjson::Document doc;
    json::ParseResult r = json::parse(std::string(300000, '['), doc);
    CHECK(r.error == Error::TooDeep);
    CHECK(r.offset <= json::kMaxDepth + 1);
    CHECK(doc.IsNull());
    std::string keys;
    for (int i = 0; i < 300000; ++i)
        keys += "{\"a\":";
    CHECK(parse_error(keys) == Error::TooDeep);
    // Closed properly, too: the limit, not the missing brackets, refuses it.
    CHECK(parse_error(arrays(300000)) == Error::TooDeep);
    // The document is reusable after a refusal.
    CHECK(json::parse("[1]", doc));
    CHECK(doc[0].GetInt() == 1);
}

TEST_CASE("json: strings must be valid UTF-8", "[json]") {
    CHECK(parse_error("[\"caf\xC3\xA9\"]") == Error::None);
    CHECK(parse_error("[\"\xFF\"]") == Error::Encoding);
    CHECK(parse_error("[\"\xC3\"]") == Error::Encoding);         // truncated sequence
    CHECK(parse_error("[\"\xC0\xAF\"]") == Error::Encoding);     // overlong '/'
    CHECK(parse_error("[\"\xED\xA0\x80\"]") == Error::Encoding); // an encoded surrogate
    CHECK(parse_error("{\"\xFF\":1}") == Error::Encoding);       // names too
}

TEST_CASE("json: an unpaired surrogate escape reads as '?', as pushpin writes it", "[json]") {
    rapidjson::Document doc;
    REQUIRE(
        json::parse(R"(["A\udd00B\udfff", {"k\udc00": "\ud83d\ude00"}, "\ud800x\uDBFF\ud800\udc00"])", doc));
    CHECK(json::str(doc[0]) == "A?B?");
    CHECK(json::str(doc[1].MemberBegin()->name) == "k?");
    CHECK(json::str(doc[1].MemberBegin()->value) == "\xF0\x9F\x98\x80"); // a proper pair is kept
    CHECK(json::str(doc[2]) == "?x?\xF0\x90\x80\x80");                   // high, high then a pair
    // Escaped backslashes are not escapes; other escapes pass; a lone one at the very end too.
    REQUIRE(json::parse(R"(["\\ud800", "\n\u0041\"", "\ud800"])", doc));
    CHECK(json::str(doc[0]) == "\\ud800");
    CHECK(json::str(doc[1]) == "\nA\"");
    CHECK(json::str(doc[2]) == "?");
    CHECK(parse_error(R"(["\ud800)") == Error::Syntax); // still unterminated
    CHECK(parse_error(R"([\ud800])") == Error::Syntax); // outside a string: still invalid
    CHECK(parse_error(R"(["\ud8"])") == Error::Syntax); // short escape
}

TEST_CASE("json: nothing but whitespace after the root", "[json]") {
    CHECK(parse_error("{} \r\n\t") == Error::None);
    CHECK(parse_error("{}x") == Error::Trailing);
    CHECK(parse_error("[1] [2]") == Error::Trailing);
    CHECK(parse_error(std::string("{}\0x", 4)) == Error::Trailing); // an embedded NUL is no end
    CHECK(parse_error(std::string("{}\0", 3)) == Error::Trailing);
}

TEST_CASE("json: the root is an object or an array, as in Qt 5", "[json]") {
    CHECK(parse_error("1") == Error::NotContainer);
    CHECK(parse_error("\"s\"") == Error::NotContainer);
    CHECK(parse_error("null") == Error::NotContainer);
    CHECK(parse_error("") == Error::Syntax);
    CHECK(parse_error("  ") == Error::Syntax);
    CHECK(parse_error("{") == Error::Syntax);
    CHECK(parse_error("[1,]") == Error::Syntax);
    CHECK(parse_error("\xEF\xBB\xBF{}") == Error::None); // a whole BOM is skipped
    CHECK(parse_error("\xBB\xBF{}") == Error::NotContainer);
}

TEST_CASE("json: duplicate names, the last one wins and only it is kept", "[json]") {
    rapidjson::Document doc;
    REQUIRE(json::parse(R"({"a":1,"b":2,"a":3,"c":{"x":1,"x":[2]}})", doc));
    REQUIRE(doc.MemberCount() == 3);
    auto m = doc.MemberBegin();
    CHECK(json::str(m[0].name) == "b"); // document order of the surviving members
    CHECK(json::str(m[1].name) == "a");
    CHECK(m[1].value.GetInt() == 3);
    CHECK(json::str(m[2].name) == "c");
    const rapidjson::Value* x = json::find_member(m[2].value, "x");
    REQUIRE(x);
    CHECK(x->IsArray());
    CHECK(m[2].value.MemberCount() == 1);
    CHECK(doc.FindMember("a")->value.GetInt() == 3); // RapidJSON's own lookup agrees

    // A large object (the map path): 40 names, each given twice.
    std::string big = "{";
    for (int round = 0; round < 2; ++round)
        for (int i = 0; i < 40; ++i)
            big += (big.size() > 1 ? "," : "") + std::string("\"k") + std::to_string(i) +
                   "\":" + std::to_string(round * 100 + i);
    big += "}";
    REQUIRE(json::parse(big, doc));
    REQUIRE(doc.MemberCount() == 40);
    CHECK(json::find_member(doc, "k7")->GetInt() == 107);
    CHECK(json::str(doc.MemberBegin()[0].name) == "k0");
}

TEST_CASE("json: find_member compares whole names", "[json]") {
    rapidjson::Document doc;
    REQUIRE(json::parse("{\"alg\\u0000x\":1,\"alg\":2}", doc));
    CHECK(json::find_member(doc, "alg")->GetInt() == 2);
    CHECK(json::find_member(doc, std::string_view("alg\0x", 5))->GetInt() == 1);
    CHECK(json::find_member(doc, "nope") == nullptr);
    CHECK(json::find_member(doc["alg"], "x") == nullptr); // not an object
}

TEST_CASE("json: to_compact_json of a document at the depth limit", "[json]") {
    rapidjson::Document doc;
    REQUIRE(json::parse(arrays(json::kMaxDepth), doc));
    CHECK(json::to_compact_json(doc) == arrays(json::kMaxDepth));
}

TEST_CASE("json: to_int_like converts as Qt does", "[json]") {
    rapidjson::Document doc;
    REQUIRE(json::parse(R"([5, 2.5, -2.5, true, " 42 ", "x", null, [], 1e30])", doc));
    CHECK(json::to_int_like(doc[0]) == 5);
    CHECK(json::to_int_like(doc[1]) == 3);
    CHECK(json::to_int_like(doc[2]) == -3);
    CHECK(json::to_int_like(doc[3]) == 1);
    CHECK(json::to_int_like(doc[4]) == 42);
    CHECK(json::to_int_like(doc[5]) == 0);
    CHECK_FALSE(json::to_int_like(doc[6]));
    CHECK_FALSE(json::to_int_like(doc[7]));
    CHECK(json::to_int_like(doc[8]) == INT64_MAX);
}

// The one-entry-point rule: a RapidJSON Parse/ParseInsitu/ParseStream call anywhere in src/ or
// include/ other than core/json.cpp is a second parser (the recursive kind crashed gripd once).
TEST_CASE("json: no other RapidJSON parse call in the sources", "[json]") {
    namespace fs = std::filesystem;
    const std::regex call(R"(\bParse(Insitu|Stream)?\s*(<[^>()]*>)?\s*\()");
    const fs::path root(GRIPD_SOURCE_DIR);
    std::vector<std::string> offenders;
    size_t files = 0;
    for (const char* dir : {"src", "include"}) {
        for (const auto& entry : fs::recursive_directory_iterator(root / dir)) {
            if (!entry.is_regular_file()) continue;
            auto ext = entry.path().extension();
            if (ext != ".cpp" && ext != ".hpp" && ext != ".h") continue;
            ++files;
            if (entry.path() == root / "src/core/json.cpp") continue;
            std::ifstream in(entry.path());
            std::string line;
            for (int n = 1; std::getline(in, line); ++n)
                if (std::regex_search(line, call))
                    offenders.push_back(entry.path().string() + ":" + std::to_string(n) + ": " + line);
        }
    }
    CHECK(files > 50); // the walk found the tree
    INFO("use gripd::core::json::parse instead");
    for (const auto& o : offenders)
        FAIL_CHECK(o);
    CHECK(offenders.empty());
}

TEST_CASE("json: one string escaper, default and Qt 5 styles", "[json]") {
    using json::append_string;
    using json::append_string_chars;
    using json::Qt5Style;
    std::string in("q\"\\\n\t\x01\xc3\xa9\xe2\x98\x83", 11);
    std::string out;
    append_string(out, in);
    CHECK(out == "\"q\\\"\\\\\\u000a\\u0009\\u0001\xc3\xa9\xe2\x98\x83\"");
    out.clear();
    append_string(out, in, Qt5Style());
    CHECK(out == "\"q\\\"\\\\\\n\\t\\u0001\xc3\xa9\xe2\x98\x83\"");
    // \b and \f short forms, other control characters as \u00XX
    out.clear();
    append_string(out, std::string_view("\b\f\x1f", 3), Qt5Style());
    CHECK(out == "\"\\b\\f\\u001f\"");
    // bytes that are not UTF-8: copied by default, U+FFFD each in Qt's style (overlong, surrogate,
    // above U+10FFFF, a lone continuation byte)
    out.clear();
    append_string(out, std::string_view("\xff", 1));
    CHECK(out == "\"\xff\"");
    for (std::string_view bad : {std::string_view("\xc0\x80", 2), std::string_view("\xed\xa0\x80", 3),
                                 std::string_view("\xf4\x90\x80\x80", 4), std::string_view("\x80", 1)}) {
        out.clear();
        append_string_chars(out, bad, Qt5Style());
        std::string want;
        for (size_t i = 0; i < bad.size(); ++i)
            want += "\xef\xbf\xbd";
        CHECK(out == want);
    }
    // partial input: a cut sequence at the end is left for the next piece
    out.clear();
    CHECK(append_string_chars(out, std::string_view("a\xe2\x98", 3), Qt5Style(), true) == 2);
    CHECK(out == "a");
    CHECK(json::utf8_sequence("\xe2\x98") == -2);
    CHECK(json::utf8_sequence("\xe2\x98\x83") == 3);
    CHECK(json::utf8_sequence("\xc1\x81") == 0);
}
