#pragma once
// Dense pairwise kernels: for P positives and Q negatives, z_ij = u_i + v_j where u_i = a_i - p_i
// (a_i the positive's margin share) and v_j = n_j (+ b_j). They return sum_ij f(z_ij) and write
// gpos[i] = sum_j f'(z_ij) and add sum_i f'(z_ij) to gneg[j] (zeroed by the caller). f is the hinge
// max(0, z) (f' = 1 where z > 0, else 0, as torch.relu) or softplus log(1 + e^z) (f' = sigmoid(z)),
// both in a form that never overflows.
//
// The xsimd kernel vectorises over negatives and takes four positives at a time so each load and
// store of gneg serves four rows; positives' sums are horizontal sums at the end of a row block.
// The scalar reference does the same arithmetic in the same order per element (z is bit-identical).

#include <atomic>
#include <cmath>
#include <cstddef>

#include <xsimd/xsimd.hpp>

#include "poem/core/simd.hpp"

namespace poem::detail {
inline namespace POEM_TARGET_NAMESPACE {

// ---- scalar reference -----------------------------------------------------------------------------

template <bool Softplus>
inline void pairwise_term(float z, float& loss, float& grad) noexcept {
    if constexpr (Softplus) {
        const float e = std::exp(-std::fabs(z));
        loss = (z > 0.0f ? z : 0.0f) + std::log1p(e);
        grad = (z >= 0.0f ? 1.0f : e) / (1.0f + e);
    } else {
        loss = z > 0.0f ? z : 0.0f;
        grad = z > 0.0f ? 1.0f : 0.0f;
    }
}

template <bool Softplus>
inline double dense_pairwise_scalar(const float* pos, const float* pos_off, float margin, std::size_t P,
                                    const float* v, std::size_t Q, float* gpos, float* gneg) noexcept {
    double total = 0.0;
    for (std::size_t i = 0; i < P; ++i) {
        const float u = (pos_off ? pos_off[i] : margin) - pos[i];
        float lsum = 0.0f, gsum = 0.0f;
        for (std::size_t j = 0; j < Q; ++j) {
            float l, g;
            pairwise_term<Softplus>(u + v[j], l, g);
            lsum += l;
            gsum += g;
            gneg[j] += g;
        }
        gpos[i] = gsum;
        total += static_cast<double>(lsum);
    }
    return total;
}

// ---- xsimd kernel ---------------------------------------------------------------------------------

// log1p(e) for e in [0, 1]: a degree-9 polynomial (near-minimax on Chebyshev nodes), absolute error
// below 1.1e-7 in float (about 2 ulp of log 2), relative below 1e-6. Cheaper than xsimd::log1p,
// which handles the whole real line.
template <class Arch>
inline xsimd::batch<float, Arch> log1p_unit(const xsimd::batch<float, Arch>& e) noexcept {
    using B = xsimd::batch<float, Arch>;
    B p(0.0039303721860051155f);
    p = fmadd(p, e, B(-0.023855077102780342f));
    p = fmadd(p, e, B(0.0680839866399765f));
    p = fmadd(p, e, B(-0.12690816819667816f));
    p = fmadd(p, e, B(0.1856977641582489f));
    p = fmadd(p, e, B(-0.24672673642635345f));
    p = fmadd(p, e, B(0.3328966498374939f));
    p = fmadd(p, e, B(-0.499970942735672f));
    p = fmadd(p, e, B(0.9999993443489075f));
    return p * e;
}

template <class Arch, bool Softplus>
inline void pairwise_term(const xsimd::batch<float, Arch>& z, xsimd::batch<float, Arch>& loss,
                          xsimd::batch<float, Arch>& grad) noexcept {
    using B = xsimd::batch<float, Arch>;
    const B zero(0.0f), one(1.0f);
    if constexpr (Softplus) {
        const B e = xsimd::exp(-xsimd::abs(z));
        loss = xsimd::select(z > zero, z, zero) + log1p_unit(e);
        grad = xsimd::select(z >= zero, one, e) / (one + e);
    } else {
        const auto pos = z > zero;
        loss = xsimd::select(pos, z, zero);
        grad = xsimd::select(pos, one, zero);
    }
}

template <class Arch, bool Softplus>
inline double dense_pairwise_simd(const float* pos, const float* pos_off, float margin, std::size_t P,
                                  const float* v, std::size_t Q, float* gpos, float* gneg) noexcept {
    using B = xsimd::batch<float, Arch>;
    constexpr std::size_t W = B::size;
    const std::size_t Qv = Q - Q % W;
    double total = 0.0;
    std::size_t i = 0;
    for (; i + 4 <= P; i += 4) {
        float us[4];
        for (std::size_t r = 0; r < 4; ++r) us[r] = (pos_off ? pos_off[i + r] : margin) - pos[i + r];
        const B u0(us[0]), u1(us[1]), u2(us[2]), u3(us[3]);
        B l0(0.0f), l1(0.0f), l2(0.0f), l3(0.0f), g0(0.0f), g1(0.0f), g2(0.0f), g3(0.0f);
        for (std::size_t j = 0; j < Qv; j += W) {
            const B vj = B::load_unaligned(v + j);
            B a0, a1, a2, a3, d0, d1, d2, d3;
            pairwise_term<Arch, Softplus>(u0 + vj, a0, d0);
            pairwise_term<Arch, Softplus>(u1 + vj, a1, d1);
            pairwise_term<Arch, Softplus>(u2 + vj, a2, d2);
            pairwise_term<Arch, Softplus>(u3 + vj, a3, d3);
            l0 += a0; l1 += a1; l2 += a2; l3 += a3;
            g0 += d0; g1 += d1; g2 += d2; g3 += d3;
            (B::load_unaligned(gneg + j) + ((d0 + d1) + (d2 + d3))).store_unaligned(gneg + j);
        }
        float ls[4] = {xsimd::hadd(l0), xsimd::hadd(l1), xsimd::hadd(l2), xsimd::hadd(l3)};
        float gs[4] = {xsimd::hadd(g0), xsimd::hadd(g1), xsimd::hadd(g2), xsimd::hadd(g3)};
        for (std::size_t j = Qv; j < Q; ++j) {
            float gj = 0.0f;
            for (int r = 0; r < 4; ++r) {
                float l, g;
                pairwise_term<Softplus>(us[r] + v[j], l, g);
                ls[r] += l;
                gs[r] += g;
                gj += g;
            }
            gneg[j] += gj;
        }
        for (std::size_t r = 0; r < 4; ++r) {
            gpos[i + r] = gs[r];
            total += static_cast<double>(ls[r]);
        }
    }
    for (; i < P; ++i) {
        const float u = (pos_off ? pos_off[i] : margin) - pos[i];
        const B ub(u);
        B la(0.0f), ga(0.0f);
        for (std::size_t j = 0; j < Qv; j += W) {
            B a, d;
            pairwise_term<Arch, Softplus>(ub + B::load_unaligned(v + j), a, d);
            la += a;
            ga += d;
            (B::load_unaligned(gneg + j) + d).store_unaligned(gneg + j);
        }
        float ls = xsimd::hadd(la), gs = xsimd::hadd(ga);
        for (std::size_t j = Qv; j < Q; ++j) {
            float l, g;
            pairwise_term<Softplus>(u + v[j], l, g);
            ls += l;
            gs += g;
            gneg[j] += g;
        }
        gpos[i] = gs;
        total += static_cast<double>(ls);
    }
    return total;
}

}  // namespace POEM_TARGET_NAMESPACE

// The loss kernels of one target: the dense pairwise sum, hinge and softplus.
using dense_pairwise_fn = double (*)(const float*, const float*, float, std::size_t, const float*, std::size_t, float*,
                                     float*) noexcept;
struct loss_kernels {
    dense_pairwise_fn dense_hinge;
    dense_pairwise_fn dense_softplus;
};

#ifdef POEM_DISPATCH
// The active target's table, set by the dispatch library (core/dispatch.hpp).
extern std::atomic<const loss_kernels*> active_loss_kernels;
#endif

inline namespace POEM_TARGET_NAMESPACE {

template <class Arch>
constexpr loss_kernels loss_kernels_simd() noexcept {
    return {&dense_pairwise_simd<Arch, false>, &dense_pairwise_simd<Arch, true>};
}
constexpr loss_kernels loss_kernels_scalar() noexcept {
    return {&dense_pairwise_scalar<false>, &dense_pairwise_scalar<true>};
}

// The kernels that run: the scalar reference when asked (tests, benches) or under POEM_FORCE_SCALAR;
// otherwise the compile-time arch's, or with POEM_DISPATCH the runtime target's.
inline loss_kernels loss_kernels_active(bool scalar) noexcept {
    if (scalar || !use_simd) return loss_kernels_scalar();
#ifdef POEM_DISPATCH
    return *active_loss_kernels.load(std::memory_order_relaxed);
#else
    return loss_kernels_simd<simd_arch>();
#endif
}

}  // namespace POEM_TARGET_NAMESPACE
}  // namespace poem::detail
