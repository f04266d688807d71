#pragma once
// Tiers: levels cut from the fused score alone (1 = best), boundaries from the request's own scores.
//
//   fused_tiers(fused, g)          equal-frequency tiers: the candidate at position r of the sorted
//                                  order (best first) goes to tier floor(r * g / M); candidates with
//                                  equal fused scores share the tier of the best of them.
//   gap_tiers(fused, abs, rel)     a new tier wherever the sorted fused score drops by more than `abs`,
//                                  or by more than `rel` times the score above the drop. Either
//                                  threshold may be +inf (never). Both are >= 0.
//   topk_tiers(fused, ks)          ks strictly increasing: tier 0 = the best ks[0], tier 1 = positions
//                                  ks[0]..ks[1]-1, ..., the rest after the last cut. Exact cuts: ties at
//                                  a cut are broken by candidate index, as in fusion's fused rank.
// Levels are dense (tiers left empty by ties are not numbered). Candidates whose fused score is NaN or
// +-Inf, or that `flagged` marks (for example fusion_result::nonfinite), form one extra last level.
// Sorting is a radix sort (ties by candidate index); every overload that takes a workspace and an
// `out` reuses their memory.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/span.hpp"
#include "poem/core/workspace.hpp"
#include "poem/order/detail/sort.hpp"
#include "poem/order/levels_result.hpp"

namespace poem {

namespace detail {

// Sorts the valid candidates best first (ties by index). Marks the others with UINT32_MAX in
// out.level; returns the sorted indices and sets m (valid count) and out.nonfinite.
inline const std::uint32_t* sort_fused(span<const float> fused, span<const std::uint8_t> flagged, workspace_scope& scope,
                                       levels_result& out, std::size_t& m, const char* what) {
    const std::size_t n = fused.size();
    check(flagged.empty() || flagged.size() == n, what, ": flagged has ", flagged.size(), " entries for ", n,
          " candidates");
    check(n <= max_order_candidates, what, ": N = ", n, " candidates, at most ", max_order_candidates);
    check(fused.data() != nullptr || n == 0, what, ": fused has null data");
    out.level.resize(n);
    out.count = 0;
    out.nonfinite = 0;
    auto key = scope.alloc<std::uint64_t>(n).data();
    auto key_tmp = scope.alloc<std::uint64_t>(n).data();
    auto idx = scope.alloc<std::uint32_t>(n).data();
    m = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const float f = fused[i];
        if (!std::isfinite(f) || (!flagged.empty() && flagged[i] != 0)) {
            out.level[i] = std::numeric_limits<std::uint32_t>::max();
            ++out.nonfinite;
            continue;
        }
        key[m++] = std::uint64_t(sort_key(f, true)) << 32 | i;
    }
    const std::uint64_t* sorted = radix_sort(key, key_tmp, m);
    for (std::size_t i = 0; i < m; ++i) idx[i] = static_cast<std::uint32_t>(sorted[i]);
    return idx;
}

inline void finish_tiers(levels_result& out, std::uint32_t levels) {
    if (out.nonfinite > 0) {
        for (auto& l : out.level)
            if (l == std::numeric_limits<std::uint32_t>::max()) l = levels;
        ++levels;
    }
    out.count = levels;
}

}  // namespace detail

inline void fused_tiers(span<const float> fused, span<const std::uint8_t> flagged, std::size_t g, workspace& ws,
                        levels_result& out) {
    check(g >= 1, "fused_tiers: g (tiers) must be >= 1, got ", g);
    std::size_t m = 0;
    auto scope = ws.scope();
    const std::uint32_t* idx = detail::sort_fused(fused, flagged, scope, out, m, "fused_tiers");
    std::uint32_t levels = 0;
    std::size_t raw_prev = 0, raw_group = 0;
    const std::size_t gm = std::min(g, m);  // g >= m gives every position its own tier, as g = m does
    for (std::size_t r = 0; r < m; ++r) {
        const std::size_t raw = r * gm / m;  // r, gm <= 2^28: no overflow
        if (r == 0 || fused[idx[r]] != fused[idx[r - 1]]) raw_group = raw;  // a tie keeps its best tier
        if (r == 0) levels = 1;
        else if (raw_group != raw_prev) ++levels;
        raw_prev = raw_group;
        out.level[idx[r]] = levels - 1;
    }
    detail::finish_tiers(out, levels);
}

