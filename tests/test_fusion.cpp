// fusion/: ranks, normalisations, fused scores and ranks against brute-force references; SIMD kernels
// against their scalar references; determinism; errors; the xtensor entry point.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include "poem/core/dispatch.hpp"
#include "simd_target_scope.hpp"
#include "poem/core/rng.hpp"
#include "poem/fusion/fuse.hpp"
#include "poem/fusion/quintuple.hpp"
#include "poem/fusion/xtensor.hpp"

namespace {

constexpr float nan_f = std::numeric_limits<float>::quiet_NaN();
constexpr float inf_f = std::numeric_limits<float>::infinity();

// ---- data -------------------------------------------------------------------------------------

enum class kind { uniform, ties, nonfinite, wide };

std::vector<float> make_scores(std::size_t k, std::size_t n, kind what, std::uint64_t seed) {
    poem::rng g(seed);
    std::vector<float> s(k * n);
    for (auto& x : s) {
        switch (what) {
            case kind::uniform: x = g.uniform_float(); break;
            case kind::ties: x = 0.25f * static_cast<float>(g.below(5)) - (g.below(2) ? 0.0f : -0.0f); break;
            case kind::nonfinite: {
                const auto r = g.below(20);
                x = r == 0 ? nan_f : r == 1 ? inf_f : r == 2 ? -inf_f : g.uniform_float() * 100.0f - 50.0f;
                break;
            }
            case kind::wide: x = std::ldexp(g.uniform_float() - 0.5f, static_cast<int>(g.below(60)) - 30); break;
        }
    }
    return s;
}

// ---- brute-force references (double precision) ----------------------------------------------

bool better(float a, float b, poem::direction d) {
    return d == poem::direction::higher_is_better ? a > b : a < b;
}

// O(N^2): rank = finite candidates strictly better + half the finite ties; non-finite share the tail.
std::vector<double> rank_brute(const float* x, std::size_t n, poem::direction d) {
    std::size_t bad = 0;
    for (std::size_t i = 0; i < n; ++i) bad += !std::isfinite(x[i]);
    const std::size_t good = n - bad;
    std::vector<double> r(n);
    for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(x[i])) { r[i] = good + (bad - 1) / 2.0; continue; }
        std::size_t above = 0, equal = 0;
        for (std::size_t j = 0; j < n; ++j) {
            if (!std::isfinite(x[j])) continue;
            above += better(x[j], x[i], d);
            equal += x[j] == x[i];
        }
        r[i] = above + (equal - 1) / 2.0;
    }
    return r;
}

// O(N log N) argsort reference for large N (checked against rank_brute on small N).
std::vector<double> rank_sorted(const float* x, std::size_t n, poem::direction d) {
    std::vector<std::size_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    auto key = [&](std::size_t i) { return std::isfinite(x[i]) ? 0 : 1; };
    std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
        if (key(a) != key(b)) return key(a) < key(b);
        return key(a) == 0 && better(x[a], x[b], d);
    });
    std::vector<double> r(n);
    for (std::size_t i = 0; i < n;) {
        std::size_t j = i + 1;
        while (j < n && key(idx[j]) == key(idx[i]) && (key(idx[i]) == 1 || x[idx[j]] == x[idx[i]])) ++j;
        for (std::size_t t = i; t < j; ++t) r[idx[t]] = (i + j - 1) / 2.0;
        i = j;
    }
    return r;
}

std::vector<double> normalize_ref(const float* x, const std::vector<double>& rank, std::size_t n,
                                  const poem::objective_config& o) {
    std::vector<double> v(n, 0.0), t(n);
    std::size_t good = 0;
    for (std::size_t i = 0; i < n; ++i) good += std::isfinite(x[i]);
    const bool flip = o.dir == poem::direction::lower_is_better;
    for (std::size_t i = 0; i < n; ++i)
        t[i] = o.norm == poem::normalization::log1p_min_max ? std::log1p(std::max<double>(x[i], 0.0)) : x[i];
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (std::isfinite(x[i])) { lo = std::min(lo, t[i]); hi = std::max(hi, t[i]); sum += t[i]; }
    const double mean = good ? sum / good : 0;
    double ss = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (std::isfinite(x[i])) ss += (t[i] - mean) * (t[i] - mean);
    const double sd = good ? std::sqrt(ss / good) : 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(x[i])) continue;
        switch (o.norm) {
            case poem::normalization::rank_pct: v[i] = 1.0 - (rank[i] + 0.5) / n; break;
            case poem::normalization::min_max:
            case poem::normalization::log1p_min_max:
                v[i] = hi > lo ? (t[i] - lo) / (hi - lo) : 0.5;
                if (hi > lo && flip) v[i] = 1 - v[i];
                break;
            case poem::normalization::z_score: {
                const double z = sd > 0 ? (t[i] - mean) / sd * (flip ? -1 : 1) : 0;
                v[i] = 0.5 * std::erfc(-z / std::sqrt(2.0));
                break;
            }
        }
    }
    return v;
}

