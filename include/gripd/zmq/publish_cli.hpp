// `gripd publish`: Pushpin's `pushpin-publish` in the same binary (PROTOCOL.md §4.4). Builds one item
// with all three formats (or a hint, a close, a JSON Patch) and sends it to the HTTP control API
// (`http://` or `https://` spec, POST <path>/publish/) or to a ZeroMQ PULL input (`tcp://`,
// `ipc://`: one PUSH message, a TNetString). Prints `Published` and exits 0, or prints
// `Error: <reason>` (the API's answer for a refused publish) on stderr and exits 1.
// A command-line tool: blocking I/O, no loop.
#pragma once

namespace gripd::zmq {

// `argv[0]` is the subcommand's name ("publish"); the options follow.
int run_publish_cli(int argc, char** argv);

} // namespace gripd::zmq
