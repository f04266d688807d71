// core/ primitives shared by the layers: sort keys, the radix sort, rank_order, mix64.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "poem/core/dispatch.hpp"
#include "simd_target_scope.hpp"
#include "poem/core/radix_sort.hpp"
#include "poem/core/rng.hpp"
#include "poem/core/sort_key.hpp"
#include "poem/fusion/rank.hpp"

namespace {

constexpr float nan_f = std::numeric_limits<float>::quiet_NaN();
constexpr float inf_f = std::numeric_limits<float>::infinity();

// Best first with the documented policy: finite values by value, every non-finite one after them.
bool better(float a, float b, bool higher_is_better) {
    const bool fa = std::isfinite(a), fb = std::isfinite(b);
    if (fa != fb) return fa;
    if (!fa) return false;  // non-finite: all tied
    return higher_is_better ? a > b : a < b;
}

std::vector<float> random_floats(std::size_t n, std::uint64_t seed, bool specials) {
    std::mt19937_64 g(seed);
    std::vector<float> x(n);
    for (auto& v : x) {
        std::uint32_t bits = static_cast<std::uint32_t>(g());
        std::memcpy(&v, &bits, sizeof v);  // every bit pattern: subnormals, huge values, NaNs, +-Inf
        if (!specials && !std::isfinite(v)) v = 0.0f;
    }
    if (specials && n >= 6) {
        x[0] = nan_f;
        x[1] = inf_f;
        x[2] = -inf_f;
        x[3] = -0.0f;
        x[4] = 0.0f;
        x[5] = -nan_f;
    }
    return x;
}

}  // namespace

TEST_CASE("sort_key: one policy for every non-finite value", "[core][sort_key]") {
    for (bool hib : {true, false}) {
        const std::uint32_t worst = poem::sort_key(nan_f, hib);
        CHECK(worst == poem::worst_sort_key);
        CHECK(poem::sort_key(inf_f, hib) == worst);
        CHECK(poem::sort_key(-inf_f, hib) == worst);
        CHECK(poem::sort_key(-nan_f, hib) == worst);
        for (float f : {0.0f, -0.0f, 1.0f, -1.0f, std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest(),
                        std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min()})
            CHECK(poem::sort_key(f, hib) < worst);
        CHECK(poem::sort_key(-0.0f, hib) == poem::sort_key(0.0f, hib));
    }
    CHECK(poem::sort_key(2.0f, true) < poem::sort_key(1.0f, true));
    CHECK(poem::sort_key(1.0f, false) < poem::sort_key(2.0f, false));
    CHECK(poem::sort_key(-1.0f, false) < poem::sort_key(-0.5f, false));
}

TEST_CASE("sort_key preserves the order of random floats", "[core][sort_key]") {
    for (std::uint64_t seed = 1; seed <= 20; ++seed)
        for (bool hib : {true, false}) {
            const auto x = random_floats(2000, seed, true);
            std::vector<std::uint32_t> idx(x.size()), by_key(x.size());
            std::iota(idx.begin(), idx.end(), 0u);
            by_key = idx;
            std::stable_sort(idx.begin(), idx.end(), [&](std::uint32_t a, std::uint32_t b) { return better(x[a], x[b], hib); });
            std::stable_sort(by_key.begin(), by_key.end(), [&](std::uint32_t a, std::uint32_t b) {
                return poem::sort_key(x[a], hib) < poem::sort_key(x[b], hib);
            });
            REQUIRE(idx == by_key);
            // equal keys exactly for equal values (or both non-finite)
            for (std::size_t i = 1; i < x.size(); ++i) {
                const float a = x[by_key[i - 1]], b = x[by_key[i]];
                const bool same = (!std::isfinite(a) && !std::isfinite(b)) || a == b;
                REQUIRE((poem::sort_key(a, hib) == poem::sort_key(b, hib)) == same);
            }
        }
}

TEST_CASE("sort_keys: the SIMD kernel matches the scalar reference and counts non-finite", "[core][sort_key]") {
    const simd_target_scope restore;
    for (const std::string& target : poem::simd_targets())
    for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 33u, 1000u}) {
        poem::set_simd_target(target);
        INFO("target " << target);
        const auto x = random_floats(n, n + 7, true);
        std::vector<std::uint32_t> a(n), b(n);
        for (bool hib : {true, false}) {
            const std::size_t bad = poem::detail::sort_keys(x.data(), n, hib, a.data());
            REQUIRE(bad == poem::detail::sort_keys_scalar(x.data(), n, hib, b.data()));
            REQUIRE(a == b);
            std::size_t expect = 0;
            for (float v : x) expect += !std::isfinite(v);
            REQUIRE(bad == expect);
        }
    }
}

