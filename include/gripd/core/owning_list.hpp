// OwningList: an intrusive list that owns its elements. push_back takes a unique_ptr, take() hands
// one back (unlinked), and whatever is still in the list is destroyed with it. Elements link through
// their own hook, so adding never allocates and removing is O(1). Use it for objects a service owns
// while something else (a client connection, a timer) drives them, instead of releasing a
// unique_ptr into a plain intrusive list and rebuilding it later.
#pragma once

#include "gripd/core/intrusive_list.hpp"

#include <cstddef>
#include <memory>

namespace gripd::core {

// T must have a public member `ListHook Member` used by no other list, and, when elements are
// destroyed through a base, a virtual destructor.
template <class T, ListHook T::*Member> class OwningList {
  public:
    OwningList() = default;
    OwningList(const OwningList&) = delete;
    OwningList& operator=(const OwningList&) = delete;
    ~OwningList() { clear(); }

    void push_back(std::unique_ptr<T> item) { list_.push_back(*item.release()); }
    // Unlinks `item` and hands over its ownership; nullptr if it is not in the list (taken already).
    std::unique_ptr<T> take(T& item) {
        if (!(item.*Member).is_linked()) return nullptr;
        (item.*Member).unlink();
        return std::unique_ptr<T>(&item);
    }
    // Destroys every element, front to back (an element's destructor may take others out).
    void clear() {
        while (T* item = list_.front())
            take(*item).reset();
    }
    // Calls f(T&) for each element; f may take the element it is given.
    template <class F> void for_each(F&& f) { list_.for_each(std::forward<F>(f)); }
    bool empty() const { return list_.empty(); }
    size_t size() const { return list_.size(); }

  private:
    IntrusiveList<T, Member> list_;
};

} // namespace gripd::core
