// Fusion benchmarks: radix ranks and the whole fuse() call, each beside the naive baseline (argsort
// with std::sort per objective, then scalar loops), and learned fusion (the whole fuse() under method
// learned, and the ensemble's score alone) beside a per-candidate loop. Items are score-matrix elements
// (K x N).
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "bench_common.hpp"
#include "naive_fusion.hpp"
#include "poem/core/rng.hpp"
#include "poem/fusion/fuse.hpp"

namespace {

using poem_bench::naive_fuse;
using poem_bench::naive_fuse_learned;
using poem_bench::naive_learned;
using poem_bench::naive_out;
using poem_bench::naive_ranks;

using matrix = std::vector<float>;

// 16 different K x N requests of predicted rates in [0, 1) (24-bit resolution, so a few ties), or
// quantised to `levels` values (rates rounded, counts: long runs of ties).
poem_bench::rotating<matrix> requests(std::size_t k, std::size_t n, int levels = 0) {
    return {16, [&](std::size_t r) {
                poem::rng g(1000 * k + n + r);
                matrix m(k * n);
                for (auto& x : m) x = g.uniform_float();
                if (levels > 0)
                    for (auto& x : m) x = std::floor(x * static_cast<float>(levels)) / static_cast<float>(levels);
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

// The shipped ensemble's size (D = 4, H = 16), weights of a trained one's scale.
std::shared_ptr<const poem::learned_fusion> ensemble_for(std::size_t k) {
    const std::size_t d = 4, h = 16;
    poem::rng g(k);
    auto draw = [&](std::size_t count, float lo, float hi) {
        std::vector<float> v(count);
        for (auto& x : v) x = lo + (hi - lo) * g.uniform_float();
        return v;
    };
    return std::make_shared<const poem::learned_fusion>(k, d, h, draw(k * d, -2, 2), draw(k * d, -1, 0),
                                                        draw(h * k * d, -0.4f, 0.4f), draw(h, -0.2f, 0.2f),
                                                        draw(h, -1, 1), draw(1, -2, 0), draw(k, 0, 2));
}

poem::fusion_config learned_spec_for(std::size_t k) {
    auto spec = spec_for(k);
    spec.method = poem::fusion_method::learned;
    spec.learned = ensemble_for(k);
    return spec;
}

// ---- benchmarks --------------------------------------------------------------------------------

void rank_requests(benchmark::State& state, int levels) {
    const auto k = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1));
    auto in = requests(k, n, levels);
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

void rank_requests_naive(benchmark::State& state, int levels) {
    const auto k = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1));
    auto in = requests(k, n, levels);
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

void BM_fusion_rank(benchmark::State& state) { rank_requests(state, 0); }
void BM_fusion_rank_naive(benchmark::State& state) { rank_requests_naive(state, 0); }
// Scores quantised to 16 values: every request has long tied runs to average.
void BM_fusion_rank_tied(benchmark::State& state) { rank_requests(state, 16); }
void BM_fusion_rank_tied_naive(benchmark::State& state) { rank_requests_naive(state, 16); }

// fuse() of rotating K x N requests (range 0: K, range 1: N) under the spec `make_spec(K)` gives.
template <class MakeSpec>
void fuse_requests(benchmark::State& state, MakeSpec make_spec) {
    const auto k = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1));
    auto in = requests(k, n);
    const auto spec = make_spec(k);
    poem::workspace ws;
    poem::fusion_result out;
    for (auto _ : state) {
        poem::fuse(poem::matrix_view<const float>(in.next().data(), k, n), spec, ws, out);
        benchmark::DoNotOptimize(out.fused.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k * n));
}

void BM_fusion_fuse(benchmark::State& state) { fuse_requests(state, spec_for); }

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

// fuse() under method learned: ranks and normalisations as for the formula, then the ensemble.
void BM_fusion_learned(benchmark::State& state) { fuse_requests(state, learned_spec_for); }

void BM_fusion_learned_naive(benchmark::State& state) {
    const auto k = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1));
    auto in = requests(k, n);
    const auto spec = learned_spec_for(k);
    naive_out out;
    std::vector<float> normalized, e;
    for (auto _ : state) {
        naive_fuse_learned(in.next().data(), k, n, spec, *spec.learned, out, normalized, e);
        benchmark::DoNotOptimize(out.fused.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k * n));
}

// The ensemble alone on K x N normalised values: one kernel call against the per-candidate loop.
void BM_fusion_learned_score(benchmark::State& state) {
    const auto k = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1));
    auto in = requests(k, n);
    const auto f = ensemble_for(k);
    poem::workspace ws;
    std::vector<float> fused(n);
    for (auto _ : state) {
        f->score(poem::matrix_view<const float>(in.next().data(), k, n), ws, poem::span<float>(fused));
        benchmark::DoNotOptimize(fused.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k * n));
}

void BM_fusion_learned_score_naive(benchmark::State& state) {
    const auto k = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1));
    auto in = requests(k, n);
    const auto f = ensemble_for(k);
    std::vector<float> fused(n), e;
    for (auto _ : state) {
        naive_learned(*f, in.next().data(), n, e, fused.data());
        benchmark::DoNotOptimize(fused.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k * n));
}

void learned_shapes(benchmark::internal::Benchmark* b) {
    b->ArgNames({"K", "N"});
    for (int n : {100, 1000}) b->Args({4, n});
}

void shapes(benchmark::internal::Benchmark* b) {
    b->ArgNames({"K", "N"});
    for (int k : {2, 4, 8})
        for (int n : {100, 256, 1000, 5000}) b->Args({k, n});
}
void tied_shapes(benchmark::internal::Benchmark* b) {
    b->ArgNames({"K", "N"});
    for (int n : {100, 256, 1000, 5000}) b->Args({4, n});
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
BENCHMARK(BM_fusion_rank_tied)->Apply(tied_shapes);
BENCHMARK(BM_fusion_rank_tied_naive)->Apply(tied_shapes);
BENCHMARK(BM_fusion_fuse)->Apply(shapes);
BENCHMARK(BM_fusion_fuse_naive)->Apply(shapes);
BENCHMARK(BM_fusion_learned)->Apply(learned_shapes);
BENCHMARK(BM_fusion_learned_naive)->Apply(learned_shapes);
BENCHMARK(BM_fusion_learned_score)->Apply(learned_shapes);
BENCHMARK(BM_fusion_learned_score_naive)->Apply(learned_shapes);
