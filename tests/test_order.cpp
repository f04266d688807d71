// order/: Pareto levels against a brute-force reference (random, tied, duplicated, correlated and
// non-finite data, both directions); tiers; assign_levels; sampling; the partial-order state, its
// sequence and serialisation (round trips, every truncation, corrupted bytes); the chronological
// sequence.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "poem/core/rng.hpp"
#include "poem/order/order.hpp"

#include "reference/po_state.hpp"

namespace {

constexpr float nan_f = std::numeric_limits<float>::quiet_NaN();
constexpr float inf_f = std::numeric_limits<float>::infinity();

using poem::direction;

// ---- data -------------------------------------------------------------------------------------

enum class kind { uniform, tied, duplicated, correlated, anticorrelated, nonfinite };
const kind all_kinds[] = {kind::uniform, kind::tied, kind::duplicated, kind::correlated, kind::anticorrelated,
                          kind::nonfinite};

std::vector<float> make_scores(std::size_t k, std::size_t n, kind what, std::uint64_t seed) {
    poem::rng g(seed);
    std::vector<float> s(k * n);
    for (std::size_t i = 0; i < n; ++i) {
        const float base = g.uniform_float();
        for (std::size_t r = 0; r < k; ++r) {
            float& x = s[r * n + i];
            switch (what) {
                case kind::uniform: x = g.uniform_float(); break;
                case kind::tied: x = 0.25f * static_cast<float>(g.below(4)) * (g.below(2) ? 1.0f : -1.0f); break;
                case kind::duplicated: x = static_cast<float>(g.below(3)); break;
                case kind::correlated: x = base + 0.1f * g.uniform_float(); break;
                case kind::anticorrelated: x = (r % 2 ? base : 1.0f - base) + 0.05f * g.uniform_float(); break;
                case kind::nonfinite: {
                    const auto u = g.below(25);
                    x = u == 0 ? nan_f : u == 1 ? inf_f : u == 2 ? -inf_f : 0.125f * static_cast<float>(g.below(8));
                    break;
                }
            }
        }
    }
    if (what == kind::duplicated && n > 1)  // and exact copies of other candidates
        for (std::size_t i = 0; i < n / 3; ++i) {
            const std::size_t a = g.below(n), b = g.below(n);
            for (std::size_t r = 0; r < k; ++r) s[r * n + a] = s[r * n + b];
        }
    return s;
}

std::vector<direction> make_dirs(std::size_t k, std::uint64_t seed) {
    poem::rng g(seed ^ 0xABCDu);
    std::vector<direction> d(k);
    for (auto& x : d) x = g.below(2) ? direction::higher_is_better : direction::lower_is_better;
    return d;
}

bool finite_column(const std::vector<float>& s, std::size_t k, std::size_t n, std::size_t i) {
    for (std::size_t r = 0; r < k; ++r)
        if (!std::isfinite(s[r * n + i])) return false;
    return true;
}

// a dominates b: at least as good everywhere, better somewhere.
bool dominates(const std::vector<float>& s, std::size_t k, std::size_t n, const std::vector<direction>& d,
               std::size_t a, std::size_t b) {
    bool better = false;
    for (std::size_t r = 0; r < k; ++r) {
        float x = s[r * n + a], y = s[r * n + b];
        if (d[r] == direction::lower_is_better) std::swap(x, y);
        if (x < y) return false;
        if (x > y) better = true;
    }
    return better;
}

// Brute force: peel the non-dominated set again and again. Non-finite candidates form the last level.
poem::levels_result reference_levels(const std::vector<float>& s, std::size_t k, std::size_t n,
                                     const std::vector<direction>& d) {
    poem::levels_result out;
    out.level.assign(n, 0);
    std::vector<std::size_t> left;
    for (std::size_t i = 0; i < n; ++i) {
        if (finite_column(s, k, n, i)) left.push_back(i);
        else ++out.nonfinite;
    }
    std::uint32_t level = 0;
    while (!left.empty()) {
        std::vector<std::size_t> front, rest;
        for (std::size_t a : left) {
            bool dominated = false;
            for (std::size_t b : left)
                if (dominates(s, k, n, d, b, a)) {
                    dominated = true;
                    break;
                }
            (dominated ? rest : front).push_back(a);
        }
        for (std::size_t a : front) out.level[a] = level;
        ++level;
        left.swap(rest);
    }
    for (std::size_t i = 0; i < n; ++i)
        if (!finite_column(s, k, n, i)) out.level[i] = level;
    out.count = level + (out.nonfinite > 0 ? 1 : 0);
    return out;
}

// The defining property, checked directly: every finite candidate of level l > 0 is dominated by some
// candidate of level l-1, and none is dominated by a candidate of its own level.
void check_layering(const std::vector<float>& s, std::size_t k, std::size_t n, const std::vector<direction>& d,
                    const poem::levels_result& lv) {
    std::vector<std::vector<std::size_t>> by_level(lv.count);
    for (std::size_t i = 0; i < n; ++i) {
        REQUIRE(lv.level[i] < lv.count);
        by_level[lv.level[i]].push_back(i);
    }
    for (std::uint32_t l = 0; l < lv.count; ++l) REQUIRE(!by_level[l].empty());  // dense
    const std::uint32_t finite_levels = lv.count - (lv.nonfinite > 0 ? 1 : 0);
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t l = lv.level[i];
        if (!finite_column(s, k, n, i)) {
            REQUIRE(l == lv.count - 1);
            continue;
        }
        REQUIRE(l < finite_levels);
        for (std::size_t j : by_level[l]) REQUIRE_FALSE(dominates(s, k, n, d, j, i));
        if (l > 0) {
            bool found = false;
            for (std::size_t j : by_level[l - 1]) found = found || dominates(s, k, n, d, j, i);
            REQUIRE(found);
        }
    }
}

}  // namespace

// ---- Pareto levels ------------------------------------------------------------------------------

namespace {
// The two ways levels for K >= 3 are found, each forced whatever pareto_levels would choose for the size.
using poem::detail::pareto_method;
const pareto_method both_methods[] = {pareto_method::search, pareto_method::bitset};

void pareto_levels_by(const std::vector<float>& s, std::size_t k, std::size_t n, const std::vector<direction>& d,
                      pareto_method method, poem::workspace& ws, poem::levels_result& out) {
    poem::detail::pareto_levels(poem::matrix_view<const float>(s.data(), k, n), d, ws, out, method);
}
}  // namespace

