#pragma once
// The quintuple: the compact token that stands for one ranked candidate everywhere downstream, and
// quintuples(), which makes them from a fused request.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "poem/core/bits.hpp"
#include "poem/core/span.hpp"
#include "poem/fusion/result.hpp"

namespace poem {

struct quintuple {
    std::uint64_t item_id = 0;
    std::int64_t request_time = 0;  // seconds (the host's clock; only differences matter)
    float fused_score = 0.0f;       // in [0, 1], 1 = best
    float rank_pct = 0.0f;          // mid-rank percentile of the fused rank, 1 - (rank + 0.5) / N
    std::uint32_t level = 0;        // partial-order level (0 = best), filled in by order/

    // The same bytes: floats compared by their bits (so a token always equals itself).
    friend bool operator==(const quintuple& a, const quintuple& b) noexcept {
        return a.item_id == b.item_id && a.request_time == b.request_time &&
               detail::float_bits(a.fused_score) == detail::float_bits(b.fused_score) &&
               detail::float_bits(a.rank_pct) == detail::float_bits(b.rank_pct) && a.level == b.level;
    }
    friend bool operator!=(const quintuple& a, const quintuple& b) noexcept { return !(a == b); }
};

// One request's quintuples, in candidate order; levels are 0 until order/ assigns them.
inline void quintuples(span<const std::uint64_t> ids, std::int64_t request_time, const fusion_result& fused,
                       std::vector<quintuple>& out) {
    check_size(ids, fused.n, "ids");
    out.resize(fused.n);
    for (std::size_t i = 0; i < fused.n; ++i)
        out[i] = quintuple{ids[i], request_time, fused.fused[i], fused.fused_rank_pct(i), 0};
}

inline std::vector<quintuple> quintuples(span<const std::uint64_t> ids, std::int64_t request_time,
                                         const fusion_result& fused) {
    std::vector<quintuple> out;
    quintuples(ids, request_time, fused, out);
    return out;
}

}  // namespace poem
