// Uses the library the way a host service would: one include, one fusion call.
#include <poem/poem.hpp>

#include <cstdio>
#include <vector>

int main() {
    const std::vector<float> scores = {0.1f, 0.9f, 0.5f,   // objective 0 over 3 candidates
                                       3.0f, 1.0f, 2.0f};  // objective 1
    poem::rng gen(42);
    (void)gen();
    std::printf("poem %s\n", POEM_VERSION_STRING);
    return scores.size() == 6 ? 0 : 1;
}
