#pragma once
// The naive fusion baseline of the benchmarks: an argsort with std::sort per objective, then scalar
// loops (bench_fusion, bench_pipeline).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "poem/fusion/config.hpp"

namespace poem_bench {

inline void naive_ranks(const float* x, std::size_t n, bool higher, std::vector<std::uint32_t>& idx, float* rank) {
    idx.resize(n);
    std::iota(idx.begin(), idx.end(), 0u);
    std::sort(idx.begin(), idx.end(), [&](std::uint32_t a, std::uint32_t b) {
        const bool fa = std::isfinite(x[a]), fb = std::isfinite(x[b]);
        if (fa != fb) return fa;
        return fa && (higher ? x[a] > x[b] : x[a] < x[b]);
    });
    for (std::size_t i = 0; i < n;) {
        std::size_t j = i + 1;
        while (j < n && (x[idx[j]] == x[idx[i]] || (!std::isfinite(x[idx[j]]) && !std::isfinite(x[idx[i]])))) ++j;
        for (std::size_t t = i; t < j; ++t) rank[idx[t]] = 0.5f * static_cast<float>(i + j - 1);
        i = j;
    }
}

struct naive_out {
    std::vector<float> ranks, fused;
    std::vector<std::uint32_t> idx, order;
};

inline void naive_fuse(const float* s, std::size_t k, std::size_t n, const poem::fusion_config& spec, naive_out& o) {
    o.ranks.resize(k * n);
    o.fused.assign(n, 0.0f);
    float total = 0;
    for (const auto& obj : spec.objectives) total += obj.weight;
    for (std::size_t r = 0; r < k; ++r) {
        float* rank = o.ranks.data() + r * n;
        naive_ranks(s + r * n, n, spec.objectives[r].dir == poem::direction::higher_is_better, o.idx, rank);
        const float w = spec.objectives[r].weight / total;
        for (std::size_t i = 0; i < n; ++i) {
            const float pct = std::isfinite(s[r * n + i]) ? 1.0f - (rank[i] + 0.5f) / static_cast<float>(n) : 0.0f;
            o.fused[i] += w * pct;
        }
    }
    o.order.resize(n);
    std::iota(o.order.begin(), o.order.end(), 0u);
    std::stable_sort(o.order.begin(), o.order.end(), [&](std::uint32_t a, std::uint32_t b) { return o.fused[a] > o.fused[b]; });
}

}  // namespace poem_bench