TEST_CASE("pareto_levels equals the brute-force reference", "[order][pareto]") {
    poem::workspace ws;  // shared across calls: reuse must not leak state
    const std::size_t ks[] = {1, 2, 3, 4, 5, 8};
    const std::size_t ns[] = {0, 1, 2, 3, 7, 40, 257};
    std::uint64_t seed = 1;
    for (std::size_t k : ks)
        for (std::size_t n : ns)
            for (kind what : all_kinds)
                for (int rep = 0; rep < 2; ++rep, ++seed) {
                    const auto s = make_scores(k, n, what, seed);
                    const auto d = make_dirs(k, seed);
                    const auto got = poem::pareto_levels(poem::matrix_view<const float>(s.data(), k, n), d, ws);
                    const auto want = reference_levels(s, k, n, d);
                    INFO("k=" << k << " n=" << n << " kind=" << static_cast<int>(what) << " seed=" << seed);
                    REQUIRE(got.count == want.count);
                    REQUIRE(got.nonfinite == want.nonfinite);
                    REQUIRE(got.level == want.level);
                    for (pareto_method method : both_methods) {
                        poem::levels_result by;
                        pareto_levels_by(s, k, n, d, method, ws, by);
                        INFO("method=" << static_cast<int>(method));
                        REQUIRE(by.count == want.count);
                        REQUIRE(by.nonfinite == want.nonfinite);
                        REQUIRE(by.level == want.level);
                    }
                }
}

TEST_CASE("pareto_levels layering property on larger requests", "[order][pareto]") {
    poem::workspace ws;
    poem::levels_result lv;
    for (std::size_t k : {2u, 3u, 4u, 5u, 6u, 8u, 12u, 16u})
        for (kind what : all_kinds) {
            const std::size_t n = 1500;
            const auto s = make_scores(k, n, what, 77 + k);
            const auto d = make_dirs(k, 5 + k);
            poem::pareto_levels(poem::matrix_view<const float>(s.data(), k, n), d, ws, lv);
            INFO("k=" << k << " kind=" << static_cast<int>(what));
            check_layering(s, k, n, d, lv);
        }
}

TEST_CASE("pareto_levels special cases", "[order][pareto]") {
    poem::workspace ws;
    const std::vector<direction> hh{direction::higher_is_better, direction::higher_is_better};
    SECTION("a chain is one level per candidate, an antichain one level") {
        const std::vector<float> chain{1, 2, 3, 4, /* */ 1, 2, 3, 4};
        auto lv = poem::pareto_levels(poem::matrix_view<const float>(chain.data(), 2, 4), hh, ws);
        CHECK(lv.count == 4);
        CHECK(lv.level == std::vector<std::uint32_t>{3, 2, 1, 0});
        const std::vector<float> anti{1, 2, 3, 4, /* */ 4, 3, 2, 1};
        lv = poem::pareto_levels(poem::matrix_view<const float>(anti.data(), 2, 4), hh, ws);
        CHECK(lv.count == 1);
        CHECK(lv.level == std::vector<std::uint32_t>{0, 0, 0, 0});
    }
    SECTION("identical candidates share a level; -0 equals +0") {
        const std::vector<float> s{0.0f, -0.0f, 1.0f, /* */ 1.0f, 1.0f, 0.0f};
        auto lv = poem::pareto_levels(poem::matrix_view<const float>(s.data(), 2, 3), hh, ws);
        CHECK(lv.level == std::vector<std::uint32_t>{0, 0, 0});
    }
    SECTION("equal on the first objective, better on the second dominates") {
        const std::vector<float> s{1, 1, 1, /* */ 3, 2, 3};
        auto lv = poem::pareto_levels(poem::matrix_view<const float>(s.data(), 2, 3), hh, ws);
        CHECK(lv.level == std::vector<std::uint32_t>{0, 1, 0});
    }
    SECTION("non-finite candidates form the last level and are counted") {
        const std::vector<float> s{1, nan_f, 0.5f, inf_f, /* */ 1, 1, -inf_f, 0.2f};
        auto lv = poem::pareto_levels(poem::matrix_view<const float>(s.data(), 2, 4), hh, ws);
        CHECK(lv.count == 2);
        CHECK(lv.nonfinite == 3);
        CHECK(lv.level == std::vector<std::uint32_t>{0, 1, 1, 1});
        const std::vector<float> all_bad{nan_f, inf_f, nan_f, nan_f};
        lv = poem::pareto_levels(poem::matrix_view<const float>(all_bad.data(), 2, 2), hh, ws);
        CHECK(lv.count == 1);
        CHECK(lv.level == std::vector<std::uint32_t>{0, 0});
    }
    SECTION("lower_is_better mirrors") {
        const std::vector<float> s{1, 2, 3};
        const std::vector<direction> lo{direction::lower_is_better};
        auto lv = poem::pareto_levels(poem::matrix_view<const float>(s.data(), 1, 3), lo, ws);
        CHECK(lv.level == std::vector<std::uint32_t>{0, 1, 2});
    }
    SECTION("large antichains and chains (K = 3 staircases grow and shrink)") {
        const std::size_t n = 3000;
        std::vector<float> s(3 * n);
        poem::rng g(12);
        for (std::size_t i = 0; i < n; ++i) {
            s[i] = static_cast<float>(i);
            s[n + i] = static_cast<float>(n - i);
            s[2 * n + i] = g.uniform_float();
        }
        const std::vector<direction> hhh(3, direction::higher_is_better);
        auto lv = poem::pareto_levels(poem::matrix_view<const float>(s.data(), 3, n), hhh, ws);
        CHECK(lv.count == 1);
        for (std::size_t i = 0; i < n; ++i) s[n + i] = static_cast<float>(i);  // now a chain on 0 and 1
        lv = poem::pareto_levels(poem::matrix_view<const float>(s.data(), 3, n), hhh, ws);
        check_layering(s, 3, n, hhh, lv);
        for (std::size_t i = 0; i < n; ++i) s[2 * n + i] = static_cast<float>((i * 7919) % 101);
        lv = poem::pareto_levels(poem::matrix_view<const float>(s.data(), 3, n), hhh, ws);
        check_layering(s, 3, n, hhh, lv);
    }
    SECTION("K = 3 against the reference on larger requests") {
        for (kind what : all_kinds) {
            const std::size_t n = 700;
            const auto s = make_scores(3, n, what, 4242);
            const auto d = make_dirs(3, 17);
            const auto got = poem::pareto_levels(poem::matrix_view<const float>(s.data(), 3, n), d, ws);
            REQUIRE(got.level == reference_levels(s, 3, n, d).level);
        }
    }
    SECTION("errors name the argument") {
        const std::vector<float> s{1, 2, 3, 4};
        CHECK_THROWS_WITH(poem::pareto_levels(poem::matrix_view<const float>(s.data(), 2, 2),
                                              std::vector<direction>{direction::higher_is_better}, ws),
                          Catch::Contains("dirs"));
        CHECK_THROWS_AS(poem::pareto_levels(poem::matrix_view<const float>(s.data(), 0, 4),
                                            std::vector<direction>{}, ws),
                        poem::error);
    }
}

