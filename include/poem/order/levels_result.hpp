#pragma once
// What grouping one request's candidates into levels produces, whatever the method (pareto.hpp,
// tiers.hpp, levels.hpp).

#include <cstddef>
#include <cstdint>
#include <vector>

namespace poem {

struct levels_result {
    std::vector<std::uint32_t> level;  // N: 0 = best; levels are dense, 0..count-1 all used
    std::uint32_t count = 0;           // number of levels (including the non-finite level, if any)
    std::size_t nonfinite = 0;         // candidates in the last level because an input was NaN/Inf
};

// Largest request order/ handles (indices and staircase offsets are 32-bit).
inline constexpr std::size_t max_order_candidates = std::size_t(1) << 28;

}  // namespace poem
