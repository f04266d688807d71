#pragma once
// assign_levels: one entry point for every grouping method of level_config, and write_levels, which puts
// the levels into the request's quintuples.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/span.hpp"
#include "poem/core/workspace.hpp"
#include "poem/fusion/quintuple.hpp"
#include "poem/fusion/result.hpp"
#include "poem/order/level_config.hpp"
#include "poem/order/pareto.hpp"
#include "poem/order/tiers.hpp"

namespace poem {

// Levels of one request. `scores` is the K x N matrix (pareto needs it; the tier methods use it only to
// send candidates with a non-finite score to the last level, and accept K = 0), `fused` the N fused
// scores (tier methods). Reuses `out` and the workspace.
namespace detail {

inline void assign_levels(matrix_view<const float> scores, span<const float> fused, span<const std::uint8_t> extra,
                          const level_config& spec, workspace& ws, levels_result& out) {
    validate(spec, scores.rows());
    if (spec.method == level_method::pareto) {
        check(fused.empty() || fused.size() == scores.cols(), "assign_levels: fused has ", fused.size(),
              " entries for N = ", scores.cols(), " candidates");
        pareto_levels(scores, span<const direction>(spec.directions), ws, out);
        return;
    }
    check(extra.empty() || extra.size() == fused.size(), "assign_levels: fusion_result.nonfinite has ",
          extra.size(), " entries for ", fused.size(), " fused scores");
    span<const std::uint8_t> flagged = extra;
    auto scope = ws.scope();
    if (scores.rows() > 0) {
        check(fused.size() == scores.cols(), "assign_levels: fused has ", fused.size(), " entries for N = ",
              scores.cols(), " candidates");
        check(scores.data() != nullptr || scores.cols() == 0, "assign_levels: scores has null data");
        auto flags = scope.alloc<std::uint8_t>(fused.size());
        for (std::size_t i = 0; i < flags.size(); ++i) flags[i] = extra.empty() ? 0 : extra[i];
        for (std::size_t r = 0; r < scores.rows(); ++r) {
            const float* x = scores.data() + r * scores.cols();
            for (std::size_t i = 0; i < flags.size(); ++i) flags[i] |= !std::isfinite(x[i]);
        }
        flagged = flags;
    }
    switch (spec.method) {
        case level_method::fused_tiers: fused_tiers(fused, flagged, spec.tiers, ws, out); break;
        case level_method::gap_tiers: gap_tiers(fused, flagged, spec.gap_abs, spec.gap_rel, ws, out); break;
        default: topk_tiers(fused, flagged, span<const std::size_t>(spec.topk), ws, out); break;
    }
}

}  // namespace detail

inline void assign_levels(matrix_view<const float> scores, span<const float> fused, const level_config& spec,
                          workspace& ws, levels_result& out) {
    detail::assign_levels(scores, fused, {}, spec, ws, out);
}

// The same, from fuse()'s result: its fused scores, and its non-finite flags for the tier methods.
inline void assign_levels(matrix_view<const float> scores, const fusion_result& fused, const level_config& spec,
                          workspace& ws, levels_result& out) {
    check(fused.fused.size() == fused.n, "assign_levels: fusion_result holds ", fused.fused.size(),
          " fused scores for n = ", fused.n);
    detail::assign_levels(scores, span<const float>(fused.fused), span<const std::uint8_t>(fused.nonfinite), spec,
                          ws, out);
}

inline levels_result assign_levels(matrix_view<const float> scores, const fusion_result& fused,
                                   const level_config& spec, workspace& ws) {
    levels_result out;
    assign_levels(scores, fused, spec, ws, out);
    return out;
}

inline levels_result assign_levels(matrix_view<const float> scores, span<const float> fused,
                                   const level_config& spec, workspace& ws) {
    levels_result out;
    assign_levels(scores, fused, spec, ws, out);
    return out;
}

// Writes each candidate's level into its quintuple (tokens in candidate order, as quintuples() makes).
inline void write_levels(span<quintuple> tokens, span<const std::uint32_t> level) {
    check_size(level, tokens.size(), "write_levels: level");
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i].level = level[i];
}
inline void write_levels(std::vector<quintuple>& tokens, const levels_result& levels) {
    write_levels(span<quintuple>(tokens), span<const std::uint32_t>(levels.level));
}

}  // namespace poem
