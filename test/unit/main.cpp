// Catch2 v2 test runner: the only translation unit that defines main for the unit tests.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
