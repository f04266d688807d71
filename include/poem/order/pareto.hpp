#pragma once
// Pareto levels: the exact non-dominated layering of a request's candidates over its K objectives.
//
// Candidate a dominates b when a is at least as good as b on every objective and better on one. Level 0
// is the set of candidates nobody dominates (the Pareto front); level l > 0 holds the candidates that
// some level l-1 candidate dominates and no candidate of level l does. Identical candidates (equal on
// every objective) never dominate each other and always share a level. Candidates with any NaN or
// +-Inf score form one extra last level and are counted in `nonfinite`.
//
// Algorithms (N candidates, M of them finite, L levels):
//   K = 1   sort, then a new level at every distinct value: O(N log N).
//   K = 2   sort by (objective 0, objective 1), then one sweep in which each candidate's level is the
//           first level whose smallest objective-1 key is larger than its own (binary search on the
//           levels' tails, as in the longest-decreasing-subsequence algorithm): O(N log N).
//   K >= 3, up to pareto_bitset_max(K) candidates: dominance bitsets (detail/pareto_bitset.hpp), each
//           candidate's dominators the AND of one row of bits per objective 1..K-1, its level found by
//           a binary search over the levels' member bits: O(K N^2 / 64) word operations. Past that:
//   K = 3   sort lexicographically, then each candidate binary-searches the levels built so far; a
//           level keeps the 2D staircase (minimal pairs) of its members' objectives 1 and 2, so "does
//           level l dominate c" is one binary search: O(N log^2 N).
//   K >= 4  the same binary search over levels (ENS-BS, Zhang et al. 2015), each level a bucket k-d
//           tree over objectives 1..K-1 whose leaf buckets are scanned 16 members at a time (ENS-NDT,
//           Gustavsson & Syberfeldt 2018; detail/pareto_tree.hpp). A level smaller than a bucket is one
//           scan, so small requests get blocked ENS. Compiled for each K up to 16. O(K N^2) worst
//           case, about O(K N log N) per level query on uniform data.
// In every case, each candidate before c in the lexicographic order is at least as good on objective
// 0, and identical candidates are adjacent (they take the level of the first of them), so "p
// dominates c" reduces to "p is at least as good on objectives 1..K-1". The K sort keys are computed
// once; the order is an LSD radix sort of objective 0's keys, or, when objective 0 has many ties, of
// (objective 0, objective 1) (two stable passes); runs still tied are finished by std::sort on the
// stored keys of the remaining objectives (no key is computed twice).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/span.hpp"
#include "poem/core/workspace.hpp"
#include "poem/core/direction.hpp"
#include "poem/order/levels_result.hpp"
#include "poem/order/detail/pareto_bitset.hpp"
#include "poem/order/detail/pareto_tree.hpp"
#include "poem/order/detail/sort.hpp"

namespace poem {

namespace detail {

// K = 3: level of each sorted candidate from per-level 2D staircases over objectives (1, 2). A
// level's staircase holds the minimal (y, z) pairs of its members (y strictly increasing, z strictly
// decreasing); candidate c (not identical to any earlier one, and no better on objective 0 than any)
// is dominated by the level iff the last entry with y <= c.y has z <= c.z. Staircases live in one pool
// with capacity doubling (2, 4, 8, ...): a level that ends with s members has used less than 4 s words,
// so 4 M words always suffice.
class staircases {
public:
    // pool: 4m + 16 words; info: 3 * (m + 1) words.
    staircases(std::uint64_t* pool, std::size_t pool_size, std::uint32_t* info) noexcept
        : pool_(pool), size_(pool_size), info_(info) {}

    std::uint32_t levels() const noexcept { return levels_; }

    bool dominated(std::uint32_t l, std::uint64_t c) const noexcept {
        const std::uint64_t* e = pool_ + off(l);
        const std::size_t n = count(l);
        // last entry with y <= c.y: entries <= (c.y, 0xFFFFFFFF)
        const std::size_t at = upper_bound_branchless<std::uint64_t>(e, n, c | 0xFFFFFFFFull);
        return at > 0 && static_cast<std::uint32_t>(e[at - 1]) <= static_cast<std::uint32_t>(c);
    }

    // First level that does not dominate c (binary search: the predicate is monotone in the level).
    std::uint32_t place(std::uint64_t c) const noexcept {
        return first_free_level(levels_, [&](std::uint32_t l) { return dominated(l, c); });
    }

