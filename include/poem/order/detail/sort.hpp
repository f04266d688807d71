#pragma once
// Sorting helpers of order/ (not part of the API): order-preserving integer keys for floats, and an
// LSD radix sort of (64-bit key, 32-bit index) pairs.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace poem {
namespace detail {

// An unsigned key whose order is the order of `v` (smaller key = smaller value). -0 and +0 share a
// key, so equal floats always have equal keys. For finite values only (NaN has no order).
inline std::uint32_t float_key(float v) noexcept {
    if (v == 0.0f) v = 0.0f;  // -0 -> +0
    std::uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// A key where smaller = better: `higher_is_better` values are mirrored.
inline std::uint32_t better_key(float v, bool higher_is_better) noexcept {
    const std::uint32_t k = float_key(v);
    return higher_is_better ? ~k : k;
}

// Stable LSD radix sort of n pairs (key[i], val[i]) by key ascending, 8-bit digits; a digit that is
// the same for every key is skipped. `key`/`val` hold the input; `key_tmp`/`val_tmp` are scratch of
// the same size. Returns true when the sorted result ended up in the scratch arrays.
inline bool radix_sort_pairs(std::uint64_t* key, std::uint32_t* val, std::uint64_t* key_tmp,
                             std::uint32_t* val_tmp, std::size_t n, unsigned key_bits = 64) noexcept {
    if (n < 2) return false;
    const unsigned passes = (key_bits + 7) / 8;
    std::uint32_t hist[8][256];
    std::memset(hist, 0, sizeof(std::uint32_t) * 256 * passes);
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t k = key[i];
        for (unsigned p = 0; p < passes; ++p) ++hist[p][(k >> (8 * p)) & 0xFF];
    }
    bool swapped = false;
    std::uint64_t* src_k = key;
    std::uint32_t* src_v = val;
    std::uint64_t* dst_k = key_tmp;
    std::uint32_t* dst_v = val_tmp;
    for (unsigned p = 0; p < passes; ++p) {
        std::uint32_t* h = hist[p];
        const unsigned first = static_cast<unsigned>((src_k[0] >> (8 * p)) & 0xFF);
        if (h[first] == n) continue;  // every key has this digit: nothing to do
        std::uint32_t sum = 0;
        for (unsigned d = 0; d < 256; ++d) {
            const std::uint32_t c = h[d];
            h[d] = sum;
            sum += c;
        }
        const unsigned shift = 8 * p;
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint64_t k = src_k[i];
            const std::uint32_t at = h[(k >> shift) & 0xFF]++;
            dst_k[at] = k;
            dst_v[at] = src_v[i];
        }
        std::uint64_t* tk = src_k; src_k = dst_k; dst_k = tk;
        std::uint32_t* tv = src_v; src_v = dst_v; dst_v = tv;
        swapped = !swapped;
    }
    return swapped;
}

}  // namespace detail
}  // namespace poem

namespace poem {
namespace detail {

// Stable LSD radix sort of n 64-bit words by their high 32 bits (11-bit digits, three passes, a pass
// whose digit is the same everywhere skipped): pack (key << 32 | index) to sort indices by key, ties in
// index order. `a` holds the input, `tmp` is scratch of the same size; returns where the result is.
inline std::uint64_t* radix_sort_hi32(std::uint64_t* a, std::uint64_t* tmp, std::size_t n) noexcept {
    if (n < 2) return a;
    constexpr unsigned bits[3] = {11, 11, 10};
    constexpr unsigned shift[3] = {32, 43, 54};
    std::uint32_t hist[3][2048];
    std::memset(hist, 0, sizeof hist);
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t k = a[i];
        ++hist[0][(k >> 32) & 0x7FF];
        ++hist[1][(k >> 43) & 0x7FF];
        ++hist[2][k >> 54];
    }
    std::uint64_t* src = a;
    std::uint64_t* dst = tmp;
    for (unsigned p = 0; p < 3; ++p) {
        std::uint32_t* h = hist[p];
        const std::size_t size = std::size_t(1) << bits[p];
        const std::uint64_t mask = size - 1;
        if (h[(src[0] >> shift[p]) & mask] == n) continue;
        std::uint32_t sum = 0;
        for (std::size_t d = 0; d < size; ++d) {
            const std::uint32_t c = h[d];
            h[d] = sum;
            sum += c;
        }
        const unsigned s = shift[p];
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint64_t k = src[i];
            dst[h[(k >> s) & mask]++] = k;
        }
        std::uint64_t* t = src; src = dst; dst = t;
    }
    return src;
}

// First position whose value is > x in the nondecreasing v[0..n) (branchless).
template <class T>
inline std::size_t upper_bound_branchless(const T* v, std::size_t n, T x) noexcept {
    if (n == 0) return 0;
    const T* b = v;
    while (n > 1) {
        const std::size_t half = n / 2;
        b = (b[half] <= x) ? b + half : b;
        n -= half;
    }
    return static_cast<std::size_t>(b - v) + (*b <= x);
}

// First position whose value is >= x in the nondecreasing v[0..n) (branchless).
template <class T>
inline std::size_t lower_bound_branchless(const T* v, std::size_t n, T x) noexcept {
    if (n == 0) return 0;
    const T* b = v;
    while (n > 1) {
        const std::size_t half = n / 2;
        b = (b[half] < x) ? b + half : b;
        n -= half;
    }
    return static_cast<std::size_t>(b - v) + (*b < x);
}

}  // namespace detail
}  // namespace poem
