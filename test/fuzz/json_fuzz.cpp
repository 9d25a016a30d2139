// libFuzzer target: core::json::parse, the one entry point for JSON from outside.
// Checks: a refused text leaves a null document; an accepted one has an object or array root, is at
// most kMaxDepth deep, has one member per name in every object, and survives a round trip: its
// compact form parses again to the same document (numbers within a few units in the last place).
#include "gripd/core/json.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

using namespace gripd::core;

namespace {

// Depth and duplicate checks, walking without recursion.
void check_shape(const rapidjson::Value& root) {
    std::vector<std::pair<const rapidjson::Value*, int>> todo{{&root, 1}};
    while (!todo.empty()) {
        auto [v, depth] = todo.back();
        todo.pop_back();
        if (depth > json::kMaxDepth) abort();
        if (v->IsObject()) {
            std::unordered_set<std::string_view> names;
            for (const auto& m : v->GetObject()) {
                if (!names.insert(json::str(m.name)).second) abort(); // a duplicate survived
                if (m.value.IsObject() || m.value.IsArray()) todo.emplace_back(&m.value, depth + 1);
            }
        } else if (v->IsArray()) {
            for (const auto& e : v->GetArray())
                if (e.IsObject() || e.IsArray()) todo.emplace_back(&e, depth + 1);
        }
    }
}

// Same shape, names, strings and numbers (doubles within a few units in the last place: RapidJSON
// 1.1's default number parse is not always exact).
bool same(const rapidjson::Value& a0, const rapidjson::Value& b0) {
    std::vector<std::pair<const rapidjson::Value*, const rapidjson::Value*>> todo{{&a0, &b0}};
    while (!todo.empty()) {
        auto [a, b] = todo.back();
        todo.pop_back();
        if (a->GetType() != b->GetType()) return false;
        if (a->IsString() && json::str(*a) != json::str(*b)) return false;
        if (a->IsNumber()) {
            if (a->IsInt64() != b->IsInt64() || a->IsUint64() != b->IsUint64()) return false;
            if (a->IsInt64() && a->GetInt64() != b->GetInt64()) return false;
            if (a->IsUint64() && a->GetUint64() != b->GetUint64()) return false;
            double x = a->GetDouble(), y = b->GetDouble();
            if (x != y && std::fabs(x - y) > 1e-14 * std::fmax(std::fabs(x), std::fabs(y))) return false;
        }
        if (a->IsObject()) {
            if (a->MemberCount() != b->MemberCount()) return false;
            for (rapidjson::SizeType i = 0; i < a->MemberCount(); ++i) {
                if (json::str(a->MemberBegin()[i].name) != json::str(b->MemberBegin()[i].name)) return false;
                todo.emplace_back(&a->MemberBegin()[i].value, &b->MemberBegin()[i].value);
            }
        }
        if (a->IsArray()) {
            if (a->Size() != b->Size()) return false;
            for (rapidjson::SizeType i = 0; i < a->Size(); ++i)
                todo.emplace_back(&(*a)[i], &(*b)[i]);
        }
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    rapidjson::Document doc;
    json::ParseResult r = json::parse(text, doc);
    if (!r) {
        if (!doc.IsNull() || r.offset > size) abort();
        return 0;
    }
    if (!doc.IsObject() && !doc.IsArray()) abort();
    check_shape(doc);
    std::string compact = json::to_compact_json(doc);
    rapidjson::Document again;
    if (!json::parse(compact, again)) abort();
    if (!same(doc, again)) abort();
    return 0;
}
