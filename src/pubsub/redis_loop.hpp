// Attaches a hiredis async context to a worker's loop. Replaces hiredis's own libuv adapter, which
// calls uv_poll_start for every command queued (and libuv 1.44 answers each call on an active poll
// handle with an epoll_ctl(DEL) now and an ADD on the next turn: 7 system calls for a history run of
// 7 commands). Here a command queued on a connected context is written at the end of the loop
// iteration (the worker's flush phase), with everything else queued in that iteration, and the poll
// handle changes only when what it waits for changes: for reads always, for writability only while
// the socket is connecting or full.
#pragma once

struct redisAsyncContext;

namespace gripd::loop {
class Worker;
}

namespace gripd::pubsub {

// REDIS_OK, or REDIS_ERR when the context is attached already or the poll handle cannot be made
// (then the caller frees the context, as with redisLibuvAttach).
int attach_redis_to_loop(redisAsyncContext* ac, loop::Worker& worker);

} // namespace gripd::pubsub
