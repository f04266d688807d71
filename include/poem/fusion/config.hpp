#pragma once
// How a request's K objectives are normalised and fused: the configuration of fusion/.

#include <cmath>
#include <cstddef>
#include <memory>
#include <vector>

#include "poem/core/direction.hpp"
#include "poem/core/error.hpp"
#include "poem/fusion/learned.hpp"

namespace poem {

// Per-objective normalisation to [0, 1], 1 = best, whatever the direction:
//   rank_pct       mid-rank percentile 1 - (rank + 0.5) / N (ties share their average rank)
//   min_max        (x - min) / (max - min) over the request's finite values
//   z_score        standard normal CDF of (x - mean) / std over the finite values
//   log1p_min_max  min-max of log1p(max(x, 0)), for unbounded durations
// Non-finite scores normalise to 0. A request whose finite values are all equal normalises to 0.5.
enum class normalization { rank_pct, min_max, z_score, log1p_min_max };

// How normalised objectives become one fused score in [0, 1] (1 = best):
//   weighted_rank    sum_k w_k * rank_pct_k
//   reciprocal_rank  sum_k w_k / (rank_k + beta)^alpha, rescaled so that rank 0 everywhere is 1 and
//                    rank N-1 everywhere is 0 (the classic ensemble-sort formula)
//   weighted_value   sum_k w_k * normalised_k (each objective's own normalisation)
//   learned          a trained ensemble of the normalised values (fusion_config::learned,
//                    fusion/learned.hpp); the objective weights are not used
enum class fusion_method { weighted_rank, reciprocal_rank, weighted_value, learned };

struct objective_config {
    direction dir = direction::higher_is_better;
    normalization norm = normalization::rank_pct;
    float weight = 1.0f;
};

struct fusion_config {
    std::vector<objective_config> objectives;  // one per row of the score matrix
    fusion_method method = fusion_method::weighted_rank;
    float alpha = 1.0f;   // reciprocal_rank exponent, > 0
    float beta = 60.0f;   // reciprocal_rank offset, > 0 (60 as in reciprocal rank fusion)
    // method learned: the ensemble (immutable, shared); null for every other method.
    std::shared_ptr<const learned_fusion> learned = nullptr;
};

namespace detail {

// validate() without the check that method learned holds its ensemble: a serving config read from JSON
// gets it from the model file later (serve/request_ranker.hpp).
inline void validate_fusion(const fusion_config& spec, std::size_t k, bool need_ensemble) {
    check(k > 0, "scores: K (objectives) must be > 0");
    check(k <= max_objectives, "scores: K = ", k, " objectives, at most ", max_objectives, " supported");
    check(spec.objectives.size() == k, "fusion_config.objectives: ", spec.objectives.size(),
          " entries for ", k, " score rows");
    check(spec.method == fusion_method::weighted_rank || spec.method == fusion_method::reciprocal_rank ||
              spec.method == fusion_method::weighted_value || spec.method == fusion_method::learned,
          "fusion_config.method: unknown value ", static_cast<int>(spec.method));
    if (spec.method == fusion_method::learned) {
        check(spec.learned != nullptr || !need_ensemble,
              "fusion_config.learned: method learned needs an ensemble, none is set");
        check(spec.learned == nullptr || spec.learned->objectives() == k, "fusion_config.learned: the ensemble takes ",
              spec.learned ? spec.learned->objectives() : 0, " objectives, the scores have ", k);
    } else {
        check(spec.learned == nullptr, "fusion_config.learned: an ensemble is set but fusion_config.method is ",
              static_cast<int>(spec.method), ", not learned");
    }
    double total = 0;
    for (std::size_t i = 0; i < k; ++i) {
        const objective_config& o = spec.objectives[i];
        check(o.dir == direction::higher_is_better || o.dir == direction::lower_is_better, "fusion_config.objectives[",
              i, "].dir: unknown value ", static_cast<int>(o.dir));
        check(o.norm == normalization::rank_pct || o.norm == normalization::min_max || o.norm == normalization::z_score ||
                  o.norm == normalization::log1p_min_max,
              "fusion_config.objectives[", i, "].norm: unknown value ", static_cast<int>(o.norm));
        const float w = o.weight;
        check(std::isfinite(w) && w >= 0.0f, "fusion_config.objectives[", i,
              "].weight must be finite and >= 0, got ", w);
        total += w;
    }
    check(total > 0, "fusion_config.objectives: weights are all zero");
    if (spec.method == fusion_method::reciprocal_rank) {
        check(std::isfinite(spec.alpha) && spec.alpha > 0, "fusion_config.alpha must be finite and > 0, got ",
              spec.alpha);
        check(std::isfinite(spec.beta) && spec.beta > 0, "fusion_config.beta must be finite and > 0, got ",
              spec.beta);
    }
}

}  // namespace detail

// Throws poem::error naming the field unless the spec is usable for `k` objectives.
inline void validate(const fusion_config& spec, std::size_t k) { detail::validate_fusion(spec, k, true); }

}  // namespace poem