// A learned ensemble with weights of a trained one's scale (poem_ref's init, not a tiny one): a sigmoid
// that spreads, hidden units both on and off.
poem::learned_fusion make_learned(std::size_t k, std::size_t d, std::size_t h, std::uint64_t seed) {
    poem::rng g(seed);
    auto draw = [&](std::size_t count, float lo, float hi) {
        std::vector<float> v(count);
        for (auto& x : v) x = lo + (hi - lo) * g.uniform_float();
        return v;
    };
    const float a = 1.7f / std::sqrt(static_cast<float>(k * d));  // uniform, std 1 / sqrt(K D)
    return poem::learned_fusion(k, d, h, draw(k * d, -2.0f, 2.0f), draw(k * d, -1.0f, 0.0f), draw(h * k * d, -a, a),
                                draw(h, -0.2f, 0.2f), draw(h, -1.0f, 1.0f), draw(1, -2.0f, 0.0f), draw(k, 0.0f, 2.0f));
}

// The formula of fusion/learned.hpp for candidate i of x (K x N, rows of n), per candidate, in double.
double learned_ref(const poem::learned_fusion& f, const double* x, std::size_t n, std::size_t i) {
    const std::size_t k = f.objectives(), d = f.component_dim(), h = f.hidden();
    std::vector<double> e(k * d);
    double logit = f.out_bias();
    for (std::size_t r = 0; r < k; ++r) {
        logit += double(f.skip_weight()[r]) * x[r * n + i];
        for (std::size_t j = 0; j < d; ++j)
            e[r * d + j] = std::max(0.0, double(f.component_weight()[r * d + j]) * x[r * n + i] + f.component_bias()[r * d + j]);
    }
    for (std::size_t m = 0; m < h; ++m) {
        double acc = f.aggregate_bias()[m];
        for (std::size_t c = 0; c < k * d; ++c) acc += double(f.aggregate_weight()[m * k * d + c]) * e[c];
        logit += double(f.out_weight()[m]) * std::max(0.0, acc);
    }
    return 1.0 / (1.0 + std::exp(-logit));
}

struct reference {
    std::vector<double> ranks, normalized, fused;
};

reference fuse_ref(const std::vector<float>& s, std::size_t k, std::size_t n, const poem::fusion_config& spec,
                   bool brute) {
    reference r;
    r.fused.assign(n, 0.0);
    double total = 0;
    for (auto& o : spec.objectives) total += o.weight;
    for (std::size_t row = 0; row < k; ++row) {
        const float* x = s.data() + row * n;
        const auto& o = spec.objectives[row];
        auto rk = brute ? rank_brute(x, n, o.dir) : rank_sorted(x, n, o.dir);
        auto nv = normalize_ref(x, rk, n, o);
        const double w = o.weight / total;
        for (std::size_t i = 0; i < n; ++i) {
            const double pct = std::isfinite(x[i]) ? 1.0 - (rk[i] + 0.5) / n : 0.0;
            switch (spec.method) {
                case poem::fusion_method::weighted_rank: r.fused[i] += w * pct; break;
                case poem::fusion_method::weighted_value: r.fused[i] += w * nv[i]; break;
                case poem::fusion_method::reciprocal_rank: r.fused[i] += w * std::pow(rk[i] + spec.beta, -spec.alpha); break;
                case poem::fusion_method::learned: break;  // below, from all K normalised rows
            }
        }
        r.ranks.insert(r.ranks.end(), rk.begin(), rk.end());
        r.normalized.insert(r.normalized.end(), nv.begin(), nv.end());
    }
    if (spec.method == poem::fusion_method::learned)
        for (std::size_t i = 0; i < n; ++i) r.fused[i] = learned_ref(*spec.learned, r.normalized.data(), n, i);
    if (spec.method == poem::fusion_method::reciprocal_rank) {
        const double a = spec.alpha, hi = std::pow(double(spec.beta), -a), lo = std::pow(n - 1.0 + spec.beta, -a);
        for (auto& f : r.fused) f = hi > lo ? std::clamp((f - lo) / (hi - lo), 0.0, 1.0) : 0.5;
    }
    return r;
}

poem::fusion_config make_spec(std::size_t k, poem::fusion_method m, std::uint64_t seed) {
    poem::rng g(seed);
    poem::fusion_config spec;
    spec.method = m;
    spec.alpha = 1.0f + 0.5f * static_cast<float>(g.below(2));  // 1 (division path) or 1.5 (pow path)
    spec.beta = 5.0f;
    for (std::size_t i = 0; i < k; ++i) {
        poem::objective_config o;
        o.dir = g.below(2) ? poem::direction::higher_is_better : poem::direction::lower_is_better;
        o.norm = static_cast<poem::normalization>(g.below(4));
        o.weight = 0.25f + g.uniform_float();
        spec.objectives.push_back(o);
    }
    return spec;
}

