#pragma once
// Hierarchical samples of one request (paper: "hierarchical sample learning"). Every candidate comes
// with what the user did with it, as an engagement_event (order/engagement.hpp), and every item gets a
// tier, best first:
//   0 strong_positive  a candidate with a long view, a like or a follow, as cfg.engagement defines and
//                      enables them (is_long_view: the library's one definition of a long view); a
//                      click alone is weak engagement, never a strong positive
//   1 system_favoured  otherwise a candidate among the request's top `system_top_k` fused ranks
//   2 exposed          any other candidate (weak engagement such as a click, or none)
//   3 hard_negative    graph-mined: near the strong positives (or, without any, near the history),
//                      not engaged, not a candidate of this request
//   4 random_negative  drawn by popularity, not engaged, not a candidate, not already a hard negative
// and every pair (i, j) with tier(i) < tier(j) becomes a training pair with margin
// margin_by_gap[gap - 1] (gap = tier(j) - tier(i)), by default base_margin * gap. Beyond max_pairs,
// a seeded subset of max_pairs pairs is kept (uniformly, without replacement), in the order
// (i, j) of the full list.
//
// Item ids are u64. With a graph, every id that seeds it (the strong positives, else the history) must
// be below its item_count (the error names the argument); popularity draws are the table's indices.

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
#include "poem/order/engagement.hpp"
#include "poem/sample/alias.hpp"
#include "poem/sample/hard_negatives.hpp"
#include "poem/sample/item_graph.hpp"
#include "poem/sample/pair.hpp"

namespace poem {

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
    engagement_config engagement;           // long view (threshold), like, follow: strong positives
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
    std::vector<std::uint64_t> items;
    std::vector<sample_tier> tiers;
    std::size_t candidate_count = 0;
    std::array<std::size_t, sample_tier_count> tier_sizes{};
    std::vector<margin_pair> pairs;  // indices into items
    std::size_t pairs_total = 0;     // before the max_pairs cap
};

inline void validate(const hierarchy_config& cfg) {
    check(std::isfinite(cfg.base_margin) && cfg.base_margin >= 0.0f, "hierarchy_config.base_margin must be finite and >= 0, got ",
          cfg.base_margin);
    check(cfg.margin_by_gap.empty() || cfg.margin_by_gap.size() == sample_tier_count - 1,
          "hierarchy_config.margin_by_gap must be empty or hold ", sample_tier_count - 1, " margins, got ",
          cfg.margin_by_gap.size());
    for (std::size_t k = 0; k < cfg.margin_by_gap.size(); ++k)
        check(std::isfinite(cfg.margin_by_gap[k]) && cfg.margin_by_gap[k] >= 0.0f, "hierarchy_config.margin_by_gap[", k,
              "] must be finite and >= 0, got ", cfg.margin_by_gap[k]);
    check(cfg.hops == 1 || cfg.hops == 2, "hierarchy_config.hops must be 1 or 2, got ", cfg.hops);
    check(std::isfinite(cfg.engagement.long_view_seconds) && cfg.engagement.long_view_seconds >= 0.0f,
          "hierarchy_config.engagement.long_view_seconds must be finite and >= 0, got ", cfg.engagement.long_view_seconds);
}

// Whether one candidate's event makes it a strong positive under `rule` (long view, like, follow;
// never a click alone).
inline bool is_strong_positive(const engagement_event& e, const engagement_config& rule) noexcept {
    return (rule.like && e.like) || (rule.follow && e.follow) || (rule.long_view && is_long_view(e, rule.long_view_seconds));
}

