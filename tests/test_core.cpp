// core/: error messages, size checks, the generator's properties and determinism; the radix sort's
// two paths and sort_by_key (on every SIMD target) against std::stable_sort at every size around
// their switch points.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <set>
#include <random>
#include <string>
#include <vector>

#include "poem/core/dispatch.hpp"
#include "poem/core/error.hpp"
#include "poem/core/kernels.hpp"
#include "poem/core/radix_sort.hpp"
#include "poem/core/rng.hpp"
#include "poem/core/span.hpp"
#include "poem/core/version.hpp"
#include "simd_target_scope.hpp"

TEST_CASE("check throws poem::error with the message parts joined") {
    REQUIRE_NOTHROW(poem::check(true, "never built"));
    try {
        poem::check(false, "weights[", 3, "] must be finite, got ", -1.5);
        FAIL("no throw");
    } catch (const poem::error& e) {
        REQUIRE(std::string(e.what()) == "poem: weights[3] must be finite, got -1.5");
    }
    REQUIRE_THROWS_AS(poem::check(false, "x"), std::runtime_error);
}

TEST_CASE("check_size names the argument") {
    std::vector<float> v(3);
    REQUIRE_NOTHROW(poem::check_size(poem::span<const float>(v), 3, "ids"));
    REQUIRE_THROWS_WITH(poem::check_size(poem::span<const float>(v), 4, "ids"),
                        "poem: ids: expected 4 elements, got 3");
}

TEST_CASE("span and matrix_view address the right elements") {
    std::vector<int> v = {0, 1, 2, 3, 4, 5};
    poem::matrix_view<int> m(v.data(), 2, 3);
    REQUIRE(m(1, 2) == 5);
    REQUIRE(m.row(1)[0] == 3);
    REQUIRE(m.row(1).size() == 3);
    poem::span<const int> s = v;
    REQUIRE(s.subspan(2, 2)[1] == 3);
}

TEST_CASE("rng is deterministic, seed-sensitive and a valid URBG") {
    poem::rng a(7), b(7), c(8);
    std::vector<std::uint64_t> xa, xb, xc;
    for (int i = 0; i < 100; ++i) { xa.push_back(a()); xb.push_back(b()); xc.push_back(c()); }
    REQUIRE(xa == xb);
    REQUIRE(xa != xc);
    // Reference values pin the stream across platforms and releases (SplitMix64 of seed 0).
    poem::rng z(0);
    REQUIRE(z() == 0xE220A8397B1DCDAFull);
    REQUIRE(z() == 0x6E789E6AA1B965F4ull);
}

TEST_CASE("rng drives std::shuffle: same seed same order, different seeds different orders, uniform") {
    const std::vector<int> base = {1, 2, 3, 4, 5, 6, 7, 8};
    auto shuffled = [&](std::uint64_t seed) {
        std::vector<int> p = base;
        poem::rng g(seed);
        std::shuffle(p.begin(), p.end(), g);
        return p;
    };
    // 200 seeds over 8! = 40320 orders: about 0.5 collisions expected by chance, a broken generator
    // (constant, or ignoring the seed) gives one order.
    std::set<std::vector<int>> orders;
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
        const auto p = shuffled(seed);
        REQUIRE(p == shuffled(seed));
        REQUIRE(std::is_permutation(p.begin(), p.end(), base.begin()));
        orders.insert(p);
    }
    REQUIRE(orders.size() >= 195);
    REQUIRE(orders.count(base) == 0);
    // One generator, 48000 shuffles of 4 elements: each of the 24 orders about 2000 times.
    // Chi-square with 23 degrees of freedom: 49.73 is the 0.999 quantile.
    poem::rng g(21);
    std::map<std::vector<int>, int> seen;
    constexpr int n = 48000;
    for (int i = 0; i < n; ++i) {
        std::vector<int> p = {0, 1, 2, 3};
        std::shuffle(p.begin(), p.end(), g);
        ++seen[p];
    }
    REQUIRE(seen.size() == 24);
    double chi2 = 0;
    for (const auto& [order, count] : seen) chi2 += (count - n / 24.0) * (count - n / 24.0) / (n / 24.0);
    REQUIRE(chi2 < 49.73);
}

