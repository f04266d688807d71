#pragma once
// core's dispatched kernels: sort_keys() (floats to sort keys, core/sort_key.hpp), sort_by_key()
// (indices sorted by their keys, ties by index) and rank_by_key() (the average rank of every key).
// Each has a scalar reference and a SIMD kernel; the dispatcher picks one (POEM_FORCE_SCALAR: the
// reference; POEM_DISPATCH: the runtime target's).
//
// sort_by_key is the one entry to poem's sort of keys: the SIMD kernel runs up to network_sort_max
// keys through the sorting network of core/network_sort.hpp (AVX2 and AVX-512 targets) and more through
// radix_sort_keys; the scalar reference is radix_sort_keys alone. Both give the same words.
// rank_by_key is that sort followed by average_ranks; up to network_sort_max keys, where the network's
// words come in key order (ties included), the SIMD kernel reads the ranks off its 32-bit words
// instead of expanding them.

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "poem/core/network_sort.hpp"
#include "poem/core/radix_sort.hpp"
#include "poem/core/simd.hpp"
#include "poem/core/sort_key.hpp"

namespace poem::detail {

// The core kernels of one target.
struct core_kernels {
    std::size_t (*sort_keys)(const float*, std::size_t, bool, std::uint32_t*) noexcept;
    std::uint64_t* (*sort_by_key)(const std::uint32_t*, std::size_t, std::uint64_t*, std::uint64_t*) noexcept;
    void (*rank_by_key)(const std::uint32_t*, std::size_t, std::uint64_t*, std::uint64_t*, float*) noexcept;
};

#ifdef POEM_DISPATCH
// The active target's table, set by the dispatch library (core/dispatch.hpp).
extern std::atomic<const core_kernels*> active_core_kernels;
#endif

inline namespace POEM_TARGET_NAMESPACE {

// Average ranks from sorted (key << 32 | index) words (0 = the smallest key; a run of equal keys
// shares the mean of its positions). Positions first, with no branch per word; only if some
// neighbours tie (rare for real scores) a second pass averages the runs.
inline void average_ranks(const std::uint64_t* sorted, std::size_t n, float* rank) noexcept {
    if (n == 0) return;
    std::uint32_t ties = 0;
    for (std::size_t t = 0; t + 1 < n; ++t) {
        rank[static_cast<std::uint32_t>(sorted[t])] = static_cast<float>(t);
        ties |= static_cast<std::uint32_t>((sorted[t] >> 32) == (sorted[t + 1] >> 32));
    }
    rank[static_cast<std::uint32_t>(sorted[n - 1])] = static_cast<float>(n - 1);
    if (ties == 0) return;
    const auto index_at = [&](std::size_t t) { return static_cast<std::uint32_t>(sorted[t]); };
    average_tied_runs(n, [&](std::size_t t) { return static_cast<std::uint32_t>(sorted[t] >> 32); }, index_at, rank);
}

// Sorts indices 0..n-1 by keys[i], ties by index: the words (keys[i] << 32 | i) in order, in a or b
// (scratch of n words each); returns the one holding them.
inline std::uint64_t* sort_by_key_scalar(const std::uint32_t* keys, std::size_t n, std::uint64_t* a,
                                         std::uint64_t* b) noexcept {
    return radix_sort_keys(keys, n, a, b);
}

// The network runs on AVX2 vectors, on the AVX-512 targets too (every AVX-512 CPU has AVX2): SSE2
// has no unsigned 32-bit min and max.
#if XSIMD_WITH_AVX2
using network_arch = xsimd::avx2;
#endif

// sort_keys writes its keys in the vectors the network reads them in: on Skylake-SP a 256-bit load of
// half of a 512-bit store just made is not forwarded from the store, and that stall cost ranks at
// N = 100 about 150 ns of 780. The keys are 0.4 ns per element either way.
template <class Arch>
#if XSIMD_WITH_AVX2
using keys_arch = network_arch;
#else
using keys_arch = Arch;
#endif

template <class Arch>
std::uint64_t* sort_by_key_simd(const std::uint32_t* keys, std::size_t n, std::uint64_t* a, std::uint64_t* b) noexcept {
#if XSIMD_WITH_AVX2
    if (n <= network_sort_max) return network_sort_keys<network_arch>(keys, n, a, b);
#endif
    return radix_sort_keys(keys, n, a, b);
}

// The average rank of every key (n floats into rank, by index; a and b: scratch of n words each).
inline void rank_by_key_scalar(const std::uint32_t* keys, std::size_t n, std::uint64_t* a, std::uint64_t* b,
                               float* rank) noexcept {
    average_ranks(radix_sort_keys(keys, n, a, b), n, rank);
}

template <class Arch>
void rank_by_key_simd(const std::uint32_t* keys, std::size_t n, std::uint64_t* a, std::uint64_t* b,
                      float* rank) noexcept {
#if XSIMD_WITH_AVX2
    if (n <= network_sort_max) {
        alignas(64) std::uint32_t words[network_sort_max];
        network_sort_words<network_arch>(keys, n, words);
        if (ranks_from_network_words(keys, n, words, rank)) return;
        return average_ranks(expand_network_words(keys, n, words, a, b), n, rank);
    }
#endif
    average_ranks(radix_sort_keys(keys, n, a, b), n, rank);
}

template <class Arch>
constexpr core_kernels core_kernels_simd() noexcept {
    return {&sort_keys_simd<keys_arch<Arch>>, &sort_by_key_simd<Arch>, &rank_by_key_simd<Arch>};
}
constexpr core_kernels core_kernels_scalar() noexcept {
    return {&sort_keys_scalar, &sort_by_key_scalar, &rank_by_key_scalar};
}

inline std::size_t sort_keys(const float* x, std::size_t n, bool higher_is_better, std::uint32_t* keys) noexcept {
#ifdef POEM_DISPATCH
    return active_core_kernels.load(std::memory_order_relaxed)->sort_keys(x, n, higher_is_better, keys);
#else
    if constexpr (use_simd) return sort_keys_simd<keys_arch<simd_arch>>(x, n, higher_is_better, keys);
    else return sort_keys_scalar(x, n, higher_is_better, keys);
#endif
}

inline std::uint64_t* sort_by_key(const std::uint32_t* keys, std::size_t n, std::uint64_t* a, std::uint64_t* b) noexcept {
#ifdef POEM_DISPATCH
    return active_core_kernels.load(std::memory_order_relaxed)->sort_by_key(keys, n, a, b);
#else
    if constexpr (use_simd) return sort_by_key_simd<simd_arch>(keys, n, a, b);
    else return sort_by_key_scalar(keys, n, a, b);
#endif
}

inline void rank_by_key(const std::uint32_t* keys, std::size_t n, std::uint64_t* a, std::uint64_t* b,
                        float* rank) noexcept {
#ifdef POEM_DISPATCH
    active_core_kernels.load(std::memory_order_relaxed)->rank_by_key(keys, n, a, b, rank);
#else
    if constexpr (use_simd) rank_by_key_simd<simd_arch>(keys, n, a, b, rank);
    else rank_by_key_scalar(keys, n, a, b, rank);
#endif
}

}  // namespace POEM_TARGET_NAMESPACE
}  // namespace poem::detail
