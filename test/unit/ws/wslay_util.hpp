// Test helpers: wslay's frame layer as an independent WebSocket implementation to check gripd's
// codec against (frames gripd parses are built by wslay, frames gripd renders are read by wslay).
#pragma once

#include <string>
#include <string_view>
#include <vector>
#include <wslay/wslay.h>

namespace wstest {

struct WslayFrame {
    bool fin;
    uint8_t rsv;
    uint8_t opcode;
    bool masked;
    std::string payload;
};

// Renders one frame with wslay (masked with a fixed key when `masked`).
std::string wslay_render(uint8_t opcode, std::string_view payload, bool fin = true, bool masked = true,
                         uint8_t rsv = 0);

// Reads every complete frame in `bytes` with wslay.
std::vector<WslayFrame> wslay_read(std::string_view bytes);

} // namespace wstest