TEST_CASE("rng through std::uniform_int_distribution hits every bucket evenly") {
    poem::rng g(9);
    std::uniform_int_distribution<int> d(0, 9);
    constexpr int n = 100000, bins = 10;
    std::vector<int> count(bins);
    for (int i = 0; i < n; ++i) {
        const int x = d(g);
        REQUIRE(x >= 0);
        REQUIRE(x < bins);
        ++count[static_cast<std::size_t>(x)];
    }
    double chi2 = 0, e = double(n) / bins;
    for (int c : count) chi2 += (c - e) * (c - e) / e;
    REQUIRE(chi2 < 27.88);  // 9 degrees of freedom, 0.999 quantile
}

TEST_CASE("rng below(n) stays in range and has no modulo bias") {
    poem::rng g(13);
    for (std::uint64_t n : {1ull, 2ull, 3ull, 7ull, 1000ull, (1ull << 63) + 1, ~0ull}) {
        for (int i = 0; i < 2000; ++i) REQUIRE(g.below(n) < n);
    }
    // n = 2/3 of 2^64: a plain `x % n` would land in [0, n/2) two times in three, not one in two.
    const std::uint64_t n = ~0ull / 3 * 2;
    constexpr int draws = 100000;
    int low = 0;
    for (int i = 0; i < draws; ++i) low += g.below(n) < n / 2;
    REQUIRE(std::abs(double(low) / draws - 0.5) < 0.01);  // 6 standard deviations
    // Small n: the top and bottom value as often as the middle ones.
    std::vector<int> count(3);
    for (int i = 0; i < 30000; ++i) ++count[g.below(3)];
    for (int c : count) REQUIRE(std::abs(c - 10000) < 500);  // 6 standard deviations
}

TEST_CASE("rng draws are uniform") {
    poem::rng g(11);
    constexpr int n = 200000, bins = 10;
    std::vector<int> below(bins), uf(bins);
    double sum = 0;
    for (int i = 0; i < n; ++i) {
        const auto k = g.below(bins);
        REQUIRE(k < static_cast<std::uint64_t>(bins));
        ++below[k];
        const float u = g.uniform_float();
        REQUIRE(u >= 0.0f);
        REQUIRE(u < 1.0f);
        ++uf[static_cast<int>(u * bins)];
        sum += g.uniform_double();
    }
    // Chi-square with 9 degrees of freedom: 27.88 is the 0.999 quantile.
    auto chi2 = [&](const std::vector<int>& c) {
        double s = 0, e = double(n) / bins;
        for (int x : c) s += (x - e) * (x - e) / e;
        return s;
    };
    REQUIRE(chi2(below) < 27.88);
    REQUIRE(chi2(uf) < 27.88);
    REQUIRE(std::abs(sum / n - 0.5) < 0.005);
    REQUIRE(g.below(1) == 0);
}

TEST_CASE("rng forks give distinct, reproducible streams") {
    poem::rng base(5);
    auto f1 = base.fork(1), f1b = base.fork(1), f2 = base.fork(2);
    REQUIRE(f1() == f1b());
    REQUIRE(f1() != f2());
}

TEST_CASE("version macros agree with the CMake project version") {
    // POEM_PROJECT_VERSION*: CMake's project(VERSION), passed by tests/CMakeLists.txt.
    REQUIRE(std::string(POEM_VERSION_STRING) == POEM_PROJECT_VERSION);
    REQUIRE(POEM_VERSION_MAJOR == POEM_PROJECT_VERSION_MAJOR);
    REQUIRE(POEM_VERSION_MINOR == POEM_PROJECT_VERSION_MINOR);
    REQUIRE(POEM_VERSION_PATCH == POEM_PROJECT_VERSION_PATCH);
    REQUIRE(POEM_VERSION == POEM_PROJECT_VERSION_MAJOR * 10000 + POEM_PROJECT_VERSION_MINOR * 100 + POEM_PROJECT_VERSION_PATCH);
    // The string is the three numbers joined by dots.
    REQUIRE(std::string(POEM_VERSION_STRING) == std::to_string(POEM_VERSION_MAJOR) + "." +
                                                    std::to_string(POEM_VERSION_MINOR) + "." +
                                                    std::to_string(POEM_VERSION_PATCH));
}

