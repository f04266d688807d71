#pragma once
// SIMD configuration. Kernels are templates on an xsimd arch; `poem::simd_arch` is the one the
// consumer's compiler flags allow (never forced by poem). Defining POEM_FORCE_SCALAR makes every
// dispatcher call the scalar reference instead, the knob the tests and benches use to compare.
//
// The namespace kernels live in: core/target_namespace.hpp.

#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "poem/core/target_namespace.hpp"

// Inlines every call inside the function it marks: a kernel whose helpers must share registers
// (core/network_sort.hpp) says so instead of hoping for the inliner's budget.
#if defined(__GNUC__)
#define POEM_FLATTEN __attribute__((flatten))
#else
#define POEM_FLATTEN
#endif

namespace poem {

// GCC at -O0 defines _mm512_mask_blend_epi8 and _epi16 as macros whose casts refuse an xsimd batch, and
// xsimd 8.1's AVX-512BW select on integer batches names both (in branches 4-byte lanes never take; its
// own pow and exp select on int lanes): a Debug build (-O0 -march=native) on an AVX-512BW machine would
// not compile. There the kernels take AVX-512DQ's instruction set, whose select has no such branch;
// poem uses none of BW's byte and word instructions.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE__) && XSIMD_WITH_AVX512BW
using simd_arch = xsimd::avx512dq;
#else
using simd_arch = xsimd::default_arch;
#endif

// POEM_VDPBF16PS: whether these flags run the model's bf16 GEMM on AVX512_BF16's vdpbf16ps. Only
// where it pays, as the dispatch library ranks its targets at run time (docs/dispatch.md): on the Intel
// Xeon with AMX we measured it ran at half the fp32 FMA rate, and the widening kernel gives the same
// bits 1.4x faster; AMD's Zen 4 runs it at twice that rate. Intel's AVX512_BF16 CPUs are Cooper Lake
// (unmeasured, ranked like the others) and those with AMX: their flags take the widening kernel.
#if defined(__AVX512BF16__) && !defined(__AMX_BF16__) && !defined(__cooperlake__)
#define POEM_VDPBF16PS 1
#else
#define POEM_VDPBF16PS 0
#endif

#ifdef POEM_FORCE_SCALAR
inline constexpr bool use_simd = false;
#else
inline constexpr bool use_simd = true;
#endif

namespace detail {
inline namespace POEM_TARGET_NAMESPACE {

// a * b + c, rounded once. xsimd 8.1 has no AVX-512 fma or fnma: its generic fallback is a multiply
// and an add, two roundings at half the rate (and under -ffp-contract=off, which the dispatch targets
// use, the compiler may not fuse them). Kernels call these, not xsimd::fma.
template <class T, class Arch>
inline xsimd::batch<T, Arch> fmadd(const xsimd::batch<T, Arch>& a, const xsimd::batch<T, Arch>& b,
                                   const xsimd::batch<T, Arch>& c) noexcept {
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of<xsimd::avx512f, Arch>::value && std::is_same<T, float>::value)
        return _mm512_fmadd_ps(a, b, c);
    else if constexpr (std::is_base_of<xsimd::avx512f, Arch>::value && std::is_same<T, double>::value)
        return _mm512_fmadd_pd(a, b, c);
    else
#endif
        return xsimd::fma(a, b, c);
}
// c - a * b, one rounding: the negation is exact, so this is fmadd's rounding of the same value.
template <class T, class Arch>
inline xsimd::batch<T, Arch> fnmadd(const xsimd::batch<T, Arch>& a, const xsimd::batch<T, Arch>& b,
                                    const xsimd::batch<T, Arch>& c) noexcept {
    return fmadd(-a, b, c);
}

// Horizontal sum and max of a batch (xsimd 8.1 has hadd but no reduce_max).
template <class Arch>
inline float reduce_max(const xsimd::batch<float, Arch>& b) noexcept {
    alignas(64) float lanes[xsimd::batch<float, Arch>::size];
    b.store_aligned(lanes);
    float m = lanes[0];
    for (std::size_t i = 1; i < xsimd::batch<float, Arch>::size; ++i) m = lanes[i] > m ? lanes[i] : m;
    return m;
}
template <class Arch>
inline float reduce_min(const xsimd::batch<float, Arch>& b) noexcept {
    alignas(64) float lanes[xsimd::batch<float, Arch>::size];
    b.store_aligned(lanes);
    float m = lanes[0];
    for (std::size_t i = 1; i < xsimd::batch<float, Arch>::size; ++i) m = lanes[i] < m ? lanes[i] : m;
    return m;
}

}  // namespace POEM_TARGET_NAMESPACE
}  // namespace detail
}  // namespace poem