TEST_CASE("radix_sort equals std::stable_sort", "[core][radix_sort]") {
    std::mt19937_64 g(42);
    for (std::size_t n : {0u, 1u, 2u, 3u, 17u, 255u, 511u, 512u, 513u, 3000u, 70000u}) {
        for (int kind = 0; kind < 4; ++kind) {
            INFO("n = " << n << ", kind " << kind);
            std::vector<std::uint32_t> keys(n);
            for (auto& k : keys) {
                const std::uint32_t r = static_cast<std::uint32_t>(g());
                k = kind == 0 ? r : kind == 1 ? r % 4 : kind == 2 ? (r % 3) << 24 | 0x3F000000u : 0xFFFFFFFFu;
            }
            std::vector<std::uint32_t> expect(n);
            std::iota(expect.begin(), expect.end(), 0u);
            std::stable_sort(expect.begin(), expect.end(), [&](std::uint32_t a, std::uint32_t b) { return keys[a] < keys[b]; });
            std::vector<std::uint64_t> a(n), b(n);
            const std::uint64_t* s = poem::detail::radix_sort_keys(keys.data(), n, a.data(), b.data());
            for (std::size_t i = 0; i < n; ++i) {
                REQUIRE(static_cast<std::uint32_t>(s[i]) == expect[i]);
                REQUIRE((s[i] >> 32) == keys[expect[i]]);
            }
            // pre-packed words with arbitrary payloads
            std::vector<std::uint32_t> payload(n);
            for (auto& p : payload) p = static_cast<std::uint32_t>(g());
            for (std::size_t i = 0; i < n; ++i) a[i] = std::uint64_t(keys[i]) << 32 | payload[i];
            const std::uint64_t* t = poem::detail::radix_sort(a.data(), b.data(), n);
            for (std::size_t i = 0; i < n; ++i) REQUIRE(t[i] == (std::uint64_t(keys[expect[i]]) << 32 | payload[expect[i]]));
            // two keys
            std::vector<std::uint32_t> major(n), out(n);
            for (auto& m : major) m = static_cast<std::uint32_t>(g() % 5);
            std::vector<std::uint32_t> e2(n);
            std::iota(e2.begin(), e2.end(), 0u);
            std::stable_sort(e2.begin(), e2.end(), [&](std::uint32_t x, std::uint32_t y) {
                return major[x] != major[y] ? major[x] < major[y] : keys[x] < keys[y];
            });
            poem::detail::radix_sort_by_two_keys(major.data(), keys.data(), n, a.data(), b.data(), out.data());
            REQUIRE(out == e2);
        }
    }
}

TEST_CASE("rank_order: best first, ties by index, non-finite last", "[core][fusion][rank_order]") {
    poem::workspace ws;
    const std::vector<float> x{0.5f, nan_f, 0.9f, -inf_f, 0.5f, inf_f, -0.0f, 0.0f};
    std::vector<std::uint32_t> order(x.size());
    CHECK(poem::rank_order(poem::span<const float>(x), poem::direction::higher_is_better, ws, poem::span<std::uint32_t>(order)) == 3);
    CHECK(order == std::vector<std::uint32_t>{2, 0, 4, 6, 7, 1, 3, 5});
    CHECK(poem::rank_order(poem::span<const float>(x), poem::direction::lower_is_better, ws, poem::span<std::uint32_t>(order)) == 3);
    CHECK(order == std::vector<std::uint32_t>{6, 7, 0, 4, 2, 1, 3, 5});
    for (std::size_t n : {0u, 1u, 2u, 100u, 5000u}) {
        const auto y = random_floats(n, n, true);
        std::vector<std::uint32_t> got(n), expect(n);
        std::iota(expect.begin(), expect.end(), 0u);
        std::stable_sort(expect.begin(), expect.end(), [&](std::uint32_t a, std::uint32_t b) { return better(y[a], y[b], true); });
        poem::rank_order(poem::span<const float>(y), poem::direction::higher_is_better, ws, poem::span<std::uint32_t>(got));
        REQUIRE(got == expect);
    }
    std::vector<std::uint32_t> wrong(3);
    CHECK_THROWS_AS(poem::rank_order(poem::span<const float>(x), poem::direction::higher_is_better, ws, poem::span<std::uint32_t>(wrong)),
                    poem::error);
}

TEST_CASE("mix64: SplitMix64's finaliser, pinned", "[core][rng]") {
    STATIC_REQUIRE(poem::mix64(0) == 0);
    CHECK(poem::mix64(1) == 0x5692161d100b05e5ull);
    CHECK(poem::mix64(2) == 0xdbd238973a2b148aull);
    CHECK(poem::mix64(123456789) == 0xf21c87d4233ffd60ull);
    CHECK(poem::mix64(~0ull) == 0xb4d055fcf2cbbd7bull);
    // rng is mix64 over a Weyl sequence: SplitMix64's published first output for seed 0
    CHECK(poem::mix64(0x9E3779B97F4A7C15ull) == 0xe220a8397b1dcdafull);
    poem::rng g(0);
    CHECK(g() == 0xe220a8397b1dcdafull);
}

TEST_CASE("workspace: scopes nest, release on exit, and a warm workspace does not grow", "[core][workspace]") {
    poem::workspace ws;
    CHECK(ws.capacity() == 0);
    float* first = nullptr;
    {
        auto outer = ws.scope();
        auto a = outer.alloc<float>(100);
        first = a.data();
        CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % 64 == 0);
        {
            auto inner = ws.scope();
            auto b = inner.alloc<std::uint64_t>(10);
            CHECK(reinterpret_cast<const void*>(b.data()) != reinterpret_cast<const void*>(a.data()));
            CHECK_THROWS_AS(outer.alloc<float>(1), poem::error);  // only the innermost scope allocates
            auto big = inner.alloc<std::uint8_t>(1 << 20);        // a second block; `a` stays put
            big[0] = 1;
            CHECK(ws.blocks() == 2);
        }
        auto c = outer.alloc<float>(3);  // the inner scope's memory is reused
        CHECK(c.data() != nullptr);
        CHECK(a.data() == first);
    }
    CHECK(ws.blocks() == 1);  // merged when the outermost scope ended
    const std::size_t cap = ws.capacity();
    CHECK(cap >= (1u << 20));
    for (int round = 0; round < 3; ++round) {
        auto s = ws.scope();
        s.alloc<float>(100);
        { auto t = ws.scope(); t.alloc<std::uint8_t>(1 << 20); }
        s.alloc<float>(3);
    }
    CHECK(ws.capacity() == cap);
    CHECK(ws.blocks() == 1);
    {
        auto s = ws.scope();
        CHECK(s.alloc<float>(0).data() != nullptr);
    }
}
