// sockjs::owner_of (relay.hpp): every worker must compute the same owner for a session id, within
// range, and sessions must spread over the workers.
#include "gripd/sockjs/relay.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using gripd::sockjs::owner_of;

TEST_CASE("sockjs relay: a session's owner is a stable function of its id", "[sockjs][relay]") {
    CHECK(owner_of("abc", 1) == 0);
    CHECK(owner_of("", 4) == static_cast<int>(1469598103934665603ULL % 4)); // FNV-1a offset basis
    for (int workers : {2, 3, 4, 8}) {
        std::vector<int> counts(static_cast<size_t>(workers), 0);
        for (int i = 0; i < 4000; ++i) {
            std::string sid = "s" + std::to_string(i);
            int o = owner_of(sid, workers);
            REQUIRE(o >= 0);
            REQUIRE(o < workers);
            CHECK(owner_of(sid, workers) == o);
            ++counts[static_cast<size_t>(o)];
        }
        for (int c : counts)
            CHECK(c > 4000 / workers / 2); // no worker is left out or takes most of them
    }
}
