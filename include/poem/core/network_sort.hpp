#pragma once
// The small-N path of sort_by_key (core/kernels.hpp): a bitonic sorting network in SIMD registers
// for up to network_sort_max (1024) keys. Below a few hundred keys, radix_sort_small's bucket pass and
// insertion sort cost about 10 ns per key (mostly branches that do not predict); the network has no
// data-dependent branch at all. At 1000 keys it still takes about 0.6 of the bucket path's time; past
// 1024 (the index needing 11 bits, and one more merge through memory) the gain fell to about 10 %.
//
// Each key becomes one 32-bit word: the low b bits are the index (b = network_index_bits(n): 8 up to
// 256 keys, 10 up to 1024), the top 32 - b bits the key's place in [min key, max key]
// (key - min, shifted right until it is below 2^(32-b) - 1; the non-finite sort key gets
// 2^(32-b) - 1, a prefix of its own). Words are distinct, so the network's order is stable by index
// among equal prefixes. Keys that differ only below the prefix's resolution (a range stretched by an
// outlier) come out in index order; the expansion to (key << 32 | index) words counts such
// inversions and, if there are any, finishes with insertion_sort_by_key (a few) or radix_sort_small
// (many). The result is word for word radix_sort_keys's. Ranks (rank_by_key) are read off the 32-bit
// words directly (tied runs averaged in place), the expansion only running where neighbours are out of
// key order.

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "poem/core/radix_sort.hpp"
#include "poem/core/simd.hpp"

