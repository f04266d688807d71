#pragma once
// Pareto levels for K >= 4 (not part of the API): ENS with binary search over levels, each level kept
// in a bucket k-d tree over objectives 1..K-1 (ENS-NDT, Gustavsson & Syberfeldt 2018).
//
// Candidates arrive in lexicographic order, so an earlier candidate is at least as good on objective
// 0 and "p dominates c" is "p <= c on the D = K-1 other keys". A level's tree splits a full bucket at
// the median of one of those keys (left: < value, right: >= value); every node keeps the lower corner
// of its points' box, so a query for c skips each subtree whose corner exceeds c on some key, and
// scans the leaf buckets it reaches in full. Buckets are stored by key (B values of key 0, then B of
// key 1, ...), unused slots hold the largest key, so a scan is D fixed-length compare loops the
// compiler vectorises; no intrinsics. A level smaller than one bucket is a plain scan of it (ENS with
// blocks), which is what small requests see.
//
// Each level of more than one bucket also keeps the last 2B members found dominating a query (its
// recent dominators, two buckets, the oldest replaced) and scans them before its tree: a dominator of
// one candidate often dominates later ones, and a query that one of them answers visits no node (at
// N = 20000 they answer 77-94 % of the queries that find a dominator, K = 4 to 8).
//
// Keys are the order-preserving unsigned sort keys with the sign bit flipped, compared as int32 (SSE2
// and AVX2 have signed compares only). Finite keys stay below INT32_MAX, the empty-slot filler.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "poem/core/error.hpp"
#include "poem/core/target_namespace.hpp"
#include "poem/core/workspace.hpp"
#include "poem/order/detail/sort.hpp"

