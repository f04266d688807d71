#pragma once
// The item-item co-engagement graph in CSR, with O(1) weighted neighbour draws. Built by
// build_item_graph (sample/item_graph_builder.hpp), saved and loaded by sample/item_graph_io.hpp.
//
// Ids and indices. The graph is over dense item indices 0 .. item_count - 1: the item whose id is i
// is the graph's item i, so a catalogue with ids up to n - 1 needs item_count n. Item ids cross the
// API as u64 (like every item id of poem): each function that takes one checks it against
// item_count and throws poem::error naming the argument; ids that come back are u64 (npos: none).
// Inside, the CSR stores neighbours as u32 indices (item_count < 2^32 - 1), half the memory of u64 and
// what keeps walks fast; neighbor_array() and neighbors() expose that storage as it is.
//
// Arrays: offsets (u64, item_count + 1), neighbours (u32, ascending and unique within a row) and
// weights (float, finite and > 0), plus per edge the row's alias entry (Vose), self-contained so that
// a draw reads one cache line after the row's offsets. Memory: 8 bytes per item and 20 bytes per edge.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/huge_page_allocator.hpp"
#include "poem/core/rng.hpp"
#include "poem/core/span.hpp"
#include "poem/sample/alias.hpp"

namespace poem {

class item_graph {
public:
    static constexpr std::uint64_t npos = ~std::uint64_t(0);      // "no item" (a walk that ended)
    static constexpr std::uint32_t index_npos = 0xFFFFFFFFu;       // the same, as a u32 index
    static constexpr std::uint64_t max_items = 0xFFFFFFFFull - 1;  // item_count limit (u32 indices)

    // Per edge: the row's alias entry. Keep `item` (this edge's neighbour) when the draw's 32-bit
    // position < threshold, else `alias_item`.
    struct edge_sampler {
        std::uint32_t threshold;
        std::uint32_t item;
        std::uint32_t alias_item;
    };

    item_graph() : offsets_(1, 0) {}

    // From CSR arrays (copied); validated: throws poem::error naming the array and index.
    item_graph(span<const std::uint64_t> offsets, span<const std::uint32_t> neighbors, span<const float> weights)
        : offsets_(offsets.begin(), offsets.end()), neighbors_(neighbors.begin(), neighbors.end()),
          weights_(weights.begin(), weights.end()) {
        validate_arrays();
        build_samplers();
    }
    // The same with u64 neighbour ids, each checked against the item count (naming neighbors[e]).
    item_graph(span<const std::uint64_t> offsets, span<const std::uint64_t> neighbors, span<const float> weights)
        : offsets_(offsets.begin(), offsets.end()), weights_(weights.begin(), weights.end()) {
        check(!offsets_.empty(), "item_graph: offsets must hold item_count + 1 entries");
        const std::uint64_t n = offsets_.size() - 1;
        neighbors_.resize(neighbors.size());
        for (std::size_t e = 0; e < neighbors.size(); ++e) {
            check(neighbors[e] < n, "item_graph: neighbors[", e, "] = ", neighbors[e], " is not below the item count ", n);
            neighbors_[e] = static_cast<std::uint32_t>(neighbors[e]);
        }
        validate_arrays();
        build_samplers();
    }
    // From CSR arrays, moved in (no copy); validated.
    item_graph(detail::big_vector<std::uint64_t>&& offsets, detail::big_vector<std::uint32_t>&& neighbors,
               detail::big_vector<float>&& weights)
        : offsets_(std::move(offsets)), neighbors_(std::move(neighbors)), weights_(std::move(weights)) {
        validate_arrays();
        build_samplers();
    }

    std::size_t item_count() const noexcept { return offsets_.size() - 1; }
    std::size_t edge_count() const noexcept { return neighbors_.size(); }

    // Throws unless `item` is an item of this graph; `what` names the argument.
    void check_item(std::uint64_t item, const char* what) const {
        check(item < item_count(), what, " = ", item, " is not below the item graph's item_count ", item_count());
    }
    template <class Id>
    void check_item(Id item, const char* what, std::size_t index) const {
        check(static_cast<std::uint64_t>(item) < item_count(), what, "[", index, "] = ", item,
              " is not below the item graph's item_count ", item_count());
    }

    // Row accessors; `item` is checked.
    std::uint64_t degree(std::uint64_t item) const {
        check_item(item, "item_graph::degree: item");
        return offsets_[item + 1] - offsets_[item];
    }
    span<const std::uint32_t> neighbors(std::uint64_t item) const {
        check_item(item, "item_graph::neighbors: item");
        return {neighbors_.data() + offsets_[item], static_cast<std::size_t>(offsets_[item + 1] - offsets_[item])};
    }
    span<const float> weights(std::uint64_t item) const {
        check_item(item, "item_graph::weights: item");
        return {weights_.data() + offsets_[item], static_cast<std::size_t>(offsets_[item + 1] - offsets_[item])};
    }
    // Weight of edge a -> b, 0 when absent (binary search in a's row); a and b are checked.
    float edge_weight(std::uint64_t a, std::uint64_t b) const {
        check_item(a, "item_graph::edge_weight: a");
        check_item(b, "item_graph::edge_weight: b");
        const auto row = neighbors(a);
        const auto it = std::lower_bound(row.begin(), row.end(), static_cast<std::uint32_t>(b));
        return it != row.end() && *it == b ? weights_[offsets_[a] + static_cast<std::size_t>(it - row.begin())] : 0.0f;
    }

