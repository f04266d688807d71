#pragma once
// The partial-order state done the obvious way: every request kept in a vector, bounds applied by
// erasing, std::stable_sort per record, std::set for the dedup. tests/test_order.cpp checks
// poem::partial_order_state against it; bench_order times it as the naive baseline.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <set>
#include <vector>

#include "poem/fusion/quintuple.hpp"
#include "poem/order/state.hpp"

namespace poem_reference {

struct po_state {
    std::size_t max_tokens, max_requests;
    std::vector<std::vector<poem::quintuple>> requests;  // oldest first, each in kept order

    void record(std::vector<poem::quintuple> s) {
        if (s.empty()) return;
        std::stable_sort(s.begin(), s.end(), [](const poem::quintuple& a, const poem::quintuple& b) {
            if (a.level != b.level) return a.level < b.level;
            const bool an = std::isnan(a.fused_score), bn = std::isnan(b.fused_score);
            if (an != bn) return bn;
            return !an && a.fused_score > b.fused_score;
        });
        if (s.size() > max_tokens) s.resize(max_tokens);
        auto tokens = [&] {
            std::size_t t = 0;
            for (auto& r : requests) t += r.size();
            return t;
        };
        while (!requests.empty() && (tokens() + s.size() > max_tokens || requests.size() + 1 > max_requests))
            requests.erase(requests.begin());
        requests.push_back(s);
    }
    poem::po_sequence sequence(std::int64_t now, std::size_t length) const {
        poem::po_sequence o;
        o.length = length;
        std::set<std::uint64_t> seen;
        std::uint32_t ri = 0;
        for (std::size_t r = requests.size(); r-- > 0;) {
            if (requests[r][0].request_time > now) continue;
            for (auto& q : requests[r]) {
                if (o.item_id.size() == length) break;
                if (!seen.insert(q.item_id).second) continue;
                o.item_id.push_back(q.item_id);
                o.fused_score.push_back(q.fused_score);
                o.rank_pct.push_back(q.rank_pct);
                o.level.push_back(q.level);
                o.age_seconds.push_back(static_cast<float>(now - q.request_time));
                o.request_index.push_back(ri);
                o.mask.push_back(1);
            }
            ++ri;
        }
        o.count = o.item_id.size();
        o.item_id.resize(length, 0);
        o.fused_score.resize(length, 0);
        o.rank_pct.resize(length, 0);
        o.level.resize(length, 0);
        o.age_seconds.resize(length, 0);
        o.request_index.resize(length, 0);
        o.mask.resize(length, 0);
        return o;
    }
};

}  // namespace poem_reference