// Every K the level trees are compiled for (4..16), the run-time-K path past them (17, 20), and the
// sweep / staircase paths (2, 3), on every kind of data, at sizes around the trees' internal
// thresholds: one bucket is 16 members (a level of 16 is one full leaf, 17 splits it, 33 splits
// again), and the sort finishes ties on objective 0 by std::sort below m / 64 + 8 tied candidates and
// by a second radix sort on (objective 0, objective 1) above, or first of all when 64 sampled keys
// of objective 0 repeat. Both methods for K >= 3 (the searches over levels and the bitsets) at every
// size; the bitsets' rows are blocks of 256 positions (100 and 300 span one and two).
TEST_CASE("pareto_levels equals the brute-force reference for K = 2..20", "[order][pareto]") {
    poem::workspace ws;
    poem::levels_result got;
    const std::size_t ns[] = {15, 16, 17, 32, 33, 100, 300};
    std::uint64_t seed = 9000;
    for (std::size_t k = 2; k <= 20; k += k < 16 ? 1 : k == 16 ? 1 : 3)
        for (std::size_t n : ns)
            for (kind what : all_kinds) {
                ++seed;
                const auto s = make_scores(k, n, what, seed);
                const auto d = make_dirs(k, seed);
                const auto want = reference_levels(s, k, n, d);
                for (pareto_method method : both_methods) {
                    pareto_levels_by(s, k, n, d, method, ws, got);
                    INFO("k=" << k << " n=" << n << " kind=" << static_cast<int>(what) << " seed=" << seed
                              << " method=" << static_cast<int>(method));
                    REQUIRE(got.count == want.count);
                    REQUIRE(got.nonfinite == want.nonfinite);
                    REQUIRE(got.level == want.level);
                }
            }
}

TEST_CASE("pareto_levels: ties on objective 0 on every sorting path", "[order][pareto]") {
    poem::workspace ws;
    poem::levels_result got;
    const std::size_t n = 600;  // m / 64 + 8 = 17 tied candidates switch to the (0, 1) radix sort
    for (std::size_t k : {2u, 3u, 4u, 5u, 9u, 16u})
        for (std::size_t tied : {1u, 5u, 16u, 17u, 18u, 40u, 300u, 599u})
            for (bool late : {false, true}) {
                // objective 0 continuous but for `tied` candidates copying another's value (after
                // the first 64 when `late`, which the sampled keys then miss); objective 1 quantised
                // now and then, so runs tied on (0, 1) need the remaining objectives too.
                poem::rng g(31 * k + tied + (late ? 7 : 0));
                std::vector<float> s(k * n);
                for (auto& x : s) x = g.uniform_float();
                for (std::size_t i = 0; i < n; ++i)
                    if (g.below(4) == 0) s[n + i] = 0.5f;
                for (std::size_t t = 0; t < tied; ++t) {
                    const std::size_t lo = late ? 64 : 0;
                    const std::size_t a = lo + g.below(n - lo), b = lo + g.below(n - lo);
                    s[a] = s[b];
                }
                const auto d = make_dirs(k, tied);
                const auto want = reference_levels(s, k, n, d);
                for (pareto_method method : both_methods) {
                    pareto_levels_by(s, k, n, d, method, ws, got);
                    INFO("k=" << k << " tied=" << tied << " late=" << late << " method=" << static_cast<int>(method));
                    REQUIRE(got.level == want.level);
                }
            }
    SECTION("objective 0 quantised to 16 values, the rest continuous or coarse") {
        for (std::size_t k : {2u, 3u, 4u, 6u, 8u, 12u})
            for (bool coarse : {false, true}) {
                const std::size_t m = 700;
                poem::rng g(k + (coarse ? 100 : 0));
                std::vector<float> s(k * m);
                for (std::size_t r = 0; r < k; ++r)
                    for (std::size_t i = 0; i < m; ++i)
                        s[r * m + i] = r == 0 ? static_cast<float>(g.below(16)) / 16.0f
                                       : coarse ? static_cast<float>(g.below(5))
                                                : g.uniform_float();
                const auto d = make_dirs(k, 3 * k);
                const auto want = reference_levels(s, k, m, d);
                for (pareto_method method : both_methods) {
                    pareto_levels_by(s, k, m, d, method, ws, got);
                    INFO("k=" << k << " coarse=" << coarse << " method=" << static_cast<int>(method));
                    REQUIRE(got.level == want.level);
                }
            }
    }
}

