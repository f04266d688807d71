// sample/ benchmarks, each fast path beside its naive baseline.
//   BM_sample_alias        poem::alias_table::draw (one 64-bit number, multiply-shift, u32 compare)
//   BM_sample_alias_naive  std::discrete_distribution (binary search over the CDF), same generator
//   BM_sample_walk         walk_batch: 4096 walks in lockstep, pipelined with prefetching
//   BM_sample_walk_naive   walk_naive: one walk at a time (same walks, same result)
// on a synthetic graph of 2^20 items and ~15.7M edges (about 320 MB with the alias entries: far
// larger than any cache), built once. Items are draws or walk steps.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "bench_common.hpp"
#include "poem/core/rng.hpp"
#include "poem/sample/alias.hpp"
#include "poem/sample/hard_negatives.hpp"
#include "poem/sample/item_graph.hpp"
#include "poem/sample/walk.hpp"

namespace {

std::vector<double> zipf_weights(std::size_t n) {
    std::vector<double> w(n);
    poem::rng g(n);
    for (std::size_t i = 0; i < n; ++i) w[i] = (0.5 + g.uniform_double()) / std::pow(static_cast<double>(i + 1), 0.7);
    std::shuffle(w.begin(), w.end(), g);
    return w;
}

constexpr std::size_t draws_per_iter = 4096;

void BM_sample_alias(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const poem::alias_table table(zipf_weights(n));
    poem::rng g(1);
    for (auto _ : state) {
        std::uint64_t acc = 0;
        for (std::size_t k = 0; k < draws_per_iter; ++k) acc += table.draw(g);
        benchmark::DoNotOptimize(acc);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * draws_per_iter));
}
BENCHMARK(BM_sample_alias)->Arg(1000)->Arg(1 << 20);

void BM_sample_alias_naive(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto w = zipf_weights(n);
    std::discrete_distribution<std::uint32_t> dist(w.begin(), w.end());
    poem::rng g(1);
    for (auto _ : state) {
        std::uint64_t acc = 0;
        for (std::size_t k = 0; k < draws_per_iter; ++k) acc += dist(g);
        benchmark::DoNotOptimize(acc);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * draws_per_iter));
}
BENCHMARK(BM_sample_alias_naive)->Arg(1000)->Arg(1 << 20);

// ---- walks ---------------------------------------------------------------------------------------

constexpr std::uint32_t graph_items = 1u << 20;

// Degrees 5..25 (mean 15); neighbours skewed towards low ids (popular hubs: id = n * u^2), weights
// in [0.1, 1.1). Built once, straight into CSR.
const poem::item_graph& big_graph() {
    static const poem::item_graph graph = [] {
        poem::rng g(2024);
        std::vector<std::uint64_t> off(graph_items + 1, 0);
        std::vector<std::uint32_t> nb;
        std::vector<float> w;
        nb.reserve(static_cast<std::size_t>(graph_items) * 16);
        w.reserve(nb.capacity());
        std::vector<std::uint32_t> row;
        for (std::uint32_t a = 0; a < graph_items; ++a) {
            const auto deg = 5 + g.below(21);
            row.clear();
            for (std::uint64_t k = 0; k < deg; ++k) {
                const double u = g.uniform_double();
                auto b = static_cast<std::uint32_t>(static_cast<double>(graph_items) * u * u);
                if (b == a) b = (b + 1) % graph_items;
                row.push_back(b);
            }
            std::sort(row.begin(), row.end());
            row.erase(std::unique(row.begin(), row.end()), row.end());
            for (std::uint32_t b : row) {
                nb.push_back(b);
                w.push_back(0.1f + g.uniform_float());
            }
            off[a + 1] = nb.size();
        }
        return poem::item_graph(std::move(off), std::move(nb), std::move(w));
    }();
    return graph;
}

constexpr std::size_t walks_per_iter = 4096, walk_length = 16;

poem_bench::rotating<std::vector<std::uint64_t>>& walk_starts() {
    static poem_bench::rotating<std::vector<std::uint64_t>> starts(16, [](std::size_t r) {
        poem::rng g(100 + r);
        std::vector<std::uint64_t> s(walks_per_iter);
        for (auto& x : s) x = g.below(graph_items);
        return s;
    });
    return starts;
}

template <bool Batched>
void walk_bench(benchmark::State& state) {
    const auto& graph = big_graph();
    auto& starts = walk_starts();
    std::vector<std::uint64_t> out(walks_per_iter * walk_length);
    poem::workspace ws;
    poem::rng gen(0);
    for (auto _ : state) {
        const auto& s = starts.next();
        if constexpr (Batched) poem::walk_batch(graph, s, walk_length, gen, ws, out);
        else poem::walk_naive(graph, s, walk_length, gen, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * walks_per_iter * (walk_length - 1)));
    state.counters["edges"] = static_cast<double>(graph.edge_count());
}
void BM_sample_walk(benchmark::State& state) { walk_bench<true>(state); }
void BM_sample_walk_naive(benchmark::State& state) { walk_bench<false>(state); }
BENCHMARK(BM_sample_walk)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_sample_walk_naive)->Unit(benchmark::kMicrosecond);

// Hard negatives for a user with 5 positives on the big graph (2-hop), 20 wanted.
void BM_sample_hard_negatives(benchmark::State& state) {
    const auto& graph = big_graph();
    static const auto pop = [] {
        std::vector<std::uint32_t> counts(graph_items);
        poem::rng g(5);
        for (auto& c : counts) c = static_cast<std::uint32_t>(g.below(1000));
        return poem::popularity_alias(counts);
    }();
    poem::rng g(6);
    std::vector<std::uint64_t> pos(5), engaged(50);
    for (auto _ : state) {
        for (auto& p : pos) p = g.below(graph_items);
        for (auto& e : engaged) e = g.below(graph_items);
        auto res = poem::hard_negatives(graph, pos, engaged, &pop, {20, 2}, g);
        benchmark::DoNotOptimize(res.items.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * 20));
}
BENCHMARK(BM_sample_hard_negatives)->Unit(benchmark::kMicrosecond);

}  // namespace
