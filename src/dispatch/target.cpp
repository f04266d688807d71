// One target's kernel tables. cmake/poem_dispatch.cmake compiles this file once per target, each time
// with the target's instruction-set flags, POEM_DISPATCH_TARGET=<name> and
// POEM_TARGET_NAMESPACE=target_<name> (so this copy's kernels have symbols of their own).

#include "kernel_tables.hpp"

#define POEM_TABLES_NAME_(t) kernel_tables_##t
#define POEM_TABLES_NAME(t) POEM_TABLES_NAME_(t)

namespace poem::detail {
namespace {
struct scalar_target {};  // the scalar references, whatever the flags
}  // namespace

#define POEM_TARGET_scalar 0
#define POEM_TARGET_sse2 1
#define POEM_TARGET_avx2 2
#define POEM_TARGET_avx512 3
#define POEM_TARGET_avx512bf16 4
#define POEM_TARGET_amx 5
#define POEM_TARGET_ID_(t) POEM_TARGET_##t
#define POEM_TARGET_ID(t) POEM_TARGET_ID_(t)

// The xsimd arch of this target; the flags must enable it (a wrong flag set fails here, not at run time).
#if POEM_TARGET_ID(POEM_DISPATCH_TARGET) == 0
using target_arch = scalar_target;
#elif POEM_TARGET_ID(POEM_DISPATCH_TARGET) == 1
static_assert(XSIMD_WITH_SSE2, "poem: the sse2 target needs -msse2");
using target_arch = xsimd::sse2;
#elif POEM_TARGET_ID(POEM_DISPATCH_TARGET) == 2
static_assert(XSIMD_WITH_AVX2 && XSIMD_WITH_FMA3_AVX2, "poem: the avx2 target needs -mavx2 -mfma");
using target_arch = xsimd::fma3<xsimd::avx2>;
#elif POEM_TARGET_ID(POEM_DISPATCH_TARGET) == 3
static_assert(XSIMD_WITH_AVX512BW, "poem: the avx512 target needs -mavx512f -mavx512cd -mavx512dq -mavx512bw");
using target_arch = xsimd::avx512bw;
#elif POEM_TARGET_ID(POEM_DISPATCH_TARGET) == 4
static_assert(XSIMD_WITH_AVX512BW, "poem: the avx512bf16 target needs the avx512 target's flags");
#ifndef __AVX512BF16__
#error "poem: the avx512bf16 target needs -mavx512bf16"
#endif
#if !POEM_VDPBF16PS
#error "poem: the avx512bf16 target runs vdpbf16ps, which Intel's flags turn off (POEM_VDPBF16PS, core/simd.hpp)"
#endif
using target_arch = xsimd::avx512bw;  // gemm_bf16.hpp: native_bf16
#elif POEM_TARGET_ID(POEM_DISPATCH_TARGET) == 5
#if !defined(POEM_AMX) || !defined(__AVX512BF16__)
#error "poem: the amx target needs POEM_AMX and the avx512bf16 target's flags"
#endif
using target_arch = xsimd::avx512bw;  // kernels.hpp: the bf16 GEMM is gemm_bf16_amx
#else
#error "poem: POEM_DISPATCH_TARGET must be scalar, sse2, avx2, avx512, avx512bf16 or amx"
#endif

template <class Arch>
constexpr kernel_tables tables_of() noexcept {
    if constexpr (std::is_same<Arch, scalar_target>::value)
        return {core_kernels_scalar(), fusion_kernels_scalar(), model_kernels_scalar(), loss_kernels_scalar()};
    else
        return {core_kernels_simd<Arch>(), fusion_kernels_simd<Arch>(), model_kernels_simd<Arch>(),
                loss_kernels_simd<Arch>()};
}

extern const kernel_tables POEM_TABLES_NAME(POEM_DISPATCH_TARGET);
constexpr kernel_tables POEM_TABLES_NAME(POEM_DISPATCH_TARGET) = tables_of<target_arch>();

}  // namespace poem::detail
