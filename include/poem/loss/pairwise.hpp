#pragma once
// Margin pairwise losses on a model's scores, with their gradients (paper: hierarchical sample
// learning). For a pair (i, j) that should rank i above j by margin m, with z = m - (s_i - s_j):
//   hinge     max(0, z)                 d/dz = 1 where z > 0, else 0 (as torch.relu)
//   softplus  log(1 + exp(z))           d/dz = sigmoid(z); computed as max(z, 0) + log1p(exp(-|z|))
// The loss is the mean over pairs; gradients are of that mean, with respect to every score.
//
// Two forms:
// - pair list: any pairs (i, j, margin) over one score vector (scalar: random access, scattered
//   gradient); an empty grad span skips the gradient.
// - dense: every positive against every negative, P x Q pairs, margin m_ij = a_i + b_j: one margin
//   for all, or per item (tiers: a_i = -base * tier_i, b_j = base * tier_j gives base * gap). This is
//   the SIMD hot path (loss/detail/pairwise_kernels.hpp, xsimd, with a scalar reference).
// Non-finite scores or margins throw poem::error naming the index (a NaN is a bug upstream, and a
// mean over it would silently poison training).
//
// Arguments follow poem's order: inputs, config (pairwise_loss_config: the form), outputs (gradients).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/simd.hpp"
#include "poem/core/span.hpp"
#include "poem/loss/detail/pairwise_kernels.hpp"
#include "poem/sample/pair.hpp"

