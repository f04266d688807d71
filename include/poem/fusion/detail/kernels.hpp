#pragma once
// The hot loops of fusion/: an xsimd kernel and a scalar reference for each. Dispatchers at the end pick
// the kernel unless POEM_FORCE_SCALAR is defined (with POEM_DISPATCH: the runtime target's kernel). "Finite" below means neither NaN nor +-Inf.
//
// Agreement: min/max, rank percentiles and min-max values are bit-identical between the paths;
// sums are accumulated in another order, and the SIMD log1p/erfc/pow differ from <cmath> by a few ULP,
// so z-score, log1p and reciprocal-rank values agree within 1e-6 absolute (values lie in [0, 1]); so do
// learned fusion's scores (same multiply-adds in the same order, only exp differs).

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "poem/core/bits.hpp"
#include "poem/core/simd.hpp"
#include "poem/core/sort_key.hpp"

namespace poem::detail {

// Sort keys (core/sort_key.hpp) are the one float -> key transform; this file keeps the arithmetic.

// ---- statistics over the finite values -------------------------------------------------------------

struct finite_stats {
    float min = std::numeric_limits<float>::infinity();
    float max = -std::numeric_limits<float>::infinity();
    double sum = 0;
    std::size_t count = 0;
};

// The weights of a learned fusion ensemble (fusion/learned.hpp), row-major as in the safetensors file:
// component_w/b K x D, aggregate_w H x (K*D), aggregate_b H, out_w H, skip_w K.
struct learned_fusion_weights {
    std::size_t k = 0, d = 0, h = 0;
    const float* component_w = nullptr;
    const float* component_b = nullptr;
    const float* aggregate_w = nullptr;
    const float* aggregate_b = nullptr;
    const float* out_w = nullptr;
    float out_b = 0;
    const float* skip_w = nullptr;
};

// Floats per component in learned_fusion's scratch: two batches of the widest target (AVX-512).
inline constexpr std::size_t learned_fusion_lanes = 32;
// The scratch a learned_fusion kernel takes for K objectives of D components: the components of two
// batches, and a last partial batch padded to a whole one (K rows and the scores).
constexpr std::size_t learned_fusion_scratch(std::size_t k, std::size_t d) noexcept {
    return k * d * learned_fusion_lanes + (k + 1) * (learned_fusion_lanes / 2);
}

inline namespace POEM_TARGET_NAMESPACE {

inline finite_stats stats_scalar(const float* x, std::size_t n) noexcept {
    finite_stats s;
    for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(x[i])) continue;
        s.min = x[i] < s.min ? x[i] : s.min;
        s.max = x[i] > s.max ? x[i] : s.max;
        s.sum += x[i];
        ++s.count;
    }
    return s;
}

template <class Arch>
finite_stats stats_simd(const float* x, std::size_t n) noexcept {
    using fb = xsimd::batch<float, Arch>;
    constexpr std::size_t w = fb::size;
    const fb inf(std::numeric_limits<float>::infinity()), zero(0.0f), one(1.0f);
    fb lo = inf, hi = -inf, sum = zero, count = zero;
    std::size_t i = 0;
    for (; i + w <= n; i += w) {
        const fb v = fb::load_unaligned(x + i);
        const auto ok = xsimd::isfinite(v);
        // Non-finite lanes become neutral elements; select keeps NaN out of min/max and the sum.
        lo = xsimd::min(lo, xsimd::select(ok, v, inf));
        hi = xsimd::max(hi, xsimd::select(ok, v, -inf));
        sum += xsimd::select(ok, v, zero);
        count += xsimd::select(ok, one, zero);
    }
    finite_stats s = stats_scalar(x + i, n - i);
    s.min = std::fmin(s.min, reduce_min(lo));
    s.max = std::fmax(s.max, reduce_max(hi));
    s.sum += static_cast<double>(xsimd::hadd(sum));
    s.count += static_cast<std::size_t>(xsimd::hadd(count));
    return s;
}

