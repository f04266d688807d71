#pragma once
// Building the item co-engagement graph from an engagement log.
//
// build_item_graph(events, item_count, cfg) reads each event's user_id, item_id and time (every
// event given is an engagement: filter the log first, for instance with is_engaged and an
// engagement_config). Per user, events are sorted by time (ties keep log order); two events are linked
// when at most `window_items` positions and at most `window_seconds` apart (the window closes at
// whichever comes first; 0 = no limit on that side); the same item twice is not a link. Each link adds
// 1 / log2(2 + n_user) (n_user = that user's event count; damp_activity = false: 1) to both
// directions, so weights are symmetric; then each row keeps its `top_m` heaviest neighbours (ties:
// smaller item), which can make the pruned graph asymmetric. Item ids are the graph's dense indices:
// an event whose item_id is not below item_count throws, naming the event.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/span.hpp"
#include "poem/order/engagement.hpp"
#include "poem/sample/item_graph.hpp"

namespace poem {

struct graph_build_config {
    // Two events of one user (in time order) are linked when they are at most `window_items` positions
    // apart AND at most `window_seconds` apart: the window closes at whichever comes first. 0 = no limit
    // on that side (both 0 links every pair of a user's events: quadratic).
    std::uint32_t window_items = 5;
    std::int64_t window_seconds = 3600;  // >= 0
    // Each row keeps its `top_m` heaviest neighbours (ties: smaller id first); 0 keeps all. The
    // weights are symmetric before this cut; after it, a->b is kept when b is among a's top M.
    std::uint32_t top_m = 50;
    // Every link of a user with n events weighs 1 / log2(2 + n) (very active users count less);
    // false: every link weighs 1.
    bool damp_activity = true;
};

inline void validate(const graph_build_config& cfg) {
    check(cfg.window_seconds >= 0, "graph_build_config.window_seconds must be >= 0, got ", cfg.window_seconds);
}

inline item_graph build_item_graph(span<const engagement_event> events, std::uint64_t item_count,
                                   const graph_build_config& cfg = {}) {
    validate(cfg);
    check(item_count <= item_graph::max_items, "build_item_graph: item_count ", item_count, " is above ",
          item_graph::max_items, " (the graph's u32 indices)");
    check(events.data() != nullptr || events.empty(), "build_item_graph: events has null data");
    check(events.size() < 0xFFFFFFFFull, "build_item_graph: ", events.size(), " events, at most 2^32 - 2");
    for (std::size_t e = 0; e < events.size(); ++e)
        check(events[e].item_id < item_count, "build_item_graph: events[", e, "].item_id = ", events[e].item_id,
              " is not below item_count ", item_count);

    // Events per user in time order (ties keep the log order).
    std::vector<std::uint32_t> order(events.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
        if (events[a].user_id != events[b].user_id) return events[a].user_id < events[b].user_id;
        return events[a].time < events[b].time;
    });

    struct link {
        std::uint32_t a, b;
        double w;
    };
    std::vector<link> links;
    for (std::size_t s = 0; s < order.size();) {
        std::size_t t = s;
        while (t < order.size() && events[order[t]].user_id == events[order[s]].user_id) ++t;
        const std::size_t count = t - s;
        const double w = cfg.damp_activity ? 1.0 / std::log2(2.0 + static_cast<double>(count)) : 1.0;
        for (std::size_t i = s; i < t; ++i) {
            const engagement_event& ei = events[order[i]];
            for (std::size_t j = i + 1; j < t; ++j) {
                const engagement_event& ej = events[order[j]];
                if (cfg.window_items != 0 && j - i > cfg.window_items) break;
                if (cfg.window_seconds != 0 && ej.time - ei.time > cfg.window_seconds) break;
                if (ei.item_id == ej.item_id) continue;
                const auto a = static_cast<std::uint32_t>(ei.item_id), b = static_cast<std::uint32_t>(ej.item_id);
                links.push_back({a, b, w});
                links.push_back({b, a, w});
            }
        }
        s = t;
    }
    std::sort(links.begin(), links.end(), [](const link& x, const link& y) {
        return x.a != y.a ? x.a < y.a : x.b < y.b;
    });

    detail::big_vector<std::uint64_t> offsets(static_cast<std::size_t>(item_count) + 1, 0);
    detail::big_vector<std::uint32_t> nbrs;
    detail::big_vector<float> wts;
    std::vector<link> row;
    for (std::size_t s = 0; s < links.size();) {
        const std::uint32_t a = links[s].a;
        row.clear();
        std::size_t t = s;
        while (t < links.size() && links[t].a == a) {
            link merged = links[t];
            std::size_t u = t + 1;
            for (; u < links.size() && links[u].a == a && links[u].b == merged.b; ++u) merged.w += links[u].w;
            row.push_back(merged);
            t = u;
        }
        if (cfg.top_m != 0 && row.size() > cfg.top_m) {
            std::partial_sort(row.begin(), row.begin() + cfg.top_m, row.end(), [](const link& x, const link& y) {
                return x.w != y.w ? x.w > y.w : x.b < y.b;
            });
            row.resize(cfg.top_m);
            std::sort(row.begin(), row.end(), [](const link& x, const link& y) { return x.b < y.b; });
        }
        for (const link& l : row) {
            nbrs.push_back(l.b);
            wts.push_back(static_cast<float>(l.w));
        }
        offsets[a + 1] = row.size();
        s = t;
    }
    for (std::size_t i = 0; i < item_count; ++i) offsets[i + 1] += offsets[i];
    return item_graph(std::move(offsets), std::move(nbrs), std::move(wts));
}

}  // namespace poem
