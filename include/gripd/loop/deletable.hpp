// Base for objects handed to Worker::defer_delete: they are freed after the current loop iteration,
// so an object may end itself from inside its own callback chain (Envoy's deferredDelete).
#pragma once

namespace gripd::loop {

class Deletable {
  public:
    virtual ~Deletable() = default;
};

} // namespace gripd::loop
