#include "gripd/http/debug_text.hpp"

namespace gripd::http {

std::string unable_to_connect_text(const config::Route& route) {
    std::string text = "Unable to connect to any targets. Tried: ";
    for (size_t i = 0; i < route.targets.size(); ++i) {
        if (i > 0) text += ", ";
        text += route.targets[i].to_string();
    }
    return text + "\n";
}

} // namespace gripd::http
