#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "poem/core/dispatch.hpp"

// ctest reruns every test binary once per compiled SIMD target (POEM_SIMD=<target>,
// POEM_TEST_SKIP_UNSUPPORTED=1): a target this CPU cannot run is a skip (77), not a failure. With
// POEM_TEST_SKIP_BEST=1 too, so is the target this CPU runs by default: the plain run (no POEM_SIMD)
// has just tested it.
int main(int argc, char** argv) {
    const char* want = std::getenv("POEM_SIMD");
    if (want != nullptr && *want != '\0' && std::getenv("POEM_TEST_SKIP_UNSUPPORTED") != nullptr) {
        const std::vector<std::string> runs = poem::simd_targets();  // best first
        if (std::find(runs.begin(), runs.end(), want) == runs.end()) {
            std::printf("skipped: this CPU does not run the %s kernels\n", want);
            return 77;
        }
        if (std::getenv("POEM_TEST_SKIP_BEST") != nullptr && runs.front() == want) {
            std::printf("skipped: %s is this CPU's default target, which the run without POEM_SIMD tests\n", want);
            return 77;
        }
    }
    return Catch::Session().run(argc, argv);
}