TEST_CASE("pareto_levels: level trees that split many times", "[order][pareto]") {
    poem::workspace ws;
    poem::levels_result got;
    SECTION("uniform and correlated requests of 1500 candidates") {
        for (std::size_t k : {4u, 5u, 6u, 7u, 8u, 10u, 13u, 16u, 18u})
            for (kind what : {kind::uniform, kind::correlated, kind::anticorrelated}) {
                const std::size_t n = 1500;
                const auto s = make_scores(k, n, what, 500 + k);
                const auto d = make_dirs(k, 600 + k);
                const auto want = reference_levels(s, k, n, d);
                for (pareto_method method : both_methods) {
                    pareto_levels_by(s, k, n, d, method, ws, got);
                    INFO("k=" << k << " kind=" << static_cast<int>(what) << " method=" << static_cast<int>(method));
                    REQUIRE(got.level == want.level);
                }
            }
    }
    SECTION("one large level: an antichain on objectives 0 and 1, the others on a few values") {
        // Buckets full of keys tied on the split objective: the median is often the smallest value.
        for (std::size_t k : {4u, 5u, 8u, 16u}) {
            const std::size_t n = 1200;
            poem::rng g(k);
            std::vector<float> s(k * n);
            for (std::size_t i = 0; i < n; ++i) {
                s[i] = static_cast<float>(i);
                s[n + i] = static_cast<float>(n - i);
                for (std::size_t r = 2; r < k; ++r) s[r * n + i] = static_cast<float>(g.below(3));
            }
            const std::vector<direction> d(k, direction::higher_is_better);
            const auto want = reference_levels(s, k, n, d);
            for (pareto_method method : both_methods) {
                pareto_levels_by(s, k, n, d, method, ws, got);
                INFO("k=" << k << " method=" << static_cast<int>(method));
                CHECK(got.count == 1);
                REQUIRE(got.level == want.level);
            }
        }
    }
    SECTION("a chain: one candidate per level") {
        for (std::size_t k : {4u, 8u, 17u}) {
            const std::size_t n = 300;
            std::vector<float> s(k * n);
            for (std::size_t r = 0; r < k; ++r)
                for (std::size_t i = 0; i < n; ++i) s[r * n + i] = static_cast<float>(i * (r + 1));
            const std::vector<direction> d(k, direction::lower_is_better);
            for (pareto_method method : both_methods) {
                pareto_levels_by(s, k, n, d, method, ws, got);
                REQUIRE(got.count == n);
                for (std::size_t i = 0; i < n; ++i) REQUIRE(got.level[i] == i);
            }
        }
    }
    SECTION("a warm workspace is not reallocated") {
        const std::size_t k = 6, n = 2000;
        const auto s = make_scores(k, n, kind::uniform, 11);
        const auto d = make_dirs(k, 11);
        poem::pareto_levels(poem::matrix_view<const float>(s.data(), k, n), d, ws, got);
        const auto blocks = ws.blocks();
        const auto cap = ws.capacity();
        poem::pareto_levels(poem::matrix_view<const float>(s.data(), k, n), d, ws, got);
        CHECK(ws.blocks() == blocks);
        CHECK(ws.capacity() == cap);
        check_layering(s, k, n, d, got);
    }
}

// ---- tiers ----------------------------------------------------------------------------------------

namespace {

std::vector<float> make_fused(std::size_t n, bool ties, std::uint64_t seed) {
    poem::rng g(seed);
    std::vector<float> f(n);
    for (auto& x : f) x = ties ? 0.1f * static_cast<float>(g.below(6)) : g.uniform_float();
    return f;
}

// Better fused never gets a worse tier; equal fused shares a tier (fused and gap tiers).
void check_monotone(const std::vector<float>& f, const poem::levels_result& lv, bool ties_share) {
    for (std::size_t i = 0; i < f.size(); ++i)
        for (std::size_t j = 0; j < f.size(); ++j) {
            if (!std::isfinite(f[i]) || !std::isfinite(f[j])) continue;
            if (f[i] > f[j]) REQUIRE(lv.level[i] <= lv.level[j]);
            if (ties_share && f[i] == f[j]) REQUIRE(lv.level[i] == lv.level[j]);
        }
    std::vector<int> used(lv.count, 0);
    for (auto l : lv.level) {
        REQUIRE(l < lv.count);
        used[l] = 1;
    }
    for (int u : used) REQUIRE(u == 1);
}

}  // namespace

TEST_CASE("fused_tiers: equal frequency, ties share, dense", "[order][tiers]") {
    poem::workspace ws;
    poem::levels_result lv;
    for (std::size_t n : {1u, 5u, 17u, 100u, 1000u})
        for (std::size_t g : {1u, 2u, 3u, 4u, 10u, 2000u}) {
            const auto f = make_fused(n, false, n * 31 + g);
            poem::fused_tiers(f, g, ws, lv);
            INFO("n=" << n << " g=" << g);
            check_monotone(f, lv, true);
            REQUIRE(lv.count == std::min(n, g));
            std::vector<std::size_t> size(lv.count, 0);
            for (auto l : lv.level) ++size[l];
            for (auto c : size) {  // no ties: floor or ceil of n / g
                REQUIRE(c >= n / std::min(n, g));
                REQUIRE(c <= (n + std::min(n, g) - 1) / std::min(n, g));
            }
            const auto tied = make_fused(n, true, n + g);
            poem::fused_tiers(tied, g, ws, lv);
            check_monotone(tied, lv, true);
            REQUIRE(lv.count <= std::min<std::size_t>(g, 6));
        }
    CHECK_THROWS_AS(poem::fused_tiers(std::vector<float>{1.0f}, 0), poem::error);
}

TEST_CASE("gap_tiers against a reference", "[order][tiers]") {
    for (std::uint64_t seed = 1; seed <= 30; ++seed) {
        const std::size_t n = 1 + seed * 7 % 60;
        const auto f = make_fused(n, seed % 3 == 0, seed);
        const float abs_t = 0.05f * static_cast<float>(seed % 4), rel_t = seed % 2 ? 0.2f : inf_f;
        const auto lv = poem::gap_tiers(f, abs_t, rel_t);
        check_monotone(f, lv, true);
        // reference: sort best first, count qualifying drops above each value
        std::vector<float> sorted = f;
        std::sort(sorted.begin(), sorted.end(), std::greater<float>());
        for (std::size_t i = 0; i < n; ++i) {
            std::uint32_t tier = 0;
            for (std::size_t r = 1; r < n && sorted[r] >= f[i]; ++r) {
                const float drop = sorted[r - 1] - sorted[r];
                if (drop > abs_t || drop > rel_t * std::fabs(sorted[r - 1])) ++tier;
            }
            REQUIRE(lv.level[i] == tier);
        }
    }
    const auto one = poem::gap_tiers(std::vector<float>{0.9f, 0.1f, 0.5f}, inf_f, inf_f);
    CHECK(one.count == 1);
    const auto each = poem::gap_tiers(std::vector<float>{0.9f, 0.1f, 0.5f}, 0.0f, inf_f);
    CHECK(each.level == std::vector<std::uint32_t>{0, 2, 1});
    CHECK_THROWS_WITH(poem::gap_tiers(std::vector<float>{1.0f}, nan_f, 1.0f), Catch::Contains("abs_threshold"));
}

