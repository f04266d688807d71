#pragma once
// The naive fusion baseline of the benchmarks: an argsort with std::sort per objective, then scalar
// loops (bench_fusion, bench_pipeline).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "poem/fusion/config.hpp"
#include "poem/fusion/learned.hpp"

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

// A learned ensemble as a user would write it: per candidate, loops over k, j, then m.
inline void naive_learned(const poem::learned_fusion& f, const float* x, std::size_t n, std::vector<float>& e,
                          float* fused) {
    const std::size_t k = f.objectives(), d = f.component_dim(), h = f.hidden();
    e.resize(k * d);
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t r = 0; r < k; ++r)
            for (std::size_t j = 0; j < d; ++j)
                e[r * d + j] = std::max(0.0f, f.component_weight()[r * d + j] * x[r * n + i] + f.component_bias()[r * d + j]);
        float logit = f.out_bias();
        for (std::size_t m = 0; m < h; ++m) {
            float acc = f.aggregate_bias()[m];
            for (std::size_t c = 0; c < k * d; ++c) acc += f.aggregate_weight()[m * k * d + c] * e[c];
            logit += f.out_weight()[m] * std::max(0.0f, acc);
        }
        for (std::size_t r = 0; r < k; ++r) logit += f.skip_weight()[r] * x[r * n + i];
        fused[i] = 1.0f / (1.0f + std::exp(-logit));
    }
}

// naive_fuse's ranks (rank percentiles as the normalised values), then naive_learned, then the order.
inline void naive_fuse_learned(const float* s, std::size_t k, std::size_t n, const poem::fusion_config& spec,
                               const poem::learned_fusion& f, naive_out& o, std::vector<float>& normalized,
                               std::vector<float>& e) {
    o.ranks.resize(k * n);
    o.fused.resize(n);
    normalized.resize(k * n);
    for (std::size_t r = 0; r < k; ++r) {
        float* rank = o.ranks.data() + r * n;
        naive_ranks(s + r * n, n, spec.objectives[r].dir == poem::direction::higher_is_better, o.idx, rank);
        for (std::size_t i = 0; i < n; ++i)
            normalized[r * n + i] =
                std::isfinite(s[r * n + i]) ? 1.0f - (rank[i] + 0.5f) / static_cast<float>(n) : 0.0f;
    }
    naive_learned(f, normalized.data(), n, e, o.fused.data());
    o.order.resize(n);
    std::iota(o.order.begin(), o.order.end(), 0u);
    std::stable_sort(o.order.begin(), o.order.end(), [&](std::uint32_t a, std::uint32_t b) { return o.fused[a] > o.fused[b]; });
}

}  // namespace poem_bench
