#pragma once
// Multi-objective score fusion of one request: K x N raw scores in, per-objective ranks and
// normalised values, a fused score in [0, 1], the fused rank and the count of non-finite scores out.
// See config.hpp for the normalisations and fusion methods (learned: fusion/learned.hpp).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "poem/core/span.hpp"
#include "poem/core/workspace.hpp"
#include "poem/fusion/detail/kernels.hpp"
#include "poem/fusion/rank.hpp"
#include "poem/fusion/result.hpp"
#include "poem/fusion/config.hpp"

namespace poem {

namespace detail {

inline void fill_degenerate(const float* x, std::size_t n, float* out) noexcept {
    for (std::size_t i = 0; i < n; ++i) out[i] = std::isfinite(x[i]) ? 0.5f : 0.0f;
}

inline void normalize_min_max(const float* x, std::size_t n, bool flip, float* out) noexcept {
    const finite_stats s = stats(x, n);
    const double range = static_cast<double>(s.max) - static_cast<double>(s.min);
    // One distinct finite value, or none: nothing to spread. (In double, the range of floats is finite.)
    if (s.count == 0 || !(range > 0)) return fill_degenerate(x, n, out);
    min_max(x, n, s.min, static_cast<float>(1.0 / range), flip, out);
}

// Normalises one objective row (ranks already computed) into `out`.
inline void normalize_row(const float* x, const float* rank, std::size_t n, std::size_t nonfinite,
                          const objective_config& obj, workspace& ws, float* out) {
    const bool flip = obj.dir == direction::lower_is_better;
    switch (obj.norm) {
        case normalization::rank_pct:
            rank_pct(rank, n, n - nonfinite, out);
            break;
        case normalization::min_max:
            normalize_min_max(x, n, flip, out);
            break;
        case normalization::log1p_min_max: {
            auto scope = ws.scope();
            float* t = scope.alloc<float>(n).data();
            log1p_clamped(x, n, t);
            normalize_min_max(t, n, flip, out);
            break;
        }
        case normalization::z_score: {
            const finite_stats s = stats(x, n);
            const float mean = s.count ? static_cast<float>(s.sum / static_cast<double>(s.count)) : 0.0f;
            const double var = s.count ? squared_deviation(x, n, mean) / static_cast<double>(s.count) : 0.0;
            const double sd = std::sqrt(var);
            if (!(sd > 0) || !std::isfinite(sd)) return fill_degenerate(x, n, out);
            z_score(x, n, mean, static_cast<float>(1.0 / sd), flip, out);
            break;
        }
    }
}

}  // namespace detail

// Fuses one request into `out`, reusing its memory and the workspace: no allocation once both have
// seen a request this large. `scores` is K x N, rows contiguous (row k = objective k).
inline void fuse(matrix_view<const float> scores, const fusion_config& spec, workspace& ws, fusion_result& out) {
    const std::size_t k = scores.rows(), n = scores.cols();
    validate(spec, k);
    check(n <= max_candidates, "scores: N = ", n, " candidates, at most ", max_candidates);
    check(scores.data() != nullptr || n == 0, "scores: null data for ", k, " x ", n);

    out.n = n;
    out.k = k;
    out.ranks.resize(k * n);
    out.normalized.resize(k * n);
    out.fused.resize(n);
    out.fused_rank.resize(n);
    out.order.resize(n);
    out.nonfinite.assign(n, 0);
    out.nonfinite_count = 0;
    out.nonfinite_scores = 0;
    if (n == 0) return;

    double total_weight = 0;
    for (const auto& o : spec.objectives) total_weight += o.weight;

    for (std::size_t r = 0; r < k; ++r) {
        const objective_config& obj = spec.objectives[r];
        const float* x = scores.row(r).data();
        float* rank = out.ranks.data() + r * n;
        float* norm = out.normalized.data() + r * n;

        auto scope = ws.scope();
        span<std::uint32_t> keys;
        const std::size_t bad =
            detail::rank_scores_into(scores.row(r), obj.dir == direction::higher_is_better, scope, rank, &keys);
        if (bad != 0) {
            out.nonfinite_scores += bad;
            for (std::size_t i = 0; i < n; ++i) out.nonfinite[i] |= keys[i] == worst_sort_key;
        }
        detail::normalize_row(x, rank, n, bad, obj, ws, norm);

        const float w = static_cast<float>(obj.weight / total_weight);
        const bool first = r == 0;
        switch (spec.method) {
            case fusion_method::weighted_value:
                detail::axpy(w, static_cast<const float*>(norm), n, first, out.fused.data());
                break;
            case fusion_method::weighted_rank: {
                const float* pct = norm;
                if (obj.norm != normalization::rank_pct) {
                    float* t = scope.alloc<float>(n).data();
                    detail::rank_pct(static_cast<const float*>(rank), n, n - bad, t);
                    pct = t;
                }
                detail::axpy(w, pct, n, first, out.fused.data());
                break;
            }
            case fusion_method::reciprocal_rank:
                detail::reciprocal(w, static_cast<const float*>(rank), n, spec.alpha, spec.beta, first,
                                   out.fused.data());
                break;
            case fusion_method::learned:  // all K rows at once, below
                break;
        }
    }
    if (spec.method == fusion_method::learned)
        spec.learned->score(matrix_view<const float>(out.normalized.data(), k, n), ws, span<float>(out.fused));
    if (spec.method == fusion_method::reciprocal_rank) {
        // Rank 0 on every objective maps to 1, rank N-1 on every objective to 0.
        const double hi = std::pow(static_cast<double>(spec.beta), -static_cast<double>(spec.alpha));
        const double lo = std::pow(static_cast<double>(n - 1) + spec.beta, -static_cast<double>(spec.alpha));
        if (hi > lo)
            detail::rescale(out.fused.data(), n, static_cast<float>(lo), static_cast<float>(1.0 / (hi - lo)));
        else
            out.fused.assign(n, 0.5f);
    }
    for (std::size_t i = 0; i < n; ++i) out.nonfinite_count += out.nonfinite[i];

    // Fused rank: best fused score first; the stable sort breaks ties by candidate index.
    auto scope = ws.scope();
    std::size_t unused = 0;
    const auto* sorted = detail::sort_scores(span<const float>(out.fused), true, scope, unused);
    for (std::size_t t = 0; t < n; ++t) {
        const auto idx = static_cast<std::uint32_t>(sorted[t]);
        out.order[t] = idx;
        out.fused_rank[idx] = static_cast<std::uint32_t>(t);
    }
}

inline fusion_result fuse(matrix_view<const float> scores, const fusion_config& spec, workspace& ws) {
    fusion_result out;
    fuse(scores, spec, ws, out);
    return out;
}

}  // namespace poem
