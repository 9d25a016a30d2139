// A pushpin.conf reader: INI sections, `key=value` lines, comments, and the line each key came from.
//
// Syntax (a strict subset of what Qt's QSettings, which Pushpin uses, accepts):
//   - `[section]` headers; keys before the first header belong to section "".
//   - `key=value`; whitespace around key and value is trimmed; a later duplicate key wins.
//   - Lines whose first non-blank character is `#` or `;` are comments; an unquoted `;` later in a value
//     starts a comment too (as in QSettings). `#` inside a value is literal.
//   - Values may contain double-quoted parts: quotes are removed, `\"` and `\\` unescape inside them.
//   - A UTF-8 BOM and CRLF line ends are accepted.
// `include=` is not interpreted here: settings.cpp decides what to do with it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gripd::config {

struct IniEntry {
    std::string section;
    std::string key;
    std::string value;
    std::string file; // file name used in messages
    int line = 0;     // 1-based
};

class IniFile {
  public:
    // Entries in file order (duplicates kept; find() returns the last one).
    const std::vector<IniEntry>& entries() const { return entries_; }
    // The last entry for section/key (exact, case-sensitive match, as QSettings on Unix), or nullptr.
    const IniEntry* find(std::string_view section, std::string_view key) const;
    // Appends the entries of `other` whose section/key is not set here (included files never override).
    void add_missing(const IniFile& other);
    void add(IniEntry entry) { entries_.push_back(std::move(entry)); }

  private:
    std::vector<IniEntry> entries_;
};

struct IniResult {
    IniFile ini;
    std::string error; // "FILE:LINE: message"; empty on success
    bool ok() const { return error.empty(); }
};

// Parses INI text. `file_name` is only used for entries and messages.
IniResult parse_ini(std::string_view text, std::string_view file_name);

// Reads a whole file into *out. Returns false and sets *error ("FILE: reason") on failure.
bool read_text_file(const std::string& path, std::string* out, std::string* error);

} // namespace gripd::config
