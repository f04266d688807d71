#pragma once
// learned_fusion: a two-step ensemble, trained in PyTorch (python/poem_ref/fusion.py), that turns a
// candidate's K normalised objective values x[k] in [0, 1] into one fused score (docs/fusion.md):
//
//   e[k, j] = relu(component.weight[k, j] * x[k] + component.bias[k, j])        j < D  (per objective)
//   h[m]    = relu(aggregate.weight[m, :] . e.flatten() + aggregate.bias[m])     m < H  (all objectives)
//   logit   = out.weight[0, :] . h + out.bias[0] + skip.weight[0, :] . x
//   fused   = sigmoid(logit)
//
// It holds weights only; reading them from safetensors is the model layer's
// (model/learned_fusion_file.hpp). score() runs all N candidates of a request in one kernel call,
// candidates across the SIMD lanes.

#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/span.hpp"
#include "poem/core/workspace.hpp"
#include "poem/fusion/detail/kernels.hpp"

namespace poem {

// The most objectives fusion takes (fusion_config and learned_fusion alike).
inline constexpr std::size_t max_objectives = 16;

class learned_fusion {
public:
    static constexpr std::size_t max_component_dim = 64;
    static constexpr std::size_t max_hidden = 256;

    // The weights, row-major under their file names (fusion.<name>): component_weight and component_bias
    // K x D, aggregate_weight H x (K * D), aggregate_bias H, out_weight H (1 x H), out_bias one value,
    // skip_weight K (1 x K). Throws poem::error naming the tensor whose size is wrong or that holds a
    // non-finite value, and the shape that is out of range.
    learned_fusion(std::size_t k, std::size_t d, std::size_t h, std::vector<float> component_weight,
                   std::vector<float> component_bias, std::vector<float> aggregate_weight,
                   std::vector<float> aggregate_bias, std::vector<float> out_weight, std::vector<float> out_bias,
                   std::vector<float> skip_weight)
        : k_(k), d_(d), h_(h), cw_(std::move(component_weight)), cb_(std::move(component_bias)),
          aw_(std::move(aggregate_weight)), ab_(std::move(aggregate_bias)), ow_(std::move(out_weight)),
          ob_(std::move(out_bias)), sw_(std::move(skip_weight)) {
        check(k >= 1 && k <= max_objectives, "learned_fusion: K = ", k, " objectives, expected 1..", max_objectives);
        check(d >= 1 && d <= max_component_dim, "learned_fusion: D = ", d, " (component_dim), expected 1..",
              max_component_dim);
        check(h >= 1 && h <= max_hidden, "learned_fusion: H = ", h, " (hidden), expected 1..", max_hidden);
        const std::size_t kd = k * d;  // bounded above: no overflow
        sized(cw_, kd, "fusion.component.weight", "K x D");
        sized(cb_, kd, "fusion.component.bias", "K x D");
        sized(aw_, h * kd, "fusion.aggregate.weight", "H x (K * D)");
        sized(ab_, h, "fusion.aggregate.bias", "H");
        sized(ow_, h, "fusion.out.weight", "1 x H");
        sized(ob_, 1, "fusion.out.bias", "1");
        sized(sw_, k, "fusion.skip.weight", "1 x K");
    }

    std::size_t objectives() const noexcept { return k_; }
    std::size_t component_dim() const noexcept { return d_; }
    std::size_t hidden() const noexcept { return h_; }
    const std::vector<float>& component_weight() const noexcept { return cw_; }
    const std::vector<float>& component_bias() const noexcept { return cb_; }
    const std::vector<float>& aggregate_weight() const noexcept { return aw_; }
    const std::vector<float>& aggregate_bias() const noexcept { return ab_; }
    const std::vector<float>& out_weight() const noexcept { return ow_; }
    float out_bias() const noexcept { return ob_[0]; }
    const std::vector<float>& skip_weight() const noexcept { return sw_; }

    // The same shape and bit-for-bit the same weights.
    friend bool operator==(const learned_fusion& a, const learned_fusion& b) noexcept {
        return a.k_ == b.k_ && a.d_ == b.d_ && a.h_ == b.h_ && a.cw_ == b.cw_ && a.cb_ == b.cb_ && a.aw_ == b.aw_ &&
               a.ab_ == b.ab_ && a.ow_ == b.ow_ && a.ob_ == b.ob_ && a.sw_ == b.sw_;
    }
    friend bool operator!=(const learned_fusion& a, const learned_fusion& b) noexcept { return !(a == b); }

    // fused[i] = the ensemble's score of candidate i. `normalized` is K x N (row k = objective k, values in
    // [0, 1] as fuse() normalises them); `fused` holds N. Scratch comes from `ws`.
    void score(matrix_view<const float> normalized, workspace& ws, span<float> fused) const {
        const std::size_t n = normalized.cols();
        check(normalized.rows() == k_, "learned_fusion: normalized has ", normalized.rows(), " rows, the ensemble takes K = ",
              k_, " objectives");
        check(fused.size() == n, "learned_fusion: fused holds ", fused.size(), " values for ", n, " candidates");
        check(normalized.data() != nullptr || n == 0, "learned_fusion: null normalized data for ", k_, " x ", n);
        if (n == 0) return;
        auto scope = ws.scope();
        float* e = scope.alloc<float>(detail::learned_fusion_scratch(k_, d_)).data();
        detail::learned_fusion(weights(), normalized.data(), n, e, fused.data());
    }

    // Convenience (own workspace): not for a serving path.
    void score(matrix_view<const float> normalized, span<float> fused) const {
        workspace ws;
        score(normalized, ws, fused);
    }

    // The kernels' view of the weights.
    detail::learned_fusion_weights weights() const noexcept {
        return {k_, d_, h_, cw_.data(), cb_.data(), aw_.data(), ab_.data(), ow_.data(), ob_[0], sw_.data()};
    }

private:
    static void sized(const std::vector<float>& v, std::size_t expect, const char* name, const char* shape) {
        check(v.size() == expect, "learned_fusion: ", name, " holds ", v.size(), " values, ", shape, " = ", expect,
              " expected");
        for (std::size_t i = 0; i < v.size(); ++i)
            check(std::isfinite(v[i]), "learned_fusion: ", name, " holds a non-finite value (", v[i], ") at element ", i);
    }

    std::size_t k_, d_, h_;
    std::vector<float> cw_, cb_, aw_, ab_, ow_, ob_, sw_;
};

}  // namespace poem