// Sum of squared deviations from `mean` over the finite values (second pass of a stable variance).
inline double squared_deviation_scalar(const float* x, std::size_t n, float mean) noexcept {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (std::isfinite(x[i])) s += static_cast<double>(x[i] - mean) * static_cast<double>(x[i] - mean);
    return s;
}

template <class Arch>
double squared_deviation_simd(const float* x, std::size_t n, float mean) noexcept {
    using fb = xsimd::batch<float, Arch>;
    constexpr std::size_t w = fb::size;
    const fb m(mean), zero(0.0f);
    fb acc = zero;
    std::size_t i = 0;
    for (; i + w <= n; i += w) {
        const fb v = fb::load_unaligned(x + i);
        const fb d = xsimd::select(xsimd::isfinite(v), v - m, zero);
        acc = fmadd(d, d, acc);
    }
    return static_cast<double>(xsimd::hadd(acc)) + squared_deviation_scalar(x + i, n - i, mean);
}

// ---- element-wise transforms -------------------------------------------------------------------------

// out = log1p(max(x, 0)); non-finite stays non-finite so later passes still see it as bad.
inline void log1p_clamped_scalar(const float* x, std::size_t n, float* out) noexcept {
    for (std::size_t i = 0; i < n; ++i) out[i] = std::isfinite(x[i]) ? std::log1p(std::fmax(x[i], 0.0f)) : x[i];
}

template <class Arch>
void log1p_clamped_simd(const float* x, std::size_t n, float* out) noexcept {
    using fb = xsimd::batch<float, Arch>;
    constexpr std::size_t w = fb::size;
    std::size_t i = 0;
    for (; i + w <= n; i += w) {
        const fb v = fb::load_unaligned(x + i);
        const fb t = xsimd::log1p(xsimd::max(xsimd::select(xsimd::isfinite(v), v, fb(0.0f)), fb(0.0f)));
        xsimd::select(xsimd::isfinite(v), t, v).store_unaligned(out + i);
    }
    log1p_clamped_scalar(x + i, n - i, out + i);
}

// out = clamp((x - lo) * scale, 0, 1), mirrored (1 - v) when lower is better; non-finite -> 0.
inline void min_max_scalar(const float* x, std::size_t n, float lo, float scale, bool flip, float* out) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        float v = std::fmin(std::fmax((x[i] - lo) * scale, 0.0f), 1.0f);
        v = flip ? 1.0f - v : v;
        out[i] = std::isfinite(x[i]) ? v : 0.0f;
    }
}

template <class Arch>
void min_max_simd(const float* x, std::size_t n, float lo, float scale, bool flip, float* out) noexcept {
    using fb = xsimd::batch<float, Arch>;
    constexpr std::size_t w = fb::size;
    const fb l(lo), s(scale), zero(0.0f), one(1.0f);
    std::size_t i = 0;
    for (; i + w <= n; i += w) {
        const fb v = fb::load_unaligned(x + i);
        // max/min with the clamp bound first keep any stray NaN from leaking (NaN lanes are masked below).
        fb r = xsimd::min(xsimd::max((v - l) * s, zero), one);
        if (flip) r = one - r;
        xsimd::select(xsimd::isfinite(v), r, zero).store_unaligned(out + i);
    }
    min_max_scalar(x + i, n - i, lo, scale, flip, out + i);
}

// out = Phi(z) with z = (x - mean) * inv_std (negated when lower is better); non-finite -> 0.
inline void z_score_scalar(const float* x, std::size_t n, float mean, float inv_std, bool flip, float* out) noexcept {
    const float sign = flip ? 1.0f : -1.0f;  // Phi(z) = erfc(-z / sqrt 2) / 2
    constexpr float inv_sqrt2 = 0.70710678118654752f;
    for (std::size_t i = 0; i < n; ++i)
        out[i] = std::isfinite(x[i]) ? 0.5f * std::erfc(sign * (x[i] - mean) * inv_std * inv_sqrt2) : 0.0f;
}

