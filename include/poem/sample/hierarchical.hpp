#pragma once
// Hierarchical samples of one request (paper: "hierarchical sample learning"). Every item gets a
// tier, best first:
//   0 strong_positive  a candidate with long view, like or follow (or play time >= strong_play_seconds)
//   1 system_favoured  otherwise a candidate among the request's top `system_top_k` fused ranks
//   2 exposed          any other candidate (weak engagement such as a click, or none)
//   3 hard_negative    graph-mined: near the strong positives (or, without any, near the history),
//                      not engaged, not a candidate of this request
//   4 random_negative  drawn by popularity, not engaged, not a candidate, not already a hard negative
// and every pair (i, j) with tier(i) < tier(j) becomes a training pair with margin
// margin_by_gap[gap - 1] (gap = tier(j) - tier(i)), by default base_margin * gap. Beyond max_pairs,
// a seeded subset of max_pairs pairs is kept (uniformly, without replacement), in the order
// (i, j) of the full list.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/rng.hpp"
#include "poem/core/span.hpp"
#include "poem/fusion/quintuple.hpp"
#include "poem/sample/alias.hpp"
#include "poem/sample/hard_negatives.hpp"
#include "poem/sample/item_graph.hpp"
#include "poem/sample/pair.hpp"

namespace poem {

// What the user did with one exposed candidate.
struct feedback {
    bool long_view = false;
    bool like = false;
    bool follow = false;
    bool click = false;
    float play_seconds = 0.0f;
};

enum class sample_tier : std::uint8_t {
    strong_positive = 0,
    system_favoured = 1,
    exposed = 2,
    hard_negative = 3,
    random_negative = 4,
};
inline constexpr std::size_t sample_tier_count = 5;

struct hierarchy_config {
    std::size_t system_top_k = 3;         // fused ranks 0 .. k-1 are system-favoured
    float strong_play_seconds = 0.0f;     // > 0: playing at least this long is a strong positive too
    std::size_t hard_negatives = 5;       // wanted from the graph (popularity tops up when it runs dry)
    std::uint32_t hops = 1;               // graph neighbourhood: 1 or 2 hops
    std::size_t random_negatives = 5;     // drawn by popularity
    float base_margin = 0.1f;             // default margin: base_margin * tier gap
    std::vector<float> margin_by_gap;     // empty, or 4 margins for gaps 1..4 (finite, >= 0)
    std::size_t max_pairs = 1024;         // 0 = keep every pair

