// The systemd notification protocol (sd_notify(3)) without libsystemd: one datagram per state
// change ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...") to the unix socket named in
// NOTIFY_SOCKET. Under a Type=notify unit this tells systemd when gripd is really listening, so
// units ordered after it start only then. Without NOTIFY_SOCKET (not under systemd) it does nothing.
// Main thread only: it makes a blocking (but local, datagram) system call.
#pragma once

#include <string_view>

namespace gripd::core {

// Returns true if the message was sent, false if there is no socket to send to or sending failed.
bool sd_notify(std::string_view state);

} // namespace gripd::core
