#pragma once
// Graph-mined hard negatives: items near a user's positives in the co-engagement graph that the user
// did not engage with. Candidates are the 1-hop (or 1- and 2-hop) neighbourhood of the positives,
// scored by edge weight (a 2-hop item m reached through n scores w(p, n) * w(n, m) / rowsum(n)),
// minus the excluded set (the user's engaged items, the positives, and anything else the caller
// lists). `count` distinct candidates are drawn without replacement with probability proportional to
// their score: poem's one weighted sampler (core/weighted_sample.hpp), one key per candidate in
// ascending item order, ties by the smaller item. When the neighbourhood runs dry, the rest comes from a
// popularity alias table (weights count^0.75), still skipping excluded and already chosen items; after
// 64 * count + 1024 rejected draws it gives up and returns fewer (an exhausted catalogue).
//
// Item ids are u64. Positives must be items of the graph (below its item_count: the error names
// positives[k]); excluded ids are only a set to avoid, any u64. Popularity draws are the alias
// table's indices, read as item ids.
//
// Deterministic: the same inputs and generator state give the same negatives.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/rng.hpp"
#include "poem/core/weighted_sample.hpp"
#include "poem/core/span.hpp"
#include "poem/sample/alias.hpp"
#include "poem/sample/item_graph.hpp"

namespace poem {

// The popularity sampler: item i weighs counts[i]^power (power 0.75 as in word2vec); zero counts are
// never drawn. Throws when every count is zero.
template <class C>
alias_table popularity_alias(span<const C> counts, double power = 0.75) {
    check(std::isfinite(power) && power > 0.0, "popularity_alias: power must be finite and > 0, got ", power);
    std::vector<double> w(counts.size());
    for (std::size_t i = 0; i < counts.size(); ++i) {
        const double c = static_cast<double>(counts[i]);
        check(std::isfinite(c) && c >= 0.0, "popularity_alias: counts[", i, "] = ", c, " is not finite and >= 0");
        w[i] = c > 0.0 ? std::pow(c, power) : 0.0;
    }
    return alias_table(span<const double>(w.data(), w.size()));
}
template <class C, class A>
alias_table popularity_alias(const std::vector<C, A>& counts, double power = 0.75) {
    return popularity_alias(span<const C>(counts.data(), counts.size()), power);
}

struct hard_negative_config {
    std::size_t count = 10;  // negatives wanted
    std::uint32_t hops = 1;  // 1 or 2
};

inline void validate(const hard_negative_config& cfg) {
    check(cfg.hops == 1 || cfg.hops == 2, "hard_negative_config.hops must be 1 or 2, got ", cfg.hops);
}

struct hard_negative_result {
    std::vector<std::uint64_t> items;  // distinct; the first `from_graph` are graph-mined
    std::size_t from_graph = 0;
    std::size_t from_popularity = 0;
};

// `excluded` is the user's engaged set (any order, duplicates allowed); positives are excluded too.
// `popularity` may be null (no fallback).
inline hard_negative_result hard_negatives(const item_graph& graph, span<const std::uint64_t> positives,
                                           span<const std::uint64_t> excluded, const alias_table* popularity,
                                           const hard_negative_config& cfg, rng& g) {
    validate(cfg);
    check(positives.data() != nullptr || positives.empty(), "hard_negatives: positives has null data");
    check(excluded.data() != nullptr || excluded.empty(), "hard_negatives: excluded has null data");
    for (std::size_t k = 0; k < positives.size(); ++k) graph.check_item(positives[k], "hard_negatives: positives", k);
    hard_negative_result res;
    if (cfg.count == 0) return res;

    std::vector<std::uint64_t> banned(excluded.begin(), excluded.end());
    banned.insert(banned.end(), positives.begin(), positives.end());
    std::sort(banned.begin(), banned.end());
    banned.erase(std::unique(banned.begin(), banned.end()), banned.end());
    const auto is_banned = [&](std::uint64_t x) { return std::binary_search(banned.begin(), banned.end(), x); };

    // Neighbourhood scores, merged by item.
    std::vector<std::pair<std::uint32_t, double>> cand;
    for (std::uint64_t p : positives) {
        const auto nb = graph.neighbors(p);
        const auto wt = graph.weights(p);
        for (std::size_t k = 0; k < nb.size(); ++k) {
            cand.emplace_back(nb[k], wt[k]);
            if (cfg.hops == 2) {
                const auto nb2 = graph.neighbors(nb[k]);
                const auto wt2 = graph.weights(nb[k]);
                double rowsum = 0.0;
                for (float w2 : wt2) rowsum += w2;
                for (std::size_t q = 0; q < nb2.size(); ++q)
                    cand.emplace_back(nb2[q], static_cast<double>(wt[k]) * wt2[q] / rowsum);
            }
        }
    }
    std::sort(cand.begin(), cand.end());
    std::size_t w = 0;
    for (std::size_t r = 0; r < cand.size();) {
        std::size_t s = r;
        double sum = 0.0;
        for (; s < cand.size() && cand[s].first == cand[r].first; ++s) sum += cand[s].second;
        if (!is_banned(cand[r].first) && sum > 0.0) cand[w++] = {cand[r].first, sum};
        r = s;
    }
    cand.resize(w);

    // Weighted sampling without replacement (Efraimidis-Spirakis): one key per candidate, item order.
    {
        std::vector<float> keys(cand.size());
        for (std::size_t i = 0; i < cand.size(); ++i) keys[i] = es_key(g, es_weight(cand[i].second));
        std::vector<std::uint32_t> order(cand.size());
        const std::size_t taken = es_select(span<const float>(keys.data(), keys.size()), cfg.count,
                                            span<std::uint32_t>(order.data(), order.size()));
        for (std::size_t i = 0; i < taken; ++i) res.items.push_back(cand[order[i]].first);
    }
    res.from_graph = res.items.size();

    // Popularity fallback.
    if (popularity != nullptr && !popularity->empty() && res.items.size() < cfg.count) {
        std::vector<std::uint64_t> chosen(res.items);
        std::sort(chosen.begin(), chosen.end());
        std::size_t budget = 64 * cfg.count + 1024;
        while (res.items.size() < cfg.count && budget > 0) {
            const std::uint64_t x = popularity->draw(g);
            const auto it = std::lower_bound(chosen.begin(), chosen.end(), x);
            if (is_banned(x) || (it != chosen.end() && *it == x)) {
                --budget;
                continue;
            }
            chosen.insert(it, x);
            res.items.push_back(x);
            ++res.from_popularity;
        }
    }
    return res;
}

}  // namespace poem
