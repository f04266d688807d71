#pragma once
// Ranks of one objective's scores: 0 = best, ties share their average rank, and every non-finite
// score (NaN, +-Inf) ranks after all finite ones, tied with the other non-finite scores.

#include <cstddef>
#include <cstdint>

#include "poem/core/span.hpp"
#include "poem/core/workspace.hpp"
#include "poem/fusion/detail/kernels.hpp"
#include "poem/fusion/detail/radix_rank.hpp"
#include "poem/fusion/spec.hpp"

namespace poem {

// Largest request poem ranks: ranks are floats, exact (with their .5 ties) up to 2^23.
inline constexpr std::size_t max_candidates = std::size_t(1) << 23;

namespace detail {

// Scratch slots of fusion/ in the caller's workspace.
enum fusion_slot : std::size_t {
    slot_keys = workspace::fusion_first,
    slot_sort_a,
    slot_sort_b,
    slot_values,
};

// Sorts `x` best first by radix; returns the sorted (key << 32 | index) words and sets `nonfinite`.
inline const std::uint64_t* sort_scores(span<const float> x, bool higher_is_better, workspace& ws,
                                        std::size_t& nonfinite, span<std::uint32_t>* keys_out = nullptr) {
    const std::size_t n = x.size();
    auto keys = ws.get<std::uint32_t>(slot_keys, n);
    nonfinite = rank_keys(x.data(), n, higher_is_better, keys.data());
    if (keys_out != nullptr) *keys_out = keys;
    return radix_sort_keys(keys.data(), n, ws.get<std::uint64_t>(slot_sort_a, n).data(),
                           ws.get<std::uint64_t>(slot_sort_b, n).data());
}

}  // namespace detail

// Writes the rank of every score of `x` into `rank` (same size); returns how many were non-finite.
inline std::size_t rank_scores(span<const float> x, direction dir, span<float> rank, workspace& ws) {
    check_size(rank, x.size(), "rank");
    check(x.size() <= max_candidates, "scores: N = ", x.size(), " candidates, at most ", max_candidates);
    check(x.data() != nullptr || x.empty(), "scores: null data");
    std::size_t nonfinite = 0;
    const auto* sorted = detail::sort_scores(x, dir == direction::higher_is_better, ws, nonfinite);
    detail::average_ranks(sorted, x.size(), rank.data());
    return nonfinite;
}

}  // namespace poem
