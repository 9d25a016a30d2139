#include "gripd/core/malloc_policy.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <string>

using namespace gripd;

namespace {

// Sets (or unsets, with nullopt) an environment variable for the scope, then puts it back.
class ScopedEnv {
  public:
    ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value)
            setenv(name, value->c_str(), 1);
        else
            unsetenv(name);
    }
    ~ScopedEnv() {
        if (old_)
            setenv(name_, old_->c_str(), 1);
        else
            unsetenv(name_);
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

  private:
    const char* name_;
    std::optional<std::string> old_;
};

} // namespace

TEST_CASE("the malloc policy is applied unless the environment sets malloc's thresholds", "[core]") {
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    ScopedEnv tunables("GLIBC_TUNABLES", std::nullopt);
    ScopedEnv trim("MALLOC_TRIM_THRESHOLD_", std::nullopt);
    ScopedEnv mmap("MALLOC_MMAP_THRESHOLD_", std::nullopt);
    CHECK(core::apply_malloc_policy());
    {
        ScopedEnv t("GLIBC_TUNABLES", "glibc.rtld.nns=2"); // not malloc's: applied
        CHECK(core::apply_malloc_policy());
    }
    {
        ScopedEnv t("GLIBC_TUNABLES", "glibc.rtld.nns=2:glibc.malloc.trim_threshold=0");
        CHECK_FALSE(core::apply_malloc_policy());
    }
    {
        ScopedEnv t("MALLOC_TRIM_THRESHOLD_", "0");
        CHECK_FALSE(core::apply_malloc_policy());
    }
    {
        ScopedEnv t("MALLOC_MMAP_THRESHOLD_", "131072");
        CHECK_FALSE(core::apply_malloc_policy());
    }
    CHECK(core::apply_malloc_policy()); // what the rest of the tests run with, as gripd does
#else
    WARN("not glibc's own malloc in this build: nothing to check");
#endif
}
