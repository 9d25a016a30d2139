// A minimal intrusive doubly linked list: the hook lives in the element, so linking never allocates
// and unlinking is O(1). Elements must unlink themselves (or be unlinked) before they are destroyed.
#pragma once

#include <cstddef>

namespace gripd::core {

struct ListHook {
    ListHook* prev = nullptr;
    ListHook* next = nullptr;
    void* owner = nullptr; // the element this hook is embedded in
    bool is_linked() const { return prev != nullptr; }
    void unlink() {
        if (!prev) return;
        prev->next = next;
        next->prev = prev;
        prev = next = nullptr;
    }
};

// T must have a public member `ListHook Member`.
template <class T, ListHook T::*Member> class IntrusiveList {
  public:
    IntrusiveList() { head_.prev = head_.next = &head_; }
    IntrusiveList(const IntrusiveList&) = delete;
    IntrusiveList& operator=(const IntrusiveList&) = delete;

    bool empty() const { return head_.next == &head_; }
    void push_back(T& item) {
        ListHook& h = item.*Member;
        h.owner = &item;
        h.next = &head_;
        h.prev = head_.prev;
        head_.prev->next = &h;
        head_.prev = &h;
    }
    T* front() { return empty() ? nullptr : from_hook(head_.next); }
    // Calls f(T&) for each element; f may unlink the element it is given.
    template <class F> void for_each(F&& f) {
        ListHook* h = head_.next;
        while (h != &head_) {
            ListHook* next = h->next;
            f(*from_hook(h));
            h = next;
        }
    }
    size_t size() const {
        size_t n = 0;
        for (const ListHook* h = head_.next; h != &head_; h = h->next)
            ++n;
        return n;
    }

  private:
    static T* from_hook(ListHook* h) { return static_cast<T*>(h->owner); }
    ListHook head_;
};

} // namespace gripd::core
