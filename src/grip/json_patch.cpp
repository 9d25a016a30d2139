#include "gripd/grip/json_patch.hpp"

#include "gripd/core/json.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace gripd::grip {

namespace {

using rapidjson::Document;
using rapidjson::SizeType;
using rapidjson::Value;
namespace json = core::json;

// What copies may add to the document, beyond the body itself: a patch of `copy` ops doubling the
// document each time must not make a hold allocate without bound.
constexpr size_t kMaxCopiedBytes = 1'000'000;

struct Failure {
    std::string* error;
    bool fail(std::string why) {
        *error = std::move(why);
        return false;
    }
};

// RFC 6901: "" is the whole document; otherwise "/"-separated tokens with ~1 for '/' and ~0 for '~'.
bool parse_pointer(std::string_view p, std::vector<std::string>& tokens, Failure& f) {
    tokens.clear();
    if (p.empty()) return true;
    if (p[0] != '/') return f.fail("pointer must start with /");
    size_t i = 1;
    for (;;) {
        std::string tok;
        for (; i < p.size() && p[i] != '/'; ++i) {
            if (p[i] != '~') {
                tok += p[i];
                continue;
            }
            if (i + 1 < p.size() && (p[i + 1] == '0' || p[i + 1] == '1')) {
                tok += p[i + 1] == '0' ? '~' : '/';
                ++i;
                continue;
            }
            return f.fail("bad escape in pointer");
        }
        tokens.push_back(std::move(tok));
        if (i >= p.size()) return true;
        ++i; // the '/'
    }
}

// An array index token: "0" or digits without a leading zero, below `limit`.
bool parse_index(const std::string& tok, SizeType limit, SizeType& out) {
    if (tok.empty() || tok.size() > 9 || (tok.size() > 1 && tok[0] == '0')) return false;
    uint32_t v = 0;
    for (char c : tok) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<uint32_t>(c - '0');
    }
    if (v >= limit) return false;
    out = v;
    return true;
}

Value::MemberIterator find(Value& obj, const std::string& name) {
    return obj.FindMember(Value(rapidjson::StringRef(name.data(), static_cast<SizeType>(name.size()))));
}

// Nesting depth (a scalar 0, a container 1 + its deepest child) and an estimate of the bytes a copy
// of `v` allocates. Iterative: `v` may be as deep as the document allows.
struct Measure {
    int depth = 0;
    size_t bytes = 0;
    size_t nodes = 0; // values visited (the work it took)
};
Measure measure(const Value& v) {
    Measure m;
    std::vector<std::pair<const Value*, int>> stack{{&v, 0}};
    while (!stack.empty()) {
        auto [x, level] = stack.back();
        stack.pop_back();
        ++m.nodes;
        m.bytes += sizeof(Value);
        if (x->IsString()) m.bytes += x->GetStringLength();
        if (x->IsArray()) {
            m.depth = std::max(m.depth, level + 1);
            for (const auto& e : x->GetArray())
                stack.emplace_back(&e, level + 1);
        } else if (x->IsObject()) {
            m.depth = std::max(m.depth, level + 1);
            for (const auto& e : x->GetObject()) {
                m.bytes += sizeof(Value) + e.name.GetStringLength();
                stack.emplace_back(&e.value, level + 1);
            }
        }
    }
    return m;
}

class Patcher {
  public:
    Patcher(Document& doc, std::string& error) : doc_(doc), f_{&error} {}

