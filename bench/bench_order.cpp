// order/ benchmarks: Pareto levels beside the textbook O(K N^2) non-dominated sort (`_naive`, Deb's
// fast non-dominated sort: domination counts and dominated lists) and the ENS-BS implementation they
// replaced (`_ensbs`), with each of their two methods for K >= 3 forced (`_search`, `_bitset`), on
// uniform, correlated and tied data; tiers and sampling, and one
// request's record + sequence of the partial-order state beside a plain vector-and-std::set version.
// Items are candidates (Pareto, tiers, sampling) or requests (sequence). Every iteration sees a
// different input (16 rotating requests).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "bench_common.hpp"
#include "naive_order.hpp"
#include "../tests/reference/po_state.hpp"
#include "poem/core/rng.hpp"
#include "poem/order/order.hpp"

namespace {

using matrix = std::vector<float>;
using poem::direction;
using poem_bench::naive_levels;
using poem_bench::naive_state;

// 16 K x N requests: uniform predicted rates in [0, 1), or correlated ones (a shared base per
// candidate plus a little noise per objective, as scores of related objectives are). Tied: uniform,
// with objective 0 quantised to 16 values (a coarse score such as a bucketed duration).
poem_bench::rotating<matrix> requests(std::size_t k, std::size_t n, bool correlated, bool tied = false) {
    return {16, [&](std::size_t r) {
                poem::rng g(7919 * k + n + 104729 * r + (correlated ? 1 : 0) + (tied ? 2 : 0));
                matrix m(k * n);
                for (std::size_t i = 0; i < n; ++i) {
                    const float base = g.uniform_float();
                    for (std::size_t j = 0; j < k; ++j)
                        m[j * n + i] = correlated ? 0.8f * base + 0.2f * g.uniform_float() : g.uniform_float();
                    if (tied) m[i] = std::floor(16.0f * m[i]) / 16.0f;
                }
                return m;
            }};
}

std::vector<direction> dirs_for(std::size_t k) {
    std::vector<direction> d(k);
    for (std::size_t j = 0; j < k; ++j) d[j] = j % 3 == 2 ? direction::lower_is_better : direction::higher_is_better;
    return d;
}

// K = 7 only at N = 20000, so that the whole of bench_order stays under 3 minutes; the naive baseline
// stops at N = 5000 (seconds per request beyond) and keeps K in {2, 3, 4, 8} (its cost hardly
// depends on K).
void pareto_args_for(benchmark::internal::Benchmark* b, bool naive) {
    b->ArgNames({"N", "K", "correlated"});
    for (int corr : {0, 1})
        for (int k : {2, 3, 4, 5, 6, 7, 8})
            for (int n : {500, 2000, 5000}) {
                const bool old_k = k <= 4 || k == 8;  // the K measured before K = 5..7 were added
                if (naive ? old_k : k != 7) b->Args({n, k, corr});
            }
    b->Unit(benchmark::kMicrosecond);
}
void pareto_args(benchmark::internal::Benchmark* b) { pareto_args_for(b, false); }
// N = 20000 takes up to 0.7 s an iteration (ENS-BS, K = 8): exactly 16 iterations, so that the fast path
// and the baseline see the same 16 rotating inputs, not whichever prefix of them fits the time.
void pareto_args_large(benchmark::internal::Benchmark* b) {
    b->ArgNames({"N", "K", "correlated"});
    for (int corr : {0, 1})
        for (int k : {2, 3, 4, 5, 6, 7, 8}) b->Args({20000, k, corr});
    b->Unit(benchmark::kMillisecond)->Iterations(16);
}
void pareto_args_naive(benchmark::internal::Benchmark* b) { pareto_args_for(b, true); }
// Around the choice between the two methods for K >= 3: requests of 100 to 2000 candidates (the sizes
// pareto_args lacks for the automatic choice, all of them for the forced methods), 0.2 s each.
void pareto_args_methods_for(benchmark::internal::Benchmark* b, bool forced) {
    b->ArgNames({"N", "K", "correlated"});
    for (int corr : {0, 1})
        for (int k : {3, 4, 5, 8})
            for (int n : {100, 300, 500, 1000, 2000})
                if (forced || n == 100 || n == 300 || n == 1000) b->Args({n, k, corr});
    b->Unit(benchmark::kMicrosecond)->MinTime(0.2);
}
void pareto_args_methods(benchmark::internal::Benchmark* b) { pareto_args_methods_for(b, true); }
void pareto_args_small(benchmark::internal::Benchmark* b) { pareto_args_methods_for(b, false); }
void pareto_args_tied(benchmark::internal::Benchmark* b) {
    b->ArgNames({"N", "K"});
    for (int k : {2, 3, 5, 8})
        for (int n : {2000, 5000}) b->Args({n, k});
    b->Unit(benchmark::kMicrosecond);
}

// Which implementation a Pareto bench runs: pareto_levels as it chooses, one of its two methods for
// K >= 3 forced (the searches over levels, the bitsets), or the ENS-BS baseline.
enum class pareto_impl { automatic, search, bitset, ensbs };

template <pareto_impl Impl>
void run_pareto(benchmark::State& state, bool correlated, bool tied) {
    const auto n = static_cast<std::size_t>(state.range(0)), k = static_cast<std::size_t>(state.range(1));
    auto in = requests(k, n, correlated, tied);
    const auto d = dirs_for(k);
    poem::workspace ws;
    poem::levels_result out;
    std::uint32_t levels = 0;
    for (auto _ : state) {
        const poem::matrix_view<const float> s(in.next().data(), k, n);
        if constexpr (Impl == pareto_impl::ensbs) poem_bench::pareto_levels_ensbs(s, d, ws, out);
        else if constexpr (Impl == pareto_impl::search)
            poem::detail::pareto_levels(s, d, ws, out, poem::detail::pareto_method::search);
        else if constexpr (Impl == pareto_impl::bitset)
            poem::detail::pareto_levels(s, d, ws, out, poem::detail::pareto_method::bitset);
        else poem::pareto_levels(s, d, ws, out);
        levels = out.count;
        benchmark::DoNotOptimize(out.level.data());
    }
    state.counters["levels"] = levels;
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

void BM_order_pareto(benchmark::State& state) {
    run_pareto<pareto_impl::automatic>(state, state.range(2) != 0, false);
}
BENCHMARK(BM_order_pareto)->Apply(pareto_args);
BENCHMARK(BM_order_pareto)->Apply(pareto_args_large);
BENCHMARK(BM_order_pareto)->Apply(pareto_args_small);

// The two methods for K >= 3, each forced, where pareto_levels chooses between them (pareto_bitset_max):
// the searches over levels (staircases for K = 3, level trees from K = 4) and the dominance bitsets.
void BM_order_pareto_search(benchmark::State& state) {
    run_pareto<pareto_impl::search>(state, state.range(2) != 0, false);
}
BENCHMARK(BM_order_pareto_search)->Apply(pareto_args_methods);
void BM_order_pareto_bitset(benchmark::State& state) {
    run_pareto<pareto_impl::bitset>(state, state.range(2) != 0, false);
}
BENCHMARK(BM_order_pareto_bitset)->Apply(pareto_args_methods);

// The implementation before the level trees (ENS-BS, bench/naive_order.hpp).
void BM_order_pareto_ensbs(benchmark::State& state) {
    run_pareto<pareto_impl::ensbs>(state, state.range(2) != 0, false);
}
BENCHMARK(BM_order_pareto_ensbs)->Apply(pareto_args);
BENCHMARK(BM_order_pareto_ensbs)->Apply(pareto_args_large);

void BM_order_pareto_tied(benchmark::State& state) { run_pareto<pareto_impl::automatic>(state, false, true); }
BENCHMARK(BM_order_pareto_tied)->Apply(pareto_args_tied);

void BM_order_pareto_ensbs_tied(benchmark::State& state) { run_pareto<pareto_impl::ensbs>(state, false, true); }
BENCHMARK(BM_order_pareto_ensbs_tied)->Apply(pareto_args_tied);

void BM_order_pareto_naive(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0)), k = static_cast<std::size_t>(state.range(1));
    auto in = requests(k, n, state.range(2) != 0);
    const auto d = dirs_for(k);
    naive_state st;
    for (auto _ : state) {
        naive_levels(in.next().data(), k, n, d, st);
        benchmark::DoNotOptimize(st.level.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(BM_order_pareto_naive)->Apply(pareto_args_naive);

// ---- tiers and sampling ------------------------------------------------------------------------------

poem_bench::rotating<std::vector<float>> fused_inputs(std::size_t n) {
    return {16, [&](std::size_t r) {
                poem::rng g(31 * n + r);
                std::vector<float> f(n);
                for (auto& x : f) x = g.uniform_float();
                return f;
            }};
}

void BM_order_fused_tiers(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    auto in = fused_inputs(n);
    poem::workspace ws;
    poem::levels_result out;
    for (auto _ : state) {
        poem::fused_tiers(in.next(), 8, ws, out);
        benchmark::DoNotOptimize(out.level.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(BM_order_fused_tiers)->Arg(500)->Arg(2000)->Arg(5000)->Unit(benchmark::kMicrosecond);

void BM_order_sample_levels(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    poem::level_config spec;
    spec.policy = state.range(1) ? poem::selection_policy::weighted : poem::selection_policy::top_fused;
    poem_bench::rotating<std::vector<poem::quintuple>> in(16, [&](std::size_t r) {
        poem::rng g(r + 5);
        std::vector<poem::quintuple> q(n);
        for (std::size_t i = 0; i < n; ++i)
            q[i] = {i, 0, g.uniform_float(), 0.5f, static_cast<std::uint32_t>(g.below(40))};
        return q;
    });
    poem::rng gen(1);
    poem::workspace ws;
    std::vector<poem::quintuple> out;
    for (auto _ : state) {
        poem::select_by_level(in.next(), spec, gen, ws, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(BM_order_sample_levels)->ArgNames({"N", "weighted"})->Args({2000, 0})->Args({2000, 1})
    ->Unit(benchmark::kMicrosecond);

// ---- record + sequence -----------------------------------------------------------------------------------

// 16 samples of 11 tokens (the default quotas), item ids drawn from a catalogue of 2000 so that
// requests repeat items now and then.
poem_bench::rotating<std::vector<poem::quintuple>> samples() {
    return {16, [](std::size_t r) {
                poem::rng g(r + 100);
                std::vector<poem::quintuple> q(11);
                for (std::size_t i = 0; i < q.size(); ++i)
                    q[i] = {g.below(2000), 0, g.uniform_float(), g.uniform_float(),
                            static_cast<std::uint32_t>(i < 4 ? 0 : i < 7 ? 1 : i < 9 ? 2 : i - 6)};
                return q;
            }};
}

void BM_order_sequence(benchmark::State& state) {
    const auto length = static_cast<std::size_t>(state.range(0));
    auto in = samples();
    poem::partial_order_state st(256, 32);
    poem::workspace ws;
    poem::po_sequence seq;
    std::vector<poem::quintuple> q;
    std::int64_t now = 1'700'000'000;
    for (auto _ : state) {
        now += 7;
        benchmark::DoNotOptimize(seq.item_id.data());
        st.sequence(now, length, ws, seq);  // before record, as a host does
        q = in.next();
        for (auto& x : q) x.request_time = now;
        st.record(q, ws);
    }
    state.counters["count"] = static_cast<double>(seq.count);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_order_sequence)->ArgName("L")->Arg(100);

void BM_order_sequence_naive(benchmark::State& state) {
    const auto length = static_cast<std::size_t>(state.range(0));
    auto in = samples();
    poem_reference::po_state st{256, 32, {}};  // naive: the tests' plain model of the state
    std::int64_t now = 1'700'000'000;
    for (auto _ : state) {
        now += 7;
        auto seq = st.sequence(now, length);
        benchmark::DoNotOptimize(seq.item_id.data());
        auto q = in.next();
        for (auto& x : q) x.request_time = now;
        st.record(std::move(q));
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_order_sequence_naive)->ArgName("L")->Arg(100);

// Serialising and reading back a full state (256 tokens, 32 requests max); items are bytes.
void BM_order_state_serialize(benchmark::State& state) {
    auto in = samples();
    poem::partial_order_state st(256, 32);
    for (std::int64_t t = 0; t < 40; ++t) {
        auto q = in.next();
        for (auto& x : q) x.request_time = t;
        st.record(q);
    }
    std::vector<std::uint8_t> bytes;
    for (auto _ : state) {
        st.serialize(bytes);
        auto back = poem::partial_order_state::deserialize(bytes);
        benchmark::DoNotOptimize(back.token_count());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes.size()));
}
BENCHMARK(BM_order_state_serialize);

}  // namespace
