#pragma once
// Ranks of one objective's scores: 0 = best, ties share their average rank, and every non-finite
// score (NaN, +-Inf) ranks after all finite ones, tied with the other non-finite scores (the policy
// of core/sort_key.hpp). rank_order() gives the best-first order itself.

#include <cstddef>
#include <cstdint>

#include "poem/core/kernels.hpp"
#include "poem/core/span.hpp"
#include "poem/core/workspace.hpp"
#include "poem/fusion/config.hpp"

namespace poem {

// Largest request poem ranks: ranks are floats, exact (with their .5 ties) up to 2^23.
inline constexpr std::size_t max_candidates = std::size_t(1) << 23;

namespace detail {

// Sorts `x` best first (sort_by_key), in memory of `scope`; returns the sorted (key << 32 | index) words
// and sets `nonfinite`.
inline const std::uint64_t* sort_scores(span<const float> x, bool higher_is_better, workspace_scope& scope,
                                        std::size_t& nonfinite) {
    const std::size_t n = x.size();
    auto keys = scope.alloc<std::uint32_t>(n);
    auto a = scope.alloc<std::uint64_t>(n);
    auto b = scope.alloc<std::uint64_t>(n);
    nonfinite = sort_keys(x.data(), n, higher_is_better, keys.data());
    return sort_by_key(keys.data(), n, a.data(), b.data());
}

// The average ranks of x (0 = best) into rank, in memory of `scope`; returns how many were
// non-finite (and sets `keys_out`, the sort keys, when given).
inline std::size_t rank_scores_into(span<const float> x, bool higher_is_better, workspace_scope& scope, float* rank,
                                    span<std::uint32_t>* keys_out = nullptr) {
    const std::size_t n = x.size();
    auto keys = scope.alloc<std::uint32_t>(n);
    auto a = scope.alloc<std::uint64_t>(n);
    auto b = scope.alloc<std::uint64_t>(n);
    const std::size_t nonfinite = sort_keys(x.data(), n, higher_is_better, keys.data());
    if (keys_out != nullptr) *keys_out = keys;
    rank_by_key(keys.data(), n, a.data(), b.data(), rank);
    return nonfinite;
}

inline void check_scores(span<const float> x, const char* what) {
    check(x.size() <= max_candidates, what, ": N = ", x.size(), " candidates, at most ", max_candidates);
    check(x.data() != nullptr || x.empty(), what, ": null data");
}

}  // namespace detail

// Writes the rank of every score of `x` into `rank` (same size); returns how many were non-finite.
inline std::size_t rank_scores(span<const float> x, direction dir, workspace& ws, span<float> rank) {
    check_size(rank, x.size(), "rank");
    detail::check_scores(x, "scores");
    auto scope = ws.scope();
    return detail::rank_scores_into(x, dir == direction::higher_is_better, scope, rank.data());
}

// Writes the indices of `x` best first into `order` (same size): ties by index, every non-finite
// score last (tied, so by index). Returns how many were non-finite. The order of fusion's fused rank
// and of the serving order.
inline std::size_t rank_order(span<const float> x, direction dir, workspace& ws, span<std::uint32_t> order) {
    check_size(order, x.size(), "order");
    detail::check_scores(x, "scores");
    std::size_t nonfinite = 0;
    auto scope = ws.scope();
    const auto* sorted = detail::sort_scores(x, dir == direction::higher_is_better, scope, nonfinite);
    for (std::size_t i = 0; i < x.size(); ++i) order[i] = static_cast<std::uint32_t>(sorted[i]);
    return nonfinite;
}

}  // namespace poem