    // The CSR storage, as it is (neighbours as u32 indices).
    span<const std::uint64_t> offsets() const noexcept { return {offsets_.data(), offsets_.size()}; }
    span<const std::uint32_t> neighbor_array() const noexcept { return {neighbors_.data(), neighbors_.size()}; }
    span<const float> weight_array() const noexcept { return {weights_.data(), weights_.size()}; }
    span<const edge_sampler> sampler_array() const noexcept { return {samplers_.data(), samplers_.size()}; }

    // A neighbour of `item` (checked) drawn with probability weight / row sum (one draw from `gen`
    // when it has neighbours, none otherwise); npos when it has none.
    std::uint64_t sample_neighbor(std::uint64_t item, rng& gen) const {
        check_item(item, "item_graph::sample_neighbor: item");
        const std::uint32_t v = sample_index(static_cast<std::uint32_t>(item), gen);
        return v == index_npos ? npos : v;
    }

    // The unchecked step of a walk: `item` < item_count(); index_npos when it has no neighbours.
    std::uint32_t sample_index(std::uint32_t item, rng& gen) const noexcept {
        const std::uint64_t off = offsets_[item];
        const std::uint64_t deg = offsets_[item + 1] - off;
        if (deg == 0) return index_npos;
        const auto d = detail::split_draw(gen(), deg);
        const edge_sampler e = samplers_[off + d.column];
        return d.frac < e.threshold ? e.item : e.alias_item;
    }

private:
    void validate_arrays() const;
    void build_samplers();

    detail::big_vector<std::uint64_t> offsets_;
    detail::big_vector<std::uint32_t> neighbors_;
    detail::big_vector<float> weights_;
    detail::big_vector<edge_sampler> samplers_;
};

// ---- implementation ------------------------------------------------------------------------------

inline void item_graph::validate_arrays() const {
    check(!offsets_.empty(), "item_graph: offsets must hold item_count + 1 entries");
    const std::size_t n = offsets_.size() - 1;
    check(n <= max_items, "item_graph: ", n, " items, at most 2^32 - 2 supported");
    check(offsets_[0] == 0, "item_graph: offsets[0] is ", offsets_[0], ", expected 0");
    check(neighbors_.size() == weights_.size(), "item_graph: ", neighbors_.size(), " neighbours but ",
          weights_.size(), " weights");
    check(offsets_[n] == neighbors_.size(), "item_graph: offsets[", n, "] is ", offsets_[n], ", expected ",
          neighbors_.size(), " (edge count)");
    for (std::size_t i = 0; i < n; ++i) {
        check(offsets_[i] <= offsets_[i + 1], "item_graph: offsets[", i + 1, "] = ", offsets_[i + 1],
              " is below offsets[", i, "] = ", offsets_[i]);
        for (std::uint64_t e = offsets_[i]; e < offsets_[i + 1]; ++e) {
            check(neighbors_[e] < n, "item_graph: neighbors[", e, "] = ", neighbors_[e], " is not below the item count ", n);
            check(e == offsets_[i] || neighbors_[e - 1] < neighbors_[e], "item_graph: neighbors[", e,
                  "] is not above neighbors[", e - 1, "] (rows are ascending and unique)");
            check(std::isfinite(weights_[e]) && weights_[e] > 0.0f, "item_graph: weights[", e, "] = ", weights_[e],
                  " is not finite and > 0");
        }
    }
}

inline void item_graph::build_samplers() {
    samplers_.resize(neighbors_.size());
    std::vector<double> scaled;
    std::vector<std::uint32_t> small, large, thr, al;
    const std::size_t n = item_count();
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t off = offsets_[i];
        const std::size_t deg = static_cast<std::size_t>(offsets_[i + 1] - off);
        if (deg == 0) continue;
        const float* w = weights_.data() + off;
        double sum = 0.0;
        for (std::size_t k = 0; k < deg; ++k) sum += static_cast<double>(w[k]);
        thr.resize(deg);
        al.resize(deg);
        detail::build_vose(w, deg, sum, thr.data(), al.data(), scaled, small, large);
        for (std::size_t k = 0; k < deg; ++k) samplers_[off + k] = {thr[k], neighbors_[off + k], neighbors_[off + al[k]]};
    }
}

}  // namespace poem