inline void gap_tiers(span<const float> fused, span<const std::uint8_t> flagged, float abs_threshold,
                      float rel_threshold, workspace& ws, levels_result& out) {
    check(abs_threshold >= 0.0f, "gap_tiers: abs_threshold must be >= 0 (or +inf), got ", abs_threshold);
    check(rel_threshold >= 0.0f, "gap_tiers: rel_threshold must be >= 0 (or +inf), got ", rel_threshold);
    std::size_t m = 0;
    auto scope = ws.scope();
    const std::uint32_t* idx = detail::sort_fused(fused, flagged, scope, out, m, "gap_tiers");
    std::uint32_t levels = m > 0 ? 1 : 0;
    for (std::size_t r = 0; r < m; ++r) {
        if (r > 0) {
            const float above = fused[idx[r - 1]], here = fused[idx[r]];
            const float drop = above - here;
            if (drop > abs_threshold || drop > rel_threshold * std::fabs(above)) ++levels;
        }
        out.level[idx[r]] = levels - 1;
    }
    detail::finish_tiers(out, levels);
}

inline void topk_tiers(span<const float> fused, span<const std::uint8_t> flagged, span<const std::size_t> ks,
                       workspace& ws, levels_result& out) {
    for (std::size_t j = 0; j < ks.size(); ++j)
        check(ks[j] > 0 && (j == 0 || ks[j] > ks[j - 1]), "topk_tiers: ks must be positive and strictly ",
              "increasing, ks[", j, "] = ", ks[j]);
    std::size_t m = 0;
    auto scope = ws.scope();
    const std::uint32_t* idx = detail::sort_fused(fused, flagged, scope, out, m, "topk_tiers");
    std::uint32_t tier = 0;
    for (std::size_t r = 0; r < m; ++r) {
        while (tier < ks.size() && r >= ks[tier]) ++tier;
        out.level[idx[r]] = tier;
    }
    detail::finish_tiers(out, m > 0 ? tier + 1 : 0);
}

// Without flags.
inline void fused_tiers(span<const float> fused, std::size_t g, workspace& ws, levels_result& out) {
    fused_tiers(fused, {}, g, ws, out);
}
inline void gap_tiers(span<const float> fused, float abs_threshold, float rel_threshold, workspace& ws,
                      levels_result& out) {
    gap_tiers(fused, {}, abs_threshold, rel_threshold, ws, out);
}
inline void topk_tiers(span<const float> fused, span<const std::size_t> ks, workspace& ws, levels_result& out) {
    topk_tiers(fused, {}, ks, ws, out);
}

// Convenience (allocate their result and a workspace; not for a serving path).
inline levels_result fused_tiers(span<const float> fused, span<const std::uint8_t> flagged, std::size_t g) {
    workspace ws;
    levels_result out;
    fused_tiers(fused, flagged, g, ws, out);
    return out;
}
inline levels_result fused_tiers(span<const float> fused, std::size_t g) { return fused_tiers(fused, {}, g); }
inline levels_result gap_tiers(span<const float> fused, span<const std::uint8_t> flagged, float abs_threshold,
                               float rel_threshold) {
    workspace ws;
    levels_result out;
    gap_tiers(fused, flagged, abs_threshold, rel_threshold, ws, out);
    return out;
}
inline levels_result gap_tiers(span<const float> fused, float abs_threshold, float rel_threshold) {
    return gap_tiers(fused, {}, abs_threshold, rel_threshold);
}
inline levels_result topk_tiers(span<const float> fused, span<const std::uint8_t> flagged, span<const std::size_t> ks) {
    workspace ws;
    levels_result out;
    topk_tiers(fused, flagged, ks, ws, out);
    return out;
}
inline levels_result topk_tiers(span<const float> fused, span<const std::size_t> ks) { return topk_tiers(fused, {}, ks); }

}  // namespace poem