namespace {

// Keys of one shape: each exercises a branch of the radix sort's small path (one key, one bucket per
// key, buckets over radix_small_bucket that recurse, the widest range), of its LSD passes (skipped
// digits) or of sort_by_key's network (core/network_sort.hpp: keys that differ only below its 24-bit
// prefix, a few of them finished by insertion sort, many by the small radix path).
constexpr int key_shapes = 10;
std::vector<std::uint32_t> test_keys(std::size_t n, int shape, poem::rng& g) {
    std::vector<std::uint32_t> k(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto r = static_cast<std::uint32_t>(g());
        switch (shape) {
            case 0: k[i] = r; break;                                 // random, full range
            case 1: k[i] = r % 4; break;                             // heavy ties
            case 2: k[i] = 0xFFFFFFFFu; break;                       // all equal (the worst sort key)
            case 3: k[i] = 0x3F000000u | (r % 3) << 24 | (r & 0xFFF); break;  // a few exponents
            case 4: k[i] = i == 0 ? 0xFFFFFFFFu : 1000u + r % 97; break;      // one outlier: one big bucket
            case 5: k[i] = static_cast<std::uint32_t>(n - i) / 3; break;      // descending runs of ties
            case 6: k[i] = r % 2 ? 0u : 0xFFFFFFFFu; break;          // the two ends
            case 7: k[i] = (r % 5) << 28 | (r >> 20); break;         // clusters with inner spread
            case 8: k[i] = i == 0 ? 0u : 0x80000000u + r % 1000; break;       // a finite outlier: one shared prefix
            default: k[i] = r | 0x100u; break;                       // full range, then a few late smaller twins
        }
    }
    if (shape == 9 && n >= 4) {  // the range spans 2^32, so the network's prefix drops the low 8 bits
        k[0] = 0;
        k[1] = 0xFFFFFFFEu;
        for (std::size_t j = 2; j + 1 < n; j += n / 3 + 1) k[j + 1] = k[j] - 1;
    }
    return k;
}

}  // namespace

