#pragma once
// SIMD configuration. Kernels are templates on an xsimd arch; `poem::simd_arch` is the one the
// consumer's compiler flags allow (never forced by poem). Defining POEM_FORCE_SCALAR makes every
// dispatcher call the scalar reference instead, the knob the tests and benches use to compare.
//
// The namespace kernels live in: core/target_namespace.hpp.

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

using simd_arch = xsimd::default_arch;

#ifdef POEM_FORCE_SCALAR
inline constexpr bool use_simd = false;
#else
inline constexpr bool use_simd = true;
#endif

namespace detail {
inline namespace POEM_TARGET_NAMESPACE {

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
