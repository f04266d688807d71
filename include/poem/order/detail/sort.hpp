#pragma once
// Search helpers of order/ (not part of the API). Sorting itself is core/kernels.hpp's sort_by_key
// (and core/radix_sort.hpp) on the keys of core/sort_key.hpp.

#include <cstddef>
#include <cstdint>

#include "poem/core/kernels.hpp"
#include "poem/core/radix_sort.hpp"

namespace poem {
namespace detail {

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

// First level l in [0, levels) for which dominated(l) is false, or `levels`: ENS's binary search over
// the levels built so far (a candidate dominated by level l is dominated by every level before it).
template <class Dominated>
inline std::uint32_t first_free_level(std::uint32_t levels, Dominated dominated) noexcept {
    std::uint32_t lo = 0, hi = levels;
    while (lo < hi) {
        const std::uint32_t mid = lo + (hi - lo) / 2;
        if (dominated(mid)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

}  // namespace detail
}  // namespace poem
