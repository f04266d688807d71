#pragma once
// Ranking by LSD radix sort of 32-bit keys: four 8-bit passes over (key << 32 | index) words, passes
// whose digit is the same for every key skipped. Stable, so equal keys keep index order. O(N) with
// 1024 counters: at hundreds to thousands of candidates this beats a comparison sort several times.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

namespace poem::detail {

// Sorts keys ascending (stable). On return the result holds (key << 32 | index) words, best first;
// it is one of `a` or `b` (both hold n words of scratch).
inline const std::uint64_t* radix_sort_keys(const std::uint32_t* keys, std::size_t n, std::uint64_t* a,
                                            std::uint64_t* b) noexcept {
    std::uint32_t count[4][256];
    std::memset(count, 0, sizeof(count));
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t k = keys[i];
        ++count[0][k & 0xFF];
        ++count[1][(k >> 8) & 0xFF];
        ++count[2][(k >> 16) & 0xFF];
        ++count[3][k >> 24];
        a[i] = (static_cast<std::uint64_t>(k) << 32) | static_cast<std::uint32_t>(i);
    }
    std::uint64_t* src = a;
    std::uint64_t* dst = b;
    for (int pass = 0; pass < 4; ++pass) {
        std::uint32_t* c = count[pass];
        const unsigned shift = 32 + 8 * static_cast<unsigned>(pass);
        if (n == 0 || c[(src[0] >> shift) & 0xFF] == n) continue;  // one digit everywhere: nothing moves
        std::uint32_t sum = 0;
        for (int d = 0; d < 256; ++d) {
            const std::uint32_t t = c[d];
            c[d] = sum;
            sum += t;
        }
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint64_t w = src[i];
            dst[c[(w >> shift) & 0xFF]++] = w;
        }
        std::swap(src, dst);
    }
    return src;
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