namespace poem::detail {

inline constexpr std::size_t network_sort_max = 1024;  // the index takes the word's low bits (at most 10)

// The index bits of the network's words for n keys (n <= network_sort_max); the prefix keeps the rest.
inline int network_index_bits(std::size_t n) noexcept { return n <= 256 ? 8 : 10; }

inline namespace POEM_TARGET_NAMESPACE {

template <unsigned Mask>
struct lane_xor {  // lane l takes lane l ^ Mask
    static constexpr std::uint32_t get(std::size_t l, std::size_t) { return static_cast<std::uint32_t>(l ^ Mask); }
};
template <unsigned Bit>
struct lane_has_bit {
    static constexpr bool get(std::size_t l, std::size_t) { return (l & Bit) != 0; }
};

// Lane l of the result is lane l ^ Mask of x. On AVX2, xsimd 8.1's swizzle is always vpermd (3
// cycles, across the 128-bit halves); the masks below 4 stay within the halves (vpshufd, 1 cycle) and
// 4 swaps them (vperm2i128).
template <unsigned Mask, class B>
inline B permute_lanes(const B& x) noexcept {
    using arch = typename B::arch_type;
#if XSIMD_WITH_AVX2
    if constexpr (std::is_base_of<xsimd::avx2, arch>::value && B::size == 8) {
        constexpr int within = (0 ^ (Mask & 3)) | (1 ^ (Mask & 3)) << 2 | (2 ^ (Mask & 3)) << 4 | (3 ^ (Mask & 3)) << 6;
        const __m256i v = x;
        const __m256i swapped = Mask & 4 ? _mm256_permute2x128_si256(v, v, 1) : v;
        return Mask & 3 ? _mm256_shuffle_epi32(swapped, within) : swapped;
    }
#endif
    return xsimd::swizzle(x, xsimd::make_batch_constant<xsimd::batch<std::uint32_t, arch>, lane_xor<Mask>>());
}

// One compare-exchange stage within a vector: lane l against lane l ^ Partner; the lanes with bit
// Upper set keep the larger word.
template <unsigned Partner, unsigned Upper, class B>
inline B lane_stage(const B& x) noexcept {
    const B y = permute_lanes<Partner>(x);
    return xsimd::select(xsimd::make_batch_bool_constant<B, lane_has_bit<Upper>>(), xsimd::max(x, y),
                         xsimd::min(x, y));
}

// Half-cleaners at distances J, J/2, .., 1 within a vector.
template <unsigned J, class B>
inline B lane_merge(const B& x) noexcept {
    if constexpr (J == 0) return x;
    else return lane_merge<J / 2>(lane_stage<J, J>(x));
}

// Sorts the lanes of a vector: merges of width K = 2, 4, .., W, each a mirror stage (lane l against
// lane l ^ (K - 1), which makes every merge ascending) then half-cleaners.
template <unsigned K, class B>
inline B lane_sort(const B& x) noexcept {
    if constexpr (K > B::size) return x;
    else return lane_sort<2 * K>(lane_merge<K / 4>(lane_stage<K - 1, K / 2>(x)));
}

// f(integral_constant<I>) for I = 0 .. N-1, unrolled: the vectors of a block stay in registers.
template <class F, std::size_t... I>
inline void for_each_index(F&& f, std::index_sequence<I...>) noexcept {
    (f(std::integral_constant<std::size_t, I>{}), ...);
}
template <std::size_t N, class F>
inline void for_each_index(F&& f) noexcept {
    for_each_index(f, std::make_index_sequence<N>{});
}

template <class B>
inline void compare_exchange(B& lo, B& hi) noexcept {
    const B smaller = xsimd::min(lo, hi);
    hi = xsimd::max(lo, hi);
    lo = smaller;
}

// The mirror stage of a merge: lo's lane l against hi's lane W-1-l.
template <class B>
inline void mirror_exchange(B& lo, B& hi) noexcept {
    const B reversed = permute_lanes<B::size - 1>(hi);
    hi = permute_lanes<B::size - 1>(xsimd::max(lo, reversed));
    lo = xsimd::min(lo, reversed);
}

// The end of a merge on R vectors in registers: half-cleaners at distances J, J/2, .., 1 vectors,
// then within every vector.
template <std::size_t R, std::size_t J, class B>
inline void finish_merge(B* r) noexcept {
    if constexpr (J == 0) {
        for_each_index<R>([&](auto i) { r[i] = lane_merge<B::size / 2>(r[i]); });
    } else {
        for_each_index<R>([&](auto p) {
            if constexpr ((p & J) == 0) compare_exchange(r[p], r[p + J]);
        });
        finish_merge<R, J / 2>(r);
    }
}

// Sorts R vectors in registers: every vector, then merges of K = 2, 4, .., R vectors.
template <std::size_t R, std::size_t K, class B>
inline void sort_registers(B* r) noexcept {
    if constexpr (K == 1) {
        for_each_index<R>([&](auto i) { r[i] = lane_sort<2>(r[i]); });
        sort_registers<R, 2>(r);
    } else if constexpr (K <= R) {
        for_each_index<R>([&](auto i) {
            constexpr std::size_t p = i % K;
            if constexpr (p < K / 2) mirror_exchange(r[i], r[i - p + K - 1 - p]);
        });
        finish_merge<R, K / 4>(r);
        sort_registers<R, 2 * K>(r);
    }
}

// Sorts v[0..filled) ascending as one sequence, as the network over `count` vectors (a power of two,
// at least R) would with vectors filled..count-1 all 0xFFFFFFFF: every compare-exchange with such a
// vector leaves both sides as they are, so in memory those are skipped and never read (in registers a
// block is padded). Blocks of R vectors are sorted, and every merge finished, in registers; only the
// stages between vectors R or more apart go through memory, one pass each.
template <std::size_t R, class B>
inline void bitonic_sort(B* v, std::size_t count, std::size_t filled) noexcept {
    constexpr std::size_t r_count = R;
    const B padding(0xFFFFFFFFu);
    auto in_registers = [&](auto&& work) {
        for (std::size_t base = 0; base < filled; base += r_count) {
            B r[r_count];
            for_each_index<r_count>([&](auto i) { r[i] = base + i < filled ? v[base + i] : padding; });
            work(r);
            for_each_index<r_count>([&](auto i) {
                if (base + i < filled) v[base + i] = r[i];
            });
        }
    };
    in_registers([](B* r) { sort_registers<r_count, 1>(r); });
    for (std::size_t k = 2 * r_count; k <= count; k *= 2) {  // merge blocks of k vectors
        for (std::size_t base = 0; base < filled; base += k)
            for (std::size_t p = base + k > filled ? base + k - filled : 0; p < k / 2; ++p)
                mirror_exchange(v[base + p], v[base + k - 1 - p]);
        for (std::size_t j = k / 4; j >= r_count; j /= 2)
            for (std::size_t base = 0; base < filled; base += 2 * j)
                for (std::size_t p = base; p < base + j && p + j < filled; ++p) compare_exchange(v[p], v[p + j]);
        in_registers([](B* r) { finish_merge<r_count, r_count / 2>(r); });
    }
}

// Sorts the words[0..filled * W) (Count <= filled <= network_sort_max / W). Up to 16 vectors (128
// words: the common small requests) one instance per power of two; from 32 on one instance whatever
// the size, which only changes how many merges go through memory: an instance per size up to 128
// vectors cost about 1.5 s more compile time per translation unit that sorts.
template <std::size_t Count, class B>
POEM_FLATTEN inline void sort_words(std::uint32_t* words, std::size_t filled) noexcept {
    constexpr std::size_t most = network_sort_max / B::size;
    static_assert(most >= 32, "poem: the network covers at least 32 vectors");
    if constexpr (Count < 32) {
        if (filled > Count) return sort_words<2 * Count, B>(words, filled);
        B v[Count];
        for (std::size_t i = 0; i < filled; ++i) v[i] = B::load_aligned(words + i * B::size);
        bitonic_sort<(Count < 8 ? Count : 8)>(v, Count, filled);
        for (std::size_t i = 0; i < filled; ++i) v[i].store_aligned(words + i * B::size);
    } else {
        std::size_t count = Count;
        while (count < filled) count *= 2;
        B v[most];
        for (std::size_t i = 0; i < filled; ++i) v[i] = B::load_aligned(words + i * B::size);
        bitonic_sort<8>(v, count, filled);
        for (std::size_t i = 0; i < filled; ++i) v[i].store_aligned(words + i * B::size);
    }
}

// The network's words of keys[0..n) (n <= network_sort_max), (prefix << index bits | index), sorted into
// `words` (network_sort_max words, 64-byte aligned): ties and keys that differ below the prefix's
// resolution in index order.
template <class Arch>
void network_sort_words(const std::uint32_t* keys, std::size_t n, std::uint32_t* words) noexcept {
    using B = xsimd::batch<std::uint32_t, Arch>;
    constexpr std::size_t w = B::size;
    constexpr std::uint32_t worst = 0xFFFFFFFFu;
    // The range: the smallest key and the largest other than `worst` (k + 1 wraps it to 0).
    B lo_v(worst), below_v(0u);
    std::size_t i = 0;
    for (; i + w <= n; i += w) {
        const B k = B::load_unaligned(keys + i);
        lo_v = xsimd::min(lo_v, k);
        below_v = xsimd::max(below_v, k + B(1u));
    }
    alignas(64) std::uint32_t lanes[2 * w];
    lo_v.store_aligned(lanes);
    below_v.store_aligned(lanes + w);
    std::uint32_t lo = worst, below = 0;
    for (std::size_t l = 0; l < w; ++l) {
        lo = lanes[l] < lo ? lanes[l] : lo;
        below = lanes[w + l] > below ? lanes[w + l] : below;
    }
    for (; i < n; ++i) {
        lo = keys[i] < lo ? keys[i] : lo;
        below = keys[i] + 1 > below ? keys[i] + 1 : below;
    }
    const std::uint32_t range = below != 0 && below - 1 > lo ? below - 1 - lo : 0;
    int shift = 0;
    const int index_bits = network_index_bits(n);
    const std::uint32_t prefix_worst = 0xFFFFFFFFu >> index_bits;  // the non-finite key's prefix
    while ((range >> shift) >= prefix_worst) ++shift;  // finite prefixes stay below the non-finite one
    // The words; the last vector padded with `worst`, which sorts after every real word.
    const std::size_t filled = (n + w - 1) / w;
    const B lo_b(lo), worst_b(worst), prefix_worst_b(prefix_worst);
    B index = xsimd::make_batch_constant<B, lane_xor<0>>();
    for (i = 0; i + w <= n; i += w, index += B(static_cast<std::uint32_t>(w))) {
        const B k = B::load_unaligned(keys + i);
        const B prefix = xsimd::select(k == worst_b, prefix_worst_b, (k - lo_b) >> shift);
        ((prefix << index_bits) | index).store_aligned(words + i);
    }
    for (; i < n; ++i) {
        const std::uint32_t prefix = keys[i] == worst ? prefix_worst : (keys[i] - lo) >> shift;
        words[i] = (prefix << index_bits) | static_cast<std::uint32_t>(i);
    }
    for (; i < filled * w; ++i) words[i] = worst;
    sort_words<1, B>(words, filled);
}

// The sorted words back to (key << 32 | index) words in a, counting the neighbours out of order (keys
// that differ below the prefix's resolution) and finishing those; returns a or b (scratch of n words
// each), whichever holds the sorted words.
inline std::uint64_t* expand_network_words(const std::uint32_t* keys, std::size_t n, const std::uint32_t* words,
                                           std::uint64_t* a, std::uint64_t* b) noexcept {
    const std::uint32_t mask = (1u << network_index_bits(n)) - 1;
    std::uint32_t inversions = 0;
    std::uint64_t previous = 0;
    for (std::size_t t = 0; t < n; ++t) {
        const std::uint32_t idx = words[t] & mask;
        const std::uint64_t word = (static_cast<std::uint64_t>(keys[idx]) << 32) | idx;
        inversions += previous > word;
        previous = word;
        a[t] = word;
    }
    constexpr std::uint32_t few = 16;  // out-of-order neighbours an insertion sort finishes cheaply
    if (inversions == 0) return a;
    if (inversions <= few) {
        insertion_sort_by_key(a, n);
        return a;
    }
    return radix_sort_small<false>(nullptr, n, a, b);
}

// Sorts indices 0..n-1 by keys[i], ties by index (n <= network_sort_max): the words
// (keys[i] << 32 | i) sorted into a or b (scratch of n words each); returns the one holding them.
template <class Arch>
std::uint64_t* network_sort_keys(const std::uint32_t* keys, std::size_t n, std::uint64_t* a,
                                 std::uint64_t* b) noexcept {
    alignas(64) std::uint32_t words[network_sort_max];
    network_sort_words<Arch>(keys, n, words);
    return expand_network_words(keys, n, words, a, b);
}

// The second pass of ranks from a sorted order, where some neighbours tie: every run of equal keys gets
// the mean of its positions. key_at(t) and index_at(t) are position t's key and index. Returns false,
// the ranks half averaged, at the first key smaller than the one before (the order was not sorted).
template <class KeyAt, class IndexAt>
inline bool average_tied_runs(std::size_t n, KeyAt key_at, IndexAt index_at, float* rank) noexcept {
    for (std::size_t i = 0; i < n;) {
        const std::uint32_t key = key_at(i);
        std::size_t j = i + 1;
        while (j < n && key_at(j) == key) ++j;
        if (j < n && key_at(j) < key) return false;
        if (j - i > 1) {
            const float r = 0.5f * static_cast<float>(i + j - 1);
            for (std::size_t t = i; t < j; ++t) rank[index_at(t)] = r;
        }
        i = j;
    }
    return true;
}

// Ranks straight from the network's sorted words when they come in key order (the usual case for real
// scores): position t is the rank of the index in word t, written without expanding the words to
// 64 bits. Where neighbours tie (equal keys share a prefix, so their words are already in index order)
// a second pass averages the tied runs in place. Returns false, with `rank` unusable, where some
// neighbours are out of key order (keys that differ below the prefix's resolution): then the caller
// expands the words (expand_network_words) and averages the tied runs (average_ranks).
inline bool ranks_from_network_words(const std::uint32_t* keys, std::size_t n, const std::uint32_t* words,
                                     float* rank) noexcept {
    if (n == 0) return true;
    const std::uint32_t mask = (1u << network_index_bits(n)) - 1;
    std::uint32_t previous = keys[words[0] & mask], not_ascending = 0;
    rank[words[0] & mask] = 0.0f;
    for (std::size_t t = 1; t < n; ++t) {
        const std::uint32_t idx = words[t] & mask, key = keys[idx];
        not_ascending |= static_cast<std::uint32_t>(key <= previous);
        rank[idx] = static_cast<float>(t);
        previous = key;
    }
    if (not_ascending == 0) return true;
    // Ties, or keys out of order: the pass over the runs of equal keys tells which.
    const auto index_at = [&](std::size_t t) { return words[t] & mask; };
    return average_tied_runs(n, [&](std::size_t t) { return keys[index_at(t)]; }, index_at, rank);
}

}  // namespace POEM_TARGET_NAMESPACE
}  // namespace poem::detail
