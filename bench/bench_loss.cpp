// loss/ benchmarks: the dense pairwise loss with its gradient over 1000 scores (100 positives x 900
// negatives = 90,000 pairs), each beside its baselines:
//   _naive   the textbook loop: per pair z = m - (s_i - s_j), branch, scattered gradient updates
//   _scalar  poem's scalar reference (the kernel the SIMD path is tested against)
// plus the pair-list form on 2,000 random pairs over 1000 scores. Items are pairs. 16 different
// inputs rotate so that no call sees the previous call's scores.
#include <cmath>
#include <cstdint>
#include <vector>

#include "bench_common.hpp"
#include "poem/core/rng.hpp"
#include "poem/loss/pairwise.hpp"

namespace {

constexpr std::size_t P = 100, Q = 900;
constexpr float margin = 0.2f;

struct dense_input {
    std::vector<float> pos, neg;
};

poem_bench::rotating<dense_input>& inputs() {
    static poem_bench::rotating<dense_input> in(16, [](std::size_t r) {
        poem::rng g(77 + r);
        dense_input d{std::vector<float>(P), std::vector<float>(Q)};
        for (auto& x : d.pos) x = 0.5f + g.uniform_float();  // about a third of the pairs violate the margin
        for (auto& x : d.neg) x = g.uniform_float();
        return d;
    });
    return in;
}

float naive_dense(const std::vector<float>& pos, const std::vector<float>& neg, float m, std::vector<float>& gp,
                  std::vector<float>& gn, poem::pairwise_form form) {
    for (auto& g : gp) g = 0.0f;
    for (auto& g : gn) g = 0.0f;
    const double inv = 1.0 / static_cast<double>(pos.size() * neg.size());
    double loss = 0.0;
    for (std::size_t i = 0; i < pos.size(); ++i)
        for (std::size_t j = 0; j < neg.size(); ++j) {
            const float z = m - (pos[i] - neg[j]);
            if (form == poem::pairwise_form::hinge) {
                if (z > 0.0f) {
                    loss += z;
                    gp[i] -= static_cast<float>(inv);
                    gn[j] += static_cast<float>(inv);
                }
            } else {
                loss += z > 0.0f ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
                const float s = static_cast<float>(inv) / (1.0f + std::exp(-z));
                gp[i] -= s;
                gn[j] += s;
            }
        }
    return static_cast<float>(loss * inv);
}

enum class variant { simd, scalar, naive };

template <variant V>
void dense_bench(benchmark::State& state, poem::pairwise_form form) {
    auto& in = inputs();
    std::vector<float> gp(P), gn(Q);
    for (auto _ : state) {
        const auto& d = in.next();
        float l;
        if constexpr (V == variant::simd) l = poem::dense_pairwise_loss(d.pos, d.neg, margin, {form}, gp, gn);
        else if constexpr (V == variant::scalar)
            l = poem::detail::dense_pairwise_loss_scalar(d.pos, {}, margin, d.neg, {}, {form}, gp, gn);
        else l = naive_dense(d.pos, d.neg, margin, gp, gn, form);
        benchmark::DoNotOptimize(l);
        benchmark::DoNotOptimize(gp.data());
        benchmark::DoNotOptimize(gn.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * P * Q));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * (P + Q) * sizeof(float)));
}

void BM_loss_hinge(benchmark::State& s) { dense_bench<variant::simd>(s, poem::pairwise_form::hinge); }
void BM_loss_hinge_scalar(benchmark::State& s) { dense_bench<variant::scalar>(s, poem::pairwise_form::hinge); }
void BM_loss_hinge_naive(benchmark::State& s) { dense_bench<variant::naive>(s, poem::pairwise_form::hinge); }
void BM_loss_softplus(benchmark::State& s) { dense_bench<variant::simd>(s, poem::pairwise_form::softplus); }
void BM_loss_softplus_scalar(benchmark::State& s) { dense_bench<variant::scalar>(s, poem::pairwise_form::softplus); }
void BM_loss_softplus_naive(benchmark::State& s) { dense_bench<variant::naive>(s, poem::pairwise_form::softplus); }
BENCHMARK(BM_loss_hinge)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_loss_hinge_scalar)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_loss_hinge_naive)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_loss_softplus)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_loss_softplus_scalar)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_loss_softplus_naive)->Unit(benchmark::kMicrosecond);

// Pair list: 2,000 random pairs over 1000 scores.
void BM_loss_hinge_pairs(benchmark::State& state) {
    poem_bench::rotating<std::vector<float>> scores(16, [](std::size_t r) {
        poem::rng g(900 + r);
        std::vector<float> s(1000);
        for (auto& x : s) x = g.uniform_float();
        return s;
    });
    poem::rng g(3);
    std::vector<poem::margin_pair> pairs(2000);
    for (auto& p : pairs)
        p = {static_cast<std::uint32_t>(g.below(1000)), static_cast<std::uint32_t>(g.below(1000)), 0.1f + 0.1f * static_cast<float>(g.below(4))};
    std::vector<float> grad(1000);
    for (auto _ : state) {
        const auto& s = scores.next();
        benchmark::DoNotOptimize(poem::pairwise_hinge(s, pairs, grad));
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * pairs.size()));
}
BENCHMARK(BM_loss_hinge_pairs)->Unit(benchmark::kMicrosecond);

}  // namespace