    void insert(std::uint32_t l, std::uint64_t c) {
        if (l == levels_) {
            check(used_ + 2 <= size_, "pareto_levels: internal error (staircase pool)");
            info_[3 * l] = static_cast<std::uint32_t>(used_);
            info_[3 * l + 1] = 0;
            info_[3 * l + 2] = 2;
            used_ += 2;
            ++levels_;
        }
        std::uint64_t* e = pool_ + off(l);
        std::size_t n = count(l);
        const std::size_t first = lower_bound_branchless<std::uint64_t>(e, n, c & ~0xFFFFFFFFull);  // y >= c.y
        std::size_t r = first;
        while (r < n && static_cast<std::uint32_t>(e[r]) >= static_cast<std::uint32_t>(c)) ++r;
        if (r > first) {  // c replaces the entries it dominates
            e[first] = c;
            std::memmove(e + first + 1, e + r, (n - r) * sizeof(std::uint64_t));
            info_[3 * l + 1] = static_cast<std::uint32_t>(n - (r - first) + 1);
            return;
        }
        if (n == info_[3 * l + 2]) {
            grow(l);
            e = pool_ + off(l);
        }
        std::memmove(e + first + 1, e + first, (n - first) * sizeof(std::uint64_t));
        e[first] = c;
        info_[3 * l + 1] = static_cast<std::uint32_t>(n + 1);
    }

private:
    std::size_t off(std::uint32_t l) const noexcept { return info_[3 * l]; }
    std::size_t count(std::uint32_t l) const noexcept { return info_[3 * l + 1]; }

    void grow(std::uint32_t l) {
        const std::size_t n = count(l), cap = 2 * std::size_t(info_[3 * l + 2]);
        check(used_ + cap <= size_, "pareto_levels: internal error (staircase pool)");
        std::memcpy(pool_ + used_, pool_ + off(l), n * sizeof(std::uint64_t));
        info_[3 * l] = static_cast<std::uint32_t>(used_);
        info_[3 * l + 2] = static_cast<std::uint32_t>(cap);
        used_ += cap;
    }

