#pragma once
// How a request's candidates are grouped into levels, and how many of each level are selected into the
// user's partial-order state: the configuration of order/.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/fusion/config.hpp"

namespace poem {

enum class level_method {
    pareto,       // exact non-dominated layers over the K objectives (needs `directions`)
    fused_tiers,  // `tiers` equal-frequency tiers of the fused score
    gap_tiers,    // a new tier wherever the sorted fused score drops by > gap_abs or > gap_rel * score
    topk_tiers,   // cuts after the best topk[0], topk[1], ... candidates
};

// How many quintuples of each level go into the state: per_level[l] for level l, `beyond` for every
// level past the end of per_level. The default keeps 4 + 3 + 2 + 1 + 1 = 11 tokens of the five best
// levels per request.
struct level_quota {
    std::vector<std::uint32_t> per_level{4, 3, 2, 1, 1};
    std::uint32_t beyond = 0;

    std::uint32_t operator()(std::size_t level) const noexcept {
        return level < per_level.size() ? per_level[level] : beyond;
    }
};

enum class selection_policy {
    top_fused,  // the best of each level by fused score (ties: candidate order)
    weighted,   // seeded weighted sampling without replacement, weight = fused score + weight_floor
};

struct level_config {
    level_method method = level_method::pareto;
    std::vector<direction> directions;            // pareto: one per score row (see directions_of)
    std::size_t tiers = 4;                        // fused_tiers
    float gap_abs = 0.1f;                         // gap_tiers, >= 0 or +inf
    float gap_rel = std::numeric_limits<float>::infinity();  // gap_tiers, >= 0 or +inf
    std::vector<std::size_t> topk{10, 50, 200};   // topk_tiers, strictly increasing
    level_quota quota;                            // selection into the state (select_by_level)
    selection_policy policy = selection_policy::top_fused;
    float weight_floor = 1e-3f;                   // weighted: so a fused score of 0 can still be drawn
};

// The directions of a fusion spec's objectives, for level_config::directions.
inline std::vector<direction> directions_of(const fusion_config& spec) {
    std::vector<direction> d;
    d.reserve(spec.objectives.size());
    for (const auto& o : spec.objectives) d.push_back(o.dir);
    return d;
}

// Throws poem::error naming the field unless the spec is usable with K score rows (K = 0 when only a
// fused score is given).
inline void validate(const level_config& spec, std::size_t k) {
    switch (spec.method) {
        case level_method::pareto:
            check(k > 0, "level_config: method pareto needs the K x N scores, got K = 0");
            check(spec.directions.size() == k, "level_config.directions: ", spec.directions.size(),
                  " entries for ", k, " score rows (pareto needs one per objective; see directions_of)");
            break;
        case level_method::fused_tiers:
            check(spec.tiers >= 1, "level_config.tiers must be >= 1, got ", spec.tiers);
            break;
        case level_method::gap_tiers:
            check(spec.gap_abs >= 0.0f, "level_config.gap_abs must be >= 0 (or +inf), got ", spec.gap_abs);
            check(spec.gap_rel >= 0.0f, "level_config.gap_rel must be >= 0 (or +inf), got ", spec.gap_rel);
            break;
        case level_method::topk_tiers:
            for (std::size_t j = 0; j < spec.topk.size(); ++j)
                check(spec.topk[j] > 0 && (j == 0 || spec.topk[j] > spec.topk[j - 1]),
                      "level_config.topk must be positive and strictly increasing, topk[", j, "] = ", spec.topk[j]);
            break;
        default: check(false, "level_config.method: unknown value ", static_cast<int>(spec.method));
    }
    check(std::isfinite(spec.weight_floor) && spec.weight_floor > 0.0f,
          "level_config.weight_floor must be finite and > 0, got ", spec.weight_floor);
    check(spec.policy == selection_policy::top_fused || spec.policy == selection_policy::weighted,
          "level_config.policy: unknown value ", static_cast<int>(spec.policy));
}

}  // namespace poem