    float margin(std::size_t gap) const noexcept {
        return margin_by_gap.empty() ? base_margin * static_cast<float>(gap) : margin_by_gap[gap - 1];
    }
};

struct hierarchical_sample {
    // Candidates first (input order), then hard negatives, then random negatives.
    std::vector<std::uint32_t> items;
    std::vector<sample_tier> tiers;
    std::size_t candidate_count = 0;
    std::array<std::size_t, sample_tier_count> tier_sizes{};
    std::vector<margin_pair> pairs;  // indices into items
    std::size_t pairs_total = 0;     // before the max_pairs cap
};

namespace detail {
inline void check_hierarchy_config(const hierarchy_config& cfg) {
    check(std::isfinite(cfg.base_margin) && cfg.base_margin >= 0.0f, "hierarchy_config.base_margin must be finite and >= 0, got ",
          cfg.base_margin);
    check(cfg.margin_by_gap.empty() || cfg.margin_by_gap.size() == sample_tier_count - 1,
          "hierarchy_config.margin_by_gap must be empty or hold ", sample_tier_count - 1, " margins, got ",
          cfg.margin_by_gap.size());
    for (std::size_t k = 0; k < cfg.margin_by_gap.size(); ++k)
        check(std::isfinite(cfg.margin_by_gap[k]) && cfg.margin_by_gap[k] >= 0.0f, "hierarchy_config.margin_by_gap[", k,
              "] must be finite and >= 0, got ", cfg.margin_by_gap[k]);
    check(cfg.hops == 1 || cfg.hops == 2, "hierarchy_config.hops must be 1 or 2, got ", cfg.hops);
    check(std::isfinite(cfg.strong_play_seconds), "hierarchy_config.strong_play_seconds must be finite");
}
}  // namespace detail

// `items`, `fused_rank` and `fb` describe the N candidates of one request (fused_rank: 0 = best).
// `history` is the user's engaged set. `graph` and `popularity` may be null (then no hard / random
// negatives). Throws poem::error on mismatched sizes or a bad config.
inline hierarchical_sample hierarchical_samples(span<const std::uint32_t> items, span<const std::uint32_t> fused_rank,
                                         span<const feedback> fb, span<const std::uint32_t> history,
                                         const item_graph* graph, const alias_table* popularity,
                                         const hierarchy_config& cfg, rng& g) {
    detail::check_hierarchy_config(cfg);
    const std::size_t n = items.size();
    check_size(fused_rank, n, "hierarchical_samples: fused_rank");
    check_size(fb, n, "hierarchical_samples: feedback");

    hierarchical_sample out;
    out.candidate_count = n;
    out.items.assign(items.begin(), items.end());
    out.tiers.resize(n);
    std::vector<std::uint32_t> strong;
    for (std::size_t c = 0; c < n; ++c) {
        const feedback& f = fb[c];
        const bool is_strong = f.long_view || f.like || f.follow ||
                               (cfg.strong_play_seconds > 0.0f && f.play_seconds >= cfg.strong_play_seconds);
        sample_tier t = sample_tier::exposed;
        if (is_strong) t = sample_tier::strong_positive;
        else if (fused_rank[c] < cfg.system_top_k) t = sample_tier::system_favoured;
        out.tiers[c] = t;
        if (is_strong) strong.push_back(items[c]);
    }

    // Negatives avoid the user's history and every candidate of this request.
    std::vector<std::uint32_t> excluded(history.begin(), history.end());
    excluded.insert(excluded.end(), items.begin(), items.end());
    std::vector<std::uint32_t> hard;
    if (graph != nullptr && cfg.hard_negatives > 0) {
        const span<const std::uint32_t> seeds =
            strong.empty() ? history : span<const std::uint32_t>(strong.data(), strong.size());
        const auto hn = hard_negatives(*graph, seeds, {excluded.data(), excluded.size()}, popularity,
                                       hard_negative_config{cfg.hard_negatives, cfg.hops}, g);
        hard = hn.items;
    } else if (cfg.hard_negatives > 0 && popularity != nullptr) {
        const auto hn = hard_negatives(item_graph(), {}, {excluded.data(), excluded.size()}, popularity,
                                       hard_negative_config{cfg.hard_negatives, 1}, g);
        hard = hn.items;
    }
    for (std::uint32_t h : hard) {
        out.items.push_back(h);
        out.tiers.push_back(sample_tier::hard_negative);
    }
    if (popularity != nullptr && cfg.random_negatives > 0) {
        excluded.insert(excluded.end(), hard.begin(), hard.end());
        const auto rn = hard_negatives(item_graph(), {}, {excluded.data(), excluded.size()}, popularity,
                                       hard_negative_config{cfg.random_negatives, 1}, g);
        for (std::uint32_t r : rn.items) {
            out.items.push_back(r);
            out.tiers.push_back(sample_tier::random_negative);
        }
    }
    for (sample_tier t : out.tiers) ++out.tier_sizes[static_cast<std::size_t>(t)];

    // Pairs across tiers, in (i, j) order.
    const std::size_t total = out.items.size();
    for (std::size_t i = 0; i < total; ++i)
        for (std::size_t j = 0; j < total; ++j) {
            const auto ti = static_cast<std::size_t>(out.tiers[i]), tj = static_cast<std::size_t>(out.tiers[j]);
            if (ti < tj)
                out.pairs.push_back({static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j), cfg.margin(tj - ti)});
        }
    out.pairs_total = out.pairs.size();
    if (cfg.max_pairs != 0 && out.pairs.size() > cfg.max_pairs) {
        // Partial Fisher-Yates over positions, then back to list order.
        std::vector<std::uint32_t> pos(out.pairs.size());
        std::iota(pos.begin(), pos.end(), 0u);
        for (std::size_t k = 0; k < cfg.max_pairs; ++k) {
            const std::size_t r = k + detail::split_draw(g(), pos.size() - k).column;
            std::swap(pos[k], pos[r]);
        }
        pos.resize(cfg.max_pairs);
        std::sort(pos.begin(), pos.end());
        std::vector<margin_pair> kept(cfg.max_pairs);
        for (std::size_t k = 0; k < cfg.max_pairs; ++k) kept[k] = out.pairs[pos[k]];
        out.pairs.swap(kept);
    }
    return out;
}

// From the request's quintuples: item ids (must fit in u32) and fused ranks (by fused score, best
// first, ties by candidate index).
inline hierarchical_sample hierarchical_samples(span<const quintuple> candidates, span<const feedback> fb,
                                         span<const std::uint32_t> history, const item_graph* graph,
                                         const alias_table* popularity, const hierarchy_config& cfg, rng& g) {
    const std::size_t n = candidates.size();
    std::vector<std::uint32_t> ids(n), order(n), rank(n);
    for (std::size_t c = 0; c < n; ++c) {
        check(candidates[c].item_id <= 0xFFFFFFFFull, "hierarchical_samples: candidates[", c, "].item_id = ",
              candidates[c].item_id, " does not fit the graph's 32-bit ids");
        ids[c] = static_cast<std::uint32_t>(candidates[c].item_id);
    }
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
        const float fa = candidates[a].fused_score, fb_ = candidates[b].fused_score;
        const bool na = std::isnan(fa), nb = std::isnan(fb_);
        if (na != nb) return nb;  // NaN last
        return fa > fb_;
    });
    for (std::size_t r = 0; r < n; ++r) rank[order[r]] = static_cast<std::uint32_t>(r);
    return hierarchical_samples(span<const std::uint32_t>(ids.data(), n), span<const std::uint32_t>(rank.data(), n), fb,
                                history, graph, popularity, cfg, g);
}

}  // namespace poem
