#pragma once
// Vose's alias method: O(n) build from non-negative weights, O(1) draws.
//
// A draw takes one 64-bit random number r. The column is the high half of the 128-bit product r * n
// (Lemire's multiply-shift: no division, no modulo) and the low half is the uniform position inside
// that column, whose top 32 bits are compared with the column's threshold (the probability of keeping
// the column, stored as a u32 fraction of 2^32). No floating point at draw time. The bias of the
// multiply-shift is at most n / 2^64 per column and the threshold resolution is 2^-32 per column.
//
// Zero weights are never drawn. All-zero, negative, NaN or infinite weights throw poem::error naming
// the index.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/rng.hpp"
#include "poem/core/span.hpp"

namespace poem {

namespace detail {

// Threshold for "keep the column" probability p in [0, 1]: draw keeps the column when frac < threshold.
inline std::uint32_t alias_threshold(double p, bool positive) noexcept {
    if (!(p > 0.0)) return 0;
    const double t = p * 4294967296.0;  // 2^32
    std::uint32_t thr = t >= 4294967295.0 ? 0xFFFFFFFFu : static_cast<std::uint32_t>(t + 0.5);
    if (thr == 0 && positive) thr = 1;  // a positive weight stays drawable
    return thr;
}

// Vose's construction over n already validated weights (finite, >= 0, positive sum). Writes, per
// column c, threshold[c] and alias[c] (a column index). Full columns alias themselves so that
// frac == 0xFFFFFFFF also lands on them. Scratch vectors are reused between calls.
template <class W>
void build_vose(const W* w, std::size_t n, double sum, std::uint32_t* threshold, std::uint32_t* alias,
                std::vector<double>& scaled, std::vector<std::uint32_t>& small,
                std::vector<std::uint32_t>& large) {
    scaled.resize(n);
    small.clear();
    large.clear();
    const double scale = static_cast<double>(n) / sum;
    std::uint32_t heaviest = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double x = static_cast<double>(w[i]);
        if (x > static_cast<double>(w[heaviest])) heaviest = static_cast<std::uint32_t>(i);
        scaled[i] = x * scale;
        (scaled[i] < 1.0 ? small : large).push_back(static_cast<std::uint32_t>(i));
    }
    while (!small.empty() && !large.empty()) {
        const std::uint32_t s = small.back();
        small.pop_back();
        const std::uint32_t l = large.back();
        threshold[s] = alias_threshold(scaled[s], w[s] > W(0));
        alias[s] = l;
        scaled[l] = (scaled[l] + scaled[s]) - 1.0;
        if (scaled[l] < 1.0) {
            large.pop_back();
            small.push_back(l);
        }
    }
    for (std::uint32_t l : large) {
        threshold[l] = 0xFFFFFFFFu;
        alias[l] = l;
    }
    // Left over from rounding: columns whose mass is (numerically) complete. A zero weight must
    // never be kept, so it points at the heaviest column instead.
    for (std::uint32_t s : small) {
        if (w[s] > W(0)) {
            threshold[s] = 0xFFFFFFFFu;
            alias[s] = s;
        } else {
            threshold[s] = 0;
            alias[s] = heaviest;
        }
    }
}

// One draw from column-count n: column and the 32-bit position inside it, from one 64-bit number.
struct column_draw {
    std::uint64_t column;
    std::uint32_t frac;
};
inline column_draw split_draw(std::uint64_t r, std::uint64_t n) noexcept {
    const detail::u128 m = static_cast<detail::u128>(r) * n;
    return {static_cast<std::uint64_t>(m >> 64), static_cast<std::uint32_t>(static_cast<std::uint64_t>(m) >> 32)};
}

// Validates weights (finite, >= 0, not all zero) and returns their sum; `what` names the argument.
template <class W>
double checked_weight_sum(const W* w, std::size_t n, const char* what) {
    static_assert(std::is_arithmetic_v<W>, "weights must be arithmetic");
    check(n > 0, what, ": no weights");
    check(n <= 0xFFFFFFFFull, what, ": ", n, " weights, at most 2^32 - 1 supported");
    double sum = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        const double x = static_cast<double>(w[i]);
        check(std::isfinite(x), what, "[", i, "] is not finite (", x, ")");
        check(x >= 0.0, what, "[", i, "] is negative (", x, ")");
        sum += x;
    }
    check(sum > 0.0, what, ": all ", n, " weights are zero");
    check(std::isfinite(sum), what, ": the sum of the weights overflows");
    return sum;
}

}  // namespace detail

class alias_table {
public:
    struct entry {
        std::uint32_t threshold;  // keep the column when the 32-bit position < threshold
        std::uint32_t alias;      // else this index
    };

    alias_table() = default;

    // From weights (float, double or integer counts). Throws poem::error naming a bad index.
    template <class W>
    explicit alias_table(span<const W> weights) {
        const double sum = detail::checked_weight_sum(weights.data(), weights.size(), "alias_table: weights");
        std::vector<double> scaled;
        std::vector<std::uint32_t> small, large, thr(weights.size()), al(weights.size());
        detail::build_vose(weights.data(), weights.size(), sum, thr.data(), al.data(), scaled, small, large);
        table_.resize(weights.size());
        for (std::size_t i = 0; i < weights.size(); ++i) table_[i] = {thr[i], al[i]};
    }
    template <class W, class A>
    explicit alias_table(const std::vector<W, A>& weights) : alias_table(span<const W>(weights.data(), weights.size())) {}

    std::size_t size() const noexcept { return table_.size(); }
    bool empty() const noexcept { return table_.empty(); }
    span<const entry> entries() const noexcept { return {table_.data(), table_.size()}; }

    // One draw, O(1): an index in [0, size()), drawn with probability weight / sum. Not empty().
    std::uint32_t draw(rng& g) const noexcept {
        const auto d = detail::split_draw(g(), table_.size());
        const entry e = table_[d.column];
        return d.frac < e.threshold ? static_cast<std::uint32_t>(d.column) : e.alias;
    }

    // Fills `out` with independent draws.
    void draw(rng& g, span<std::uint32_t> out) const noexcept {
        for (auto& x : out) x = draw(g);
    }

    // The exact probability of each index that the table implements (for tests): matches the
    // normalised weights to within about n * 2^-32.
    std::vector<double> implied_probabilities() const {
        const std::size_t n = table_.size();
        std::vector<double> p(n, 0.0);
        for (std::size_t c = 0; c < n; ++c) {
            const double keep = static_cast<double>(table_[c].threshold) / 4294967296.0;
            p[c] += keep / static_cast<double>(n);
            p[table_[c].alias] += (1.0 - keep) / static_cast<double>(n);
        }
        return p;
    }

private:
    std::vector<entry> table_;
};

}  // namespace poem