template <class Arch>
void z_score_simd(const float* x, std::size_t n, float mean, float inv_std, bool flip, float* out) noexcept {
    using fb = xsimd::batch<float, Arch>;
    constexpr std::size_t w = fb::size;
    const fb m(mean), k((flip ? 1.0f : -1.0f) * inv_std * 0.70710678118654752f), half(0.5f), zero(0.0f);
    std::size_t i = 0;
    for (; i + w <= n; i += w) {
        const fb v = fb::load_unaligned(x + i);
        const auto ok = xsimd::isfinite(v);
        const fb r = half * xsimd::erfc(xsimd::select(ok, v - m, zero) * k);
        xsimd::select(ok, r, zero).store_unaligned(out + i);
    }
    z_score_scalar(x + i, n - i, mean, inv_std, flip, out + i);
}

// out = 1 - (rank + 0.5) / n, with 0 for the non-finite scores (ranked after all `finite` ones).
inline void rank_pct_scalar(const float* rank, std::size_t n, std::size_t finite, float* out) noexcept {
    const float inv_n = 1.0f / static_cast<float>(n);
    const float last_finite = static_cast<float>(finite) - 0.5f;
    for (std::size_t i = 0; i < n; ++i) out[i] = rank[i] < last_finite ? 1.0f - (rank[i] + 0.5f) * inv_n : 0.0f;
}

template <class Arch>
void rank_pct_simd(const float* rank, std::size_t n, std::size_t finite, float* out) noexcept {
    using fb = xsimd::batch<float, Arch>;
    constexpr std::size_t w = fb::size;
    const float inv_n = 1.0f / static_cast<float>(n);
    const float last_finite = static_cast<float>(finite) - 0.5f;
    const fb inv_nb(inv_n), last(last_finite), half(0.5f), one(1.0f), zero(0.0f);
    std::size_t i = 0;
    for (; i + w <= n; i += w) {
        const fb r = fb::load_unaligned(rank + i);
        xsimd::select(r < last, one - (r + half) * inv_nb, zero).store_unaligned(out + i);
    }
    // The tail inline: the percentile depends on the whole request's n, not the tail's length.
    for (; i < n; ++i) out[i] = rank[i] < last_finite ? 1.0f - (rank[i] + 0.5f) * inv_n : 0.0f;
}

// ---- fused-score accumulation ------------------------------------------------------------------------

// acc (+)= w * v; `first` writes instead of adding so acc needs no clearing pass.
inline void axpy_scalar(float w, const float* v, std::size_t n, bool first, float* acc) noexcept {
    for (std::size_t i = 0; i < n; ++i) acc[i] = first ? w * v[i] : std::fma(w, v[i], acc[i]);
}

template <class Arch>
void axpy_simd(float w, const float* v, std::size_t n, bool first, float* acc) noexcept {
    using fb = xsimd::batch<float, Arch>;
    constexpr std::size_t width = fb::size;
    const fb wb(w);
    std::size_t i = 0;
    for (; i + width <= n; i += width) {
        const fb x = fb::load_unaligned(v + i);
        (first ? wb * x : fmadd(wb, x, fb::load_unaligned(acc + i))).store_unaligned(acc + i);
    }
    axpy_scalar(w, v + i, n - i, first, acc + i);
}

// acc (+)= w * (rank + beta)^-alpha.
inline void reciprocal_scalar(float w, const float* rank, std::size_t n, float alpha, float beta, bool first,
                              float* acc) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        const float t = alpha == 1.0f ? 1.0f / (rank[i] + beta) : std::pow(rank[i] + beta, -alpha);
        acc[i] = first ? w * t : std::fma(w, t, acc[i]);
    }
}

template <class Arch>
void reciprocal_simd(float w, const float* rank, std::size_t n, float alpha, float beta, bool first,
                     float* acc) noexcept {
    using fb = xsimd::batch<float, Arch>;
    constexpr std::size_t width = fb::size;
    const fb wb(w), b(beta), a(-alpha), one(1.0f);
    std::size_t i = 0;
    for (; i + width <= n; i += width) {
        const fb r = fb::load_unaligned(rank + i) + b;
        const fb t = alpha == 1.0f ? one / r : xsimd::pow(r, a);
        (first ? wb * t : fmadd(wb, t, fb::load_unaligned(acc + i))).store_unaligned(acc + i);
    }
    reciprocal_scalar(w, rank + i, n - i, alpha, beta, first, acc + i);
}

