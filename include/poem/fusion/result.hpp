#pragma once
// What fusing one request produces.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace poem {

struct fusion_result {
    std::size_t n = 0;                   // candidates
    std::size_t k = 0;                   // objectives
    std::vector<float> ranks;            // K x N, rows contiguous: rank on objective k (0 = best, ties averaged)
    std::vector<float> normalized;       // K x N: each objective normalised to [0, 1], 1 = best
    std::vector<float> fused;            // N: fused score in [0, 1], 1 = best
    std::vector<std::uint32_t> fused_rank;  // N: 0..N-1, a permutation (ties broken by candidate index)
    std::vector<std::uint32_t> order;    // N: candidate indices best first (inverse of fused_rank)
    std::vector<std::uint8_t> nonfinite; // N: 1 where any of the candidate's K scores was NaN or +-Inf
    std::size_t nonfinite_count = 0;     // candidates with at least one non-finite score
    std::size_t nonfinite_scores = 0;    // non-finite entries of the K x N matrix

    // Mid-rank percentile of candidate i's fused rank.
    float fused_rank_pct(std::size_t i) const noexcept {
        return 1.0f - (static_cast<float>(fused_rank[i]) + 0.5f) / static_cast<float>(n);
    }
};

}  // namespace poem