TEST_CASE("topk_tiers: exact cuts, ties by index", "[order][tiers]") {
    const std::vector<float> f{0.5f, 0.9f, 0.5f, 0.1f, 0.7f, 0.5f};
    const std::vector<std::size_t> ks{1, 3};
    const auto lv = poem::topk_tiers(f, ks);
    // order: 1 (0.9), 4 (0.7), 0, 2, 5 (0.5, by index), 3
    CHECK(lv.level == std::vector<std::uint32_t>{1, 0, 2, 2, 1, 2});
    CHECK(lv.count == 3);
    const auto few = poem::topk_tiers(std::vector<float>{0.2f, 0.3f}, std::vector<std::size_t>{5, 10});
    CHECK(few.count == 1);
    CHECK_THROWS_AS(poem::topk_tiers(f, std::vector<std::size_t>{3, 3}), poem::error);
}

TEST_CASE("tiers send non-finite and flagged candidates to the last level", "[order][tiers]") {
    const std::vector<float> f{0.9f, nan_f, 0.5f, 0.1f, inf_f};
    const std::vector<std::uint8_t> flags{0, 0, 1, 0, 0};
    const auto a = poem::fused_tiers(f, flags, 2);
    CHECK(a.nonfinite == 3);
    CHECK(a.count == 3);
    CHECK(a.level == std::vector<std::uint32_t>{0, 2, 2, 1, 2});
    const auto b = poem::gap_tiers(f, 0.1f, inf_f);
    CHECK(b.nonfinite == 2);
    CHECK(b.level == std::vector<std::uint32_t>{0, 3, 1, 2, 3});
    const auto c = poem::topk_tiers(f, std::vector<std::size_t>{1});
    CHECK(c.level == std::vector<std::uint32_t>{0, 2, 1, 1, 2});
    const auto e = poem::fused_tiers(std::vector<float>{}, 3);
    CHECK(e.count == 0);
    CHECK(e.level.empty());
}

// ---- assign_levels, write_levels ----------------------------------------------------------------------

TEST_CASE("assign_levels dispatches on level_config", "[order][levels]") {
    poem::workspace ws;
    const std::size_t k = 3, n = 200;
    auto s = make_scores(k, n, kind::uniform, 9);
    s[5] = nan_f;  // candidate 5 has a NaN score
    const auto fused = make_fused(n, false, 10);
    poem::level_config spec;
    spec.directions = make_dirs(k, 3);
    const poem::matrix_view<const float> m(s.data(), k, n);
    CHECK(poem::assign_levels(m, fused, spec, ws).level == poem::pareto_levels(m, spec.directions, ws).level);

    std::vector<std::uint8_t> flags(n, 0);
    flags[5] = 1;
    spec.method = poem::level_method::fused_tiers;
    spec.tiers = 5;
    auto lv = poem::assign_levels(m, fused, spec, ws);
    CHECK(lv.level == poem::fused_tiers(fused, flags, 5).level);
    CHECK(lv.level[5] == lv.count - 1);
    spec.method = poem::level_method::gap_tiers;
    CHECK(poem::assign_levels(m, fused, spec, ws).level ==
          poem::gap_tiers(fused, flags, spec.gap_abs, spec.gap_rel).level);
    spec.method = poem::level_method::topk_tiers;
    CHECK(poem::assign_levels(m, fused, spec, ws).level == poem::topk_tiers(fused, flags, spec.topk).level);

    poem::fusion_result fr;
    fr.n = n;
    fr.fused = fused;
    fr.nonfinite = flags;
    const poem::matrix_view<const float> none(nullptr, 0, n);
    CHECK(poem::assign_levels(none, fr, spec, ws).level == poem::topk_tiers(fused, flags, spec.topk).level);

    spec.method = poem::level_method::pareto;
    spec.directions.pop_back();
    CHECK_THROWS_WITH(poem::assign_levels(m, fused, spec, ws), Catch::Contains("level_config.directions"));
    CHECK_THROWS_AS(poem::assign_levels(none, fused, spec, ws), poem::error);
    spec.method = poem::level_method::fused_tiers;
    CHECK_THROWS_AS(poem::assign_levels(m, std::vector<float>(n - 1, 0.5f), spec, ws), poem::error);

    std::vector<poem::quintuple> q(n);
    poem::write_levels(q, lv);
    for (std::size_t i = 0; i < n; ++i) CHECK(q[i].level == lv.level[i]);
    CHECK(poem::directions_of(poem::fusion_config{{{direction::lower_is_better}, {}}}) ==
          std::vector<direction>{direction::lower_is_better, direction::higher_is_better});
}

// ---- sampling ---------------------------------------------------------------------------------------------

namespace {

std::vector<poem::quintuple> make_tokens(std::size_t n, std::uint32_t levels, std::int64_t t, std::uint64_t seed) {
    poem::rng g(seed);
    std::vector<poem::quintuple> q(n);
    for (std::size_t i = 0; i < n; ++i)
        q[i] = {1000 + g.below(n * 4), t, 0.05f * static_cast<float>(g.below(21)), g.uniform_float(),
                static_cast<std::uint32_t>(g.below(levels))};
    return q;
}

}  // namespace

TEST_CASE("select_by_level: quotas, order, top by fused", "[order][sampling]") {
    poem::level_config spec;
    spec.quota.per_level = {3, 2, 0, 1};
    spec.quota.beyond = 1;
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        const auto tokens = make_tokens(60, 7, 100, seed);
        for (auto policy : {poem::selection_policy::top_fused, poem::selection_policy::weighted}) {
            spec.policy = policy;
            poem::rng g(seed);
            const auto got = poem::select_by_level(tokens, spec, g);
            std::map<std::uint32_t, std::vector<poem::quintuple>> by_level;
            for (const auto& q : tokens) by_level[q.level].push_back(q);
            std::size_t expect = 0;
            for (auto& [l, v] : by_level) expect += std::min<std::size_t>(spec.quota(l), v.size());
            REQUIRE(got.size() == expect);
            for (std::size_t i = 1; i < got.size(); ++i) {  // level, then fused best first
                REQUIRE(got[i - 1].level <= got[i].level);
                if (got[i - 1].level == got[i].level) REQUIRE(got[i - 1].fused_score >= got[i].fused_score);
            }
            for (const auto& q : got) REQUIRE(std::find(tokens.begin(), tokens.end(), q) != tokens.end());
            if (policy == poem::selection_policy::top_fused)
                for (auto& [l, v] : by_level) {
                    std::vector<float> f;
                    for (auto& q : v) f.push_back(q.fused_score);
                    std::sort(f.begin(), f.end(), std::greater<float>());
                    std::vector<float> taken;
                    for (auto& q : got)
                        if (q.level == l) taken.push_back(q.fused_score);
                    for (std::size_t i = 0; i < taken.size(); ++i) REQUIRE(taken[i] == f[i]);
                }
        }
    }
}