// x = clamp((x - lo) * scale, 0, 1) in place.
inline void rescale_scalar(float* x, std::size_t n, float lo, float scale) noexcept {
    for (std::size_t i = 0; i < n; ++i) x[i] = std::fmin(std::fmax((x[i] - lo) * scale, 0.0f), 1.0f);
}

template <class Arch>
void rescale_simd(float* x, std::size_t n, float lo, float scale) noexcept {
    using fb = xsimd::batch<float, Arch>;
    constexpr std::size_t w = fb::size;
    const fb l(lo), s(scale), zero(0.0f), one(1.0f);
    std::size_t i = 0;
    for (; i + w <= n; i += w)
        xsimd::min(xsimd::max((fb::load_unaligned(x + i) - l) * s, zero), one).store_unaligned(x + i);
    rescale_scalar(x + i, n - i, lo, scale);
}


// ---- learned fusion ------------------------------------------------------------------------------

// fused[i] = sigmoid(logit(x[., i])) for the two-step ensemble (fusion/learned.hpp); x is K x N, rows
// contiguous. `e` is scratch for learned_fusion_scratch(K, D) floats. The scalar reference and the SIMD
// kernel do the same fused multiply-adds in the same order; only exp differs (a few ULP).
// Candidate i of x (rows of `stride` floats).
inline float learned_fusion_one(const learned_fusion_weights& w, const float* x, std::size_t stride, std::size_t i,
                                float* e) noexcept {
    const std::size_t kd = w.k * w.d;
    float logit = w.out_b;
    for (std::size_t k = 0; k < w.k; ++k) {
        const float xk = x[k * stride + i];
        logit = std::fma(w.skip_w[k], xk, logit);
        for (std::size_t j = 0; j < w.d; ++j) {
            const std::size_t c = k * w.d + j;
            e[c] = std::fmax(std::fma(w.component_w[c], xk, w.component_b[c]), 0.0f);
        }
    }
    for (std::size_t m = 0; m < w.h; ++m) {
        const float* a = w.aggregate_w + m * kd;
        float acc = w.aggregate_b[m];
        for (std::size_t c = 0; c < kd; ++c) acc = std::fma(a[c], e[c], acc);
        logit = std::fma(w.out_w[m], std::fmax(acc, 0.0f), logit);
    }
    return 1.0f / (1.0f + std::exp(-logit));
}

inline void learned_fusion_scalar(const learned_fusion_weights& w, const float* x, std::size_t n, float* e,
                                  float* fused) noexcept {
    for (std::size_t i = 0; i < n; ++i) fused[i] = learned_fusion_one(w, x, n, i, e);
}

