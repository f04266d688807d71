#pragma once
// Pareto levels from dominance bitsets (not part of the API): pareto.hpp's method for K >= 3 up to a
// few thousand candidates, where it beats the searches over levels (see pareto_bitset_max).
//
// Candidates arrive in lexicographic order (position i), so those that dominate candidate c are the
// ones before it that are at least as good on objectives 1..D (D = K - 1), identical ones aside (the
// caller gives each the level of its twin). For each of those objectives, c's row of bits marks the
// candidates that come no later than c in the objective's sorted order. Ties there are ordered by
// position, so the row holds every candidate before c whose key is <= c's: a tied one left out comes
// after c, too late to dominate it. The AND of c's D rows holds c's dominators among the candidates
// placed so far (the bits of later ones meet no level yet). Each level keeps the bits of its members,
// and c's level is the first whose bits meet none of c's dominators: a binary search, as the predicate
// is monotone in the level.
//
// Candidate i reads only the words of positions < i, so its rows stop there: about N^2 / 16 bytes per
// objective, O(K N^2 / 64) word operations in all, in loops the compiler vectorises.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "poem/core/error.hpp"
#include "poem/core/workspace.hpp"
#include "poem/order/detail/sort.hpp"

namespace poem {
namespace detail {

// Whether the method takes m candidates over D = K - 1 objectives at all (its row offsets are 32-bit:
// D rows of up to 4096^2 / 128 words each), and the largest m for which pareto.hpp takes it over the
// searches. Its cost grows with D N^2, the searches' far less with K, so the bound falls as K grows;
// measured on uniform and correlated data (docs/order.md): K = 3 against the staircases up to 1500,
// K = 4 up to 4000, K = 8 up to 2000, K = 16 up to 1000.
constexpr bool pareto_bitset_fits(std::size_t m, std::size_t d) noexcept { return m <= 4096 && d <= 256; }
constexpr std::size_t pareto_bitset_max(std::size_t k) noexcept {
    return k < 3 ? 0 : k == 3 ? 1500 : std::min<std::size_t>(4096, 12000 / (k - 1));
}

// Bitsets are handled in blocks of 4 words (one AVX2 vector; loops of fixed length 4 the compiler
// vectorises at -O2): words_before(i) is the number of blocks' words holding positions < i.
inline constexpr std::size_t pareto_bitset_block = 4;
constexpr std::size_t words_before(std::size_t i) noexcept {
    return (i + 64 * pareto_bitset_block - 1) / (64 * pareto_bitset_block) * pareto_bitset_block;
}

// The bitset loops, over n words (a multiple of the block). __restrict: the operands never overlap,
// and saying so lets the compiler vectorise the fixed inner loops.
inline void copy_bits(std::uint64_t* __restrict to, const std::uint64_t* __restrict from, std::size_t n) noexcept {
    for (std::size_t w = 0; w < n; w += pareto_bitset_block)  // a block at a time: no call to memcpy
        std::memcpy(to + w, from + w, pareto_bitset_block * sizeof(std::uint64_t));
}
inline void and_bits(std::uint64_t* __restrict to, const std::uint64_t* __restrict from, std::size_t n) noexcept {
    for (std::size_t w = 0; w < n; w += pareto_bitset_block)
        for (std::size_t j = 0; j < pareto_bitset_block; ++j) to[w + j] &= from[w + j];
}
inline bool bits_meet(const std::uint64_t* __restrict x, const std::uint64_t* __restrict y, std::size_t n) noexcept {
    std::uint64_t meet[pareto_bitset_block] = {};
    for (std::size_t w = 0; w < n; w += pareto_bitset_block)
        for (std::size_t j = 0; j < pareto_bitset_block; ++j) meet[j] |= x[w + j] & y[w + j];
    std::uint64_t any = 0;
    for (std::size_t j = 0; j < pareto_bitset_block; ++j) any |= meet[j];
    return any != 0;
}

// Levels of the m sorted candidates. y: D x m keys, y[r * m + i] the key of sorted candidate i on
// objective r + 1; same[i]: candidate i is identical to i - 1. a, b: scratch of m words each. Writes
// lv[0..m) and returns the number of levels.
inline std::uint32_t pareto_levels_bitset(workspace_scope& scope, const std::uint32_t* y, std::size_t d,
                                          const std::uint8_t* same, std::size_t m, std::uint64_t* a,
                                          std::uint64_t* b, std::uint32_t* lv) {
    const std::size_t width = words_before(m);
    std::size_t row_words = 0;  // per objective: one row per candidate, up to its own position
    for (std::size_t i = 0; i < m; ++i) row_words += words_before(i);
    check(pareto_bitset_fits(m, d) && d > 0, "pareto_levels: internal error (bitset method for m = ", m, ", D = ", d, ")");

    // pool: the rows of every objective; row[i * d + r]: where candidate i's row of objective r starts.
    // One pass per objective in its sorted order (ties by position) sets each candidate's bit, then
    // copies the bits so far as that candidate's row.
    auto pool = scope.alloc<std::uint64_t>(d * row_words).data();
    auto row = scope.alloc<std::uint32_t>(m * d).data();
    auto acc = scope.alloc<std::uint64_t>(width).data();
    std::size_t used = 0;
    for (std::size_t r = 0; r < d; ++r) {
        const std::uint64_t* order = sort_by_key(y + r * m, m, a, b);  // (key << 32 | position), ties by position
        std::fill(acc, acc + width, 0);
        for (std::size_t s = 0; s < m; ++s) {
            const auto p = static_cast<std::uint32_t>(order[s]);
            acc[p / 64] |= std::uint64_t(1) << (p % 64);
            const std::size_t len = words_before(p);
            copy_bits(pool + used, acc, len);
            row[p * d + r] = static_cast<std::uint32_t>(used);
            used += len;
        }
    }

    // members: `width` words per level, the bits of its members (a twin's bit is left out: whatever it
    // dominates, the candidate before it dominates too).
    auto members = scope.alloc<std::uint64_t>(m * width).data();
    auto dominators = scope.alloc<std::uint64_t>(width).data();
    std::uint32_t levels = 0;
    for (std::size_t i = 0; i < m; ++i) {
        if (same[i]) {
            lv[i] = lv[i - 1];
            continue;
        }
        const std::size_t n = words_before(i);
        const std::uint32_t* rows = row + i * d;
        copy_bits(dominators, pool + rows[0], n);
        for (std::size_t r = 1; r < d; ++r) and_bits(dominators, pool + rows[r], n);
        const std::uint32_t l = first_free_level(
            levels, [&](std::uint32_t level) { return bits_meet(dominators, members + level * width, n); });
        if (l == levels) {
            std::fill(members + l * width, members + (l + 1) * width, 0);
            ++levels;
        }
        members[l * width + i / 64] |= std::uint64_t(1) << (i % 64);
        lv[i] = l;
    }
    return levels;
}

}  // namespace detail
}  // namespace poem