namespace poem::detail {
inline namespace POEM_TARGET_NAMESPACE {

// Bucket size: two vectors per key at the width the compiler vectorises for. With AVX-512, 32 took
// 11-18 % less time than 16 (K = 4, 5, 8; N = 5000, 20000; Zen 5); with AVX2, 32 took 22-50 % more
// than 16, and at SSE2 8 was within noise of 16. The width follows the flags, so this header's code
// lives in the target namespace (core/target_namespace.hpp): translation units built with different
// flags keep their own.
#if defined(__AVX512F__)
inline constexpr std::size_t pareto_bucket = 32;
#else
inline constexpr std::size_t pareto_bucket = 16;
#endif

// Stride of a candidate's D keys (and of a node's lower corner): D rounded up to 4 or 8, so that whole
// vectors compare them.
constexpr std::size_t pareto_stride(std::size_t d) noexcept { return d <= 4 ? 4 : (d + 7) / 8 * 8; }

// DC = D (dims known at compile time) or 0 (D at run time, K > 16).
template <std::size_t DC>
class pareto_level_trees {
public:
    static constexpr std::size_t B = pareto_bucket;
    static constexpr std::int32_t empty = std::numeric_limits<std::int32_t>::max();

    // m: candidates to place. A level and a leaf hold >= 1 point: <= m leaves, and as nodes come in
    // pairs (a root and a spare, or the two halves of a split), <= 2m nodes.
    pareto_level_trees(workspace_scope& scope, std::size_t d, std::size_t m)
        : scope_(scope), d_(DC != 0 ? DC : d) {
        nodes_ = scope.alloc<std::int32_t>((2 * m + 2) * record()).data();
        buckets_ = scope.alloc<std::int32_t*>(m + 1).data();
        roots_ = scope.alloc<std::uint32_t>(m + 1).data();
        recent_ = scope.alloc<std::int32_t*>(m + 1).data();
        recent_next_ = scope.alloc<std::uint32_t>(m + 1).data();
        stack_ = scope.alloc<std::uint32_t>(2 * m + 2).data();
        split_ = scope.alloc<std::int32_t>(d_ * (B + 1) + B + 1).data();
    }

    std::uint32_t levels() const noexcept { return levels_; }

    // Does some member of level l weakly dominate c (c: stride() keys)?
    bool dominated(std::uint32_t l, const std::int32_t* c) noexcept {
        const bool tree = node(roots_[l])[0] != leaf;  // a lone leaf is one scan anyway
        if (tree && (dominators(recent_[l], c) | dominators(recent_[l] + dims() * B, c)) != 0) return true;
        std::size_t sp = 0;
        if (may_dominate(roots_[l], c)) stack_[sp++] = roots_[l];
        while (sp > 0) {
            const std::int32_t* nd = node(stack_[--sp]);
            if (nd[0] == leaf) {
                const std::int32_t* b = buckets_[nd[2]];
                const unsigned found = dominators(b, c);
                if (found == 0) continue;
                if (tree) {  // the first dominator found replaces the oldest recent one
                    const auto s = static_cast<std::size_t>(__builtin_ctz(found));
                    const std::size_t at = recent_next_[l]++ % (2 * B);
                    std::int32_t* to = recent_[l] + at / B * dims() * B + at % B;
                    for (std::size_t j = 0; j < dims(); ++j) to[j * B] = b[j * B + s];
                }
                return true;
            }
            const auto lo = static_cast<std::uint32_t>(nd[2]);  // the right child is lo + 1
            if (may_dominate(lo + 1, c)) stack_[sp++] = lo + 1;
            if (may_dominate(lo, c)) stack_[sp++] = lo;  // smaller keys first: likelier
        }
        return false;
    }

    // First level with no member dominating c (the predicate is monotone in the level).
    std::uint32_t place(const std::int32_t* c) noexcept {
        return first_free_level(levels_, [&](std::uint32_t l) { return dominated(l, c); });
    }

    // Adds c (distinct from every member of level l on the D keys) to level l <= levels().
    void insert(std::uint32_t l, const std::int32_t* c) {
        if (l == levels_) {
            roots_[levels_++] = new_leaf(new_bucket());
            ++nodes_used_;  // the spare keeps pairs aligned
        }
        std::uint32_t at = roots_[l];
        std::size_t depth = 0;
        for (;;) {
            lower(at, c);
            const std::int32_t* nd = node(at);
            if (nd[0] == leaf) break;
            at = static_cast<std::uint32_t>(nd[2]) + (c[nd[0]] < nd[1] ? 0 : 1);
            ++depth;
        }
        std::int32_t* nd = node(at);
        if (nd[3] < static_cast<std::int32_t>(B)) {
            std::int32_t* b = buckets_[nd[2]];
            for (std::size_t j = 0; j < dims(); ++j) b[j * B + static_cast<std::size_t>(nd[3])] = c[j];
            ++nd[3];
            return;
        }
        if (depth == 0) {  // the root splits: the level becomes a tree and gets its recent dominators
            std::int32_t* recent = scope_.alloc<std::int32_t>(2 * dims() * B).data();
            std::fill(recent, recent + 2 * dims() * B, empty);
            recent_[l] = recent;
            recent_next_[l] = 0;
        }
        split(at, c, depth);
    }

private:
    // A node is record() int32: split key (`leaf` for a leaf), split value (left: keys < value),
    // first child (the second follows it; a leaf: its bucket), a leaf's count, then the lower corner
    // of the subtree's box (stride() keys, padded with INT32_MIN).
    static constexpr std::int32_t leaf = -1;

    std::size_t dims() const noexcept { return DC != 0 ? DC : d_; }
    std::size_t stride() const noexcept { return pareto_stride(dims()); }
    std::size_t record() const noexcept { return 4 + stride(); }
    std::int32_t* node(std::uint32_t at) const noexcept { return nodes_ + std::size_t(at) * record(); }

    // Can a point of the subtree be <= c everywhere? Its box's lower corner tells; the whole stride
    // compares (padding: INT32_MIN), so the loop is one or two vector compares.
    bool may_dominate(std::uint32_t at, const std::int32_t* c) const noexcept {
        const std::int32_t* lo = node(at) + 4;
        std::int32_t worse = 0;
        for (std::size_t j = 0; j < stride(); ++j) worse |= lo[j] > c[j];
        return worse == 0;
    }

    void lower(std::uint32_t at, const std::int32_t* c) noexcept {
        std::int32_t* lo = node(at) + 4;
        for (std::size_t j = 0; j < stride(); ++j) lo[j] = std::min(lo[j], c[j]);
    }

    // Bit s set: member s of the bucket is <= c on every key. Fixed trip counts, no early exit: vectorised.
    unsigned dominators(const std::int32_t* p, const std::int32_t* c) const noexcept {
        static_assert(B <= 32, "poem: a bucket's members are the bits of an unsigned");
        std::int32_t worse[B] = {};
        for (std::size_t j = 0; j < dims(); ++j) {
            const std::int32_t cj = c[j];
            for (std::size_t s = 0; s < B; ++s) worse[s] |= p[j * B + s] > cj;
        }
        unsigned found = 0;
        for (std::size_t s = 0; s < B; ++s) found |= unsigned(worse[s] == 0) << s;
        return found;
    }

    std::int32_t new_bucket() {
        std::int32_t* b = scope_.alloc<std::int32_t>(dims() * B).data();
        std::fill(b, b + dims() * B, empty);
        buckets_[buckets_used_] = b;
        return static_cast<std::int32_t>(buckets_used_++);
    }

    std::uint32_t new_leaf(std::int32_t bucket) noexcept {
        std::int32_t* nd = node(static_cast<std::uint32_t>(nodes_used_));
        nd[0] = leaf;
        nd[1] = 0;
        nd[2] = bucket;
        nd[3] = 0;
        std::fill(nd + 4, nd + 4 + dims(), empty);
        std::fill(nd + 4 + dims(), nd + record(), std::numeric_limits<std::int32_t>::min());
        return static_cast<std::uint32_t>(nodes_used_++);
    }

    // The full leaf `at` plus c: split at the median of the first key, from depth % D on, that tells
    // its B + 1 points apart (one always does: a level's members differ on the D keys).
    void split(std::uint32_t at, const std::int32_t* c, std::size_t depth) {
        const std::size_t d = dims();
        std::int32_t* pts = split_;  // (B + 1) x D, by key
        std::int32_t* vals = split_ + d * (B + 1);
        const std::int32_t old = node(at)[2];
        const std::int32_t* b = buckets_[old];
        for (std::size_t j = 0; j < d; ++j) {
            std::copy(b + j * B, b + j * B + B, pts + j * (B + 1));
            pts[j * (B + 1) + B] = c[j];
        }
        std::size_t dim = d;
        std::int32_t value = 0;
        for (std::size_t t = 0; t < d && dim == d; ++t) {
            const std::size_t j = (depth + t) % d;
            std::copy(pts + j * (B + 1), pts + j * (B + 1) + B + 1, vals);
            std::sort(vals, vals + B + 1);
            if (vals[0] == vals[B]) continue;
            value = vals[(B + 1) / 2];
            if (value == vals[0]) value = *std::upper_bound(vals, vals + B + 1, vals[0]);
            dim = j;
        }
        check(dim < d, "pareto_levels: internal error (identical members in a level)");
        const std::uint32_t lo = new_leaf(old);  // the left half keeps the old bucket
        new_leaf(new_bucket());
        std::int32_t* half[2] = {node(lo), node(lo + 1)};
        std::fill(buckets_[old], buckets_[old] + d * B, empty);
        for (std::size_t s = 0; s <= B; ++s) {
            std::int32_t* h = half[pts[dim * (B + 1) + s] < value ? 0 : 1];
            std::int32_t* to = buckets_[h[2]];
            for (std::size_t j = 0; j < d; ++j) {
                to[j * B + static_cast<std::size_t>(h[3])] = pts[j * (B + 1) + s];
                h[4 + j] = std::min(h[4 + j], pts[j * (B + 1) + s]);
            }
            ++h[3];
        }
        std::int32_t* nd = node(at);
        nd[0] = static_cast<std::int32_t>(dim);
        nd[1] = value;
        nd[2] = static_cast<std::int32_t>(lo);
    }

    workspace_scope& scope_;
    std::size_t d_;
    std::int32_t* nodes_ = nullptr;
    std::int32_t** buckets_ = nullptr;
    std::uint32_t* roots_ = nullptr;
    std::int32_t** recent_ = nullptr;  // per level that is a tree: 2B recent dominators, by key like a bucket
    std::uint32_t* recent_next_ = nullptr;
    std::uint32_t* stack_ = nullptr;
    std::int32_t* split_ = nullptr;
    std::size_t nodes_used_ = 0, buckets_used_ = 0;
    std::uint32_t levels_ = 0;
};

// Levels of the m sorted candidates; pts: m x pareto_stride(D) keys (sign-flipped, see above; the
// padding is read, never used), same: same[i] when
// candidate i is identical to i - 1 (it takes its level). Returns the number of levels.
template <std::size_t DC>
std::uint32_t pareto_levels_tree(workspace_scope& scope, const std::int32_t* pts, const std::uint8_t* same,
                                 std::size_t m, std::size_t d, std::uint32_t* lv) {
    pareto_level_trees<DC> t(scope, d, m);
    const std::size_t dd = pareto_stride(DC != 0 ? DC : d);
    for (std::size_t i = 0; i < m; ++i) {
        if (same[i]) {
            lv[i] = lv[i - 1];
            continue;
        }
        const std::int32_t* c = pts + i * dd;
        const std::uint32_t l = t.place(c);
        t.insert(l, c);
        lv[i] = l;
    }
    return t.levels();
}

}  // namespace POEM_TARGET_NAMESPACE
}  // namespace poem::detail
