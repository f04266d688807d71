#pragma once
// The model's kernels of one target (the fp32 and bf16 GEMMs and the attention's softmax) and the calls
// the forward pass makes: the compile-time arch's kernel (POEM_FORCE_SCALAR: the scalar reference) or,
// with POEM_DISPATCH, the runtime target's (core/dispatch.hpp).

#include <atomic>
#include <cstddef>

#include "poem/core/simd.hpp"
#include "poem/model/detail/gemm.hpp"
#include "poem/model/detail/gemm_amx.hpp"
#include "poem/model/detail/gemm_bf16.hpp"
#include "poem/model/detail/softmax.hpp"

namespace poem::detail {

struct model_kernels {
    void (*gemm)(std::size_t, const float*, std::size_t, const packed_view&, const epilogue&, float*, std::size_t,
                 bool) noexcept;
    void (*gemm_bf16)(std::size_t, const float*, std::size_t, const packed_bf16_view&, const epilogue&, float*,
                      std::size_t, float*) noexcept;
    void (*gemm_bf16_chain)(std::size_t, const float*, std::size_t, const packed_bf16_view*, std::size_t, float*,
                            std::size_t, float*) noexcept;
    void (*softmax_rows)(float*, std::size_t, std::size_t, std::size_t, float*) noexcept;
};

#ifdef POEM_DISPATCH
// The active target's table, set by the dispatch library.
extern std::atomic<const model_kernels*> active_model_kernels;
#endif

inline namespace POEM_TARGET_NAMESPACE {

template <class Arch>
constexpr model_kernels model_kernels_simd() noexcept {
#if defined(POEM_AMX)  // the dispatch target amx: its bf16 GEMM runs on tiles (gemm_amx.hpp)
    return {&gemm_simd<Arch>, &gemm_bf16_amx, &gemm_bf16_chain_amx, &softmax_rows_simd<Arch>};
#else
    return {&gemm_simd<Arch>, &gemm_bf16_simd<Arch>, &gemm_bf16_chain_simd<Arch>, &softmax_rows_simd<Arch>};
#endif
}
constexpr model_kernels model_kernels_scalar() noexcept {
    return {&gemm_scalar, &gemm_bf16_scalar, &gemm_bf16_chain_scalar, &softmax_rows_scalar};
}

// C = A * B + bias (ReLU if asked) on B as packed (gemm.hpp: full_panels).
inline void gemm(std::size_t m, const float* a, std::size_t lda, const packed_view& b, const epilogue& ep, float* c,
                 std::size_t ldc, bool full_panels = false) noexcept {
#ifdef POEM_DISPATCH
    active_model_kernels.load(std::memory_order_relaxed)->gemm(m, a, lda, b, ep, c, ldc, full_panels);
#else
    if constexpr (use_simd) gemm_simd<simd_arch>(m, a, lda, b, ep, c, ldc, full_panels);
    else gemm_scalar(m, a, lda, b, ep, c, ldc, full_panels);
#endif
}

// C = A * B + bias (ReLU if asked) on a bf16-packed B (gemm_bf16.hpp); scratch: bf16_scratch_size(m, b.k)
// floats.
inline void gemm_bf16(std::size_t m, const float* a, std::size_t lda, const packed_bf16_view& b, const epilogue& ep,
                      float* c, std::size_t ldc, float* scratch) noexcept {
#ifdef POEM_DISPATCH
    active_model_kernels.load(std::memory_order_relaxed)->gemm_bf16(m, a, lda, b, ep, c, ldc, scratch);
#else
    if constexpr (use_simd) gemm_bf16_simd<simd_arch>(m, a, lda, b, ep, c, ldc, scratch);
    else gemm_bf16_scalar(m, a, lda, b, ep, c, ldc, scratch);
#endif
}

// The bf16 layers `layers[0..count)` in turn on m rows of x, ReLU after all but the last, whose output
// goes to out (gemm_bf16.hpp: gemm_bf16_chain_simd); count >= 1; scratch: bf16_chain_scratch_size floats.
inline void gemm_bf16_chain(std::size_t m, const float* x, std::size_t ldx, const packed_bf16_view* layers,
                            std::size_t count, float* out, std::size_t ldo, float* scratch) noexcept {
#ifdef POEM_DISPATCH
    active_model_kernels.load(std::memory_order_relaxed)->gemm_bf16_chain(m, x, ldx, layers, count, out, ldo, scratch);
#else
    if constexpr (use_simd) gemm_bf16_chain_simd<simd_arch>(m, x, ldx, layers, count, out, ldo, scratch);
    else gemm_bf16_chain_scalar(m, x, ldx, layers, count, out, ldo, scratch);
#endif
}

// ld >= cols rounded up to the SIMD batch size (a multiple of panel_width is enough for every target).
// With inv_sum (rows floats), the rows are left as exp(x - max) and 1 / sum goes to inv_sum[r]: the
// attention applies it in the next GEMM's epilogue.
inline void softmax_rows(float* s, std::size_t rows, std::size_t cols, std::size_t ld, float* inv_sum = nullptr) noexcept {
#ifdef POEM_DISPATCH
    active_model_kernels.load(std::memory_order_relaxed)->softmax_rows(s, rows, cols, ld, inv_sum);
#else
    if constexpr (use_simd) softmax_rows_simd<simd_arch>(s, rows, cols, ld, inv_sum);
    else softmax_rows_scalar(s, rows, cols, ld, inv_sum);
#endif
}

}  // namespace POEM_TARGET_NAMESPACE
}  // namespace poem::detail
