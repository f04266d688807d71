#pragma once
// Selecting one request's tokens for the user's partial-order state: level_quota(l) quintuples of
// each level l (named apart from sample/, which makes training samples).
//
//   top_fused  the best of each level by fused score (ties: candidate order).
//   weighted   weighted sampling without replacement within each level: the level's quota largest
//              Efraimidis-Spirakis keys (core/weighted_sample.hpp: es_key, one draw per token in
//              candidate order), weight es_weight(fused score, spec.weight_floor) (a NaN or negative
//              fused score counts as 0). The same tokens and generator state give the same sample on
//              every platform.
// The sample is ordered by level, then fused score (best first; non-finite last, core/sort_key.hpp),
// then candidate order: the order partial_order_state keeps within a request.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/rng.hpp"
#include "poem/core/span.hpp"
#include "poem/core/weighted_sample.hpp"
#include "poem/core/workspace.hpp"
#include "poem/fusion/quintuple.hpp"
#include "poem/order/detail/sort.hpp"
#include "poem/order/detail/token_order.hpp"
#include "poem/order/level_config.hpp"
#include "poem/order/levels_result.hpp"

namespace poem {

// Selects from `tokens` (one request, levels filled in) into `out` (overwritten). Reuses `out` and the
// workspace.
inline void select_by_level(span<const quintuple> tokens, const level_config& spec, rng& gen, workspace& ws,
                            std::vector<quintuple>& out) {
    check(spec.policy == selection_policy::top_fused || spec.policy == selection_policy::weighted,
          "level_config.policy: unknown value ", static_cast<int>(spec.policy));
    check(std::isfinite(spec.weight_floor) && spec.weight_floor > 0.0f,
          "level_config.weight_floor must be finite and > 0, got ", spec.weight_floor);
    check(tokens.size() <= max_order_candidates, "select_by_level: ", tokens.size(), " tokens, at most ",
          max_order_candidates);
    out.clear();
    const std::size_t n = tokens.size();
    if (n == 0) return;
    auto scope = ws.scope();
    auto lv = scope.alloc<std::uint32_t>(n).data();
    auto key = scope.alloc<std::uint32_t>(n).data();
    const bool weighted = spec.policy == selection_policy::weighted;
    for (std::size_t i = 0; i < n; ++i) {
        if (weighted) {  // core/weighted_sample.hpp: one draw per token, in candidate order
            key[i] = sort_key(es_key(gen, es_weight(tokens[i].fused_score, spec.weight_floor)), true);
        } else {
            key[i] = sort_key(tokens[i].fused_score, true);
        }
        lv[i] = tokens[i].level;
    }
    auto sorted = scope.alloc<std::uint32_t>(n).data();
    detail::radix_sort_by_two_keys(lv, key, n, scope.alloc<std::uint64_t>(n).data(),
                                   scope.alloc<std::uint64_t>(n).data(), sorted);
    std::uint32_t* pos = weighted ? scope.alloc<std::uint32_t>(n).data() : nullptr;
    for (std::size_t i = 0; i < n;) {
        const std::uint32_t level = tokens[sorted[i]].level;
        std::size_t j = i;
        while (j < n && tokens[sorted[j]].level == level) ++j;
        const std::size_t take = std::min<std::size_t>(spec.quota(level), j - i);
        const std::size_t first = out.size();
        for (std::size_t t = i; t < i + take; ++t) out.push_back(tokens[sorted[t]]);
        if (weighted && take > 1) {
            // Order the drawn tokens by fused score, then candidate order.
            for (std::size_t t = 0; t < take; ++t) pos[t] = sorted[i + t];
            detail::sort_tokens(tokens.data(), pos, take);
            for (std::size_t t = 0; t < take; ++t) out[first + t] = tokens[pos[t]];
        }
        i = j;
    }
}

// Convenience (allocates the result and a workspace; not for a serving path).
inline std::vector<quintuple> select_by_level(span<const quintuple> tokens, const level_config& spec, rng& gen) {
    workspace ws;
    std::vector<quintuple> out;
    select_by_level(tokens, spec, gen, ws, out);
    return out;
}

}  // namespace poem
