// Uses the library the way a host service would: one include, one fusion call, checked result,
// linked with poem::poem alone.
#include <poem/poem.hpp>

// The umbrella header leaves xtensor out (poem/fusion/xtensor.hpp is included on its own, with poem::xtensor).
#if defined(XTENSOR_VERSION_MAJOR) || defined(XTENSOR_USE_XSIMD)
#error "poem/poem.hpp or poem::poem pulled in xtensor"
#endif

#include <cstdio>
#include <vector>

int main() {
    const std::vector<float> scores = {0.1f, 0.9f, 0.5f,   // objective 0 over 3 candidates (higher is better)
                                       3.0f, 1.0f, 2.0f};  // objective 1 (lower is better)
    poem::fusion_config spec;
    spec.objectives = {{}, {poem::direction::lower_is_better, poem::normalization::rank_pct, 1.0f}};
    poem::workspace ws;
    const auto fused = poem::fuse(poem::matrix_view<const float>(scores.data(), 2, 3), spec, ws);
    std::printf("poem %s: best candidate %u\n", POEM_VERSION_STRING, fused.order[0]);
    return fused.order[0] == 1 ? 0 : 1;
}
