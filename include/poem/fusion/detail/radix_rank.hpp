#pragma once
// Ranking by LSD radix sort of 32-bit keys over (key << 32 | index) words, passes whose digit is the
// same for every key skipped. Stable, so equal keys keep index order. O(N) with
// 1024 counters: at hundreds to thousands of candidates this beats a comparison sort several times.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

namespace poem::detail {

inline constexpr std::size_t radix_11bit_from = 512;

// LSD radix sort of (key << 32 | index) words on `Passes` digits of `Bits` bits each (Passes * Bits >= 32).
template <unsigned Bits, unsigned Passes>
const std::uint64_t* radix_sort_words(const std::uint32_t* keys, std::size_t n, std::uint64_t* a,
                                      std::uint64_t* b) noexcept {
    constexpr std::uint32_t radix = 1u << Bits, mask = radix - 1;
    std::uint32_t count[Passes][radix];
    std::memset(count, 0, sizeof(count));
    // The top digit (sign and exponent) repeats a lot in real scores: a second counter table for odd
    // elements breaks the chain of increments of one counter.
    std::uint32_t top_odd[radix];
    std::memset(top_odd, 0, sizeof(top_odd));
    constexpr unsigned top = Passes - 1;
    std::size_t i = 0;
    for (; i + 1 < n; i += 2) {
        const std::uint32_t k0 = keys[i], k1 = keys[i + 1];
        for (unsigned p = 0; p < top; ++p) {
            ++count[p][(k0 >> (p * Bits)) & mask];
            ++count[p][(k1 >> (p * Bits)) & mask];
        }
        ++count[top][(k0 >> (top * Bits)) & mask];
        ++top_odd[(k1 >> (top * Bits)) & mask];
        a[i] = (static_cast<std::uint64_t>(k0) << 32) | static_cast<std::uint32_t>(i);
        a[i + 1] = (static_cast<std::uint64_t>(k1) << 32) | static_cast<std::uint32_t>(i + 1);
    }
    for (; i < n; ++i) {
        const std::uint32_t k = keys[i];
        for (unsigned p = 0; p < Passes; ++p) ++count[p][(k >> (p * Bits)) & mask];
        a[i] = (static_cast<std::uint64_t>(k) << 32) | static_cast<std::uint32_t>(i);
    }
    for (std::uint32_t d = 0; d < radix; ++d) count[top][d] += top_odd[d];
    std::uint64_t* src = a;
    std::uint64_t* dst = b;
    for (unsigned p = 0; p < Passes; ++p) {
        std::uint32_t* c = count[p];
        const unsigned shift = 32 + p * Bits;
        if (n == 0 || c[(src[0] >> shift) & mask] == n) continue;  // one digit everywhere: nothing moves
        std::uint32_t sum = 0;
        for (std::uint32_t d = 0; d < radix; ++d) {
            const std::uint32_t t = c[d];
            c[d] = sum;
            sum += t;
        }
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint64_t w = src[i];
            dst[c[(w >> shift) & mask]++] = w;
        }
        std::swap(src, dst);
    }
    return src;
}

// Sorts keys ascending (stable). On return the result holds (key << 32 | index) words, best first;
// it is one of `a` or `b` (both hold n words of scratch). Small requests take four 8-bit passes; from
// 512 candidates on (measured), three 11-bit passes, whose larger counters then pay for themselves.
inline const std::uint64_t* radix_sort_keys(const std::uint32_t* keys, std::size_t n, std::uint64_t* a,
                                            std::uint64_t* b) noexcept {
    return n < radix_11bit_from ? radix_sort_words<8, 4>(keys, n, a, b) : radix_sort_words<11, 3>(keys, n, a, b);
}

// Average ranks (0 = best; a run of equal keys shares the mean of its positions).
inline void average_ranks(const std::uint64_t* sorted, std::size_t n, float* rank) noexcept {
    std::size_t i = 0;
    while (i < n) {
        const std::uint32_t key = static_cast<std::uint32_t>(sorted[i] >> 32);
        std::size_t j = i + 1;
        while (j < n && static_cast<std::uint32_t>(sorted[j] >> 32) == key) ++j;
        const float r = j - i == 1 ? static_cast<float>(i) : 0.5f * static_cast<float>(i + j - 1);
        for (std::size_t t = i; t < j; ++t) rank[static_cast<std::uint32_t>(sorted[t])] = r;
        i = j;
    }
}

}  // namespace poem::detail
