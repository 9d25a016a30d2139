// Which of Pushpin's per-process log files a log target's lines go to ([runner] logdir).
#include "gripd/core/log.hpp"

#include <catch2/catch.hpp>

using gripd::core::log_file_of;
using gripd::core::LogFile;

TEST_CASE("log: the proxy's targets go to pushpin-proxy.log, the handler's to pushpin-handler.log",
          "[core]") {
    for (const char* t : {"proxy", "ws", "backend", "http", "net"})
        CHECK(log_file_of(t) == LogFile::Proxy);
    for (const char* t : {"control", "pubsub", "bus", "grip"})
        CHECK(log_file_of(t) == LogFile::Handler);
    // The runner's own lines (startup, config, memory) stay on stderr, as Pushpin's runner prints its own.
    for (const char* t : {"main", "config", "memory", "worker", "server", "log", "", "proxyx"})
        CHECK(log_file_of(t) == LogFile::Main);
    CHECK(log_file_of(nullptr) == LogFile::Main);
}
