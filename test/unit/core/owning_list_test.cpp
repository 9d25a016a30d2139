#include "gripd/core/owning_list.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace gripd;

namespace {
struct Item {
    explicit Item(int v, std::vector<int>& destroyed) : value(v), destroyed_(destroyed) {}
    ~Item() { destroyed_.push_back(value); }
    int value;
    core::ListHook link;

  private:
    std::vector<int>& destroyed_;
};
using Items = core::OwningList<Item, &Item::link>;
} // namespace

TEST_CASE("OwningList destroys what it still owns, and hands over what is taken", "[core]") {
    std::vector<int> destroyed;
    Item* second = nullptr;
    std::unique_ptr<Item> taken;
    {
        Items items;
        items.push_back(std::make_unique<Item>(1, destroyed));
        auto two = std::make_unique<Item>(2, destroyed);
        second = two.get();
        items.push_back(std::move(two));
        items.push_back(std::make_unique<Item>(3, destroyed));
        CHECK(items.size() == 3);
        taken = items.take(*second);
        CHECK(taken.get() == second);
        CHECK(items.take(*second) == nullptr); // taken already: no second owner
        CHECK(items.size() == 2);
        CHECK(destroyed.empty());
    }
    CHECK(destroyed == std::vector<int>{1, 3});
    taken.reset();
    CHECK(destroyed == std::vector<int>{1, 3, 2});
}

TEST_CASE("OwningList::for_each may take the element it is given", "[core]") {
    std::vector<int> destroyed;
    Items items;
    for (int i = 0; i < 4; ++i)
        items.push_back(std::make_unique<Item>(i, destroyed));
    items.for_each([&](Item& it) {
        if (it.value % 2 == 0) items.take(it).reset();
    });
    CHECK(destroyed == std::vector<int>{0, 2});
    CHECK(items.size() == 2);
    items.clear();
    CHECK(items.empty());
    CHECK(destroyed == std::vector<int>{0, 2, 1, 3});
}
