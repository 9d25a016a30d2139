// Tether: a pointer from an owner (a session) to an object that can end by itself (a connection),
// kept valid by that object. The object derives from Tethered; when it ends on its own (closed,
// failed) it calls cut_tether(), which empties the one Tether pointing at it, so the owner never
// holds a pointer to a dead object. A Tether is move-only and moving it re-points the object at
// the new holder. What letting go of the object means (give back, abandon, detach) is the holder's
// business: BackendLease and BackendWsHandle wrap a Tether and say it in their destructors.
#pragma once

#include <utility>

namespace gripd::core {

class TetherBase;

class Tethered {
  public:
    Tethered() = default;
    Tethered(const Tethered&) = delete;
    Tethered& operator=(const Tethered&) = delete;

  protected:
    ~Tethered() { cut_tether(); }
    // The Tether holding this object, if any, becomes empty. The holder is not told.
    void cut_tether();
    bool is_tethered() const { return holder_ != nullptr; }
    // The Tether holding this object, if any, holds `other` (which none holds) instead: a stand-in
    // gives its holder the real object (a queued backend request gets a pooled connection).
    void pass_tether(Tethered& other);

  private:
    friend class TetherBase;
    TetherBase* holder_ = nullptr;
};

class TetherBase {
  public:
    TetherBase(const TetherBase&) = delete;
    TetherBase& operator=(const TetherBase&) = delete;
    explicit operator bool() const { return obj_ != nullptr; }

  protected:
    TetherBase() = default;
    TetherBase(TetherBase&& other) noexcept { take(other); }
    ~TetherBase() { untie(); }
    // Points at `obj` (which no other Tether holds); precondition: this one is empty.
    void tie(Tethered& obj) {
        obj_ = &obj;
        obj.holder_ = this;
    }
    // Takes what `other` held (this one must be empty).
    void take(TetherBase& other) {
        obj_ = other.obj_;
        other.obj_ = nullptr;
        if (obj_) obj_->holder_ = this;
    }
    // Empties this Tether and returns what it held, untouched.
    Tethered* untie() {
        Tethered* obj = obj_;
        if (obj) obj->holder_ = nullptr;
        obj_ = nullptr;
        return obj;
    }
    Tethered* get_base() const { return obj_; }

  private:
    friend class Tethered;
    Tethered* obj_ = nullptr;
};

inline void Tethered::cut_tether() {
    if (!holder_) return;
    holder_->obj_ = nullptr;
    holder_ = nullptr;
}

inline void Tethered::pass_tether(Tethered& other) {
    TetherBase* h = holder_;
    if (!h) return;
    holder_ = nullptr;
    h->obj_ = &other;
    other.holder_ = h;
}

// The typed Tether. T derives from Tethered.
template <class T> class Tether : public TetherBase {
  public:
    Tether() = default;
    Tether(Tether&& other) noexcept : TetherBase(std::move(other)) {}
    Tether& operator=(Tether&& other) noexcept {
        if (this != &other) {
            untie();
            take(other);
        }
        return *this;
    }
    void tie(T& obj) { TetherBase::tie(obj); }
    T* untie() { return static_cast<T*>(TetherBase::untie()); }
    T* get() const { return static_cast<T*>(get_base()); }
    T* operator->() const { return get(); }
};

} // namespace gripd::core
