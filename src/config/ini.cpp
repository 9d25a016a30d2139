#include "gripd/config/ini.hpp"

#include "gripd/core/strings.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace gripd::config {

const IniEntry* IniFile::find(std::string_view section, std::string_view key) const {
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it)
        if (it->section == section && it->key == key) return &*it;
    return nullptr;
}

void IniFile::add_missing(const IniFile& other) {
    std::vector<IniEntry> extra;
    for (const auto& e : other.entries_)
        if (!find(e.section, e.key)) extra.push_back(e);
    for (auto& e : extra)
        entries_.push_back(std::move(e));
}

namespace {

std::string where(std::string_view file, int line) {
    return std::string(file) + ":" + std::to_string(line) + ": ";
}

// Removes quotes (unescaping \" and \\ inside them) and a trailing unquoted `;` comment.
bool unquote_value(std::string_view raw, std::string* out) {
    std::string value;
    bool in_quotes = false;
    size_t last_literal = 0; // length of value up to the last quoted char, so trimming keeps quoted spaces
    for (size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (in_quotes) {
            if (c == '"') {
                in_quotes = false;
            } else if (c == '\\' && i + 1 < raw.size() && (raw[i + 1] == '"' || raw[i + 1] == '\\')) {
                value += raw[++i];
            } else {
                value += c;
            }
            last_literal = value.size();
        } else if (c == '"') {
            in_quotes = true;
        } else if (c == ';') {
            break;
        } else {
            value += c;
        }
    }
    if (in_quotes) return false;
    size_t end = value.size();
    while (end > last_literal && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        --end;
    value.resize(end);
    *out = std::move(value);
    return true;
}

} // namespace

IniResult parse_ini(std::string_view text, std::string_view file_name) {
    IniResult result;
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    std::string section;
    int line_no = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = core::trim(text.substr(pos, nl - pos));
        pos = nl + 1;
        ++line_no;
        if (line.empty() || line.front() == '#' || line.front() == ';') continue;
        if (line.front() == '[') {
            size_t close = line.find(']');
            if (close == std::string_view::npos) {
                result.error = where(file_name, line_no) + "section header is missing ']'";
                return result;
            }
            std::string_view rest = core::trim(line.substr(close + 1));
            if (!rest.empty() && rest.front() != '#' && rest.front() != ';') {
                result.error = where(file_name, line_no) + "unexpected text after section header";
                return result;
            }
            section = std::string(core::trim(line.substr(1, close - 1)));
            continue;
        }
        size_t eq = line.find('=');
        if (eq == std::string_view::npos) {
            result.error = where(file_name, line_no) + "expected key=value";
            return result;
        }
        std::string_view key = core::trim(line.substr(0, eq));
        if (key.empty()) {
            result.error = where(file_name, line_no) + "empty key before '='";
            return result;
        }
        IniEntry entry;
        if (!unquote_value(core::trim(line.substr(eq + 1)), &entry.value)) {
            result.error = where(file_name, line_no) + "unterminated quote in value of " + std::string(key);
            return result;
        }
        entry.section = section;
        entry.key = std::string(key);
        entry.file = std::string(file_name);
        entry.line = line_no;
        result.ini.add(std::move(entry));
    }
    return result;
}

bool read_text_file(const std::string& path, std::string* out, std::string* error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        *error = path + ": cannot open: " + std::strerror(errno);
        return false;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) {
        *error = path + ": read error";
        return false;
    }
    *out = ss.str();
    return true;
}

} // namespace gripd::config
