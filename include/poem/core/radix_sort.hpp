#pragma once
// The one radix sort of poem: a stable sort of 64-bit words (key << 32 | payload) by their 32-bit
// key, the payload (usually an index) riding along. Stable, so equal keys keep their input order;
// with index payloads written in index order, ties come out by index.
//
// Two paths (measured on fusion's ranks):
//   - below radix_small_below (2048) words, radix_sort_small: the keys' min and max, one stable
//     counting pass on the top bits of key - min (about one bucket per word), then an insertion sort
//     that only moves words within their bucket; a bucket of more than radix_small_bucket words
//     (keys bunched below the digit's resolution) is first sorted the same way on its own range. At
//     N = 100 the LSD passes' fixed cost (clearing and summing 4 x 256 counters) was most of the time.
//   - from 2048 words, an LSD radix sort in three 11-bit passes; a pass whose digit is the same for
//     every key is skipped (scores share their sign and exponent bits, levels are small); the top
//     digit, which repeats the most, is counted in two tables (even and odd elements) to break the
//     chain of increments of one counter.
//
// Used by tiers, level selection (64-bit keys as two stable passes: radix_sort_by_two_keys) and,
// through sort_by_key (core/kernels.hpp: a sorting network up to 1024 keys on AVX2, this sort
// beyond and as the scalar reference), by fusion's ranks, rank_order(), Pareto levels and the serving
// order.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "poem/core/target_namespace.hpp"

