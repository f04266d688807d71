#pragma once
// poem's one weighted sampler without replacement: Efraimidis-Spirakis (A-ES, "Weighted random
// sampling with a reservoir", 2006). Every item gets the key log(u) / w with u uniform in (0, 1) and w
// its weight; the k items of largest key are a weighted sample of k without replacement (item i is
// first with probability w_i / sum w, and so on).
//
// Contract, the same wherever poem samples by weight (level selection, hard negatives):
//   weight   es_weight(raw, floor): a raw weight that is NaN, infinite or negative counts as 0, then
//            `floor` is added (floor > 0 keeps every item drawable; floor 0 leaves zero weights at 0).
//   key      es_key(gen, w): ONE draw of gen.uniform_double() per call; u = draw + 2^-54 lies in
//            (0, 1); the key is (float)(log(u) / w). A weight that is not > 0 (0 or NaN) gets -inf:
//            it comes after every positive weight. Keys are floats (one u32 radix key each): two
//            keys may tie, rarely, and ties break by index.
//   order    callers draw one key per item, in input order, whatever k is; the same items and
//            generator state give the same sample on every platform.
//   select   es_select(keys, order): the indices of the k largest keys, largest first, ties by the
//            smaller index.
//
//   std::vector<float> keys(n);
//   for (std::size_t i = 0; i < n; ++i) keys[i] = poem::es_key(gen, poem::es_weight(w[i], floor));
//   std::vector<std::uint32_t> order(n);
//   const std::size_t taken = poem::es_select(keys, k, order);   // order[0 .. taken): the sample

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/rng.hpp"
#include "poem/core/span.hpp"

namespace poem {

// The weight an item is sampled with: `raw` when finite and > 0, else 0; plus `floor`.
inline double es_weight(double raw, double floor = 0.0) noexcept {
    return (std::isfinite(raw) && raw > 0.0 ? raw : 0.0) + floor;
}

// The Efraimidis-Spirakis key of an item of weight `weight` (one draw from `gen`, always).
inline float es_key(rng& gen, double weight) noexcept {
    const double u = gen.uniform_double() + 0x1.0p-54;  // in (0, 1): never log(0)
    if (!(weight > 0.0)) return -std::numeric_limits<float>::infinity();
    return static_cast<float>(std::log(u) / weight);
}

// Puts in order[0 .. min(k, n)) the indices of the min(k, n) largest keys, largest first, ties by the
// smaller index, and returns min(k, n). `order` must hold keys.size() entries (it is also the scratch
// of the selection; what lies after the returned count is unspecified). O(n log k).
inline std::size_t es_select(span<const float> keys, std::size_t k, span<std::uint32_t> order) {
    const std::size_t n = keys.size();
    check(n <= 0xFFFFFFFFull, "es_select: ", n, " keys, at most 2^32 - 1 supported");
    check_size(order, n, "es_select: order");
    for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
    const std::size_t take = std::min(k, n);
    if (take == 0) return 0;
    const auto before = [&](std::uint32_t a, std::uint32_t b) {
        return keys[a] != keys[b] ? keys[a] > keys[b] : a < b;  // keys are never NaN (es_key)
    };
    // A heap of the best `take` (most items only compare with its top): faster than nth_element for
    // the small k of hard negatives and level quotas.
    std::partial_sort(order.begin(), order.begin() + take, order.end(), before);
    return take;
}

// Convenience (allocates): a weighted sample of min(k, weights.size()) indices, in selection order,
// drawing one key per weight in input order with weight es_weight(weights[i], floor).
template <class W>
std::vector<std::uint32_t> es_sample(span<const W> weights, double floor, std::size_t k, rng& gen) {
    std::vector<float> keys(weights.size());
    for (std::size_t i = 0; i < weights.size(); ++i) keys[i] = es_key(gen, es_weight(static_cast<double>(weights[i]), floor));
    std::vector<std::uint32_t> order(weights.size());
    order.resize(es_select(span<const float>(keys.data(), keys.size()), k, span<std::uint32_t>(order.data(), order.size())));
    return order;
}

}  // namespace poem