// Checks a fusion result against the reference and the invariants of the fused rank.
void check_result(const poem::fusion_result& f, const reference& r, const std::vector<float>& s, std::size_t k,
                  std::size_t n) {
    REQUIRE(f.n == n);
    REQUIRE(f.k == k);
    for (std::size_t i = 0; i < k * n; ++i) {
        REQUIRE(f.ranks[i] == static_cast<float>(r.ranks[i]));
        REQUIRE(f.normalized[i] == Approx(r.normalized[i]).margin(2e-6));
        REQUIRE(f.normalized[i] >= 0.0f);
        REQUIRE(f.normalized[i] <= 1.0f);
    }
    std::size_t bad_scores = 0, bad_candidates = 0;
    for (std::size_t i = 0; i < n; ++i) {
        bool bad = false;
        for (std::size_t row = 0; row < k; ++row) bad |= !std::isfinite(s[row * n + i]);
        for (std::size_t row = 0; row < k; ++row) bad_scores += !std::isfinite(s[row * n + i]);
        bad_candidates += bad;
        REQUIRE(f.nonfinite[i] == bad);
        REQUIRE(std::isfinite(f.fused[i]));
        REQUIRE(f.fused[i] >= 0.0f);
        REQUIRE(f.fused[i] <= 1.0f);
        REQUIRE(f.fused[i] == Approx(r.fused[i]).margin(1e-5));
    }
    REQUIRE(f.nonfinite_count == bad_candidates);
    REQUIRE(f.nonfinite_scores == bad_scores);
    // order is a permutation, best fused first, ties by index; fused_rank is its inverse.
    std::vector<char> seen(n, 0);
    for (std::size_t t = 0; t < n; ++t) {
        const auto i = f.order[t];
        REQUIRE(i < n);
        REQUIRE_FALSE(seen[i]);
        seen[i] = 1;
        REQUIRE(f.fused_rank[i] == t);
        if (t + 1 < n) {
            const auto j = f.order[t + 1];
            REQUIRE((f.fused[i] > f.fused[j] || (f.fused[i] == f.fused[j] && i < j)));
        }
    }
}

}  // namespace

TEST_CASE("rank_scores equals the brute-force average ranks") {
    poem::workspace ws;
    for (kind what : {kind::uniform, kind::ties, kind::nonfinite, kind::wide}) {
        for (std::size_t n : {1u, 2u, 3u, 7u, 16u, 17u, 100u, 1000u}) {
            for (auto d : {poem::direction::higher_is_better, poem::direction::lower_is_better}) {
                const auto x = make_scores(1, n, what, n * 31 + static_cast<int>(what));
                std::vector<float> rank(n);
                const auto bad = poem::rank_scores(poem::span<const float>(x), d, ws, poem::span<float>(rank));
                const auto ref = rank_brute(x.data(), n, d);
                const auto sorted_ref = rank_sorted(x.data(), n, d);
                std::size_t expect_bad = 0;
                for (float v : x) expect_bad += !std::isfinite(v);
                REQUIRE(bad == expect_bad);
                for (std::size_t i = 0; i < n; ++i) {
                    REQUIRE(rank[i] == static_cast<float>(ref[i]));
                    REQUIRE(sorted_ref[i] == ref[i]);
                }
            }
        }
    }
}

TEST_CASE("rank_scores and rank_order at every N from 0 to 600 equal the brute-force references") {
    // Every size through the radix sort's small path and its inner switch points (insertion sort
    // alone, buckets that recurse), for shapes of scores that take each branch of it.
    poem::workspace ws;
    poem::rng g(77);
    for (std::size_t n = 0; n <= 600; ++n) {
        for (int shape = 0; shape < 7; ++shape) {
            std::vector<float> x(n);
            for (std::size_t i = 0; i < n; ++i) {
                const auto r = g.below(16);
                switch (shape) {
                    case 0: x[i] = g.uniform_float(); break;                                       // rates
                    case 1: x[i] = 0.5f * static_cast<float>(g.below(3)) - 0.5f; break;           // heavy ties
                    case 2: x[i] = 0.3f; break;                                                    // all equal
                    case 3: x[i] = r == 0 ? nan_f : r == 1 ? inf_f : r == 2 ? -inf_f : r == 3 ? -0.0f
                                 : r == 4 ? 0.0f : g.uniform_float() * 100.0f - 50.0f; break;     // non-finite, +-0
                    case 4: x[i] = i == n / 2 ? 1e30f : 1.0f + 1e-6f * static_cast<float>(g.below(400)); break;
                    case 5: x[i] = std::ldexp(g.uniform_float() - 0.5f, static_cast<int>(g.below(60)) - 30); break;
                    default: x[i] = r < 8 ? nan_f : -inf_f; break;                                // all non-finite
                }
            }
            for (auto d : {poem::direction::higher_is_better, poem::direction::lower_is_better}) {
                INFO("n = " << n << ", shape " << shape << ", higher is better " << (d == poem::direction::higher_is_better));
                std::vector<float> rank(n);
                const auto bad = poem::rank_scores(poem::span<const float>(x), d, ws, poem::span<float>(rank));
                const auto ref = rank_brute(x.data(), n, d);
                REQUIRE(rank == std::vector<float>(ref.begin(), ref.end()));

                std::vector<std::uint32_t> order(n), expect(n);
                REQUIRE(poem::rank_order(poem::span<const float>(x), d, ws, poem::span<std::uint32_t>(order)) == bad);
                std::iota(expect.begin(), expect.end(), 0u);
                std::stable_sort(expect.begin(), expect.end(), [&](std::uint32_t a, std::uint32_t b) {
                    const bool fa = std::isfinite(x[a]), fb = std::isfinite(x[b]);
                    return fa != fb ? fa : fa && better(x[a], x[b], d);
                });
                REQUIRE(order == expect);
            }
        }
    }
}

TEST_CASE("ranks: ties, signed zeros and non-finite values") {
    poem::workspace ws;
    const std::vector<float> x = {0.5f, -0.0f, 0.0f, nan_f, 0.5f, inf_f, -inf_f, 2.0f};
    std::vector<float> r(x.size());
    REQUIRE(poem::rank_scores(poem::span<const float>(x), poem::direction::higher_is_better, ws, poem::span<float>(r)) == 3);
    // finite order: 2.0 (0), 0.5 x2 (1.5), 0 and -0 tie (3.5); the 3 non-finite share ranks 5, 6, 7.
    REQUIRE(r == std::vector<float>({1.5f, 3.5f, 3.5f, 6.0f, 1.5f, 6.0f, 6.0f, 0.0f}));
    poem::rank_scores(poem::span<const float>(x), poem::direction::lower_is_better, ws, poem::span<float>(r));
    REQUIRE(r == std::vector<float>({2.5f, 0.5f, 0.5f, 6.0f, 2.5f, 6.0f, 6.0f, 4.0f}));
}

