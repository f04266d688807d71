// Fusion benchmarks: radix ranks and the whole fuse() call, each beside the naive baseline (argsort
// with std::sort per objective, then scalar loops). Items are score-matrix elements (K x N).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "bench_common.hpp"
#include "poem/core/rng.hpp"
#include "poem/fusion/fuse.hpp"

namespace {

using matrix = std::vector<float>;

// 16 different K x N requests of predicted rates in [0, 1) (24-bit resolution, so a few ties).
poem_bench::rotating<matrix> requests(std::size_t k, std::size_t n) {
    return {16, [&](std::size_t r) {
                poem::rng g(1000 * k + n + r);
                matrix m(k * n);
                for (auto& x : m) x = g.uniform_float();
                return m;
            }};
}

poem::fusion_spec spec_for(std::size_t k) {
    poem::fusion_spec spec;
    spec.method = poem::fusion_method::weighted_rank;
    for (std::size_t i = 0; i < k; ++i)
        spec.objectives.push_back({i % 2 ? poem::direction::lower_is_better : poem::direction::higher_is_better,
                                   poem::normalization::rank_pct, 1.0f + static_cast<float>(i)});
    return spec;
}

// ---- naive: std::sort argsort per objective --------------------------------------------------

void naive_ranks(const float* x, std::size_t n, bool higher, std::vector<std::uint32_t>& idx, float* rank) {
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

void naive_fuse(const float* s, std::size_t k, std::size_t n, const poem::fusion_spec& spec, naive_out& o) {
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

// ---- benchmarks --------------------------------------------------------------------------------

void BM_fusion_rank(benchmark::State& state) {
    const auto k = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1));
    auto in = requests(k, n);
    poem::workspace ws;
    std::vector<float> rank(n);
    for (auto _ : state) {
        const matrix& m = in.next();
        for (std::size_t r = 0; r < k; ++r)
            poem::rank_scores(poem::span<const float>(m.data() + r * n, n), poem::direction::higher_is_better,
                              poem::span<float>(rank), ws);
        benchmark::DoNotOptimize(rank.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k * n));
}

void BM_fusion_rank_naive(benchmark::State& state) {
    const auto k = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1));
    auto in = requests(k, n);
    std::vector<float> rank(n);
    std::vector<std::uint32_t> idx;
    for (auto _ : state) {
        const matrix& m = in.next();
        for (std::size_t r = 0; r < k; ++r) naive_ranks(m.data() + r * n, n, true, idx, rank.data());
        benchmark::DoNotOptimize(rank.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k * n));
}

void BM_fusion_fuse(benchmark::State& state) {
    const auto k = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1));
    auto in = requests(k, n);
    const auto spec = spec_for(k);
    poem::workspace ws;
    poem::fusion_result out;
    for (auto _ : state) {
        poem::fuse(poem::matrix_view<const float>(in.next().data(), k, n), spec, ws, out);
        benchmark::DoNotOptimize(out.fused.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k * n));
}

void BM_fusion_fuse_naive(benchmark::State& state) {
    const auto k = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1));
    auto in = requests(k, n);
    const auto spec = spec_for(k);
    naive_out out;
    for (auto _ : state) {
        naive_fuse(in.next().data(), k, n, spec, out);
        benchmark::DoNotOptimize(out.fused.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k * n));
}

void shapes(benchmark::internal::Benchmark* b) {
    b->ArgNames({"K", "N"});
    for (int k : {2, 4, 8})
        for (int n : {100, 1000, 5000}) b->Args({k, n});
}

}  // namespace

BENCHMARK(BM_fusion_rank)->Apply(shapes);
BENCHMARK(BM_fusion_rank_naive)->Apply(shapes);
BENCHMARK(BM_fusion_fuse)->Apply(shapes);
BENCHMARK(BM_fusion_fuse_naive)->Apply(shapes);
