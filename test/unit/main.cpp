// Catch2 v2 test runner: the only translation unit that defines main for the unit tests.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "gripd/grip/render.hpp"
#include "gripd/pubsub/render.hpp"
#include "gripd/ws/render.hpp"

int main(int argc, char* argv[]) {
    // As app::Server does before its workers start: published formats are rendered by their owners.
    gripd::pubsub::set_renderers({&gripd::grip::render_http_response, &gripd::grip::render_http_stream,
                                  &gripd::ws::render_ws_message});
    return Catch::Session().run(argc, argv);
}
