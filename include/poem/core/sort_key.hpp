#pragma once
// The one float -> sort key transform of poem: an unsigned 32-bit key whose ascending order is the
// best-first order of the scores (smaller key = better), for the radix sorts of core/radix_sort.hpp.
//
// Policy, the same everywhere (fusion ranks, the final order, Pareto levels, tiers, level selection,
// the partial-order state):
//   - finite values keep their order; -0 and +0 share a key (equal floats, equal keys);
//   - every non-finite value, NaN, +Inf and -Inf alike, gets the worst key, worst_sort_key: after every
//     finite value, tied with the other non-finite ones (ties then keep index order in a stable sort).
// Why one bucket for +Inf too: a score of +Inf is a broken model output, not a very good candidate.
// Letting it rank first would put the broken candidate on top of the feed; the README and
// docs/fusion.md promise that non-finite scores rank last on their objective, tied with each other.
// No finite float maps to worst_sort_key (its bit pattern is a NaN's), so the key alone tells them apart.

#include <cstddef>
#include <cstdint>

#include "poem/core/bits.hpp"
#include "poem/core/simd.hpp"

namespace poem {

inline constexpr std::uint32_t worst_sort_key = 0xFFFFFFFFu;

namespace detail {
inline bool is_finite_bits(std::uint32_t u) noexcept { return (u & 0x7F800000u) != 0x7F800000u; }
}  // namespace detail

// Smaller key = better score; see the policy above.
inline std::uint32_t sort_key(float x, bool higher_is_better) noexcept {
    const std::uint32_t u = detail::float_bits(x + 0.0f);  // + 0 turns -0 into +0
    if (!detail::is_finite_bits(u)) return worst_sort_key;
    const std::uint32_t ascending = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return higher_is_better ? ~ascending : ascending;  // finite keys stay below worst_sort_key
}

namespace detail {
inline namespace POEM_TARGET_NAMESPACE {

// sort_key of x[0..n) into keys; returns how many were non-finite. Scalar reference and xsimd kernel
// (bit-identical); sort_keys() in core/kernels.hpp picks one.
inline std::size_t sort_keys_scalar(const float* x, std::size_t n, bool higher_is_better,
                                    std::uint32_t* keys) noexcept {
    std::size_t nonfinite = 0;
    for (std::size_t i = 0; i < n; ++i) {
        keys[i] = sort_key(x[i], higher_is_better);
        nonfinite += keys[i] == worst_sort_key;
    }
    return nonfinite;
}

template <class Arch>
std::size_t sort_keys_simd(const float* x, std::size_t n, bool higher_is_better, std::uint32_t* keys) noexcept {
    using fb = xsimd::batch<float, Arch>;
    using ub = xsimd::batch<std::uint32_t, Arch>;
    using ib = xsimd::batch<std::int32_t, Arch>;
    constexpr std::size_t w = fb::size;
    const ub sign(0x80000000u), exponent(0x7F800000u), all(worst_sort_key), zero(0u), one(1u);
    const ub flip = higher_is_better ? all : zero;
    ub bad_count(0u);
    std::size_t i = 0;
    // No select on a negated comparison: GCC 12 at -O2 with AVX512BW+VL compiles
    // _mm256_blendv_epi8(a, b, ~cmpeq) as if the mask were not negated (xsimd's `!=` on AVX2 batches).
    for (; i + w <= n; i += w) {
        const ub u = xsimd::bitwise_cast<ub>(fb::load_unaligned(x + i) + fb(0.0f));
        // Negative floats flip every bit, the others only the sign: u ^ ((u >> 31, arithmetic) | sign).
        const ub ascending = u ^ (xsimd::bitwise_cast<ub>(xsimd::bitwise_cast<ib>(u) >> 31) | sign);
        const ub bad = xsimd::select((u & exponent) == exponent, all, zero);  // all ones: worst_sort_key
        ((ascending ^ flip) | bad).store_unaligned(keys + i);
        bad_count += bad & one;
    }
    alignas(64) std::uint32_t lanes[w];
    bad_count.store_aligned(lanes);
    std::size_t nonfinite = 0;
    for (std::size_t l = 0; l < w; ++l) nonfinite += lanes[l];
    return nonfinite + sort_keys_scalar(x + i, n - i, higher_is_better, keys + i);
}

}  // namespace POEM_TARGET_NAMESPACE
}  // namespace detail
}  // namespace poem
