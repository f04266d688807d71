// Fusion from an xtensor expression, through poem::xtensor (poem/fusion/xtensor.hpp).
#include <poem/core/version.hpp>
#include <poem/fusion/xtensor.hpp>

#include <cstdio>

#include <xtensor/xtensor.hpp>

#ifndef XTENSOR_USE_XSIMD
#error "poem::xtensor must define XTENSOR_USE_XSIMD"
#endif

int main() {
    const xt::xtensor<float, 2> scores = {{0.1f, 0.9f, 0.5f}, {3.0f, 1.0f, 2.0f}};
    poem::fusion_config spec;
    spec.objectives = {{}, {poem::direction::lower_is_better, poem::normalization::rank_pct, 1.0f}};
    poem::workspace ws;
    const auto fused = poem::fuse(xt::transpose(xt::transpose(scores)), spec, ws);  // a lazy expression
    std::printf("poem %s (xtensor): best candidate %u\n", POEM_VERSION_STRING, fused.order[0]);
    return fused.order[0] == 1 ? 0 : 1;
}
