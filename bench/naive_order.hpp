#pragma once
// The naive Pareto baseline of the benchmarks: Deb's fast non-dominated sort (domination counts and
// dominated lists), O(K N^2) time and up to O(N^2) memory (bench_order, bench_pipeline).
#include <cstdint>
#include <utility>
#include <vector>

#include "poem/fusion/config.hpp"

namespace poem_bench {

struct naive_state {
    std::vector<std::vector<std::uint32_t>> dominated;  // S_p
    std::vector<std::uint32_t> count;                   // n_p
    std::vector<std::uint32_t> front, next;
    std::vector<std::uint32_t> level;
};

inline void naive_levels(const float* s, std::size_t k, std::size_t n, const std::vector<poem::direction>& d, naive_state& st) {
    st.dominated.resize(n);
    for (auto& v : st.dominated) v.clear();
    st.count.assign(n, 0);
    st.level.assign(n, 0);
    for (std::size_t p = 0; p < n; ++p)
        for (std::size_t q = p + 1; q < n; ++q) {
            bool p_better = false, q_better = false;
            for (std::size_t j = 0; j < k; ++j) {
                float a = s[j * n + p], b = s[j * n + q];
                if (d[j] == poem::direction::lower_is_better) std::swap(a, b);
                p_better |= a > b;
                q_better |= b > a;
            }
            if (p_better && !q_better) {
                st.dominated[p].push_back(static_cast<std::uint32_t>(q));
                ++st.count[q];
            } else if (q_better && !p_better) {
                st.dominated[q].push_back(static_cast<std::uint32_t>(p));
                ++st.count[p];
            }
        }
    st.front.clear();
    for (std::size_t p = 0; p < n; ++p)
        if (st.count[p] == 0) st.front.push_back(static_cast<std::uint32_t>(p));
    std::uint32_t l = 0;
    while (!st.front.empty()) {
        st.next.clear();
        for (auto p : st.front) {
            st.level[p] = l;
            for (auto q : st.dominated[p])
                if (--st.count[q] == 0) st.next.push_back(q);
        }
        st.front.swap(st.next);
        ++l;
    }
}

}  // namespace poem_bench
