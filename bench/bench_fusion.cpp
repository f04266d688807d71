// Fusion benchmarks: radix ranks and the whole fuse() call, each beside the naive baseline (argsort
// with std::sort per objective, then scalar loops). Items are score-matrix elements (K x N).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "bench_common.hpp"
#include "naive_fusion.hpp"
#include "poem/core/rng.hpp"
#include "poem/fusion/fuse.hpp"

namespace {

using poem_bench::naive_fuse;
using poem_bench::naive_out;
using poem_bench::naive_ranks;

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

poem::fusion_config spec_for(std::size_t k) {
    poem::fusion_config spec;
    spec.method = poem::fusion_method::weighted_rank;
    for (std::size_t i = 0; i < k; ++i)
        spec.objectives.push_back({i % 2 ? poem::direction::lower_is_better : poem::direction::higher_is_better,
                                   poem::normalization::rank_pct, 1.0f + static_cast<float>(i)});
    return spec;
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
            poem::rank_scores(poem::span<const float>(m.data() + r * n, n), poem::direction::higher_is_better, ws,
                              poem::span<float>(rank));
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
        for (int n : {100, 256, 1000, 5000}) b->Args({k, n});
}

}  // namespace

// One kernel call of N elements: what runtime dispatch adds (an atomic load and an indirect call) shows
// here, beside the same keys computed element by element (poem::sort_key, the scalar definition).
void BM_fusion_sort_keys(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    auto in = requests(1, n);
    std::vector<std::uint32_t> keys(n);
    for (auto _ : state) {
        const matrix& m = in.next();
        benchmark::DoNotOptimize(poem::detail::sort_keys(m.data(), n, true, keys.data()));
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

void BM_fusion_sort_keys_naive(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    auto in = requests(1, n);
    std::vector<std::uint32_t> keys(n);
    for (auto _ : state) {
        const matrix& m = in.next();
        for (std::size_t i = 0; i < n; ++i) keys[i] = poem::sort_key(m[i], true);
        benchmark::DoNotOptimize(keys.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

BENCHMARK(BM_fusion_sort_keys)->ArgName("N")->Arg(100)->Arg(1000);
BENCHMARK(BM_fusion_sort_keys_naive)->ArgName("N")->Arg(100)->Arg(1000);
BENCHMARK(BM_fusion_rank)->Apply(shapes);
BENCHMARK(BM_fusion_rank_naive)->Apply(shapes);
BENCHMARK(BM_fusion_fuse)->Apply(shapes);
BENCHMARK(BM_fusion_fuse_naive)->Apply(shapes);
