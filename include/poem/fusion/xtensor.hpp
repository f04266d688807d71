#pragma once
// Fusion from any xtensor expression (K x N). Kept out of fuse.hpp so that hosts who pass plain
// buffers do not pay xtensor's compile time.

#include <type_traits>

#include <xtensor/xtensor.hpp>

#include "poem/fusion/fuse.hpp"

namespace poem {

template <class E>
fusion_result fuse(const xt::xexpression<E>& scores, const fusion_config& spec, workspace& ws) {
    using row_major = xt::xtensor<float, 2, xt::layout_type::row_major>;
    const auto& e = scores.derived_cast();
    if constexpr (std::is_same_v<E, row_major>) {
        return fuse(matrix_view<const float>(e.data(), e.shape()[0], e.shape()[1]), spec, ws);
    } else {
        check(e.dimension() == 2, "scores: expected a K x N matrix, got ", e.dimension(), " dimensions");
        const row_major m = e;  // any other expression: evaluate once into rows-contiguous floats
        return fuse(matrix_view<const float>(m.data(), m.shape()[0], m.shape()[1]), spec, ws);
    }
}

}  // namespace poem
