#pragma once
// One training pair: item i should score above item j by at least `margin` (indices into the sample's
// item list). Shared by the hierarchical sampler (which makes pairs) and loss/ (which consumes them).

#include <cstdint>

namespace poem {

struct margin_pair {
    std::uint32_t i = 0;  // the better item
    std::uint32_t j = 0;  // the worse item
    float margin = 0.0f;

    friend bool operator==(const margin_pair& a, const margin_pair& b) noexcept {
        return a.i == b.i && a.j == b.j && a.margin == b.margin;
    }
};

}  // namespace poem