TEST_CASE("select_by_level: weighted is deterministic by seed and favours high fused scores", "[order][sampling]") {
    poem::level_config spec;
    spec.policy = poem::selection_policy::weighted;
    spec.quota.per_level = {1};
    const auto tokens = make_tokens(50, 3, 7, 3);
    poem::rng a(42), b(42), c(43);
    const auto sa = poem::select_by_level(tokens, spec, a);
    CHECK(sa == poem::select_by_level(tokens, spec, b));
    bool differs = false;
    for (int r = 0; r < 20 && !differs; ++r) differs = !(poem::select_by_level(tokens, spec, c) == sa);
    CHECK(differs);
    // Two tokens in one level, weights 0.9 + floor and 0.1 + floor: the first wins ~90% of the time.
    std::vector<poem::quintuple> two{{1, 0, 0.9f, 0.5f, 0}, {2, 0, 0.1f, 0.5f, 0}};
    poem::rng g(5);
    int first = 0;
    const int trials = 4000;
    for (int t = 0; t < trials; ++t) first += poem::select_by_level(two, spec, g)[0].item_id == 1;
    const double p = 0.901 / 1.002;
    CHECK(std::fabs(first / double(trials) - p) < 0.03);
    // NaN fused scores never break anything
    std::vector<poem::quintuple> bad{{1, 0, nan_f, 0.5f, 0}, {2, 0, 0.5f, 0.5f, 0}, {3, 0, -inf_f, 0.5f, 0}};
    spec.quota.per_level = {3};
    CHECK(poem::select_by_level(bad, spec, g).size() == 3);
    spec.policy = poem::selection_policy::top_fused;
    const auto top = poem::select_by_level(bad, spec, g);
    CHECK(top[0].item_id == 2);
    CHECK(top[1].item_id == 1);  // NaN and -Inf last, tied (core/sort_key.hpp): candidate order
    CHECK(top[2].item_id == 3);
}

// ---- partial-order state ----------------------------------------------------------------------------

namespace {

using model_state = poem_reference::po_state;

void require_same(const poem::po_sequence& a, const poem::po_sequence& b) {
    REQUIRE(a.length == b.length);
    REQUIRE(a.count == b.count);
    REQUIRE(a.item_id == b.item_id);
    REQUIRE(a.fused_score == b.fused_score);
    REQUIRE(a.rank_pct == b.rank_pct);
    REQUIRE(a.level == b.level);
    REQUIRE(a.age_seconds == b.age_seconds);
    REQUIRE(a.request_index == b.request_index);
    REQUIRE(a.mask == b.mask);
}

poem::partial_order_state random_state(std::uint64_t seed, model_state* model = nullptr) {
    poem::rng g(seed);
    const std::size_t max_tokens = 1 + g.below(40), max_requests = 1 + g.below(8);
    poem::partial_order_state s(max_tokens, max_requests);
    if (model) *model = model_state{max_tokens, max_requests, {}};
    std::int64_t t = 1000;
    const std::size_t requests = g.below(30);
    for (std::size_t r = 0; r < requests; ++r) {
        t += static_cast<std::int64_t>(g.below(3));
        auto q = make_tokens(g.below(12), 4, t, g());
        for (auto& x : q) x.item_id = 1 + g.below(25);  // plenty of repeats across requests
        s.record(q);
        if (model) model->record(q);
    }
    return s;
}

}  // namespace

TEST_CASE("partial_order_state matches a plain model", "[order][state]") {
    poem::workspace ws;
    poem::po_sequence seq;  // reused across calls
    for (std::uint64_t seed = 1; seed <= 300; ++seed) {
        model_state model{1, 1, {}};
        const auto s = random_state(seed, &model);
        REQUIRE(s.request_count() == model.requests.size());
        REQUIRE(s.request_count() <= s.max_requests());
        REQUIRE(s.token_count() <= s.max_tokens());
        for (std::size_t r = 0; r < model.requests.size(); ++r) REQUIRE(s.request_tokens(r) == model.requests[r]);
        for (std::int64_t now : {std::int64_t(900), std::int64_t(1010), std::int64_t(1030), std::int64_t(5000)})
            for (std::size_t length : {0u, 1u, 5u, 100u}) {
                s.sequence(now, length, ws, seq);
                INFO("seed=" << seed << " now=" << now << " length=" << length);
                require_same(seq, model.sequence(now, length));
            }
    }
}