// B (1 or 2) batches of candidates from candidate i; e holds their components, [c][B * lanes]. Each
// broadcast weight feeds B multiply-adds, and each load of the components four hidden units. Written out
// by hand: compilers at -O2 keep arrays of accumulators in memory.
template <class Arch, std::size_t B>
void learned_fusion_block(const learned_fusion_weights& w, const float* x, std::size_t n, std::size_t i, float* e,
                          float* fused) noexcept {
    static_assert(B == 1 || B == 2, "learned_fusion_block: one or two batches");
    using fb = xsimd::batch<float, Arch>;
    constexpr std::size_t lanes = fb::size, stride = B * lanes, second = B - 1;  // second: the 2nd batch's offset / lanes
    const std::size_t kd = w.k * w.d;
    const fb zero(0.0f), one(1.0f);
    fb l0(w.out_b), l1(w.out_b);
    for (std::size_t k = 0; k < w.k; ++k) {
        const fb skip(w.skip_w[k]);
        const fb x0 = fb::load_unaligned(x + k * n + i), x1 = fb::load_unaligned(x + k * n + i + second * lanes);
        l0 = fmadd(skip, x0, l0);
        l1 = fmadd(skip, x1, l1);
        for (std::size_t j = 0; j < w.d; ++j) {
            const std::size_t c = k * w.d + j;
            const fb cw(w.component_w[c]), cb(w.component_b[c]);
            xsimd::max(fmadd(cw, x0, cb), zero).store_unaligned(e + c * stride);
            if (B == 2) xsimd::max(fmadd(cw, x1, cb), zero).store_unaligned(e + c * stride + lanes);
        }
    }
    std::size_t m = 0;
    for (; m + 4 <= w.h; m += 4) {
        const float* a0 = w.aggregate_w + m * kd;
        const float *a1 = a0 + kd, *a2 = a1 + kd, *a3 = a2 + kd;
        fb s00(w.aggregate_b[m]), s10(w.aggregate_b[m + 1]), s20(w.aggregate_b[m + 2]), s30(w.aggregate_b[m + 3]);
        fb s01 = s00, s11 = s10, s21 = s20, s31 = s30;
        for (std::size_t c = 0; c < kd; ++c) {
            const fb e0 = fb::load_unaligned(e + c * stride), e1 = fb::load_unaligned(e + c * stride + second * lanes);
            const fb w0(a0[c]), w1(a1[c]), w2(a2[c]), w3(a3[c]);
            s00 = fmadd(w0, e0, s00);
            s10 = fmadd(w1, e0, s10);
            s20 = fmadd(w2, e0, s20);
            s30 = fmadd(w3, e0, s30);
            if (B == 2) {
                s01 = fmadd(w0, e1, s01);
                s11 = fmadd(w1, e1, s11);
                s21 = fmadd(w2, e1, s21);
                s31 = fmadd(w3, e1, s31);
            }
        }
        const fb o0(w.out_w[m]), o1(w.out_w[m + 1]), o2(w.out_w[m + 2]), o3(w.out_w[m + 3]);
        l0 = fmadd(o0, xsimd::max(s00, zero), l0);
        l0 = fmadd(o1, xsimd::max(s10, zero), l0);
        l0 = fmadd(o2, xsimd::max(s20, zero), l0);
        l0 = fmadd(o3, xsimd::max(s30, zero), l0);
        if (B == 2) {
            l1 = fmadd(o0, xsimd::max(s01, zero), l1);
            l1 = fmadd(o1, xsimd::max(s11, zero), l1);
            l1 = fmadd(o2, xsimd::max(s21, zero), l1);
            l1 = fmadd(o3, xsimd::max(s31, zero), l1);
        }
    }
    for (; m < w.h; ++m) {
        const float* a = w.aggregate_w + m * kd;
        fb s0(w.aggregate_b[m]), s1(w.aggregate_b[m]);
        for (std::size_t c = 0; c < kd; ++c) {
            const fb wc(a[c]);
            s0 = fmadd(wc, fb::load_unaligned(e + c * stride), s0);
            if (B == 2) s1 = fmadd(wc, fb::load_unaligned(e + c * stride + lanes), s1);
        }
        const fb o(w.out_w[m]);
        l0 = fmadd(o, xsimd::max(s0, zero), l0);
        if (B == 2) l1 = fmadd(o, xsimd::max(s1, zero), l1);
    }
    (one / (one + xsimd::exp(-l0))).store_unaligned(fused + i);
    if (B == 2) (one / (one + xsimd::exp(-l1))).store_unaligned(fused + i + lanes);
}

// Candidates across the lanes, the weights broadcast: no horizontal reductions.
template <class Arch>
void learned_fusion_simd(const learned_fusion_weights& w, const float* x, std::size_t n, float* e,
                         float* fused) noexcept {
    constexpr std::size_t lanes = xsimd::batch<float, Arch>::size;
    static_assert(2 * lanes <= learned_fusion_lanes, "learned_fusion: scratch sized for two batches of 16 lanes");
    std::size_t i = 0;
    for (; i + 2 * lanes <= n; i += 2 * lanes) learned_fusion_block<Arch, 2>(w, x, n, i, e, fused);
    for (; i + lanes <= n; i += lanes) learned_fusion_block<Arch, 1>(w, x, n, i, e, fused);
    if (i == n) return;
    // The last partial batch, padded with zeros to a whole one.
    float* xt = e + w.k * w.d * learned_fusion_lanes;
    float* ft = xt + w.k * lanes;
    const std::size_t left = n - i;
    for (std::size_t k = 0; k < w.k; ++k)
        for (std::size_t t = 0; t < lanes; ++t) xt[k * lanes + t] = t < left ? x[k * n + i + t] : 0.0f;
    learned_fusion_block<Arch, 1>(w, xt, lanes, 0, e, ft);
    for (std::size_t t = 0; t < left; ++t) fused[i + t] = ft[t];
}

}  // namespace POEM_TARGET_NAMESPACE

