#pragma once
// Weighted random walks on an item_graph: each step moves to a neighbour drawn with probability
// weight / row sum (the row's alias table). A walk that reaches an item without neighbours ends; its
// remaining positions hold item_graph::npos. Starts are u64 item ids, each checked against the
// graph's item_count (the error names starts[b]); walks are u64 item ids.
//
// walk_naive and walk_batch take one draw from `gen` as the batch's seed s; walk b then draws from
// rng(s).fork(b). So walk_batch and walk_naive give the same walks for the same generator state, and
// a walk does not depend on the batch it is in.
//
// walk_naive runs one walk at a time: every step waits for two dependent cache misses (the row's
// offsets, then its alias entry, which holds the neighbour ids). walk_batch advances all walks of the batch in
// lockstep and pipelines them: while it resolves walk i it reads the row of walk i + D (prefetched
// D walks earlier) and prefetches the row of walk i + 2D, so many misses are in flight at once.
// D = 32 (16..32 measured best on a 320 MB graph); POEM_WALK_PREFETCH_DISTANCE overrides it.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/prefetch.hpp"
#include "poem/core/rng.hpp"
#include "poem/core/span.hpp"
#include "poem/core/workspace.hpp"
#include "poem/sample/item_graph.hpp"

namespace poem {

namespace detail {

inline void check_walk_args(const item_graph& g, span<const std::uint64_t> starts, std::size_t length,
                            span<std::uint64_t> out) {
    check(length > 0, "walk: length must be at least 1 (the start)");
    check(starts.data() != nullptr || starts.empty(), "walk: starts has null data");
    const std::size_t total = checked_mul(starts.size(), length, "walk: starts.size() x length");
    check(out.size() == total, "walk: out must hold starts.size() x length = ", total, " entries, got ", out.size());
    for (std::size_t b = 0; b < starts.size(); ++b) g.check_item(starts[b], "walk: starts", b);
}

}  // namespace detail

// One walk of `out.size()` positions from `start` (out[0] = start), drawing from `gen`.
inline void random_walk(const item_graph& graph, std::uint64_t start, rng& gen, span<std::uint64_t> out) {
    graph.check_item(start, "random_walk: start");
    if (out.empty()) return;
    auto v = static_cast<std::uint32_t>(start);
    out[0] = start;
    for (std::size_t t = 1; t < out.size(); ++t) {
        v = graph.sample_index(v, gen);
        if (v == item_graph::index_npos) {  // a dead end: the walk ends
            for (; t < out.size(); ++t) out[t] = item_graph::npos;
            return;
        }
        out[t] = v;
    }
}

// The baseline: walk b (of starts.size()) runs alone, all its steps, before walk b + 1 starts.
// out is starts.size() x length, row b = walk b.
inline void walk_naive(const item_graph& graph, span<const std::uint64_t> starts, std::size_t length, rng& gen,
                       span<std::uint64_t> out) {
    detail::check_walk_args(graph, starts, length, out);
    const rng base(gen());
    for (std::size_t b = 0; b < starts.size(); ++b) {
        rng g = base.fork(b);
        random_walk(graph, starts[b], g, out.subspan(b * length, length));
    }
}

// All walks in lockstep, pipelined with prefetching (see the top of this file). Same result as
// walk_naive. Scratch (16 bytes a walk, plus 4 bytes a position: the walks as u32 indices, widened to
// u64 ids in one sequential pass at the end, so the strided writes of the steps touch half the cache
// lines) comes from a scope of `ws`.
inline void walk_batch(const item_graph& graph, span<const std::uint64_t> starts, std::size_t length, rng& gen,
                       workspace& ws, span<std::uint64_t> out) {
    detail::check_walk_args(graph, starts, length, out);
    const rng base(gen());  // one draw, as walk_naive
    const std::size_t B = starts.size();
    if (B == 0) return;
#ifdef POEM_WALK_PREFETCH_DISTANCE
    constexpr std::size_t D = POEM_WALK_PREFETCH_DISTANCE;
#else
    constexpr std::size_t D = 32;  // prefetch distance, in walks (measured: 16-32 best)
#endif
    constexpr std::uint64_t dead = ~std::uint64_t(0);

    const std::uint64_t* off = graph.offsets().data();
    const item_graph::edge_sampler* smp = graph.sampler_array().data();

    auto scope = ws.scope();
    span<std::uint32_t> cur = scope.alloc<std::uint32_t>(B);
    span<std::uint64_t> state = scope.alloc<std::uint64_t>(B);
    span<std::uint64_t> edge = scope.alloc<std::uint64_t>(B);
    span<std::uint32_t> frac = scope.alloc<std::uint32_t>(B);
    span<std::uint32_t> idx = scope.alloc<std::uint32_t>(B * length);
    for (std::size_t b = 0; b < B; ++b) {
        cur[b] = static_cast<std::uint32_t>(starts[b]);
        state[b] = base.fork(b).state();
        idx[b * length] = static_cast<std::uint32_t>(starts[b]);
    }

    for (std::size_t t = 1; t < length; ++t) {
        for (std::size_t k = 0; k < B + 2 * D; ++k) {
            // Stage 1, walk k: prefetch its row's offsets.
            if (k < B && cur[k] != item_graph::index_npos) {
                POEM_PREFETCH(off + cur[k]);
                POEM_PREFETCH(off + cur[k] + 1);
            }
            // Stage 2, walk k - D: read the row, draw, prefetch the alias entry and the neighbour.
            if (k >= D && k - D < B) {
                const std::size_t j = k - D;
                const std::uint32_t v = cur[j];
                std::uint64_t e = dead;
                if (v != item_graph::index_npos) {
                    const std::uint64_t o = off[v];
                    const std::uint64_t deg = off[v + 1] - o;
                    if (deg != 0) {
                        rng g(state[j]);
                        const auto d = detail::split_draw(g(), deg);
                        state[j] = g.state();
                        e = o + d.column;
                        frac[j] = d.frac;
                        POEM_PREFETCH(smp + e);
                    }
                }
                edge[j] = e;
            }
            // Stage 3, walk k - 2D: take the step.
            if (k >= 2 * D) {
                const std::size_t i = k - 2 * D;
                const std::uint64_t e = edge[i];
                std::uint32_t next = item_graph::index_npos;
                if (e != dead) {
                    const item_graph::edge_sampler s = smp[e];
                    next = frac[i] < s.threshold ? s.item : s.alias_item;
                }
                cur[i] = next;
                idx[i * length + t] = next;
            }
        }
    }
    for (std::size_t p = 0; p < B * length; ++p)
        out[p] = idx[p] == item_graph::index_npos ? item_graph::npos : static_cast<std::uint64_t>(idx[p]);
}

}  // namespace poem