TEST_CASE("partial_order_state: order, dedup, padding, bounds, errors", "[order][state]") {
    poem::partial_order_state s(6, 3);
    s.record(std::vector<poem::quintuple>{{1, 10, 0.2f, 0.1f, 1}, {2, 10, 0.9f, 0.9f, 0}, {3, 10, 0.5f, 0.5f, 0}});
    s.record(std::vector<poem::quintuple>{{3, 20, 0.4f, 0.4f, 1}, {4, 20, 0.8f, 0.8f, 0}});
    auto seq = s.sequence(25, 6);
    CHECK(seq.count == 4);  // item 3 only from the newer request
    CHECK(seq.item_id == std::vector<std::uint64_t>{4, 3, 2, 1, 0, 0});
    CHECK(seq.request_index == std::vector<std::uint32_t>{0, 0, 1, 1, 0, 0});
    CHECK(seq.age_seconds == std::vector<float>{5, 5, 15, 15, 0, 0});
    CHECK(seq.level == std::vector<std::uint32_t>{0, 1, 0, 1, 0, 0});
    CHECK(seq.mask == std::vector<std::uint8_t>{1, 1, 1, 1, 0, 0});
    CHECK(s.sequence(15, 6).count == 3);  // the request at 20 is in the future at 15
    CHECK(s.sequence(20, 6).count == 4);  // request_time <= now is seen
    // bounds: 3 more tokens evict the oldest request (6 tokens max)
    s.record(std::vector<poem::quintuple>{{5, 30, 0.1f, 0.1f, 0}, {6, 30, 0.2f, 0.2f, 0}, {7, 30, 0.3f, 0.3f, 0}});
    CHECK(s.request_count() == 2);
    CHECK(s.token_count() == 5);
    CHECK(s.request_time(0) == 20);
    // a sample larger than max_tokens keeps its best max_tokens
    poem::partial_order_state small(2, 4);
    small.record(std::vector<poem::quintuple>{{1, 5, 0.1f, 0, 0}, {2, 5, 0.9f, 0, 1}, {3, 5, 0.7f, 0, 0}});
    CHECK(small.token_count() == 2);
    CHECK(small.request_tokens(0)[0].item_id == 3);
    CHECK(small.request_tokens(0)[1].item_id == 1);
    // empty record does nothing; errors leave the state unchanged
    const poem::partial_order_state before = s;
    s.record(std::vector<poem::quintuple>{});
    CHECK(s == before);
    CHECK_THROWS_WITH(s.record(std::vector<poem::quintuple>{{1, 30, 0, 0, 0}, {2, 31, 0, 0, 0}}),
                      Catch::Contains("request_time"));
    CHECK_THROWS_WITH(s.record(std::vector<poem::quintuple>{{1, 29, 0, 0, 0}}), Catch::Contains("older"));
    // Non-finite fused scores or rank percentiles are refused (fusion never makes them), so a state
    // always equals itself; tokens compare by their bits.
    for (float bad : {nan_f, inf_f, -inf_f}) {
        CHECK_THROWS_WITH(s.record(std::vector<poem::quintuple>{{1, 40, 0.5f, 0.5f, 0}, {2, 40, bad, 0.5f, 0}}),
                          Catch::Contains("sampled[1] has a non-finite fused_score"));
        CHECK_THROWS_WITH(s.record(std::vector<poem::quintuple>{{1, 40, 0.5f, bad, 0}}), Catch::Contains("non-finite"));
    }
    CHECK(s == before);
    CHECK(s == s);
    const poem::quintuple q{7, 1, nan_f, 0.5f, 0};
    CHECK(q == q);
    CHECK(poem::quintuple{7, 1, 0.0f, 0.5f, 0} != poem::quintuple{7, 1, -0.0f, 0.5f, 0});
    CHECK_THROWS_AS(poem::partial_order_state(0, 1), poem::error);
    CHECK_THROWS_AS(poem::partial_order_state(1, 0), poem::error);
}

TEST_CASE("sequence and record do not allocate once warm", "[order][state]") {
    poem::partial_order_state s(256, 32);
    poem::workspace ws;
    poem::po_sequence seq;
    std::int64_t t = 0;
    auto round = [&](int r) {
        auto q = make_tokens(11, 5, ++t, static_cast<std::uint64_t>(r));
        for (std::size_t i = 0; i < q.size(); ++i) q[i].item_id = static_cast<std::uint64_t>(t) * 100 + i;
        s.record(q, ws);
        s.sequence(t, 100, ws, seq);
    };
    for (int r = 0; r < 40; ++r) round(r);
    const auto* ids = seq.item_id.data();
    const std::size_t held = ws.capacity();
    const auto expect = s.sequence(t, 100);  // the convenience overload agrees
    for (int r = 0; r < 40; ++r) round(r);
    CHECK(seq.item_id.data() == ids);       // the result's memory is reused
    CHECK(ws.capacity() == held);           // the scratch (the set of ids seen) lives in the workspace
    CHECK(ws.blocks() == 1);
    CHECK(seq.count == 100);
    CHECK(expect.count == 100);
    // a copy of a result is just the result: equal fields, no scratch carried along
    const poem::po_sequence copy = seq;
    CHECK(copy.item_id == seq.item_id);
    CHECK(copy.mask == seq.mask);
}

// ---- serialisation ----------------------------------------------------------------------------------------

TEST_CASE("serialisation round trips", "[order][state][serialize]") {
    for (std::uint64_t seed = 1; seed <= 200; ++seed) {
        const auto s = random_state(seed);
        const auto bytes = s.serialize();
        const auto back = poem::partial_order_state::deserialize(bytes);
        REQUIRE(back == s);
        REQUIRE(back.serialize() == bytes);
        for (std::int64_t now : {std::int64_t(1020), std::int64_t(9999)})
            require_same(back.sequence(now, 30), s.sequence(now, 30));
    }
    // the byte layout is fixed: magic, version, little-endian fields
    poem::partial_order_state s(8, 2);
    s.record(std::vector<poem::quintuple>{{0x0102030405060708ull, -2, 1.0f, 0.5f, 3}});
    const auto b = s.serialize();
    REQUIRE(b.size() == 24 + 12 + 20 + 4);
    CHECK(std::string(b.begin(), b.begin() + 4) == "POST");
    CHECK(b[4] == 1);
    CHECK(b[5] == 0);
    CHECK(b[8] == 8);
    CHECK(b[12] == 2);
    CHECK(b[16] == 1);
    CHECK(b[20] == 1);
    CHECK(b[24] == 0xFE);  // -2 as i64
    CHECK(b[31] == 0xFF);
    CHECK(b[32] == 1);     // token count of the request
    CHECK(b[36] == 0x08);  // item id, low byte first
    CHECK(b[43] == 0x01);
    CHECK(b[47] == 0x3F);  // 1.0f = 0x3F800000
    CHECK(b[52] == 3);     // level
}

TEST_CASE("deserialize refuses a token with a non-finite score, naming its offset", "[order][state][serialize]") {
    poem::partial_order_state s(8, 4);
    s.record(std::vector<poem::quintuple>{{5, 10, 0.25f, 0.5f, 1}});
    for (std::size_t field : {8u, 12u}) {  // the token's fused_score, then its rank_pct
        auto b = s.serialize();
        const std::size_t at = 24 + 12 + field;  // header, one request, the token's field
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::memcpy(b.data() + at, &nan, 4);
        const std::uint32_t crc = poem::crc32(b.data(), b.size() - 4);
        for (int i = 0; i < 4; ++i) b[b.size() - 4 + std::size_t(i)] = std::uint8_t(crc >> (8 * i));
        CHECK_THROWS_WITH(poem::partial_order_state::deserialize(b), Catch::Contains("token 0 at byte offset 36") &&
                                                                     Catch::Contains("non-finite"));
    }
}

