#pragma once
// The order of one request's tokens that the partial-order state keeps and level selection writes:
// level, then fused score (best first; every non-finite score last, core/sort_key.hpp), then
// candidate index. Not part of the API.

#include <cstddef>
#include <cstdint>

#include "poem/core/sort_key.hpp"
#include "poem/fusion/quintuple.hpp"

namespace poem::detail {

inline std::uint64_t token_key(const quintuple& q) noexcept {
    return std::uint64_t(q.level) << 32 | sort_key(q.fused_score, true);
}

// Sorts the n indices of idx (into tokens) by (token_key, index). Insertion sort: a sample is a
// handful of tokens.
inline void sort_tokens(const quintuple* tokens, std::uint32_t* idx, std::size_t n) noexcept {
    for (std::size_t a = 1; a < n; ++a) {
        const std::uint32_t p = idx[a];
        const std::uint64_t kp = token_key(tokens[p]);
        std::size_t b = a;
        for (; b > 0; --b) {
            const std::uint32_t q = idx[b - 1];
            const std::uint64_t kq = token_key(tokens[q]);
            if (kq < kp || (kq == kp && q < p)) break;
            idx[b] = q;
        }
        idx[b] = p;
    }
}

}  // namespace poem::detail