TEST_CASE("fuse equals the brute-force reference for every method and normalisation") {
    poem::workspace ws;
    poem::fusion_result f;  // reused across calls: the no-allocation path
    std::uint64_t seed = 1;
    for (auto m : {poem::fusion_method::weighted_rank, poem::fusion_method::reciprocal_rank,
                   poem::fusion_method::weighted_value}) {
        for (kind what : {kind::uniform, kind::ties, kind::nonfinite, kind::wide}) {
            for (std::size_t k : {1u, 2u, 3u, 4u, 16u}) {
                for (std::size_t n : {1u, 2u, 5u, 33u, 257u}) {
                    const auto s = make_scores(k, n, what, ++seed);
                    const auto spec = make_spec(k, m, seed);
                    INFO("method " << static_cast<int>(m) << ", kind " << static_cast<int>(what) << ", K = " << k
                                   << ", N = " << n);
                    poem::fuse(poem::matrix_view<const float>(s.data(), k, n), spec, ws, f);
                    check_result(f, fuse_ref(s, k, n, spec, true), s, k, n);
                }
            }
        }
    }
}

TEST_CASE("fuse at N = 100,000 and K = 16 equals the argsort reference") {
    poem::workspace ws;
    const std::size_t k = 16, n = 100000;
    for (auto m : {poem::fusion_method::weighted_rank, poem::fusion_method::weighted_value}) {
        const auto s = make_scores(k, n, kind::nonfinite, 99);
        const auto spec = make_spec(k, m, 7);
        const auto f = poem::fuse(poem::matrix_view<const float>(s.data(), k, n), spec, ws);
        check_result(f, fuse_ref(s, k, n, spec, false), s, k, n);
    }
}

TEST_CASE("one candidate, constant scores and an all-non-finite objective") {
    poem::workspace ws;
    poem::fusion_config spec;
    for (auto norm : {poem::normalization::rank_pct, poem::normalization::min_max, poem::normalization::z_score,
                      poem::normalization::log1p_min_max})
        spec.objectives.push_back({poem::direction::higher_is_better, norm, 1.0f});
    for (auto m : {poem::fusion_method::weighted_rank, poem::fusion_method::reciprocal_rank,
                   poem::fusion_method::weighted_value}) {
        spec.method = m;
        const std::vector<float> one = {3.0f, 3.0f, 3.0f, 3.0f};
        auto f = poem::fuse(poem::matrix_view<const float>(one.data(), 4, 1), spec, ws);
        REQUIRE(f.fused[0] == 0.5f);  // a lone candidate sits mid-scale under every method
        REQUIRE(f.normalized == std::vector<float>(4, 0.5f));
        REQUIRE(f.fused_rank[0] == 0);

        std::vector<float> flat(4 * 3, 2.0f);
        for (int i = 0; i < 3; ++i) flat[2 * 3 + i] = nan_f;  // objective 2: every score NaN
        f = poem::fuse(poem::matrix_view<const float>(flat.data(), 4, 3), spec, ws);
        REQUIRE(f.nonfinite_count == 3);
        REQUIRE(f.nonfinite_scores == 3);
        for (int i = 0; i < 3; ++i) {
            REQUIRE(f.normalized[2 * 3 + i] == 0.0f);
            REQUIRE(std::isfinite(f.fused[i]));
        }
        REQUIRE(f.fused[0] == f.fused[1]);  // all tied: fused rank falls back to candidate order
        REQUIRE(f.order == std::vector<std::uint32_t>({0, 1, 2}));
    }
}

TEST_CASE("non-finite scores never change the other candidates' normalised values") {
    poem::workspace ws;
    poem::fusion_config spec;
    spec.method = poem::fusion_method::weighted_value;
    spec.objectives = {{poem::direction::higher_is_better, poem::normalization::min_max, 1.0f},
                       {poem::direction::lower_is_better, poem::normalization::z_score, 1.0f}};
    const std::vector<float> clean = {1, 2, 3, 4, 10, 20, 30, 40};
    std::vector<float> dirty = {1, 2, 3, 4, nan_f, 10, 20, 30, 40, inf_f};
    // Same candidates plus one that is bad on both objectives (5 candidates, 2 rows).
    const auto a = poem::fuse(poem::matrix_view<const float>(clean.data(), 2, 4), spec, ws);
    const auto b = poem::fuse(poem::matrix_view<const float>(dirty.data(), 2, 5), spec, ws);
    for (std::size_t i = 0; i < 4; ++i) {
        REQUIRE(b.normalized[i] == a.normalized[i]);
        REQUIRE(b.normalized[5 + i] == Approx(a.normalized[4 + i]).margin(1e-6));
        REQUIRE(b.fused[i] == Approx(a.fused[i]).margin(1e-6));
    }
    REQUIRE(b.fused[4] == 0.0f);
    REQUIRE(b.fused_rank[4] == 4);  // ranks last
    REQUIRE(b.nonfinite_count == 1);
}