// ---- dispatch ---------------------------------------------------------------------------------------

// Every fusion kernel of one target (one function pointer type per kernel, whatever the target).
struct fusion_kernels {
    finite_stats (*stats)(const float*, std::size_t) noexcept;
    double (*squared_deviation)(const float*, std::size_t, float) noexcept;
    void (*log1p_clamped)(const float*, std::size_t, float*) noexcept;
    void (*min_max)(const float*, std::size_t, float, float, bool, float*) noexcept;
    void (*z_score)(const float*, std::size_t, float, float, bool, float*) noexcept;
    void (*rank_pct)(const float*, std::size_t, std::size_t, float*) noexcept;
    void (*axpy)(float, const float*, std::size_t, bool, float*) noexcept;
    void (*reciprocal)(float, const float*, std::size_t, float, float, bool, float*) noexcept;
    void (*rescale)(float*, std::size_t, float, float) noexcept;
    void (*learned_fusion)(const learned_fusion_weights&, const float*, std::size_t, float*, float*) noexcept;
};

inline namespace POEM_TARGET_NAMESPACE {

template <class Arch>
constexpr fusion_kernels fusion_kernels_simd() noexcept {
    return {&stats_simd<Arch>, &squared_deviation_simd<Arch>, &log1p_clamped_simd<Arch>, &min_max_simd<Arch>,
            &z_score_simd<Arch>, &rank_pct_simd<Arch>, &axpy_simd<Arch>, &reciprocal_simd<Arch>, &rescale_simd<Arch>,
            &learned_fusion_simd<Arch>};
}
constexpr fusion_kernels fusion_kernels_scalar() noexcept {
    return {&stats_scalar, &squared_deviation_scalar, &log1p_clamped_scalar, &min_max_scalar, &z_score_scalar,
            &rank_pct_scalar, &axpy_scalar, &reciprocal_scalar, &rescale_scalar, &learned_fusion_scalar};
}

}  // namespace POEM_TARGET_NAMESPACE

#ifdef POEM_DISPATCH
// The active target's table, set by the dispatch library (core/dispatch.hpp).
extern std::atomic<const fusion_kernels*> active_fusion_kernels;
#define POEM_FUSION_DISPATCH(name)                                                          \
    template <class... Args>                                                                 \
    inline auto name(Args... args) noexcept {                                                \
        return active_fusion_kernels.load(std::memory_order_relaxed)->name(args...);         \
    }
#else
#define POEM_FUSION_DISPATCH(name)                                                  \
    template <class... Args>                                                         \
    inline auto name(Args... args) noexcept {                                        \
        if constexpr (use_simd) return name##_simd<simd_arch>(args...);              \
        else return name##_scalar(args...);                                          \
    }
#endif
inline namespace POEM_TARGET_NAMESPACE {
POEM_FUSION_DISPATCH(stats)
POEM_FUSION_DISPATCH(squared_deviation)
POEM_FUSION_DISPATCH(log1p_clamped)
POEM_FUSION_DISPATCH(min_max)
POEM_FUSION_DISPATCH(z_score)
POEM_FUSION_DISPATCH(rank_pct)
POEM_FUSION_DISPATCH(axpy)
POEM_FUSION_DISPATCH(reciprocal)
POEM_FUSION_DISPATCH(rescale)
POEM_FUSION_DISPATCH(learned_fusion)
}  // namespace POEM_TARGET_NAMESPACE
#undef POEM_FUSION_DISPATCH

}  // namespace poem::detail
