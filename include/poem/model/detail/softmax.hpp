#pragma once
// Row-wise softmax over the first `cols` entries of each row of a rows x ld matrix (in place), the
// attention's normalisation (optionally leaving the division by the sum to the caller). Masking is
// done before: the attention compacts the valid tokens, so every column here is valid; a sequence
// with no valid token never reaches this kernel (its output is zero).
//
// The SIMD kernel writes -inf into the row's padding up to a multiple of the batch size (ld must be
// at least that), so that whole batches are processed: exp(-inf - max) = 0 adds nothing to the sum.
// It takes rows in groups of two or four, interleaved (softmax_row_group), with the same bits as one
// at a time. `softmax_rows_scalar` is the reference (double accumulation of the sum).

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

#include <xsimd/xsimd.hpp>

#include "poem/core/simd.hpp"

namespace poem::detail {
inline namespace POEM_TARGET_NAMESPACE {

inline void softmax_rows_scalar(float* s, std::size_t rows, std::size_t cols, std::size_t ld,
                                float* inv_sum = nullptr) noexcept {
    for (std::size_t r = 0; r < rows; ++r) {
        float* x = s + r * ld;
        float m = -std::numeric_limits<float>::infinity();
        for (std::size_t j = 0; j < cols; ++j) m = x[j] > m ? x[j] : m;
        double sum = 0.0;
        for (std::size_t j = 0; j < cols; ++j) {
            x[j] = std::exp(x[j] - m);
            sum += x[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        if (inv_sum != nullptr) inv_sum[r] = inv;
        else for (std::size_t j = 0; j < cols; ++j) x[j] *= inv;
    }
}

// exp(x) for x <= 0 (softmax arguments after the max is subtracted): Cephes' expf, n = round(x / ln 2),
// r = x - n ln 2 in two parts, a degree-5 polynomial, times 2^n through the exponent bits; within 2 ulp
// of std::exp, and exactly 0 below -87 (and for -inf), where xsimd::exp's extra range checks are not
// needed. About twice as fast as xsimd::exp, which dominated the attention's softmax.
template <class Arch>
inline xsimd::batch<float, Arch> exp_nonpositive(xsimd::batch<float, Arch> x) noexcept {
    using batch = xsimd::batch<float, Arch>;
    using ibatch = xsimd::batch<std::int32_t, Arch>;
    const auto underflow = x < batch(-87.0f);
    x = xsimd::max(x, batch(-87.0f));
    const batch n = xsimd::nearbyint(x * batch(1.44269504088896341f));
    x = fnmadd(n, batch(0.693359375f), x);
    x = fnmadd(n, batch(-2.12194440e-4f), x);
    batch y = batch(1.9875691500e-4f);
    y = fmadd(y, x, batch(1.3981999507e-3f));
    y = fmadd(y, x, batch(8.3334519073e-3f));
    y = fmadd(y, x, batch(4.1665795894e-2f));
    y = fmadd(y, x, batch(1.6666665459e-1f));
    y = fmadd(y, x, batch(5.0000001201e-1f));
    y = fmadd(y, x * x, x + batch(1.0f));
    const ibatch e = (xsimd::to_int(n) + ibatch(127)) << 23;
    return xsimd::select(underflow, batch(0.0f), y * xsimd::bitwise_cast<batch>(e));
}

// Horizontal max without a round trip through memory where the arch has a shuffle tree for it (the
// store-and-scan of poem::detail::reduce_max was a third of this kernel's time on AVX-512).
template <class Arch>
inline float row_max(const xsimd::batch<float, Arch>& m) noexcept {
#if defined(__AVX512F__)
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) return _mm512_reduce_max_ps(m);
#endif
#if defined(__AVX__)
    if constexpr (std::is_base_of_v<xsimd::avx, Arch> && xsimd::batch<float, Arch>::size == 8) {
        __m256 v = m;
        v = _mm256_max_ps(v, _mm256_permute2f128_ps(v, v, 1));
        v = _mm256_max_ps(v, _mm256_shuffle_ps(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
        v = _mm256_max_ps(v, _mm256_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
        return _mm256_cvtss_f32(v);
    }
#endif
    return reduce_max(m);
}

// exp(x - mx) of one batch of a row, stored in place and added to the row's sum.
template <class Arch>
inline void exp_shifted_store(float* x, const xsimd::batch<float, Arch>& mx, xsimd::batch<float, Arch>& sum) noexcept {
    const auto e = exp_nonpositive<Arch>(xsimd::batch<float, Arch>::load_unaligned(x) - mx);
    e.store_unaligned(x);
    sum += e;
}

// The softmax of rows s, s + ld, ... (one per index in G), padded to `padded` columns, their loops
// interleaved. Each row's steps wait on one another (its max, the max's reduction, the exp pass and
// its sum, the sum's reduction); the other rows' steps fill those waits. Every row gets the one-row
// arithmetic in the one-row order, so grouping never changes a bit.
template <class Arch, std::size_t... G>
inline void softmax_row_group(std::index_sequence<G...>, float* s, std::size_t ld, std::size_t padded,
                              float* inv_sum) noexcept {
    using batch = xsimd::batch<float, Arch>;
    constexpr std::size_t L = batch::size, n = sizeof...(G);
    const float ninf = -std::numeric_limits<float>::infinity();
    float* const x[n] = {(s + G * ld)...};
    std::array<batch, n> m0{((void)G, batch(ninf))...}, m1{((void)G, batch(ninf))...};
    std::size_t j = 0;
    for (; j + 2 * L <= padded; j += 2 * L) {  // two chains a row: the max's latency bounds this loop
        ((std::get<G>(m0) = xsimd::max(std::get<G>(m0), batch::load_unaligned(x[G] + j))), ...);
        ((std::get<G>(m1) = xsimd::max(std::get<G>(m1), batch::load_unaligned(x[G] + j + L))), ...);
    }
    if (j < padded) ((std::get<G>(m0) = xsimd::max(std::get<G>(m0), batch::load_unaligned(x[G] + j))), ...);
    const std::array<batch, n> mx{batch(row_max<Arch>(xsimd::max(std::get<G>(m0), std::get<G>(m1))))...};
    std::array<batch, n> sum{((void)G, batch(0.0f))...};
    for (std::size_t c = 0; c < padded; c += L)
        (exp_shifted_store<Arch>(x[G] + c, std::get<G>(mx), std::get<G>(sum)), ...);
    const float inv_s[n] = {(1.0f / xsimd::hadd(std::get<G>(sum)))...};
    if (inv_sum != nullptr) {
        ((inv_sum[G] = inv_s[G]), ...);
        return;
    }
    for (std::size_t c = 0; c < padded; c += L)
        ((batch::load_unaligned(x[G] + c) * batch(inv_s[G])).store_unaligned(x[G] + c), ...);
}

template <class Arch>
void softmax_rows_simd(float* s, std::size_t rows, std::size_t cols, std::size_t ld, float* inv_sum = nullptr) noexcept {
    constexpr std::size_t L = xsimd::batch<float, Arch>::size;
    // Rows four at a time with 32 vector registers (AVX-512), two with 16: each row in flight holds
    // its max, sum and the exp's temporaries.
    constexpr std::size_t group = L >= 16 ? 4 : 2;
    const std::size_t padded = (cols + L - 1) / L * L;
    const float ninf = -std::numeric_limits<float>::infinity();
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = cols; j < padded; ++j) s[r * ld + j] = ninf;
    std::size_t r = 0;
    for (; r + group <= rows; r += group)
        softmax_row_group<Arch>(std::make_index_sequence<group>{}, s + r * ld, ld, padded,
                                inv_sum != nullptr ? inv_sum + r : nullptr);
    for (; r < rows; ++r)
        softmax_row_group<Arch>(std::make_index_sequence<1>{}, s + r * ld, ld, padded,
                                inv_sum != nullptr ? inv_sum + r : nullptr);
}

}  // namespace POEM_TARGET_NAMESPACE
}  // namespace poem::detail