TEST_CASE("radix_sort entry points equal std::stable_sort at every size around their thresholds",
          "[core][radix_sort]") {
    using poem::detail::radix_small_below;
    using poem::detail::radix_small_bucket;
    std::vector<std::size_t> sizes;
    for (std::size_t n = 0; n <= 4 * radix_small_bucket + 2; ++n) sizes.push_back(n);
    for (std::size_t n = radix_small_below - 3; n <= radix_small_below + 3; ++n) sizes.push_back(n);
    for (std::size_t n : {255u, 256u, 511u, 512u, 1000u, 5000u}) sizes.push_back(n);
    poem::rng g(2024);
    for (std::size_t n : sizes) {
        for (int shape = 0; shape < key_shapes; ++shape) {
            INFO("n = " << n << ", shape " << shape);
            const auto keys = test_keys(n, shape, g);
            std::vector<std::uint32_t> expect(n);
            std::iota(expect.begin(), expect.end(), 0u);
            std::stable_sort(expect.begin(), expect.end(), [&](std::uint32_t x, std::uint32_t y) { return keys[x] < keys[y]; });

            std::vector<std::uint64_t> a(n), b(n), want(n);
            const std::uint64_t* s = poem::detail::radix_sort_keys(keys.data(), n, a.data(), b.data());
            REQUIRE((s == a.data() || s == b.data()));
            for (std::size_t i = 0; i < n; ++i) want[i] = std::uint64_t(keys[expect[i]]) << 32 | expect[i];
            REQUIRE(std::vector<std::uint64_t>(s, s + n) == want);

            // Pre-packed words, payloads in no order: ties keep their input order, not the payload's.
            std::vector<std::uint32_t> payload(n);
            for (auto& p : payload) p = static_cast<std::uint32_t>(g());
            for (std::size_t i = 0; i < n; ++i) a[i] = std::uint64_t(keys[i]) << 32 | payload[i];
            const std::uint64_t* t = poem::detail::radix_sort(a.data(), b.data(), n);
            REQUIRE((t == a.data() || t == b.data()));
            for (std::size_t i = 0; i < n; ++i) want[i] = std::uint64_t(keys[expect[i]]) << 32 | payload[expect[i]];
            REQUIRE(std::vector<std::uint64_t>(t, t + n) == want);

            std::vector<std::uint32_t> major(n), out(n), e2(n);
            for (auto& m : major) m = static_cast<std::uint32_t>(g.below(3));
            std::iota(e2.begin(), e2.end(), 0u);
            std::stable_sort(e2.begin(), e2.end(), [&](std::uint32_t x, std::uint32_t y) {
                return major[x] != major[y] ? major[x] < major[y] : keys[x] < keys[y];
            });
            poem::detail::radix_sort_by_two_keys(major.data(), keys.data(), n, a.data(), b.data(), out.data());
            REQUIRE(out == e2);
        }
    }
}

TEST_CASE("sort_by_key and rank_by_key: every target's words equal std::stable_sort's and its ranks the "
          "average positions of equal keys, around the network's sizes",
          "[core][radix_sort][network_sort]") {
    const simd_target_scope restore;
    poem::rng g(7);
    std::vector<std::size_t> sizes;
    // Every size up to 260 (the network's vector counts and padding), then around each power of two
    // where the words' index takes one more bit, up to the network's largest size and past it.
    for (std::size_t n = 0; n <= 260; ++n) sizes.push_back(n);
    for (std::size_t n : {300, 511, 512, 513, 777, 1000, 1023, 1024, 1025, 2000})
        sizes.push_back(n);
    REQUIRE(poem::detail::network_sort_max == 1024);
    for (const std::string& target : poem::simd_targets()) {
        poem::set_simd_target(target);
        for (std::size_t n : sizes)
            for (int shape = 0; shape < key_shapes; ++shape) {
                INFO("target " << target << ", n = " << n << ", shape " << shape);
                const auto keys = test_keys(n, shape, g);
                std::vector<std::uint32_t> expect(n);
                std::iota(expect.begin(), expect.end(), 0u);
                std::stable_sort(expect.begin(), expect.end(),
                                 [&](std::uint32_t x, std::uint32_t y) { return keys[x] < keys[y]; });
                std::vector<std::uint64_t> a(n), b(n), want(n);
                for (std::size_t i = 0; i < n; ++i) want[i] = std::uint64_t(keys[expect[i]]) << 32 | expect[i];
                const std::uint64_t* s = poem::detail::sort_by_key(keys.data(), n, a.data(), b.data());
                REQUIRE((s == a.data() || s == b.data()));
                REQUIRE(std::vector<std::uint64_t>(s, s + n) == want);

                // Ranks by definition: the keys below, plus half of the other keys equal to this one.
                std::vector<float> want_rank(n), rank(n, -1.0f);
                for (std::size_t i = 0; i < n; ++i) {
                    std::size_t below = 0, equal = 0;
                    for (std::size_t j = 0; j < n; ++j) {
                        below += keys[j] < keys[i];
                        equal += keys[j] == keys[i];
                    }
                    want_rank[i] = static_cast<float>(below) + 0.5f * static_cast<float>(equal - 1);
                }
                poem::detail::rank_by_key(keys.data(), n, a.data(), b.data(), rank.data());
                REQUIRE(rank == want_rank);
            }
    }
}