TEST_CASE("SIMD kernels agree with their scalar references") {
    // Every target this CPU runs (one with header-only builds: the compile-time arch's).
    namespace d = poem::detail;
    const simd_target_scope restore;
    for (const std::string& target : poem::simd_targets()) {
    poem::set_simd_target(target);
    INFO("target " << target);
    for (std::size_t n : {0u, 1u, 3u, 8u, 15u, 16u, 31u, 64u, 1001u}) {
        for (kind what : {kind::uniform, kind::ties, kind::nonfinite, kind::wide}) {
            const auto x = make_scores(1, n, what, n + 1000 * static_cast<int>(what));
            INFO("n = " << n << ", data kind " << static_cast<int>(what));
            std::vector<std::uint32_t> k1(n), k2(n);
            for (bool hib : {true, false}) {
                REQUIRE(d::sort_keys(x.data(), n, hib, k1.data()) == d::sort_keys_scalar(x.data(), n, hib, k2.data()));
                REQUIRE(k1 == k2);
            }
            const auto s1 = d::stats(x.data(), n), s2 = d::stats_scalar(x.data(), n);
            REQUIRE(s1.count == s2.count);
            REQUIRE(std::memcmp(&s1.min, &s2.min, sizeof(float)) == 0);
            REQUIRE(std::memcmp(&s1.max, &s2.max, sizeof(float)) == 0);
            REQUIRE(s1.sum == Approx(s2.sum).epsilon(1e-5).margin(1e-3));
            const float mean = s2.count ? static_cast<float>(s2.sum / s2.count) : 0.0f;
            REQUIRE(d::squared_deviation(x.data(), n, mean) ==
                    Approx(d::squared_deviation_scalar(x.data(), n, mean)).epsilon(1e-5));

            std::vector<float> o1(n), o2(n);
            auto same = [&](double tol, const char* kernel) {
                INFO(kernel);
                for (std::size_t i = 0; i < n; ++i) {
                    if (std::isnan(o2[i])) REQUIRE(std::isnan(o1[i]));
                    else REQUIRE(o1[i] == Approx(o2[i]).margin(tol).epsilon(tol));
                }
            };
            d::log1p_clamped(x.data(), n, o1.data());
            d::log1p_clamped_scalar(x.data(), n, o2.data());
            same(1e-6, "log1p");
            for (bool flip : {false, true}) {
                d::min_max(x.data(), n, -3.0f, 0.125f, flip, o1.data());
                d::min_max_scalar(x.data(), n, -3.0f, 0.125f, flip, o2.data());
                same(0.0, "min_max");
                d::z_score(x.data(), n, 0.3f, 2.0f, flip, o1.data());
                d::z_score_scalar(x.data(), n, 0.3f, 2.0f, flip, o2.data());
                same(1e-6, "z_score");
            }
            std::vector<float> ranks(n);
            for (std::size_t i = 0; i < n; ++i) ranks[i] = static_cast<float>((i * 7) % (n ? n : 1));
            d::rank_pct(ranks.data(), n, n - n / 4, o1.data());
            d::rank_pct_scalar(ranks.data(), n, n - n / 4, o2.data());
            same(0.0, "rank_pct");
            for (bool first : {true, false}) {
                std::fill(o1.begin(), o1.end(), 0.25f);
                std::fill(o2.begin(), o2.end(), 0.25f);
                d::axpy(0.3f, ranks.data(), n, first, o1.data());
                d::axpy_scalar(0.3f, ranks.data(), n, first, o2.data());
                same(1e-6, "axpy");
                for (float alpha : {1.0f, 0.7f}) {
                    d::reciprocal(0.3f, ranks.data(), n, alpha, 4.0f, first, o1.data());
                    d::reciprocal_scalar(0.3f, ranks.data(), n, alpha, 4.0f, first, o2.data());
                    same(1e-6, "reciprocal");
                }
            }
            o1 = x;
            o2 = x;
            for (auto& v : o1) v = std::isfinite(v) ? v : 0.0f;
            for (auto& v : o2) v = std::isfinite(v) ? v : 0.0f;
            d::rescale(o1.data(), n, -1.0f, 0.5f);
            d::rescale_scalar(o2.data(), n, -1.0f, 0.5f);
            same(0.0, "rescale");
        }
    }
    }
}

TEST_CASE("fuse is deterministic and independent of workspace history") {
    const std::size_t k = 4, n = 777;
    const auto s = make_scores(k, n, kind::nonfinite, 5);
    const auto spec = make_spec(k, poem::fusion_method::reciprocal_rank, 3);
    poem::workspace fresh, used;
    const auto big = make_scores(8, 5000, kind::uniform, 6);
    (void)poem::fuse(poem::matrix_view<const float>(big.data(), 8, 5000), make_spec(8, poem::fusion_method::weighted_value, 1), used);
    const auto a = poem::fuse(poem::matrix_view<const float>(s.data(), k, n), spec, fresh);
    const auto b = poem::fuse(poem::matrix_view<const float>(s.data(), k, n), spec, used);
    REQUIRE(std::memcmp(a.fused.data(), b.fused.data(), n * sizeof(float)) == 0);
    REQUIRE(a.fused_rank == b.fused_rank);
    REQUIRE(a.ranks == b.ranks);
    REQUIRE(std::memcmp(a.normalized.data(), b.normalized.data(), k * n * sizeof(float)) == 0);
}

