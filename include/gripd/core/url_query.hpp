// Query-string parameters as Pushpin reads them (Qt's QUrlQuery::queryItemValue, PrettyDecoded), so
// a `?channel=` names the same channel on gripd as on Pushpin. Percent escapes are decoded, except
// those whose character would change the meaning of a URL (`% : / ? [ ] @ ! $ ' ( ) * + ,` and `;`),
// control characters and bytes that are not valid UTF-8: those stay escaped, in upper-case hex. A
// `%` not followed by two hex digits becomes `%25`; `+` is not a space.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gripd::core {

// Decodes one query key or value by the rules above.
std::string query_decode(std::string_view text);

// The decoded value of the first `name` item in the query of a request target ("/p?a=1&b=2"); an
// item without '=' has an empty value. nullopt when there is no such item.
std::optional<std::string> query_param(std::string_view target, std::string_view name);

} // namespace gripd::core