    bool apply(const Value& op) {
        if (!op.IsObject()) return f_.fail("invalid op");
        if (!spend(1)) return false;
        const Value* type = json::find_member(op, "op");
        const Value* path = json::find_member(op, "path");
        if (!type || !type->IsString()) return f_.fail("op does not contain a string 'op'");
        if (!path || !path->IsString()) return f_.fail("op does not contain a string 'path'");
        if (!parse_pointer(json::str(*path), path_, f_)) return false;
        if (!spend(path_.size())) return false;
        std::string_view t = json::str(*type);
        const Value* value = json::find_member(op, "value");
        if (t == "add" || t == "replace" || t == "test") {
            if (!value) return f_.fail("op does not contain 'value'");
            if (t == "test") return test(*value);
            if (!spend(measure(*value).nodes)) return false;
            Value copy(*value, doc_.GetAllocator());
            if (t == "replace" && !get(path_)) return f_.fail("location does not exist");
            return t == "add" ? add(path_, std::move(copy)) : replace(path_, std::move(copy));
        }
        if (t == "remove") {
            Value out;
            return take(path_, out);
        }
        if (t == "move" || t == "copy") {
            const Value* from = json::find_member(op, "from");
            if (!from || !from->IsString()) return f_.fail("op does not contain a string 'from'");
            if (!parse_pointer(json::str(*from), from_, f_)) return false;
            if (!spend(from_.size())) return false;
            return t == "move" ? move() : copy();
        }
        return f_.fail("unsupported op: " + std::string(t));
    }

  private:
    // Counts work done against kMaxPatchWork: every value visited, member compared on lookup and
    // array element shifted. False (the patch fails) once the budget is spent.
    bool spend(size_t units) {
        if (units > kMaxPatchWork - work_) {
            work_ = kMaxPatchWork;
            return f_.fail("the patch takes too much work");
        }
        work_ += units;
        return true;
    }

    Value::MemberIterator lookup(Value& obj, const std::string& name) {
        if (!spend(obj.MemberCount() + 1)) return obj.MemberEnd();
        return find(obj, name);
    }

    // The container that holds the last token of `tokens` (the document for a one-token pointer),
    // or nullptr when a step on the way does not exist.
    Value* parent(const std::vector<std::string>& tokens) {
        Value* v = &doc_;
        for (size_t i = 0; i + 1 < tokens.size(); ++i) {
            if (v->IsObject()) {
                auto it = lookup(*v, tokens[i]);
                if (it == v->MemberEnd()) return nullptr;
                v = &it->value;
            } else if (v->IsArray()) {
                SizeType idx = 0;
                if (!parse_index(tokens[i], v->Size(), idx)) return nullptr;
                v = &(*v)[idx];
            } else {
                return nullptr;
            }
        }
        return v;
    }

    Value* get(const std::vector<std::string>& tokens) {
        if (tokens.empty()) return &doc_;
        Value* p = parent(tokens);
        if (!p) return nullptr;
        const std::string& last = tokens.back();
        if (p->IsObject()) {
            auto it = lookup(*p, last);
            return it == p->MemberEnd() ? nullptr : &it->value;
        }
        SizeType idx = 0;
        if (p->IsArray() && parse_index(last, p->Size(), idx)) return &(*p)[idx];
        return nullptr;
    }

    // Keeps every recursion over the document bounded: the new value may not nest deeper than
    // core::json::kMaxDepth counting from the root.
    bool fits(const std::vector<std::string>& tokens, const Value& v) {
        Measure m = measure(v);
        if (!spend(m.nodes)) return false;
        if (static_cast<int>(tokens.size()) + m.depth > json::kMaxDepth) return f_.fail("nested too deeply");
        return true;
    }

    bool add(const std::vector<std::string>& tokens, Value&& v) {
        if (!fits(tokens, v)) return false;
        if (tokens.empty()) {
            static_cast<Value&>(doc_) = std::move(v);
            return true;
        }
        Value* p = parent(tokens);
        if (!p) return f_.fail("path's parent does not exist");
        const std::string& last = tokens.back();
        auto& alloc = doc_.GetAllocator();
        if (p->IsObject()) {
            auto it = lookup(*p, last);
            if (it != p->MemberEnd()) {
                it->value = std::move(v);
            } else {
                Value name(last.data(), static_cast<SizeType>(last.size()), alloc);
                p->AddMember(name, v, alloc);
            }
            return true;
        }
        if (!p->IsArray()) return f_.fail("non-container value cannot have child reference");
        SizeType idx = p->Size();
        if (last != "-" && !parse_index(last, p->Size() + 1, idx)) return f_.fail("index out of range");
        if (!spend(p->Size() - idx + 1)) return false;
        p->PushBack(v, alloc);
        // RFC 6902 4.1: insert before `idx`, shifting the rest up.
        for (SizeType i = p->Size() - 1; i > idx; --i)
            (*p)[i].Swap((*p)[i - 1]);
        return true;
    }