TEST_CASE("quintuples carry id, time, fused score and fused rank percentile") {
    poem::workspace ws;
    poem::fusion_config spec;
    spec.objectives = {{}, {poem::direction::lower_is_better, poem::normalization::rank_pct, 2.0f}};
    const std::vector<float> s = {0.9f, 0.1f, 0.5f, /* lower is better: */ 1.0f, 3.0f, 2.0f};
    const auto f = poem::fuse(poem::matrix_view<const float>(s.data(), 2, 3), spec, ws);
    const std::vector<std::uint64_t> ids = {100, 200, 300};
    const auto q = poem::quintuples(poem::span<const std::uint64_t>(ids), 1234, f);
    REQUIRE(q.size() == 3);
    REQUIRE(f.order == std::vector<std::uint32_t>({0, 2, 1}));
    for (std::size_t i = 0; i < 3; ++i) {
        REQUIRE(q[i].item_id == ids[i]);
        REQUIRE(q[i].request_time == 1234);
        REQUIRE(q[i].fused_score == f.fused[i]);
        REQUIRE(q[i].level == 0);
    }
    REQUIRE(q[0].rank_pct == Approx(1.0 - 0.5 / 3));
    REQUIRE(q[1].rank_pct == Approx(1.0 - 2.5 / 3));
    REQUIRE(q[0].fused_score == Approx(1.0 - 0.5 / 3));  // best on both objectives
    const std::vector<std::uint64_t> short_ids = {1, 2};
    REQUIRE_THROWS_WITH(poem::quintuples(poem::span<const std::uint64_t>(short_ids), 0, f),
                        "poem: ids: expected 3 elements, got 2");
}

TEST_CASE("empty requests and bad arguments") {
    poem::workspace ws;
    poem::fusion_config spec;
    spec.objectives = {{}, {}};
    const std::vector<float> s(6, 1.0f);
    auto f = poem::fuse(poem::matrix_view<const float>(nullptr, 2, 0), spec, ws);
    REQUIRE(f.n == 0);
    REQUIRE(f.fused.empty());
    REQUIRE(f.nonfinite_count == 0);

    auto throws = [&](const poem::fusion_config& sp, std::size_t k, std::size_t n, const char* msg) {
        REQUIRE_THROWS_WITH(poem::fuse(poem::matrix_view<const float>(s.data(), k, n), sp, ws), Catch::Contains(msg));
    };
    throws(spec, 0, 3, "K (objectives) must be > 0");
    throws(spec, 3, 2, "fusion_config.objectives: 2 entries for 3 score rows");
    poem::fusion_config many;
    many.objectives.resize(17);
    std::vector<float> big(17 * 2, 1.0f);
    REQUIRE_THROWS_WITH(poem::fuse(poem::matrix_view<const float>(big.data(), 17, 2), many, ws),
                        Catch::Contains("at most 16"));
    auto bad = spec;
    bad.objectives[1].weight = -1.0f;
    throws(bad, 2, 3, "fusion_config.objectives[1].weight must be finite and >= 0");
    bad.objectives[1].weight = nan_f;
    throws(bad, 2, 3, "objectives[1].weight");
    bad.objectives[1].weight = inf_f;
    throws(bad, 2, 3, "objectives[1].weight");
    bad.objectives = {{poem::direction::higher_is_better, poem::normalization::rank_pct, 0.0f},
                      {poem::direction::higher_is_better, poem::normalization::rank_pct, 0.0f}};
    throws(bad, 2, 3, "weights are all zero");
    auto rr = spec;
    rr.method = poem::fusion_method::reciprocal_rank;
    rr.alpha = 0.0f;
    throws(rr, 2, 3, "fusion_config.alpha");
    rr.alpha = 1.0f;
    rr.beta = -2.0f;
    throws(rr, 2, 3, "fusion_config.beta");
    REQUIRE_THROWS_WITH(poem::fuse(poem::matrix_view<const float>(nullptr, 2, 3), spec, ws),
                        Catch::Contains("null data"));
    std::vector<float> r(2);
    REQUIRE_THROWS_WITH(poem::rank_scores(poem::span<const float>(s), poem::direction::higher_is_better, ws, poem::span<float>(r)),
                        "poem: rank: expected 6 elements, got 2");
}

TEST_CASE("xtensor expressions fuse like the pointer view") {
    poem::workspace ws;
    const std::size_t k = 3, n = 50;
    const auto s = make_scores(k, n, kind::ties, 77);
    const auto spec = make_spec(k, poem::fusion_method::weighted_value, 8);
    const auto expect = poem::fuse(poem::matrix_view<const float>(s.data(), k, n), spec, ws);

    xt::xtensor<float, 2> t = xt::adapt(s, std::vector<std::size_t>{k, n});
    REQUIRE(poem::fuse(t, spec, ws).fused == expect.fused);
    xt::xarray<double> wide = t;  // another value type and a dynamic rank
    REQUIRE(poem::fuse(wide, spec, ws).fused == expect.fused);
    xt::xtensor<float, 2> transposed = xt::transpose(t);  // N x K: a strided view of it is K x N again
    REQUIRE(poem::fuse(xt::transpose(transposed), spec, ws).fused == expect.fused);
    xt::xarray<float> cube = xt::zeros<float>({2, 2, 2});
    REQUIRE_THROWS_WITH(poem::fuse(cube, spec, ws), Catch::Contains("expected a K x N matrix, got 3 dimensions"));
}

