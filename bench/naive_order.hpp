#pragma once
// The Pareto baselines of the benchmarks: Deb's fast non-dominated sort (domination counts and
// dominated lists), O(K N^2) time and up to O(N^2) memory (bench_order, bench_pipeline), and the
// ENS-BS implementation poem shipped before its level trees (bench_order).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "poem/fusion/config.hpp"
#include "poem/order/levels_result.hpp"
#include "poem/order/pareto.hpp"
#include "poem/order/detail/sort.hpp"
#include "poem/core/workspace.hpp"

namespace poem_bench {

struct naive_state {
    std::vector<std::vector<std::uint32_t>> dominated;  // S_p
    std::vector<std::uint32_t> count;                   // n_p
    std::vector<std::uint32_t> front, next;
    std::vector<std::uint32_t> level;
};

inline void naive_levels(const float* s, std::size_t k, std::size_t n, const std::vector<poem::direction>& d, naive_state& st) {
    st.dominated.resize(n);
    for (auto& v : st.dominated) v.clear();
    st.count.assign(n, 0);
    st.level.assign(n, 0);
    for (std::size_t p = 0; p < n; ++p)
        for (std::size_t q = p + 1; q < n; ++q) {
            bool p_better = false, q_better = false;
            for (std::size_t j = 0; j < k; ++j) {
                float a = s[j * n + p], b = s[j * n + q];
                if (d[j] == poem::direction::lower_is_better) std::swap(a, b);
                p_better |= a > b;
                q_better |= b > a;
            }
            if (p_better && !q_better) {
                st.dominated[p].push_back(static_cast<std::uint32_t>(q));
                ++st.count[q];
            } else if (q_better && !p_better) {
                st.dominated[q].push_back(static_cast<std::uint32_t>(p));
                ++st.count[p];
            }
        }
    st.front.clear();
    for (std::size_t p = 0; p < n; ++p)
        if (st.count[p] == 0) st.front.push_back(static_cast<std::uint32_t>(p));
    std::uint32_t l = 0;
    while (!st.front.empty()) {
        st.next.clear();
        for (auto p : st.front) {
            st.level[p] = l;
            for (auto q : st.dominated[p])
                if (--st.count[q] == 0) st.next.push_back(q);
        }
        st.front.swap(st.next);
        ++l;
    }
}


// ---- ENS-BS: poem's Pareto levels before the level trees (the `_ensbs` baseline) ----------------------
// Lexicographic order by a radix sort on objective 0, tied runs finished by std::sort recomputing
// sort keys; K = 2 LDS sweep, K = 3 staircases, K >= 4 ENS-BS (Zhang et al. 2015) comparing a candidate
// with a level's members newest first, compiled fast paths for K = 4 and 8 only.
namespace ensbs {
using namespace poem;


// Marks candidates with a non-finite score (level = UINT32_MAX), returns how many.
inline std::size_t mark_nonfinite(matrix_view<const float> s, std::uint32_t* level) noexcept {
    const std::size_t k = s.rows(), n = s.cols();
    std::fill(level, level + n, 0u);
    for (std::size_t r = 0; r < k; ++r) {
        const float* x = s.data() + r * n;
        for (std::size_t i = 0; i < n; ++i)
            if (!std::isfinite(x[i])) level[i] = std::numeric_limits<std::uint32_t>::max();
    }
    std::size_t bad = 0;
    for (std::size_t i = 0; i < n; ++i) bad += level[i] == std::numeric_limits<std::uint32_t>::max();
    return bad;
}

// K = 3 uses poem::detail::staircases (order/pareto.hpp): the level trees left it as it was.

template <std::size_t KC>
inline bool weakly_dominates_tail(const std::uint32_t* p, const std::uint32_t* c, std::size_t k) noexcept {
    // p <= c on objectives 1..k-1 (objective 0 is implied by the sort order).
    if constexpr (KC != 0) {
        bool ok = true;
        for (std::size_t j = 1; j < KC; ++j) ok &= p[j] <= c[j];
        return ok;
    } else {
        for (std::size_t j = 1; j < k; ++j)
            if (p[j] > c[j]) return false;
        return true;
    }
}

// ENS-BS over M sorted candidates (pts: M x K keys, identical candidates adjacent). Writes each sorted
// candidate's level into lv; returns the number of levels. `prev` (M) and `last` (M) are scratch.
template <std::size_t KC>
inline std::uint32_t ens_bs(const std::uint32_t* pts, std::size_t m, std::size_t k, std::uint32_t* lv,
                            std::uint32_t* prev, std::uint32_t* last) noexcept {
    constexpr std::uint32_t none = std::numeric_limits<std::uint32_t>::max();
    std::uint32_t levels = 0;
    const std::size_t kk = KC != 0 ? KC : k;
    for (std::size_t i = 0; i < m; ++i) {
        const std::uint32_t* c = pts + i * kk;
        if (i > 0 && std::equal(c, c + kk, c - kk)) {  // identical to the previous: same level
            lv[i] = lv[i - 1];
            prev[i] = none;
            continue;
        }
        std::uint32_t lo = 0, hi = levels;  // first level with no member dominating c
        while (lo < hi) {
            const std::uint32_t mid = lo + (hi - lo) / 2;
            bool dominated = false;
            for (std::uint32_t j = last[mid]; j != none; j = prev[j])
                if (weakly_dominates_tail<KC>(pts + std::size_t(j) * kk, c, kk)) {
                    dominated = true;
                    break;
                }
            if (dominated) lo = mid + 1;
            else hi = mid;
        }
        if (lo == levels) last[levels++] = none;
        lv[i] = lo;
        prev[i] = last[lo];
        last[lo] = static_cast<std::uint32_t>(i);
    }
    return levels;
}


// Pareto levels of the K x N `scores` (rows = objectives, contiguous), one direction per objective.
// Reuses `out`'s memory; with a warm workspace it does not allocate once `out` has grown.
inline void pareto_levels_ensbs(matrix_view<const float> scores, span<const direction> dirs, workspace& ws,
                          levels_result& out) {
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
    out.nonfinite = mark_nonfinite(scores, level);
    const std::size_t m = n - out.nonfinite;

    auto scope = ws.scope();
    auto key = scope.alloc<std::uint64_t>(m).data();
    auto key_tmp = scope.alloc<std::uint64_t>(m).data();
    auto idx = scope.alloc<std::uint32_t>(m).data();
    auto lv = scope.alloc<std::uint32_t>(m).data();

    // Sort by objective 0 (key << 32 | index), then finish the lexicographic order in tied runs.
    const float* x0 = scores.data();
    const bool h0 = dirs[0] == direction::higher_is_better;
    std::size_t at = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (level[i] == 0) key[at++] = std::uint64_t(sort_key(x0[i], h0)) << 32 | i;
    std::uint64_t* sorted = poem::detail::radix_sort(key, key_tmp, m);
    std::uint64_t* spare = sorted == key ? key_tmp : key;
    for (std::size_t i = 0; i < m; ++i) idx[i] = static_cast<std::uint32_t>(sorted[i]);
    auto obj_key = [&](std::size_t r, std::uint32_t i) {
        return sort_key(scores(r, i), dirs[r] == direction::higher_is_better);
    };
    if (k > 1) {
        for (std::size_t i = 0; i < m;) {
            std::size_t j = i + 1;
            while (j < m && (sorted[j] >> 32) == (sorted[i] >> 32)) ++j;
            if (j - i > 1)
                std::sort(idx + i, idx + j, [&](std::uint32_t a, std::uint32_t b) {
                    for (std::size_t r = 1; r < k; ++r) {
                        const std::uint32_t ka = obj_key(r, a), kb = obj_key(r, b);
                        if (ka != kb) return ka < kb;
                    }
                    return a < b;
                });
            i = j;
        }
    }
    // From here `sorted` only serves objective 0's key of sorted position i: sorted[i] >> 32 (a tied
    // run shares it, so the reordering inside runs does not matter).

    std::uint32_t levels = 0;
    if (k == 1) {
        for (std::size_t i = 0; i < m; ++i) {
            if (i > 0 && (sorted[i] >> 32) != (sorted[i - 1] >> 32)) ++levels;
            lv[i] = levels;
        }
        levels = m > 0 ? levels + 1 : 0;
    } else if (k == 2) {
        // Candidate i is dominated by level l iff the smallest objective-1 key of l is <= its own
        // (every earlier candidate is at least as good on objective 0, and identical ones are handled
        // first). Tails are nondecreasing in l: binary search, as for a longest decreasing subsequence.
        auto y = scope.alloc<std::uint32_t>(m).data();
        const bool h1 = dirs[1] == direction::higher_is_better;
        const float* x1 = scores.data() + n;
        for (std::size_t i = 0; i < m; ++i) y[i] = sort_key(x1[idx[i]], h1);
        auto tails = scope.alloc<std::uint32_t>(m).data();
        for (std::size_t i = 0; i < m; ++i) {
            if (i > 0 && y[i] == y[i - 1] && (sorted[i] >> 32) == (sorted[i - 1] >> 32)) {
                lv[i] = lv[i - 1];
                continue;
            }
            const auto l = static_cast<std::uint32_t>(poem::detail::upper_bound_branchless<std::uint32_t>(tails, levels, y[i]));
            tails[l] = y[i];
            levels += l == levels;
            lv[i] = l;
        }
    } else if (k == 3) {
        auto yz = spare;
        for (std::size_t i = 0; i < m; ++i) yz[i] = std::uint64_t(obj_key(1, idx[i])) << 32 | obj_key(2, idx[i]);
        const std::size_t pool = 4 * m + 16;
        poem::detail::staircases st(scope.alloc<std::uint64_t>(pool).data(), pool,
                              scope.alloc<std::uint32_t>(3 * (m + 1)).data());
        for (std::size_t i = 0; i < m; ++i) {
            if (i > 0 && yz[i] == yz[i - 1] && (sorted[i] >> 32) == (sorted[i - 1] >> 32)) {
                lv[i] = lv[i - 1];
                continue;
            }
            const std::uint32_t l = st.place(yz[i]);
            st.insert(l, yz[i]);
            lv[i] = l;
        }
        levels = st.levels();
    } else {
        auto pts = scope.alloc<std::uint32_t>(m * k).data();
        for (std::size_t r = 0; r < k; ++r) {
            const bool h = dirs[r] == direction::higher_is_better;
            const float* x = scores.data() + r * n;
            for (std::size_t i = 0; i < m; ++i) pts[i * k + r] = sort_key(x[idx[i]], h);
        }
        auto prev = scope.alloc<std::uint32_t>(m).data();
        auto last = scope.alloc<std::uint32_t>(m).data();
        switch (k) {
            case 4: levels = ens_bs<4>(pts, m, k, lv, prev, last); break;
            case 8: levels = ens_bs<8>(pts, m, k, lv, prev, last); break;
            default: levels = ens_bs<0>(pts, m, k, lv, prev, last); break;
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

}  // namespace ensbs
using ensbs::pareto_levels_ensbs;

}  // namespace poem_bench