// In the per-target namespace: the kernel tables of every dispatch target reach these functions
// (sort_by_key), and each target must keep its own copy.
namespace poem::detail {
inline namespace POEM_TARGET_NAMESPACE {

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

// ---- small N (see the top of the file) -----------------------------------------------------------

inline constexpr std::size_t radix_small_below = 2048;
inline constexpr std::size_t radix_small_insertion = 16;  // below this, insertion sort alone
inline constexpr std::size_t radix_small_bucket = 32;

inline unsigned bit_width32(std::uint32_t v) noexcept {
    unsigned w = 0;
    for (; v != 0; v >>= 1) ++w;
    return w;
}

// Stable insertion sort of n words by key (the high half): one 64-bit compare per step, as
// key(w) > key(x) is w > (x | 0xFFFFFFFF). After the bucket pass most words are in place or one step
// off, so that first step is a branch-free compare-exchange (the previous word kept in a register);
// only a word going further back takes the loop.
inline void insertion_sort_by_key(std::uint64_t* w, std::size_t n) noexcept {
    if (n < 2) return;
    std::uint64_t prev = w[0];
    for (std::size_t i = 1; i < n; ++i) {
        const std::uint64_t x = w[i], above = x | 0xFFFFFFFFu;
        const bool swap = prev > above;
        w[i - 1] = swap ? x : prev;
        prev = swap ? prev : x;
        w[i] = prev;
        if (i >= 2 && w[i - 2] > above) {
            std::size_t j = i - 1;
            do {
                w[j] = w[j - 1];
                --j;
            } while (j > 0 && w[j - 1] > above);
            w[j] = x;
        }
    }
}

// Pack as in radix_sort_impl; n < radix_small_below (the counters are on the stack). Returns a or
// b, whichever holds the result.
template <bool Pack>
std::uint64_t* radix_sort_small(const std::uint32_t* keys, std::size_t n, std::uint64_t* a,
                                std::uint64_t* b) noexcept {
    if (n < radix_small_insertion) {
        if constexpr (Pack)
            for (std::size_t i = 0; i < n; ++i)
                a[i] = (static_cast<std::uint64_t>(keys[i]) << 32) | static_cast<std::uint32_t>(i);
        insertion_sort_by_key(a, n);
        return a;
    }
    // Eight independent lanes, so that the compiler vectorises the reductions even at -O2. `below`
    // is the largest key other than 0xFFFFFFFF (k + 1 wraps it to 0): the worst sort key of the
    // non-finite scores gets a bucket of its own instead of stretching the range of the others.
    std::uint32_t lo8[8], hi8[8], below8[8];
    for (unsigned j = 0; j < 8; ++j) lo8[j] = 0xFFFFFFFFu, hi8[j] = 0, below8[j] = 0;
    auto key_at = [&](std::size_t i) -> std::uint32_t {
        if constexpr (Pack) return keys[i];
        else return static_cast<std::uint32_t>(a[i] >> 32);
    };
    auto reduce = [&](unsigned j, std::uint32_t k) {
        lo8[j] = k < lo8[j] ? k : lo8[j];
        hi8[j] = k > hi8[j] ? k : hi8[j];
        below8[j] = k + 1 > below8[j] ? k + 1 : below8[j];
    };
    std::size_t m = 0;
    for (; m + 8 <= n; m += 8)
        for (unsigned j = 0; j < 8; ++j) reduce(j, key_at(m + j));
    for (; m < n; ++m) reduce(0, key_at(m));
    for (unsigned j = 1; j < 8; ++j) {
        reduce(0, lo8[j]);
        reduce(0, hi8[j]);
        below8[0] = below8[j] > below8[0] ? below8[j] : below8[0];
    }
    const std::uint32_t lo = lo8[0], hi = hi8[0], below = below8[0] - 1;
    if (lo == hi) {  // one key: the input order is the sorted order
        if constexpr (Pack)
            for (std::size_t i = 0; i < n; ++i)
                a[i] = (static_cast<std::uint64_t>(keys[i]) << 32) | static_cast<std::uint32_t>(i);
        return a;
    }
    // About one bucket per word: 2^bits > n (16..2047 words: 32..2048 buckets, one more for
    // 0xFFFFFFFF). Any digit that never decreases as the key grows sorts correctly; this one is
    // (key - lo) >> shift, capped at the last bucket.
    const unsigned bits = bit_width32(static_cast<std::uint32_t>(n)), width = bit_width32(below - lo);
    const unsigned shift = width > bits ? width - bits : 0;
    std::uint32_t count[(std::size_t(1) << 11) + 1];
    const std::uint32_t top = ((below - lo) >> shift) + (hi != below), buckets = top + 1;
    std::memset(count, 0, buckets * sizeof(std::uint32_t));
    // Count, sum, scatter; the cap only where there is a key 0xFFFFFFFF to cap.
    auto place = [&](auto capped) {
        auto digit = [&](std::uint32_t k) {
            const std::uint32_t d = (k - lo) >> shift;
            if constexpr (decltype(capped)::value) return d < top ? d : top;
            else return d;
        };
        for (std::size_t i = 0; i < n; ++i) ++count[digit(key_at(i))];
        std::uint32_t sum = 0, most = 0;
        for (std::uint32_t d = 0; d < buckets; ++d) {
            const std::uint32_t t = count[d];
            count[d] = sum;
            sum += t;
            most = t > most ? t : most;
        }
        for (std::size_t i = 0; i < n; ++i) {  // Pack: the words are made here, straight from the keys
            std::uint64_t w;
            if constexpr (Pack) w = (static_cast<std::uint64_t>(keys[i]) << 32) | static_cast<std::uint32_t>(i);
            else w = a[i];
            b[count[digit(static_cast<std::uint32_t>(w >> 32))]++] = w;
        }
        return most;
    };
    const std::uint32_t most = hi != below ? place(std::true_type{}) : place(std::false_type{});
    // count[d] is now the end of bucket d. With shift 0 a bucket holds one key: nothing to sort.
    if (most > radix_small_bucket && shift != 0) {
        std::uint32_t begin = 0;
        for (std::uint32_t d = 0; d < buckets; ++d) {
            const std::uint32_t end = count[d];
            if (end - begin > radix_small_bucket) {
                const std::uint64_t* s = radix_sort_small<false>(nullptr, end - begin, b + begin, a + begin);
                if (s != b + begin) std::memcpy(b + begin, s, (end - begin) * sizeof(std::uint64_t));
            }
            begin = end;
        }
    }
    insertion_sort_by_key(b, n);
    return b;
}

// Sorts the n words of `a` (key << 32 | payload) by key, stably; `b` is scratch of n words. Returns
// a or b, whichever holds the result.
inline std::uint64_t* radix_sort(std::uint64_t* a, std::uint64_t* b, std::size_t n) noexcept {
    return n < radix_small_below ? radix_sort_small<false>(nullptr, n, a, b)
                                 : radix_sort_impl<11, 3, false>(nullptr, n, a, b);
}

// Sorts indices 0..n-1 by keys[i] (ties by index): the words (keys[i] << 32 | i) are made from the
// keys on the way. `a` and `b` are scratch of n words; returns the one holding the result.
inline std::uint64_t* radix_sort_keys(const std::uint32_t* keys, std::size_t n, std::uint64_t* a,
                                      std::uint64_t* b) noexcept {
    return n < radix_small_below ? radix_sort_small<true>(keys, n, a, b)
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

}  // namespace POEM_TARGET_NAMESPACE
}  // namespace poem::detail