// ---- learned fusion ----------------------------------------------------------------------------

namespace {

// Shapes: the shipped one; hidden units not a multiple of 4 and odd K, D; the smallest; the largest K.
struct learned_shape {
    std::size_t k, d, h;
};
const learned_shape learned_shapes[] = {{4, 4, 16}, {3, 5, 7}, {1, 1, 1}, {16, 8, 33}};

std::vector<float> unit_values(std::size_t count, std::uint64_t seed) {
    poem::rng g(seed);
    std::vector<float> v(count);
    for (auto& x : v) x = g.below(10) == 0 ? static_cast<float>(g.below(2)) : g.uniform_float();  // with 0s and 1s
    return v;
}

}  // namespace

TEST_CASE("learned fusion: the SIMD kernel agrees with the scalar reference on every target") {
    namespace d = poem::detail;
    const simd_target_scope restore;
    for (const auto& sh : learned_shapes) {
        const auto f = make_learned(sh.k, sh.d, sh.h, sh.k * 100 + sh.h);
        const auto w = f.weights();
        std::vector<float> e(d::learned_fusion_scratch(sh.k, sh.d));
        for (const std::string& target : poem::simd_targets()) {
            poem::set_simd_target(target);
            for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 1000u}) {
                INFO("target " << target << ", K " << sh.k << " D " << sh.d << " H " << sh.h << ", N " << n);
                const auto x = unit_values(sh.k * n, n + sh.h);
                std::vector<float> simd(n + 1, -7.0f), scalar(n + 1, -7.0f);
                d::learned_fusion(w, x.data(), n, e.data(), simd.data());
                d::learned_fusion_scalar(w, x.data(), n, e.data(), scalar.data());
                REQUIRE(simd[n] == -7.0f);  // nothing written past N
                for (std::size_t i = 0; i < n; ++i) {
                    // Same multiply-adds in the same order; exp differs by a few ULP (values in (0, 1)).
                    REQUIRE(simd[i] == Approx(scalar[i]).margin(1e-6).epsilon(0));
                    REQUIRE(simd[i] > 0.0f);
                    REQUIRE(simd[i] < 1.0f);
                }
            }
        }
    }
}

TEST_CASE("learned fusion: score equals the formula evaluated per candidate in double precision") {
    for (const auto& sh : learned_shapes) {
        const auto f = make_learned(sh.k, sh.d, sh.h, 7 + sh.d);
        for (std::size_t n : {1u, 9u, 1000u}) {
            INFO("K " << sh.k << " D " << sh.d << " H " << sh.h << ", N " << n);
            const auto x = unit_values(sh.k * n, 3 * n + sh.k);
            const std::vector<double> xd(x.begin(), x.end());
            std::vector<float> fused(n);
            poem::workspace ws;
            f.score(poem::matrix_view<const float>(x.data(), sh.k, n), ws, poem::span<float>(fused));
            double spread_lo = 1, spread_hi = 0;
            for (std::size_t i = 0; i < n; ++i) {
                const double expect = learned_ref(f, xd.data(), n, i);
                REQUIRE(fused[i] == Approx(expect).margin(1e-6).epsilon(0));
                spread_lo = std::min(spread_lo, expect);
                spread_hi = std::max(spread_hi, expect);
            }
            if (n == 1000) REQUIRE(spread_hi - spread_lo > 0.1);  // the weights make the scores differ
        }
    }
}

TEST_CASE("fuse with method learned: the ensemble's score of the normalised values, ordered by it") {
    poem::workspace ws;
    for (kind what : {kind::uniform, kind::ties, kind::nonfinite}) {
        for (std::size_t n : {1u, 9u, 257u}) {
            const std::size_t k = 4;
            INFO("data kind " << static_cast<int>(what) << ", N " << n);
            const auto s = make_scores(k, n, what, 11 * n + static_cast<std::size_t>(what));
            auto spec = make_spec(k, poem::fusion_method::learned, n);
            spec.learned = std::make_shared<const poem::learned_fusion>(make_learned(k, 4, 16, n));
            const auto f = poem::fuse(poem::matrix_view<const float>(s.data(), k, n), spec, ws);
            // Ranks, normalised values, fused scores, non-finite flags and the order against the references.
            check_result(f, fuse_ref(s, k, n, spec, true), s, k, n);
            std::vector<float> direct(n);
            spec.learned->score(poem::matrix_view<const float>(f.normalized.data(), k, n), ws, poem::span<float>(direct));
            REQUIRE(std::memcmp(direct.data(), f.fused.data(), n * sizeof(float)) == 0);
        }
    }
    // A candidate whose every score is non-finite normalises to 0 everywhere: it scores what zeros score.
    const std::size_t k = 2, n = 3;
    const std::vector<float> s = {0.5f, nan_f, 0.1f, /**/ 2.0f, inf_f, 1.0f};
    poem::fusion_config spec;
    spec.objectives = {{}, {}};
    spec.method = poem::fusion_method::learned;
    spec.learned = std::make_shared<const poem::learned_fusion>(make_learned(k, 3, 5, 1));
    const auto f = poem::fuse(poem::matrix_view<const float>(s.data(), k, n), spec, ws);
    const double zeros[2] = {0.0, 0.0};
    REQUIRE(f.nonfinite[1] == 1);
    REQUIRE(f.nonfinite_count == 1);
    REQUIRE(f.fused[1] == Approx(learned_ref(*spec.learned, zeros, 1, 0)).margin(1e-6));
    REQUIRE(f.fused[0] != f.fused[1]);
}