    bool replace(const std::vector<std::string>& tokens, Value&& v) {
        if (!fits(tokens, v)) return false;
        Value* target = get(tokens);
        if (!target) return f_.fail("location does not exist");
        *target = std::move(v);
        return true;
    }

    // Moves the value at `tokens` out of the document into `out`.
    bool take(const std::vector<std::string>& tokens, Value& out) {
        if (tokens.empty()) return f_.fail("cannot remove the root");
        Value* p = parent(tokens);
        if (!p) return f_.fail("location does not exist");
        const std::string& last = tokens.back();
        if (p->IsObject()) {
            auto it = lookup(*p, last);
            if (it == p->MemberEnd()) return f_.fail("location does not exist");
            if (!spend(p->MemberCount())) return false;
            out = std::move(it->value);
            p->EraseMember(it); // keeps the other members' order
            return true;
        }
        SizeType idx = 0;
        if (!p->IsArray() || !parse_index(last, p->Size(), idx)) return f_.fail("location does not exist");
        if (!spend(p->Size() - idx)) return false;
        out = std::move((*p)[idx]);
        p->Erase(p->Begin() + idx);
        return true;
    }

    bool test(const Value& want) {
        if (!spend(measure(want).nodes)) return false;
        Value* have = get(path_);
        if (!have || *have != want) return f_.fail("tested values are not equal");
        return true;
    }

    bool move() {
        // A location cannot move into one of its own children.
        bool within = from_.size() < path_.size() && std::equal(from_.begin(), from_.end(), path_.begin());
        if (within) return f_.fail("cannot move location into itself");
        if (from_ == path_) return get(from_) ? true : f_.fail("location does not exist");
        Value v;
        if (!take(from_, v)) return false;
        return add(path_, std::move(v));
    }

    bool copy() {
        Value* src = get(from_);
        if (!src) return f_.fail("location does not exist");
        Measure m = measure(*src);
        if (!spend(m.nodes)) return false;
        if (m.bytes > kMaxCopiedBytes - copied_) return f_.fail("copies too large");
        copied_ += m.bytes;
        if (!fits(path_, *src)) return false;
        Value v(*src, doc_.GetAllocator());
        return add(path_, std::move(v));
    }

    Document& doc_;
    Failure f_;
    std::vector<std::string> path_, from_;
    size_t copied_ = 0;
    size_t work_ = 0;
};

} // namespace

std::optional<std::string> apply_json_patch(std::string_view body, std::string_view patch,
                                            std::string& error) {
    Document doc;
    if (auto r = json::parse(body, doc); !r) {
        error = std::string("the held body is not JSON: ") + json::describe(r.error);
        return std::nullopt;
    }
    Document ops;
    if (!json::parse(patch, ops) || !ops.IsArray()) {
        error = "the patch is not a JSON array";
        return std::nullopt;
    }
    if (ops.Size() > kMaxPatchOps) {
        error = "the patch has more than " + std::to_string(kMaxPatchOps) + " operations";
        return std::nullopt;
    }
    Patcher patcher(doc, error);
    for (const auto& op : ops.GetArray())
        if (!patcher.apply(op)) return std::nullopt;
    if (!doc.IsObject() && !doc.IsArray()) {
        error = "the patched document is not an object or array";
        return std::nullopt;
    }
    std::string out = json::to_compact_json(doc);
    if (body.ends_with("\r\n"))
        out += "\r\n";
    else if (body.ends_with('\n'))
        out += '\n';
    return out;
}

} // namespace gripd::grip