// `candidates` are the N candidates of one request: item_id and what the user did with it (an
// event with no engagement for an ignored candidate; user_id and time are not read). fused_rank: 0 =
// best. `history` is the user's engaged set. `graph` and `popularity` may be null (then no hard /
// random negatives). Throws poem::error on mismatched sizes, an id outside the graph or a bad config.
inline hierarchical_sample hierarchical_samples(span<const engagement_event> candidates,
                                                span<const std::uint32_t> fused_rank, span<const std::uint64_t> history,
                                                const item_graph* graph, const alias_table* popularity,
                                                const hierarchy_config& cfg, rng& g) {
    validate(cfg);
    const std::size_t n = candidates.size();
    check(candidates.data() != nullptr || n == 0, "hierarchical_samples: candidates has null data");
    check(history.data() != nullptr || history.empty(), "hierarchical_samples: history has null data");
    check_size(fused_rank, n, "hierarchical_samples: fused_rank");

    hierarchical_sample out;
    out.candidate_count = n;
    out.items.resize(n);
    out.tiers.resize(n);
    std::vector<std::uint64_t> strong;
    for (std::size_t c = 0; c < n; ++c) {
        const engagement_event& e = candidates[c];
        const bool is_strong = is_strong_positive(e, cfg.engagement);
        sample_tier t = sample_tier::exposed;
        if (is_strong) t = sample_tier::strong_positive;
        else if (fused_rank[c] < cfg.system_top_k) t = sample_tier::system_favoured;
        out.items[c] = e.item_id;
        out.tiers[c] = t;
        if (is_strong) strong.push_back(e.item_id);
    }

    // Negatives avoid the user's history and every candidate of this request.
    std::vector<std::uint64_t> excluded(history.begin(), history.end());
    excluded.insert(excluded.end(), out.items.begin(), out.items.end());
    std::vector<std::uint64_t> hard;
    if (graph != nullptr && cfg.hard_negatives > 0) {
        if (strong.empty()) {
            for (std::size_t k = 0; k < history.size(); ++k) graph->check_item(history[k], "hierarchical_samples: history", k);
        } else {
            for (std::size_t c = 0; c < n; ++c)
                check(out.tiers[c] != sample_tier::strong_positive || out.items[c] < graph->item_count(),
                      "hierarchical_samples: candidates[", c, "].item_id = ", out.items[c],
                      " (a strong positive) is not below the item graph's item_count ", graph->item_count());
        }
        const span<const std::uint64_t> seeds =
            strong.empty() ? history : span<const std::uint64_t>(strong.data(), strong.size());
        const auto hn = hard_negatives(*graph, seeds, {excluded.data(), excluded.size()}, popularity,
                                       hard_negative_config{cfg.hard_negatives, cfg.hops}, g);
        hard = hn.items;
    } else if (cfg.hard_negatives > 0 && popularity != nullptr) {
        const auto hn = hard_negatives(item_graph(), {}, {excluded.data(), excluded.size()}, popularity,
                                       hard_negative_config{cfg.hard_negatives, 1}, g);
        hard = hn.items;
    }
    for (std::uint64_t h : hard) {
        out.items.push_back(h);
        out.tiers.push_back(sample_tier::hard_negative);
    }
    if (popularity != nullptr && cfg.random_negatives > 0) {
        excluded.insert(excluded.end(), hard.begin(), hard.end());
        const auto rn = hard_negatives(item_graph(), {}, {excluded.data(), excluded.size()}, popularity,
                                       hard_negative_config{cfg.random_negatives, 1}, g);
        for (std::uint64_t r : rn.items) {
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

// From the request's quintuples: item ids from the tokens, fused ranks by fused score (best first,
// NaN last, ties by candidate index), and one event per candidate whose item_id must be the token's
// (the error names feedback[c].item_id).
inline hierarchical_sample hierarchical_samples(span<const quintuple> candidates, span<const engagement_event> feedback,
                                                span<const std::uint64_t> history, const item_graph* graph,
                                                const alias_table* popularity, const hierarchy_config& cfg, rng& g) {
    const std::size_t n = candidates.size();
    check_size(feedback, n, "hierarchical_samples: feedback");
    std::vector<std::uint32_t> order(n), rank(n);
    for (std::size_t c = 0; c < n; ++c)
        check(feedback[c].item_id == candidates[c].item_id, "hierarchical_samples: feedback[", c, "].item_id = ",
              feedback[c].item_id, " differs from candidates[", c, "].item_id = ", candidates[c].item_id);
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
        const float fa = candidates[a].fused_score, fb = candidates[b].fused_score;
        const bool na = std::isnan(fa), nb = std::isnan(fb);
        if (na != nb) return nb;  // NaN last
        return fa > fb;
    });
    for (std::size_t r = 0; r < n; ++r) rank[order[r]] = static_cast<std::uint32_t>(r);
    return hierarchical_samples(feedback, span<const std::uint32_t>(rank.data(), n), history, graph, popularity, cfg, g);
}

}  // namespace poem