namespace poem {

enum class pairwise_form { hinge, softplus };

struct pairwise_loss_config {
    pairwise_form form = pairwise_form::hinge;
};

inline void validate(const pairwise_loss_config& cfg) {
    check(cfg.form == pairwise_form::hinge || cfg.form == pairwise_form::softplus,
          "pairwise_loss_config.form: unknown value ", static_cast<int>(cfg.form));
}

namespace detail {

inline void check_finite(span<const float> x, const char* what) {
    // Branch-free scan (vectorises); the slow search for the index only runs on failure.
    std::uint32_t bad = 0;
    for (float f : x) {
        std::uint32_t u;
        std::memcpy(&u, &f, 4);
        bad |= static_cast<std::uint32_t>((u & 0x7F800000u) == 0x7F800000u);
    }
    if (bad != 0)
        for (std::size_t k = 0; k < x.size(); ++k) check(std::isfinite(x[k]), what, "[", k, "] = ", x[k], " is not finite");
}

// Which kernel runs: detail::loss_kernels_active (the scalar reference when `scalar` is asked for).
inline double dense_dispatch(pairwise_form form, bool scalar, const float* pos, const float* pos_off, float margin,
                             std::size_t P, const float* v, std::size_t Q, float* gpos, float* gneg) {
    const loss_kernels k = loss_kernels_active(scalar);
    return (form == pairwise_form::softplus ? k.dense_softplus : k.dense_hinge)(pos, pos_off, margin, P, v, Q, gpos, gneg);
}

inline float dense_finish(double total, std::size_t P, std::size_t Q, span<float> grad_pos, span<float> grad_neg) {
    const double pairs = static_cast<double>(P) * static_cast<double>(Q);
    const float inv = static_cast<float>(1.0 / pairs);
    for (float& g : grad_pos) g *= -inv;
    for (float& g : grad_neg) g *= inv;
    return static_cast<float>(total / pairs);
}

inline float dense_impl(span<const float> pos, span<const float> pos_margin, float margin, span<const float> neg,
                        span<const float> neg_margin, span<float> grad_pos, span<float> grad_neg, pairwise_form form,
                        bool scalar) {
    check_size(grad_pos, pos.size(), "dense_pairwise_loss: grad_pos");
    check_size(grad_neg, neg.size(), "dense_pairwise_loss: grad_neg");
    check_finite(pos, "dense_pairwise_loss: pos");
    check_finite(neg, "dense_pairwise_loss: neg");
    check(std::isfinite(margin), "dense_pairwise_loss: margin is not finite (", margin, ")");
    const std::size_t P = pos.size(), Q = neg.size();
    for (float& g : grad_neg) g = 0.0f;
    if (P == 0 || Q == 0) {
        for (float& g : grad_pos) g = 0.0f;
        return 0.0f;
    }
    const float* pos_off = nullptr;
    if (!pos_margin.empty()) {
        check_size(pos_margin, P, "dense_pairwise_loss: pos_margin");
        check_finite(pos_margin, "dense_pairwise_loss: pos_margin");
        pos_off = pos_margin.data();
    }
    std::vector<float> shifted;
    const float* v = neg.data();
    if (!neg_margin.empty()) {
        check_size(neg_margin, Q, "dense_pairwise_loss: neg_margin");
        check_finite(neg_margin, "dense_pairwise_loss: neg_margin");
        shifted.resize(Q);
        for (std::size_t j = 0; j < Q; ++j) shifted[j] = neg[j] + neg_margin[j];
        v = shifted.data();
    }
    const double total = dense_dispatch(form, scalar, pos.data(), pos_off, margin, P, v, Q, grad_pos.data(), grad_neg.data());
    return dense_finish(total, P, Q, grad_pos, grad_neg);
}

}  // namespace detail

// ---- pair list ------------------------------------------------------------------------------------

// Mean loss over `pairs`; grad (empty, or scores.size()) is overwritten with d(mean)/d(scores).
inline float pairwise_loss(span<const float> scores, span<const margin_pair> pairs, const pairwise_loss_config& cfg,
                           span<float> grad) {
    validate(cfg);
    const pairwise_form form = cfg.form;
    check(grad.empty() || grad.size() == scores.size(), "pairwise_loss: grad must be empty or hold ", scores.size(),
          " elements, got ", grad.size());
    detail::check_finite(scores, "pairwise_loss: scores");
    for (std::size_t k = 0; k < pairs.size(); ++k) {
        check(pairs[k].i < scores.size() && pairs[k].j < scores.size(), "pairwise_loss: pairs[", k, "] = (", pairs[k].i,
              ", ", pairs[k].j, ") is out of range for ", scores.size(), " scores");
        check(std::isfinite(pairs[k].margin), "pairwise_loss: pairs[", k, "].margin is not finite");
    }
    for (float& g : grad) g = 0.0f;
    if (pairs.empty()) return 0.0f;
    const float inv = static_cast<float>(1.0 / static_cast<double>(pairs.size()));
    double total = 0.0;
    for (const margin_pair& p : pairs) {
        const float z = p.margin - (scores[p.i] - scores[p.j]);
        float l, d;
        if (form == pairwise_form::softplus) detail::pairwise_term<true>(z, l, d);
        else detail::pairwise_term<false>(z, l, d);
        total += static_cast<double>(l);
        if (!grad.empty()) {
            grad[p.i] -= d * inv;
            grad[p.j] += d * inv;
        }
    }
    return static_cast<float>(total / static_cast<double>(pairs.size()));
}
template <class A>
float pairwise_loss(const std::vector<float, A>& scores, const std::vector<margin_pair>& pairs,
                    const pairwise_loss_config& cfg, std::vector<float, A>& grad) {
    return pairwise_loss(span<const float>(scores.data(), scores.size()), span<const margin_pair>(pairs.data(), pairs.size()),
                         cfg, span<float>(grad.data(), grad.size()));
}
inline float pairwise_hinge(span<const float> scores, span<const margin_pair> pairs, span<float> grad) {
    return pairwise_loss(scores, pairs, pairwise_loss_config{pairwise_form::hinge}, grad);
}
inline float pairwise_softplus(span<const float> scores, span<const margin_pair> pairs, span<float> grad) {
    return pairwise_loss(scores, pairs, pairwise_loss_config{pairwise_form::softplus}, grad);
}

// ---- dense: P positives x Q negatives -------------------------------------------------------------

// One margin for every pair. grad_pos (P) and grad_neg (Q) are overwritten.
inline float dense_pairwise_loss(span<const float> pos, span<const float> neg, float margin,
                                 const pairwise_loss_config& cfg, span<float> grad_pos, span<float> grad_neg) {
    validate(cfg);
    return detail::dense_impl(pos, {}, margin, neg, {}, grad_pos, grad_neg, cfg.form, false);
}

// Margin of pair (i, j) = pos_margin[i] + neg_margin[j] (either may be empty: 0).
inline float dense_pairwise_loss(span<const float> pos, span<const float> pos_margin, span<const float> neg,
                                 span<const float> neg_margin, const pairwise_loss_config& cfg, span<float> grad_pos,
                                 span<float> grad_neg) {
    validate(cfg);
    if (pos_margin.empty()) {
        std::vector<float> zeros(pos.size(), 0.0f);
        return detail::dense_impl(pos, {zeros.data(), zeros.size()}, 0.0f, neg, neg_margin, grad_pos, grad_neg, cfg.form,
                                  false);
    }
    return detail::dense_impl(pos, pos_margin, 0.0f, neg, neg_margin, grad_pos, grad_neg, cfg.form, false);
}

// Tiers: margin of pair (i, j) = base_margin * (neg_tier[j] - pos_tier[i]) (the hierarchical default).
template <class T>
float dense_pairwise_loss_tiered(span<const float> pos, span<const T> pos_tier, span<const float> neg, span<const T> neg_tier,
                                 float base_margin, const pairwise_loss_config& cfg, span<float> grad_pos,
                                 span<float> grad_neg) {
    validate(cfg);
    check_size(pos_tier, pos.size(), "dense_pairwise_loss_tiered: pos_tier");
    check_size(neg_tier, neg.size(), "dense_pairwise_loss_tiered: neg_tier");
    check(std::isfinite(base_margin), "dense_pairwise_loss_tiered: base_margin is not finite");
    std::vector<float> a(pos.size()), b(neg.size());
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = -base_margin * static_cast<float>(static_cast<std::int64_t>(pos_tier[i]));
    for (std::size_t j = 0; j < b.size(); ++j) b[j] = base_margin * static_cast<float>(static_cast<std::int64_t>(neg_tier[j]));
    return detail::dense_impl(pos, {a.data(), a.size()}, 0.0f, neg, {b.data(), b.size()}, grad_pos, grad_neg, cfg.form, false);
}

namespace detail {
// The scalar reference of dense_pairwise_loss (same contract), for tests and benches.
inline float dense_pairwise_loss_scalar(span<const float> pos, span<const float> pos_margin, float margin,
                                        span<const float> neg, span<const float> neg_margin,
                                        const pairwise_loss_config& cfg, span<float> grad_pos, span<float> grad_neg) {
    validate(cfg);
    return dense_impl(pos, pos_margin, margin, neg, neg_margin, grad_pos, grad_neg, cfg.form, true);
}
}  // namespace detail

}  // namespace poem
