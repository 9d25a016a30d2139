// Lifetime rules for libuv handles in gripd (in the spirit of libuv's design.rst):
//  1. A uv handle is embedded in the object that owns it, with handle.data = owner. Owners are not
//     copyable or movable because libuv keeps the handle's address.
//  2. After a successful uv_*_init the only way out is uv_close; the owner is freed in the close
//     callback, never by a destructor while the handle is open.
//  3. A connection object owns exactly one uv handle, so it has exactly one close callback. Its
//     timeouts are entries in the worker's TimerWheel, not uv timers.
//  4. Pending uv_write_t requests finish with UV_ECANCELED before the close callback; their
//     callbacks only do accounting and free the request.
//  5. close() is idempotent: it marks the object closing, unlinks it from indexes, calls uv_close,
//     and the caller returns. Code running inside a callback checks is_closing() after any call that
//     may have closed the object.
//  6. Objects without a handle that may be destroyed from inside their own callback chain are handed
//     to Worker::defer_delete and freed after the current loop iteration.
//  7. Only immutable, atomically refcounted objects cross threads.
#pragma once

#include <uv.h>

namespace gripd::loop {

// Close callback for an owner T allocated with new whose handle's data points to it.
template <class T> void delete_owner_on_close(uv_handle_t* handle) {
    delete static_cast<T*>(handle->data);
}

// Closes a handle that was allocated on its own with new (no owner object: its data may already be
// cleared so late callbacks find nothing) and frees it once libuv has let go of it.
template <class T> void close_and_delete(T* handle) {
    uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete reinterpret_cast<T*>(h); });
}

} // namespace gripd::loop