    std::uint64_t* pool_;
    std::size_t size_;
    std::uint32_t* info_;  // per level: offset, count, capacity
    std::size_t used_ = 0;
    std::uint32_t levels_ = 0;
};

// How K >= 3 levels are found: chosen by N and K, or (tests, benches) one method forced. Forcing the
// bitsets where they do not fit (pareto_bitset_fits) takes the searches.
enum class pareto_method { automatic, bitset, search };

inline void pareto_levels(matrix_view<const float> scores, span<const direction> dirs, workspace& ws,
                          levels_result& out, pareto_method method) {
    const std::size_t k = scores.rows(), n = scores.cols();
    check(k > 0, "pareto_levels: scores has no rows (K = 0 objectives)");
    check(dirs.size() == k, "pareto_levels: dirs has ", dirs.size(), " entries for K = ", k, " objectives");
    check(n <= max_order_candidates, "pareto_levels: N = ", n, " candidates, at most ", max_order_candidates);
    check(scores.data() != nullptr || n == 0, "pareto_levels: scores has null data");
    out.level.resize(n);
    out.count = 0;
    out.nonfinite = 0;
    if (n == 0) return;
    std::uint32_t* level = out.level.data();
    auto scope = ws.scope();

    // Sort keys of every objective, once; a candidate with any worst key (non-finite) is marked
    // (level = UINT32_MAX) and gets the worst key on objective 0 so that it sorts last.
    auto keys = scope.alloc<std::uint32_t>(k * n).data();
    std::size_t worst_keys = 0;
    for (std::size_t r = 0; r < k; ++r)
        worst_keys += detail::sort_keys(scores.data() + r * n, n, dirs[r] == direction::higher_is_better, keys + r * n);
    std::fill(level, level + n, 0u);
    std::size_t bad = 0;
    if (worst_keys > 0) {  // the usual request has none: no pass over the keys to look for them
        for (std::size_t r = 0; r < k; ++r) {
            const std::uint32_t* kr = keys + r * n;
            for (std::size_t i = 0; i < n; ++i) level[i] |= kr[i] == worst_sort_key ? ~0u : 0u;
        }
        for (std::size_t i = 0; i < n; ++i) bad += level[i] != 0;
    }
    out.nonfinite = bad;
    const std::size_t m = n - bad;
    std::uint32_t* key0 = keys;
    if (bad > 0)
        for (std::size_t i = 0; i < n; ++i)
            if (level[i] != 0) key0[i] = worst_sort_key;
    auto key_of = [&](std::size_t r, std::uint32_t i) { return keys[r * n + i]; };

    auto words = scope.alloc<std::uint64_t>(n).data();
    auto words_tmp = scope.alloc<std::uint64_t>(n).data();
    auto idx = scope.alloc<std::uint32_t>(n).data();
    auto lv = scope.alloc<std::uint32_t>(m).data();
    // Lexicographic order. Objective 0 first; ties on it are finished by a sort on (objective 0,
    // objective 1) (two stable radix passes) when more than a few, and runs still tied by std::sort on
    // the stored keys of the other objectives. A repeat among 32 sampled keys of objective 0 predicts
    // many ties (a quantised objective): then the (0, 1) sort comes first and alone.
    auto x0 = scope.alloc<std::uint32_t>(n).data();  // objective 0's key of sorted position i
    std::size_t from = 1;                            // idx is sorted on objectives 0..from-1
    bool ties_likely = false;
    if (k > 1 && m > 1) {
        std::uint32_t sample[32];
        std::size_t s = 0;
        for (std::size_t i = 0; i < n && s < 32; ++i)
            if (level[i] == 0) sample[s++] = key0[i];
        std::sort(sample, sample + s);
        ties_likely = std::adjacent_find(sample, sample + s) != sample + s;
    }
    auto by_two_keys = [&] {
        detail::radix_sort_by_two_keys(key0, keys + n, n, words, words_tmp, idx);
        for (std::size_t i = 0; i < m; ++i) x0[i] = key0[idx[i]];
        from = 2;
    };
    if (ties_likely) {
        by_two_keys();
    } else {
        const std::uint64_t* sorted = detail::sort_by_key(key0, n, words, words_tmp);
        for (std::size_t i = 0; i < n; ++i) {
            idx[i] = static_cast<std::uint32_t>(sorted[i]);
            x0[i] = static_cast<std::uint32_t>(sorted[i] >> 32);
        }
    }
    if (from < k && m > 1) {
        auto same_prefix = [&](std::size_t i, std::size_t j) {  // sorted positions
            return x0[i] == x0[j] && (from < 2 || key_of(1, idx[i]) == key_of(1, idx[j]));
        };
        std::size_t tied = 0;  // candidates tied with their predecessor
        for (std::size_t i = 1; i < m; ++i) tied += x0[i] == x0[i - 1];
        if (from == 1 && tied >= m / 64 + 8) by_two_keys();
        if (tied > 0 && from < k) {
            for (std::size_t i = 0; i < m;) {
                std::size_t j = i + 1;
                while (j < m && same_prefix(i, j)) ++j;
                if (j - i > 1)
                    std::sort(idx + i, idx + j, [&](std::uint32_t a, std::uint32_t b) {
                        for (std::size_t r = from; r < k; ++r) {
                            const std::uint32_t ka = key_of(r, a), kb = key_of(r, b);
                            if (ka != kb) return ka < kb;
                        }
                        return a < b;
                    });
                i = j;
            }
        }
    }

    // same[i]: sorted candidate i is identical to i - 1 on every objective, so it takes that one's
    // level (the methods for K >= 3; K = 2 and 3's sweeps compare their packed keys themselves).
    auto identical_to_previous = [&] {
        auto same = scope.alloc<std::uint8_t>(m).data();
        for (std::size_t i = 0; i < m; ++i) {
            bool eq = i > 0 && x0[i] == x0[i - 1];
            for (std::size_t r = 1; r < k && eq; ++r) eq = key_of(r, idx[i]) == key_of(r, idx[i - 1]);
            same[i] = eq;
        }
        return same;
    };

    std::uint32_t levels = 0;
    const bool bitset = k >= 3 && detail::pareto_bitset_fits(m, k - 1) &&
                        (method == pareto_method::bitset ||
                         (method == pareto_method::automatic && m <= detail::pareto_bitset_max(k)));
    if (bitset) {
        const std::size_t d = k - 1;
        auto y = scope.alloc<std::uint32_t>(d * m).data();
        for (std::size_t r = 0; r < d; ++r)
            for (std::size_t i = 0; i < m; ++i) y[r * m + i] = key_of(r + 1, idx[i]);
        levels = detail::pareto_levels_bitset(scope, y, d, identical_to_previous(), m, words, words_tmp, lv);
    } else if (k == 1) {
        for (std::size_t i = 0; i < m; ++i) {
            if (i > 0 && x0[i] != x0[i - 1]) ++levels;
            lv[i] = levels;
        }
        levels = m > 0 ? levels + 1 : 0;
    } else if (k == 2) {
        // Candidate i is dominated by level l iff the smallest objective-1 key of l is <= its own
        // (every earlier candidate is at least as good on objective 0, and identical ones are handled
        // first). Tails are nondecreasing in l: binary search, as for a longest decreasing subsequence.
        auto y = scope.alloc<std::uint32_t>(m).data();
        for (std::size_t i = 0; i < m; ++i) y[i] = key_of(1, idx[i]);
        auto tails = scope.alloc<std::uint32_t>(m).data();
        for (std::size_t i = 0; i < m; ++i) {
            if (i > 0 && y[i] == y[i - 1] && x0[i] == x0[i - 1]) {
                lv[i] = lv[i - 1];
                continue;
            }
            const auto l = static_cast<std::uint32_t>(detail::upper_bound_branchless<std::uint32_t>(tails, levels, y[i]));
            tails[l] = y[i];
            levels += l == levels;
            lv[i] = l;
        }
    } else if (k == 3) {
        auto yz = words;
        for (std::size_t i = 0; i < m; ++i) yz[i] = std::uint64_t(key_of(1, idx[i])) << 32 | key_of(2, idx[i]);
        const std::size_t pool = 4 * m + 16;
        detail::staircases st(scope.alloc<std::uint64_t>(pool).data(), pool,
                              scope.alloc<std::uint32_t>(3 * (m + 1)).data());
        for (std::size_t i = 0; i < m; ++i) {
            if (i > 0 && yz[i] == yz[i - 1] && x0[i] == x0[i - 1]) {
                lv[i] = lv[i - 1];
                continue;
            }
            const std::uint32_t l = st.place(yz[i]);
            st.insert(l, yz[i]);
            lv[i] = l;
        }
        levels = st.levels();
    } else {
        // Objectives 1..K-1 of each sorted candidate, row by row, as signed keys (pareto_tree.hpp).
        const std::size_t d = k - 1, stride = detail::pareto_stride(d);
        auto pts = scope.alloc<std::int32_t>(m * stride).data();
        std::fill(pts, pts + m * stride, 0);
        for (std::size_t i = 0; i < m; ++i)
            for (std::size_t r = 1; r < k; ++r)
                pts[i * stride + r - 1] = static_cast<std::int32_t>(key_of(r, idx[i]) ^ 0x80000000u);
        const std::uint8_t* same = identical_to_previous();
        switch (k) {
#define POEM_PARETO_K(K) \
    case K: levels = detail::pareto_levels_tree<K - 1>(scope, pts, same, m, d, lv); break;
            POEM_PARETO_K(4) POEM_PARETO_K(5) POEM_PARETO_K(6) POEM_PARETO_K(7) POEM_PARETO_K(8)
            POEM_PARETO_K(9) POEM_PARETO_K(10) POEM_PARETO_K(11) POEM_PARETO_K(12) POEM_PARETO_K(13)
            POEM_PARETO_K(14) POEM_PARETO_K(15) POEM_PARETO_K(16)
#undef POEM_PARETO_K
            default: levels = detail::pareto_levels_tree<0>(scope, pts, same, m, d, lv); break;
        }
    }
    for (std::size_t i = 0; i < m; ++i) level[idx[i]] = lv[i];
    if (out.nonfinite > 0) {
        for (std::size_t i = 0; i < n; ++i)
            if (level[i] == std::numeric_limits<std::uint32_t>::max()) level[i] = levels;
        ++levels;
    }
    out.count = levels;
}

}  // namespace detail

// Pareto levels of the K x N `scores` (rows = objectives, contiguous), one direction per objective.
// Reuses `out`'s memory; with a warm workspace it does not allocate once `out` has grown.
inline void pareto_levels(matrix_view<const float> scores, span<const direction> dirs, workspace& ws,
                          levels_result& out) {
    detail::pareto_levels(scores, dirs, ws, out, detail::pareto_method::automatic);
}

inline levels_result pareto_levels(matrix_view<const float> scores, span<const direction> dirs, workspace& ws) {
    levels_result out;
    pareto_levels(scores, dirs, ws, out);
    return out;
}

}  // namespace poem
