// A consumer linking poem::dispatch: it names the target it runs and fuses one request on every target
// this CPU supports; exit status 1 if a target disagrees with the scalar reference.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <poem/poem.hpp>

int main() try {
#ifndef POEM_DISPATCH
    std::printf("poem::dispatch did not define POEM_DISPATCH\n");
    return 1;
#endif
    const std::size_t k = 3, n = 257;
    std::vector<float> scores(k * n);
    for (std::size_t i = 0; i < scores.size(); ++i) scores[i] = std::sin(static_cast<float>(i) * 0.37f);
    poem::fusion_config cfg;
    cfg.objectives.assign(k, poem::objective_config{});
    cfg.objectives[1].norm = poem::normalization::z_score;
    poem::workspace ws;
    const poem::matrix_view<const float> view(scores.data(), k, n);
    std::printf("poem consumer: running on %s of", poem::simd_target());
    const std::vector<std::string> targets = poem::simd_targets();
    for (const std::string& t : targets) std::printf(" %s", t.c_str());
    std::printf("\n");
    poem::set_simd_target("scalar");
    const poem::fusion_result ref = poem::fuse(view, cfg, ws);
    for (const std::string& t : targets) {
        poem::set_simd_target(t);
        const poem::fusion_result got = poem::fuse(view, cfg, ws);
        for (std::size_t i = 0; i < n; ++i)
            // ranks exact; fused within 1e-6 (z-score sums differ in order: docs/fusion.md)
            if (got.ranks[i] != ref.ranks[i] || std::fabs(got.fused[i] - ref.fused[i]) > 1e-6f) {
                std::printf("target %s disagrees at candidate %zu\n", t.c_str(), i);
                return 1;
            }
    }
    return 0;
} catch (const std::exception& e) {
    std::printf("%s\n", e.what());
    return 1;
}
