#pragma once
// The one radix sort of poem: a stable LSD radix sort of 64-bit words (key << 32 | payload) by their
// 32-bit key, the payload (usually an index) riding along. Stable, so equal keys keep their input
// order; with index payloads written in index order, ties come out by index. O(N).
//
// Tuning (measured on fusion's ranks): below 512 words four 8-bit passes, from 512 on three 11-bit
// passes, whose larger counters then pay for themselves; a pass whose digit is the same for every
// key is skipped (scores share their sign and exponent bits, levels are small); the top digit, which
// repeats the most, is counted in two tables (even and odd elements) to break the chain of increments
// of one counter.
//
// Used by fusion's ranks, rank_order(), Pareto levels, tiers, level selection (64-bit keys as two
// stable passes: radix_sort_by_two_keys) and, through them, the serving order.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

namespace poem::detail {

inline constexpr std::size_t radix_11bit_from = 512;

// Pack: the keys come from keys[i] and the words are written as (keys[i] << 32 | i); otherwise `a`
// already holds the words. Returns a or b, whichever holds the result.
template <unsigned Bits, unsigned Passes, bool Pack>
std::uint64_t* radix_sort_impl(const std::uint32_t* keys, std::size_t n, std::uint64_t* a,
                               std::uint64_t* b) noexcept {
    static_assert(Bits * Passes >= 32, "the digits must cover the key");
    constexpr std::uint32_t radix = 1u << Bits, mask = radix - 1;
    std::uint32_t count[Passes][radix];
    std::memset(count, 0, sizeof(count));
    std::uint32_t top_odd[radix];
    std::memset(top_odd, 0, sizeof(top_odd));
    constexpr unsigned top = Passes - 1;
    auto key_of = [&](std::size_t i) -> std::uint32_t {
        if constexpr (Pack) return keys[i];
        else return static_cast<std::uint32_t>(a[i] >> 32);
    };
    std::size_t i = 0;
    for (; i + 1 < n; i += 2) {
        const std::uint32_t k0 = key_of(i), k1 = key_of(i + 1);
        for (unsigned p = 0; p < top; ++p) {
            ++count[p][(k0 >> (p * Bits)) & mask];
            ++count[p][(k1 >> (p * Bits)) & mask];
        }
        ++count[top][(k0 >> (top * Bits)) & mask];
        ++top_odd[(k1 >> (top * Bits)) & mask];
        if constexpr (Pack) {
            a[i] = (static_cast<std::uint64_t>(k0) << 32) | static_cast<std::uint32_t>(i);
            a[i + 1] = (static_cast<std::uint64_t>(k1) << 32) | static_cast<std::uint32_t>(i + 1);
        }
    }
    for (; i < n; ++i) {
        const std::uint32_t k = key_of(i);
        for (unsigned p = 0; p < Passes; ++p) ++count[p][(k >> (p * Bits)) & mask];
        if constexpr (Pack) a[i] = (static_cast<std::uint64_t>(k) << 32) | static_cast<std::uint32_t>(i);
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
        for (std::size_t j = 0; j < n; ++j) {
            const std::uint64_t w = src[j];
            dst[c[(w >> shift) & mask]++] = w;
        }
        std::swap(src, dst);
    }
    return src;
}

// Sorts the n words of `a` (key << 32 | payload) by key, stably; `b` is scratch of n words. Returns
// a or b, whichever holds the result.
inline std::uint64_t* radix_sort(std::uint64_t* a, std::uint64_t* b, std::size_t n) noexcept {
    return n < radix_11bit_from ? radix_sort_impl<8, 4, false>(nullptr, n, a, b)
                                : radix_sort_impl<11, 3, false>(nullptr, n, a, b);
}

// Sorts indices 0..n-1 by keys[i] (ties by index): the words (keys[i] << 32 | i) are packed into `a`
// in the counting pass. `a` and `b` are scratch of n words; returns the one holding the result.
inline std::uint64_t* radix_sort_keys(const std::uint32_t* keys, std::size_t n, std::uint64_t* a,
                                      std::uint64_t* b) noexcept {
    return n < radix_11bit_from ? radix_sort_impl<8, 4, true>(keys, n, a, b)
                                : radix_sort_impl<11, 3, true>(keys, n, a, b);
}

// Sorts indices 0..n-1 by (major[i], minor[i], i): two stable passes of the sort above (minor first,
// then major), the 64-bit key (major << 32 | minor) without a second implementation. Writes the
// sorted indices to `out` (n); `a` and `b` are scratch of n words.
inline void radix_sort_by_two_keys(const std::uint32_t* major, const std::uint32_t* minor, std::size_t n,
                                   std::uint64_t* a, std::uint64_t* b, std::uint32_t* out) noexcept {
    std::uint64_t* s = radix_sort_keys(minor, n, a, b);
    std::uint64_t* t = s == a ? b : a;
    for (std::size_t i = 0; i < n; ++i) {
        const auto idx = static_cast<std::uint32_t>(s[i]);
        s[i] = (static_cast<std::uint64_t>(major[idx]) << 32) | idx;
    }
    s = radix_sort(s, t, n);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint32_t>(s[i]);
}

}  // namespace poem::detail
