#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "poem/core/dispatch.hpp"

// ctest reruns every test binary once per compiled SIMD target (POEM_SIMD=<target>,
// POEM_TEST_SKIP_UNSUPPORTED=1): a target this CPU cannot run is a skip (77), not a failure.
int main(int argc, char** argv) {
    const char* want = std::getenv("POEM_SIMD");
    if (want != nullptr && *want != '\0' && std::getenv("POEM_TEST_SKIP_UNSUPPORTED") != nullptr) {
        bool runs = false;
        for (const std::string& t : poem::simd_targets()) runs = runs || t == want;
        if (!runs) {
            std::printf("skipped: this CPU does not run the %s kernels\n", want);
            return 77;
        }
    }
    return Catch::Session().run(argc, argv);
}