TEST_CASE("deserialize rejects every truncation and corruption", "[order][state][serialize]") {
    for (std::uint64_t seed : {3u, 8u, 21u}) {
        const auto s = random_state(seed);
        const auto bytes = s.serialize();
        for (std::size_t len = 0; len < bytes.size(); ++len) {
            INFO("len=" << len);
            const std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len));
            REQUIRE_THROWS_AS(poem::partial_order_state::deserialize(cut), poem::error);
        }
        auto longer = bytes;
        longer.push_back(0);
        CHECK_THROWS_WITH(poem::partial_order_state::deserialize(longer), Catch::Contains("trailing"));
        // Every single-byte change is caught (CRC-32 detects every burst of up to 32 bits).
        poem::rng g(seed);
        for (std::size_t at = 0; at < bytes.size(); ++at)
            for (int rep = 0; rep < 3; ++rep) {
                auto bad = bytes;
                bad[at] ^= static_cast<std::uint8_t>(1 + g.below(255));
                INFO("at=" << at);
                REQUIRE_THROWS_AS(poem::partial_order_state::deserialize(bad), poem::error);
            }
    }
    // Forged bytes with a valid checksum: structural checks must hold, and nothing may crash.
    const auto s = random_state(21);
    auto bytes = s.serialize();
    REQUIRE(bytes.size() > 40);
    poem::rng g(99);
    int rejected = 0, accepted = 0;
    for (int trial = 0; trial < 3000; ++trial) {
        auto bad = bytes;
        const std::size_t flips = 1 + g.below(4);
        for (std::size_t f = 0; f < flips; ++f) bad[g.below(bad.size() - 4)] = static_cast<std::uint8_t>(g());
        const std::uint32_t crc = poem::crc32(bad.data(), bad.size() - 4);
        for (int i = 0; i < 4; ++i) bad[bad.size() - 4 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(crc >> (8 * i));
        try {
            const auto back = poem::partial_order_state::deserialize(bad);
            REQUIRE(back.token_count() <= back.max_tokens());
            REQUIRE(back.request_count() <= back.max_requests());
            (void)back.sequence(1 << 30, 50);
            ++accepted;
        } catch (const poem::error& e) {
            REQUIRE(std::string(e.what()).find("byte") != std::string::npos);
            ++rejected;
        }
    }
    CHECK(rejected > 0);
    CHECK(accepted > 0);
    CHECK_THROWS_WITH(poem::partial_order_state::deserialize(std::vector<std::uint8_t>{'P', 'O', 'S'}),
                      Catch::Contains("byte offset 0"));
    auto wrong_magic = bytes;
    wrong_magic[0] = 'X';
    CHECK_THROWS_WITH(poem::partial_order_state::deserialize(wrong_magic), Catch::Contains("magic"));
}

// ---- chronological sequence -------------------------------------------------------------------------------

TEST_CASE("chronological sequence: rule, order, features, padding", "[order][chrono]") {
    using E = poem::engagement_event;
    const std::vector<E> log{
        {0, 1, 100, 2.0f, 60.0f, true, false, false},   // click
        {0, 2, 130, 30.0f, 60.0f, false, false, false}, // long view (>= 10 s)
        {0, 3, 90, 5.0f, 5.0f, false, false, false},    // long view: whole short video
        {0, 4, 120, 3.0f, 60.0f, false, false, false},  // not engaged
        {0, 5, 110, 0.0f, 0.0f, false, true, false},    // like
        {0, 6, 200, 50.0f, 60.0f, true, false, false},  // at now: ignored
        {0, 7, 110, 1.0f, 60.0f, false, false, true},   // follow, same time as item 5, later in the log
        {0, 8, 80, nan_f, 60.0f, false, false, false},  // NaN play time: no long view
    };
    poem::engagement_config rule;
    auto seq = poem::build_chrono_sequence(log, 200, 8, rule);
    CHECK(seq.count == 5);
    CHECK(seq.item_id == std::vector<std::uint64_t>{2, 7, 5, 1, 3, 0, 0, 0});
    CHECK(seq.age_seconds == std::vector<float>{70, 90, 90, 100, 110, 0, 0, 0});
    CHECK(seq.play_ratio[0] == 0.5f);
    CHECK(seq.play_ratio[2] == 0.0f);  // unknown duration
    CHECK(seq.play_ratio[4] == 1.0f);
    CHECK(seq.long_view == std::vector<std::uint8_t>{1, 0, 0, 0, 1, 0, 0, 0});
    CHECK(seq.click == std::vector<std::uint8_t>{0, 0, 0, 1, 0, 0, 0, 0});
    CHECK(seq.like == std::vector<std::uint8_t>{0, 0, 1, 0, 0, 0, 0, 0});
    CHECK(seq.follow == std::vector<std::uint8_t>{0, 1, 0, 0, 0, 0, 0, 0});
    CHECK(seq.mask == std::vector<std::uint8_t>{1, 1, 1, 1, 1, 0, 0, 0});

    auto top2 = poem::build_chrono_sequence(log, 200, 2, rule);
    CHECK(top2.item_id == std::vector<std::uint64_t>{2, 7});
    rule.click = rule.like = rule.follow = false;  // long views only
    CHECK(poem::build_chrono_sequence(log, 200, 8, rule).count == 2);
    rule.long_view_seconds = 1.0f;  // now 3 s of a 60 s video counts, 2 s too
    CHECK(poem::build_chrono_sequence(log, 200, 8, rule).count == 5);
    rule.long_view_seconds = -1.0f;
    CHECK_THROWS_WITH(poem::build_chrono_sequence(log, 200, 8, rule), Catch::Contains("long_view_seconds"));

    // a shuffled log gives the same sequence as a sorted one (ties by log position aside)
    poem::rng g(4);
    std::vector<E> big;
    for (std::uint64_t i = 0; i < 500; ++i)
        big.push_back({0, i, static_cast<std::int64_t>(i), 20.0f, 30.0f, g.below(3) == 0, false, false});
    std::vector<E> shuffled = big;
    for (std::size_t i = shuffled.size(); i > 1; --i) std::swap(shuffled[i - 1], shuffled[g.below(i)]);
    const auto a = poem::build_chrono_sequence(big, 400, 50);
    const auto b = poem::build_chrono_sequence(shuffled, 400, 50);
    CHECK(a.item_id == b.item_id);
    CHECK(a.count == 50);
    CHECK(a.item_id[0] == 399);
    poem::workspace ws;
    poem::chrono_sequence reused;
    poem::build_chrono_sequence(big, 400, 50, {}, ws, reused);
    CHECK(reused.item_id == a.item_id);
}