TEST_CASE("learned fusion: refusals of the ensemble, of score() and of validate") {
    const auto ok = make_learned(2, 3, 5, 9);
    auto build = [&](std::size_t k, std::size_t d, std::size_t h, int bad_tensor, float bad_value = 0.0f) {
        std::vector<std::vector<float>> t = {std::vector<float>(k * d, 0.5f), std::vector<float>(k * d, 0.0f),
                                             std::vector<float>(h * k * d, 0.1f), std::vector<float>(h, 0.0f),
                                             std::vector<float>(h, 1.0f), std::vector<float>(1, 0.0f),
                                             std::vector<float>(k, 1.0f)};
        if (bad_tensor >= 0) {
            if (bad_value == 0.0f) t[static_cast<std::size_t>(bad_tensor)].push_back(0.0f);
            else t[static_cast<std::size_t>(bad_tensor)].back() = bad_value;
        }
        return poem::learned_fusion(k, d, h, t[0], t[1], t[2], t[3], t[4], t[5], t[6]);
    };
    REQUIRE(build(2, 3, 5, -1).objectives() == 2);
    REQUIRE_THROWS_WITH(build(0, 3, 5, -1), Catch::Contains("K = 0 objectives, expected 1..16"));
    REQUIRE_THROWS_WITH(build(17, 3, 5, -1), Catch::Contains("K = 17"));
    REQUIRE_THROWS_WITH(build(2, 0, 5, -1), Catch::Contains("D = 0 (component_dim)"));
    REQUIRE_THROWS_WITH(build(2, 65, 5, -1), Catch::Contains("D = 65"));
    REQUIRE_THROWS_WITH(build(2, 3, 0, -1), Catch::Contains("H = 0 (hidden)"));
    REQUIRE_THROWS_WITH(build(2, 3, 257, -1), Catch::Contains("H = 257"));
    const char* names[] = {"fusion.component.weight holds 7 values", "fusion.component.bias holds 7",
                           "fusion.aggregate.weight holds 31", "fusion.aggregate.bias holds 6",
                           "fusion.out.weight holds 6", "fusion.out.bias holds 2", "fusion.skip.weight holds 3"};
    for (int t = 0; t < 7; ++t) {
        REQUIRE_THROWS_WITH(build(2, 3, 5, t), Catch::Contains(names[t]));
        const std::string name = std::string(names[t]).substr(0, std::string(names[t]).find(" holds"));
        REQUIRE_THROWS_WITH(build(2, 3, 5, t, nan_f), Catch::Contains(name + " holds a non-finite value"));
        REQUIRE_THROWS_WITH(build(2, 3, 5, t, -inf_f), Catch::Contains(name + " holds a non-finite value"));
    }

    // Equality is shape and weights.
    REQUIRE(ok == make_learned(2, 3, 5, 9));
    REQUIRE(ok != make_learned(2, 3, 5, 10));
    REQUIRE(build(2, 3, 5, -1) != build(2, 3, 4, -1));

    poem::workspace ws;
    std::vector<float> x(6, 0.5f), out(3);
    REQUIRE_THROWS_WITH(ok.score(poem::matrix_view<const float>(x.data(), 3, 2), ws, poem::span<float>(out.data(), 2)),
                        Catch::Contains("normalized has 3 rows, the ensemble takes K = 2"));
    REQUIRE_THROWS_WITH(ok.score(poem::matrix_view<const float>(x.data(), 2, 3), ws, poem::span<float>(out.data(), 2)),
                        Catch::Contains("fused holds 2 values for 3 candidates"));
    ok.score(poem::matrix_view<const float>(x.data(), 2, 0), ws, poem::span<float>(out.data(), 0));  // N = 0

    poem::fusion_config spec;
    spec.objectives = {{}, {}};
    const std::vector<float> s(6, 1.0f);
    auto throws = [&](const poem::fusion_config& sp, const char* msg) {
        REQUIRE_THROWS_WITH(poem::fuse(poem::matrix_view<const float>(s.data(), 2, 3), sp, ws), Catch::Contains(msg));
    };
    spec.method = poem::fusion_method::learned;
    throws(spec, "fusion_config.learned: method learned needs an ensemble, none is set");
    spec.learned = std::make_shared<const poem::learned_fusion>(make_learned(3, 3, 5, 9));
    throws(spec, "fusion_config.learned: the ensemble takes 3 objectives, the scores have 2");
    spec.learned = std::make_shared<const poem::learned_fusion>(ok);
    REQUIRE_NOTHROW(poem::fuse(poem::matrix_view<const float>(s.data(), 2, 3), spec, ws));
    for (auto m : {poem::fusion_method::weighted_rank, poem::fusion_method::reciprocal_rank,
                   poem::fusion_method::weighted_value}) {
        spec.method = m;
        throws(spec, "fusion_config.learned: an ensemble is set but fusion_config.method is");
    }
    spec.method = static_cast<poem::fusion_method>(4);
    spec.learned = nullptr;
    throws(spec, "fusion_config.method: unknown value 4");
    // The objective weights are not used by learned, but validate checks them as for every method.
    spec.method = poem::fusion_method::learned;
    spec.learned = std::make_shared<const poem::learned_fusion>(ok);
    spec.objectives[0].weight = -1.0f;
    throws(spec, "fusion_config.objectives[0].weight must be finite and >= 0");
}
