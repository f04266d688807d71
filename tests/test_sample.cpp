// sample/: alias tables, the one weighted sampler, the item graph (build, save/load, validation,
// neighbour sampling), random walks, hard negatives, hierarchical samples.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "poem/core/rng.hpp"
#include "poem/sample/alias.hpp"
#include "poem/sample/hard_negatives.hpp"
#include "poem/sample/hierarchical.hpp"
#include "poem/core/weighted_sample.hpp"
#include "poem/loss/pairwise.hpp"
#include "poem/sample/item_graph.hpp"
#include "poem/sample/item_graph_builder.hpp"
#include "poem/sample/item_graph_io.hpp"
#include "poem/sample/walk.hpp"

using poem::span;

namespace {

// Upper critical value of chi-square with `df` degrees of freedom at significance 0.001
// (Wilson-Hilferty; z_0.999 = 3.0902; within 1% of the exact quantile for df >= 5).
double chi2_critical_001(double df) {
    const double z = 3.0902, a = 2.0 / (9.0 * df);
    return df * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

// Pearson's statistic of observed counts against expected probabilities (cells with p = 0 must be 0).
double chi2(const std::vector<std::size_t>& counts, const std::vector<double>& p, std::size_t draws) {
    double s = 0.0;
    for (std::size_t k = 0; k < counts.size(); ++k) {
        if (p[k] == 0.0) continue;
        const double e = p[k] * static_cast<double>(draws);
        s += (static_cast<double>(counts[k]) - e) * (static_cast<double>(counts[k]) - e) / e;
    }
    return s;
}

std::vector<double> normalised(const std::vector<double>& w) {
    double sum = 0.0;
    for (double x : w) sum += x;
    std::vector<double> p(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) p[i] = w[i] / sum;
    return p;
}

template <class T>
std::vector<T> vec(span<const T> s) {
    return {s.begin(), s.end()};
}

poem::engagement_event ev(std::uint64_t user, std::uint64_t item, std::int64_t time) {
    poem::engagement_event e;
    e.user_id = user;
    e.item_id = item;
    e.time = time;
    return e;
}

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const poem::error& e) {
        return e.what();
    }
    return "(no error)";
}

// A random graph: each item links to a few others (symmetrised through the builder-free CSR path).
poem::item_graph random_graph(std::uint32_t n, std::uint32_t max_deg, std::uint64_t seed, double isolated_share = 0.1) {
    poem::rng g(seed);
    std::vector<std::map<std::uint32_t, float>> adj(n);
    for (std::uint32_t a = 0; a < n; ++a) {
        if (g.uniform_double() < isolated_share) continue;
        const auto deg = 1 + g.below(max_deg);
        for (std::uint64_t k = 0; k < deg; ++k) {
            const auto b = static_cast<std::uint32_t>(g.below(n));
            if (b == a) continue;
            adj[a][b] = 0.1f + g.uniform_float();
        }
    }
    std::vector<std::uint64_t> off(n + 1, 0);
    std::vector<std::uint32_t> nb;
    std::vector<float> w;
    for (std::uint32_t a = 0; a < n; ++a) {
        for (const auto& [b, x] : adj[a]) {
            nb.push_back(b);
            w.push_back(x);
        }
        off[a + 1] = nb.size();
    }
    return poem::item_graph(off, nb, w);
}

}  // namespace

// ---- alias ------------------------------------------------------------------------------------------

TEST_CASE("alias: implied probabilities equal the normalised weights", "[sample][alias]") {
    poem::rng g(7);
    for (std::size_t n : {1u, 2u, 3u, 10u, 257u, 5000u}) {
        std::vector<double> w(n);
        for (auto& x : w) x = g.uniform_double() < 0.2 ? 0.0 : g.uniform_double() * 100.0;
        w[n / 2] = 1.0;  // never all zero
        const poem::alias_table t(w);
        REQUIRE(t.size() == n);
        const auto p = normalised(w);
        const auto q = t.implied_probabilities();
        for (std::size_t i = 0; i < n; ++i) {
            INFO("n = " << n << ", i = " << i);
            CHECK(std::fabs(p[i] - q[i]) <= 4.0 * static_cast<double>(n) * 0x1.0p-32 + 1e-12);
            if (w[i] == 0.0) CHECK(q[i] == 0.0);
        }
    }
}

TEST_CASE("alias: draws pass a chi-square test at a fixed seed", "[sample][alias]") {
    // H0: draws follow the weights. Reject at significance 0.001 (critical value from Wilson-Hilferty).
    SECTION("10 categories and a zero") {
        const std::vector<float> w = {1, 2, 3, 4, 5, 0, 6, 7, 8, 9, 10};
        const poem::alias_table t(w);
        poem::rng g(42);
        const std::size_t draws = 1'000'000;
        std::vector<std::size_t> counts(w.size());
        for (std::size_t k = 0; k < draws; ++k) ++counts[t.draw(g)];
        CHECK(counts[5] == 0);
        const double stat = chi2(counts, normalised(std::vector<double>(w.begin(), w.end())), draws);
        const double crit = chi2_critical_001(9);  // 10 non-zero cells - 1; exact 27.88
        INFO("chi2 = " << stat << ", critical = " << crit);
        CHECK(stat < crit);
    }
    SECTION("1000 skewed categories") {
        std::vector<double> w(1000);
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = 1.0 / std::pow(static_cast<double>(i + 1), 0.8);
        const poem::alias_table t(w);
        poem::rng g(4242);
        const std::size_t draws = 4'000'000;
        std::vector<std::size_t> counts(w.size());
        for (std::size_t k = 0; k < draws; ++k) ++counts[t.draw(g)];
        const double stat = chi2(counts, normalised(w), draws);
        const double crit = chi2_critical_001(999);
        INFO("chi2 = " << stat << ", critical = " << crit);
        CHECK(stat < crit);
    }
}

TEST_CASE("alias: zero weights are never drawn, seeded", "[sample][alias]") {
    const std::vector<std::uint32_t> counts = {0, 5, 0, 0, 1, 0};
    const poem::alias_table t(counts);
    poem::rng mt(3);
    poem::rng a(99), b(99);
    for (int k = 0; k < 200000; ++k) {
        const auto x = t.draw(mt);
        REQUIRE((x == 1 || x == 4));
        REQUIRE(t.draw(a) == t.draw(b));
    }
    std::vector<std::uint32_t> out(1000);
    poem::rng c(5), d(5);
    t.draw(c, span<std::uint32_t>(out));
    for (auto x : out) CHECK(x == t.draw(d));
}

TEST_CASE("alias: bad weights throw naming the index", "[sample][alias]") {
    using V = std::vector<float>;
    CHECK_THAT(error_of([] { poem::alias_table t(V{1, 2, -1, 3}); }), Catch::Contains("[2]") && Catch::Contains("negative"));
    CHECK_THAT(error_of([] { poem::alias_table t(V{1, NAN, 3}); }), Catch::Contains("[1]") && Catch::Contains("finite"));
    CHECK_THAT(error_of([] { poem::alias_table t(V{1, 1, 1, INFINITY}); }), Catch::Contains("[3]"));
    CHECK_THAT(error_of([] { poem::alias_table t(V{0, 0, 0}); }), Catch::Contains("all 3 weights are zero"));
    CHECK_THAT(error_of([] { poem::alias_table t(V{}); }), Catch::Contains("no weights"));
}

// ---- weighted sampling (Efraimidis-Spirakis) --------------------------------------------------------

TEST_CASE("weighted sample: weight policy, one draw per key, selection order", "[sample][weighted]") {
    CHECK(poem::es_weight(2.0) == 2.0);
    CHECK(poem::es_weight(NAN, 0.5) == 0.5);
    CHECK(poem::es_weight(-3.0, 0.5) == 0.5);
    CHECK(poem::es_weight(INFINITY, 0.25) == 0.25);
    poem::rng a(3), b(3);
    const float k0 = poem::es_key(a, 0.0);
    CHECK(std::isinf(k0));
    CHECK(k0 < 0.0f);
    CHECK(std::isinf(poem::es_key(a, NAN)));
    b();
    b();
    CHECK(a.state() == b.state());  // a draw each, whatever the weight
    // The key is (float)(log(u) / w), u = uniform_double() + 2^-54.
    poem::rng c(11), d(11);
    const double u = d.uniform_double() + 0x1.0p-54;
    CHECK(poem::es_key(c, 2.5) == static_cast<float>(std::log(u) / 2.5));

    // Largest first, ties by the smaller index; k beyond n takes all.
    const std::vector<float> keys = {-1.0f, -0.5f, -2.0f, -0.5f, -INFINITY, -0.1f};
    std::vector<std::uint32_t> order(keys.size());
    CHECK(poem::es_select(keys, 3, order) == 3);
    CHECK(std::vector<std::uint32_t>(order.begin(), order.begin() + 3) == std::vector<std::uint32_t>{5, 1, 3});
    CHECK(poem::es_select(keys, 10, order) == 6);
    CHECK(order == std::vector<std::uint32_t>{5, 1, 3, 0, 2, 4});
    CHECK(poem::es_select(keys, 0, order) == 0);
    std::vector<std::uint32_t> small(2);
    CHECK_THAT(error_of([&] { poem::es_select(keys, 1, small); }), Catch::Contains("es_select: order"));
}

TEST_CASE("weighted sample: first pick and pairs follow the weights (chi-square)", "[sample][weighted]") {
    const std::vector<double> w = {1, 2, 3, 4, 0};
    poem::rng g(99);
    const std::size_t draws = 200000;
    std::vector<std::size_t> first(w.size()), in_two(w.size());
    for (std::size_t t = 0; t < draws; ++t) {
        const auto s = poem::es_sample(span<const double>(w), 0.0, 2, g);
        REQUIRE(s.size() == 2);
        REQUIRE(s[0] != s[1]);
        ++first[s[0]];
        ++in_two[s[0]];
        ++in_two[s[1]];
    }
    CHECK(first[4] == 0);
    CHECK(in_two[4] == 0);  // zero weight, floor 0: never while positive ones remain
    const double stat = chi2(first, {0.1, 0.2, 0.3, 0.4, 0.0}, draws);
    INFO("chi2 = " << stat);
    CHECK(stat < chi2_critical_001(3));
    // Second-order inclusion probability of item 0 in a sample of 2: sum over first picks j != 0.
    double p0 = 0.1;
    for (std::size_t j = 1; j < 4; ++j) p0 += w[j] / 10.0 * (1.0 / (10.0 - w[j]));
    CHECK(static_cast<double>(in_two[0]) / draws == Approx(p0).margin(0.005));
}

// ---- item graph ---------------------------------------------------------------------------------------

TEST_CASE("item_graph: built from a hand-made log equals the expected adjacency", "[sample][graph]") {
    // user 1: items 0, 1, 2, 3 at t = 0, 10, 20, 500 -> links (0,1) (0,2) (1,2); 3 is too late.
    // user 2: items 2 (t 6) and 1 (t 5), logged out of order -> link (1,2).
    // user 3: 4, 4, 0 at t = 0, 1, 2 -> (4,4) skipped, (4,0) twice.
    const std::vector<poem::engagement_event> log = {
        ev(1, 0, 0), ev(2, 2, 6), ev(1, 1, 10), ev(3, 4, 0), ev(1, 2, 20), ev(2, 1, 5), ev(1, 3, 500), ev(3, 4, 1), ev(3, 0, 2),
    };
    poem::graph_build_config cfg;
    cfg.window_items = 2;
    cfg.window_seconds = 100;
    cfg.top_m = 0;
    const auto g = poem::build_item_graph(log, 6, cfg);
    const float w1 = static_cast<float>(1.0 / std::log2(6.0)), w2 = 0.5f, w3 = static_cast<float>(1.0 / std::log2(5.0));

    CHECK(g.item_count() == 6);
    CHECK(vec(g.offsets()) == std::vector<std::uint64_t>{0, 3, 5, 7, 7, 8, 8});
    CHECK(vec(g.neighbor_array()) == std::vector<std::uint32_t>{1, 2, 4, 0, 2, 0, 1, 0});
    const std::vector<float> expected = {w1, w1, 2 * w3, w1, w1 + w2, w1, w1 + w2, 2 * w3};
    REQUIRE(g.weight_array().size() == expected.size());
    for (std::size_t e = 0; e < expected.size(); ++e) CHECK(g.weight_array()[e] == Approx(expected[e]).epsilon(1e-6));
    CHECK(g.edge_weight(1, 2) == Approx(w1 + w2));
    CHECK(g.edge_weight(3, 0) == 0.0f);
    CHECK(g.degree(3) == 0);

    SECTION("top-M keeps each row's heaviest neighbours") {
        cfg.top_m = 1;
        const auto h = poem::build_item_graph(log, 6, cfg);
        CHECK(vec(h.offsets()) == std::vector<std::uint64_t>{0, 1, 2, 3, 3, 4, 4});
        CHECK(vec(h.neighbor_array()) == std::vector<std::uint32_t>{4, 2, 1, 0});
    }
    SECTION("no damping, no time window") {
        cfg.damp_activity = false;
        cfg.window_seconds = 0;
        const auto h = poem::build_item_graph(log, 6, cfg);
        CHECK(h.edge_weight(1, 3) == 1.0f);  // 2 items apart, 490 s: now linked
        CHECK(h.edge_weight(0, 3) == 0.0f);  // 3 items apart
        CHECK(h.edge_weight(1, 2) == 2.0f);
        CHECK(h.edge_weight(0, 4) == 2.0f);
    }
    SECTION("an item out of range names the event") {
        const std::vector<poem::engagement_event> bad = {ev(1, 0, 0), ev(1, 9, 1)};
        CHECK_THAT(error_of([&] { poem::build_item_graph(bad, 6, cfg); }), Catch::Contains("events[1].item_id"));
        cfg.window_seconds = -1;
        CHECK_THAT(error_of([&] { poem::build_item_graph(log, 6, cfg); }), Catch::Contains("graph_build_config.window_seconds"));
    }
}

TEST_CASE("item_graph: a random log gives a symmetric, valid graph", "[sample][graph]") {
    poem::rng g(11);
    std::vector<poem::engagement_event> log;
    for (std::uint64_t u = 0; u < 300; ++u) {
        const auto n = 1 + g.below(40);
        std::int64_t t = 0;
        for (std::uint64_t k = 0; k < n; ++k) {
            t += static_cast<std::int64_t>(g.below(600));
            log.push_back(ev(u, g.below(200), t));
        }
    }
    poem::graph_build_config cfg;
    cfg.top_m = 0;
    const auto graph = poem::build_item_graph(log, 200, cfg);
    CHECK(graph.edge_count() > 500);
    for (std::uint32_t a = 0; a < 200; ++a)
        for (std::uint32_t b : graph.neighbors(a)) {
            CHECK(b != a);
            CHECK(graph.edge_weight(b, a) == graph.edge_weight(a, b));
        }
    cfg.top_m = 4;
    const auto pruned = poem::build_item_graph(log, 200, cfg);
    for (std::uint32_t a = 0; a < 200; ++a) {
        CHECK(pruned.degree(a) == std::min<std::uint64_t>(4, graph.degree(a)));
        // the kept ones are the heaviest
        std::vector<float> all(graph.weights(a).begin(), graph.weights(a).end());
        std::sort(all.rbegin(), all.rend());
        for (float w : pruned.weights(a)) CHECK(w >= all[std::min<std::size_t>(3, all.size() - 1)]);
    }
}

TEST_CASE("item_graph: constructor validation names the array and index", "[sample][graph]") {
    using O = std::vector<std::uint64_t>;
    using N = std::vector<std::uint32_t>;
    using W = std::vector<float>;
    CHECK_THAT(error_of([] { poem::item_graph(O{0, 2, 1, 3}, N{1, 2, 0}, W{1, 1, 1}); }), Catch::Contains("offsets[2]"));
    CHECK_THAT(error_of([] { poem::item_graph(O{0, 1, 2}, N{1, 5}, W{1, 1}); }), Catch::Contains("neighbors[1]"));
    CHECK_THAT(error_of([] { poem::item_graph(O{0, 2, 2}, N{1, 1}, W{1, 1}); }), Catch::Contains("neighbors[1]"));
    CHECK_THAT(error_of([] { poem::item_graph(O{0, 1, 2}, N{1, 0}, W{1, NAN}); }), Catch::Contains("weights[1]"));
    CHECK_THAT(error_of([] { poem::item_graph(O{0, 1, 2}, N{1, 0}, W{0, 1}); }), Catch::Contains("weights[0]"));
    CHECK_THAT(error_of([] { poem::item_graph(O{0, 1, 3}, N{1, 0}, W{1, 1}); }), Catch::Contains("edge count"));
    CHECK_THAT(error_of([] { poem::item_graph(O{}, N{}, W{}); }), Catch::Contains("offsets"));
    CHECK_NOTHROW(poem::item_graph(O{0, 0, 0}, N{}, W{}));
}

TEST_CASE("item_graph: save and load round-trip", "[sample][graph]") {
    const auto g = random_graph(300, 12, 5);
    char tmp[] = "/tmp/poem_test_graph_XXXXXX";
    const int fd = mkstemp(tmp);
    REQUIRE(fd >= 0);
    close(fd);
    poem::save_item_graph(g, tmp);
    const auto h = poem::load_item_graph(tmp);
    std::remove(tmp);
    CHECK(vec(h.offsets()) == vec(g.offsets()));
    CHECK(vec(h.neighbor_array()) == vec(g.neighbor_array()));
    CHECK(vec(h.weight_array()) == vec(g.weight_array()));
    CHECK(poem::serialize_item_graph(h) == poem::serialize_item_graph(g));
    for (std::size_t e = 0; e < g.edge_count(); ++e) {
        CHECK(h.sampler_array()[e].threshold == g.sampler_array()[e].threshold);
        CHECK(h.sampler_array()[e].alias_item == g.sampler_array()[e].alias_item);
        CHECK(h.sampler_array()[e].item == g.neighbor_array()[e]);
    }
    CHECK_THAT(error_of([] { poem::load_item_graph("/nonexistent/dir/graph.bin"); }), Catch::Contains("cannot open"));
    // The empty graph round-trips too.
    const poem::item_graph empty;
    const auto eb = poem::serialize_item_graph(empty);
    CHECK(poem::deserialize_item_graph({eb.data(), eb.size()}).item_count() == 0);
    // Little-endian layout: magic, version 2, item count; a CRC-32 trailer.
    const auto bytes = poem::serialize_item_graph(g);
    CHECK(std::string(bytes.begin(), bytes.begin() + 8) == "POEMGRPH");
    CHECK(bytes[8] == 2);
    CHECK(bytes.size() == 32 + 8 * 301 + 8 * g.edge_count() + 4);
    CHECK(poem::detail::get_le(bytes.data() + bytes.size() - 4, 4) == poem::crc32(bytes.data(), bytes.size() - 4));
    // Saving over an existing file replaces it whole, and leaves no temporary file behind.
    {
        char dir[] = "/tmp/poem_test_graph_dir_XXXXXX";
        REQUIRE(mkdtemp(dir) != nullptr);
        const std::string path = std::string(dir) + "/graph.bin";
        poem::save_item_graph(g, path);
        poem::save_item_graph(empty, path);
        CHECK(poem::load_item_graph(path).item_count() == 0);
        poem::save_item_graph(g, path);
        CHECK(poem::serialize_item_graph(poem::load_item_graph(path)) == bytes);
        std::remove(path.c_str());
        CHECK(rmdir(dir) == 0);  // empty: no temporary left
        CHECK_THAT(error_of([&] { poem::save_item_graph(g, std::string(dir) + "/graph.bin"); }),
                   Catch::Contains("temporary"));
    }
    CHECK(bytes[9] == 0);
    CHECK(bytes[16] == (300 & 0xFF));
    CHECK(bytes[17] == (300 >> 8));
}

TEST_CASE("item_graph: every truncation and every byte flip is rejected with an offset", "[sample][graph]") {
    const auto g = random_graph(40, 6, 9);
    const auto bytes = poem::serialize_item_graph(g);
    REQUIRE(bytes.size() > 200);
    for (std::size_t len = 0; len < bytes.size(); ++len) {
        std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len));
        const auto msg = error_of([&] { poem::deserialize_item_graph({cut.data(), cut.size()}); });
        INFO("length " << len << ": " << msg);
        REQUIRE_THAT(msg, Catch::Contains("offset"));
    }
    {
        auto longer = bytes;
        longer.push_back(0);
        CHECK_THAT(error_of([&] { poem::deserialize_item_graph({longer.data(), longer.size()}); }), Catch::Contains("offset"));
    }
    poem::rng r(123);
    for (std::size_t at = 0; at < bytes.size(); ++at) {
        auto bad = bytes;
        bad[at] ^= static_cast<unsigned char>(1 + r.below(255));
        const auto msg = error_of([&] { poem::deserialize_item_graph({bad.data(), bad.size()}); });
        INFO("flip at " << at << ": " << msg);
        REQUIRE_THAT(msg, Catch::Contains("offset"));
    }
    // Random multi-byte corruption: never anything but poem::error (or, by chance, a valid graph).
    for (int trial = 0; trial < 2000; ++trial) {
        auto bad = bytes;
        const auto flips = 1 + r.below(8);
        for (std::uint64_t k = 0; k < flips; ++k) bad[r.below(bad.size())] = static_cast<unsigned char>(r.below(256));
        try {
            const auto h = poem::deserialize_item_graph({bad.data(), bad.size()});
            CHECK(poem::serialize_item_graph(h) == bad);
        } catch (const poem::error&) {
        }
    }
    // Specific diagnostics.
    auto bad = bytes;
    bad[0] = 'X';
    CHECK_THAT(error_of([&] { poem::deserialize_item_graph({bad.data(), bad.size()}); }), Catch::Contains("magic at byte offset 0"));
    bad = bytes;
    bad[8] = 1;
    CHECK_THAT(error_of([&] { poem::deserialize_item_graph({bad.data(), bad.size()}); }), Catch::Contains("version 1 at byte offset 8"));
    bad[8] = 3;
    CHECK_THAT(error_of([&] { poem::deserialize_item_graph({bad.data(), bad.size()}); }), Catch::Contains("version 3 at byte offset 8"));
    bad = bytes;
    bad[32 + 8 * 41 + 3] = 0xFF;  // first neighbour's top byte
    CHECK_THAT(error_of([&] { poem::deserialize_item_graph({bad.data(), bad.size()}); }),
               Catch::Contains("at byte offset " + std::to_string(32 + 8 * 41)));
}

TEST_CASE("item_graph: neighbour sampling follows the edge weights", "[sample][graph]") {
    const std::vector<std::uint64_t> off = {0, 5, 5, 6, 7, 8, 9};
    const std::vector<std::uint32_t> nb = {1, 2, 3, 4, 5, 0, 0, 0, 0};
    const std::vector<float> w = {0.5f, 3.0f, 1.0f, 0.25f, 2.0f, 1, 1, 1, 1};
    const poem::item_graph g(off, nb, w);
    poem::rng r(77);
    const std::size_t draws = 500000;
    std::vector<std::size_t> counts(6);
    for (std::size_t k = 0; k < draws; ++k) ++counts[g.sample_neighbor(0, r)];
    const std::vector<double> p = normalised({0, 0.5, 3.0, 1.0, 0.25, 2.0});
    const double stat = chi2(counts, p, draws);
    INFO("chi2 = " << stat);
    CHECK(counts[0] == 0);
    CHECK(stat < chi2_critical_001(4));
    CHECK(g.sample_neighbor(1, r) == poem::item_graph::npos);
    CHECK(g.sample_neighbor(2, r) == 0);
}

// ---- walks --------------------------------------------------------------------------------------------

TEST_CASE("walks: batched equals naive, stays on edges, ends at dead ends", "[sample][walk]") {
    const auto g = random_graph(2000, 8, 21, 0.05);
    for (std::size_t B : {1u, 3u, 16u, 17u, 1000u}) {
        const std::size_t L = 12;
        std::vector<std::uint64_t> starts(B);
        poem::rng r(B);
        for (auto& s : starts) s = r.below(g.item_count());
        std::vector<std::uint64_t> a(B * L), b(B * L);
        poem::rng ga(1234), gb(1234);
        poem::walk_naive(g, starts, L, ga, a);
        poem::workspace ws;
        poem::walk_batch(g, starts, L, gb, ws, b);
        CHECK(ga.state() == gb.state());  // one draw each
        INFO("B = " << B);
        REQUIRE(a == b);
        std::size_t ended = 0;
        for (std::size_t w = 0; w < B; ++w) {
            CHECK(a[w * L] == starts[w]);
            for (std::size_t t = 1; t < L; ++t) {
                const auto prev = a[w * L + t - 1], cur = a[w * L + t];
                if (prev == poem::item_graph::npos) {
                    CHECK(cur == poem::item_graph::npos);
                } else if (cur == poem::item_graph::npos) {
                    CHECK(g.degree(prev) == 0);
                    ++ended;
                } else {
                    CHECK(g.edge_weight(prev, cur) > 0.0f);
                }
            }
        }
        if (B == 1000) CHECK(ended > 0);
    }
}

TEST_CASE("walks: seeded, workspace reuse, bad arguments", "[sample][walk]") {
    const auto g = random_graph(500, 6, 3, 0.0);
    std::vector<std::uint64_t> starts(64);
    for (std::size_t i = 0; i < starts.size(); ++i) starts[i] = i * 7;
    std::vector<std::uint64_t> a(64 * 10), b(64 * 10), c(64 * 10);
    poem::workspace ws;
    poem::rng g5(5), g5b(5), g6(6);
    poem::walk_batch(g, starts, 10, g5, ws, a);
    poem::walk_batch(g, starts, 10, g5b, ws, b);
    poem::walk_batch(g, starts, 10, g6, ws, c);
    CHECK(a == b);
    CHECK(a != c);
    // A walk does not depend on its batch: walk 5 alone with its own fork of the batch's seed.
    std::vector<std::uint64_t> one(10);
    poem::rng seed_of(5);
    poem::rng f = poem::rng(seed_of()).fork(5);
    poem::random_walk(g, starts[5], f, span<std::uint64_t>(one));
    CHECK(std::equal(one.begin(), one.end(), a.begin() + 50));

    // Ids are u64 and checked, never truncated: 2^32 + 3 is not item 3.
    std::vector<std::uint64_t> bad_start = {0, 500};
    std::vector<std::uint64_t> huge_start = {(std::uint64_t(1) << 32) + 3};
    std::vector<std::uint64_t> out(20);
    poem::rng r(1);
    CHECK_THAT(error_of([&] { poem::walk_batch(g, bad_start, 10, r, ws, out); }),
               Catch::Contains("starts[1] = 500 is not below the item graph's item_count 500"));
    CHECK_THAT(error_of([&] { poem::walk_naive(g, huge_start, 2, r, span<std::uint64_t>(out.data(), 2)); }),
               Catch::Contains("starts[0] = 4294967299"));
    CHECK_THAT(error_of([&] { poem::random_walk(g, huge_start[0], r, span<std::uint64_t>(out)); }), Catch::Contains("start"));
    CHECK_THAT(error_of([&] { g.sample_neighbor(huge_start[0], r); }), Catch::Contains("item = 4294967299"));
    CHECK_THAT(error_of([&] { g.neighbors(500); }), Catch::Contains("item_graph::neighbors: item = 500"));
    CHECK_THAT(error_of([&] { poem::walk_batch(g, starts, 10, r, ws, out); }), Catch::Contains("out must hold"));
    CHECK_THAT(error_of([&] { poem::walk_naive(g, starts, 0, r, out); }), Catch::Contains("length"));
}

// ---- hard negatives -----------------------------------------------------------------------------------

TEST_CASE("hard negatives: from the neighbourhood, never a positive or an engaged item", "[sample][negatives]") {
    const auto g = random_graph(3000, 10, 8, 0.02);
    std::vector<std::uint64_t> counts(3000);
    poem::rng r(1);
    for (auto& c : counts) c = r.below(1000);
    const auto pop = poem::popularity_alias(counts);
    for (std::uint32_t hops : {1u, 2u}) {
        for (int user = 0; user < 200; ++user) {
            std::vector<std::uint64_t> pos, engaged;
            for (int k = 0; k < 1 + user % 5; ++k) pos.push_back(r.below(3000));
            for (int k = 0; k < 20; ++k) engaged.push_back(r.below(3000));
            for (std::uint64_t p : pos)  // some of the neighbourhood is engaged
                if (g.degree(p) > 0) engaged.push_back(g.neighbors(p)[0]);
            poem::rng s1(user), s2(user);
            const poem::hard_negative_config cfg{8, hops};
            const auto res = poem::hard_negatives(g, pos, engaged, &pop, cfg, s1);
            const auto again = poem::hard_negatives(g, pos, engaged, &pop, cfg, s2);
            CHECK(res.items == again.items);
            CHECK(res.items.size() == 8);
            CHECK(res.from_graph + res.from_popularity == res.items.size());
            std::set<std::uint64_t> seen;
            for (std::size_t k = 0; k < res.items.size(); ++k) {
                const auto x = res.items[k];
                CHECK(seen.insert(x).second);
                CHECK(std::find(pos.begin(), pos.end(), x) == pos.end());
                CHECK(std::find(engaged.begin(), engaged.end(), x) == engaged.end());
                if (k < res.from_graph) {
                    bool near = false;
                    for (std::uint64_t p : pos) {
                        if (g.edge_weight(p, x) > 0) near = true;
                        if (hops == 2)
                            for (std::uint32_t m : g.neighbors(p))
                                if (g.edge_weight(m, x) > 0) near = true;
                    }
                    CHECK(near);
                }
            }
        }
    }
}

TEST_CASE("hard negatives: weighted by edge weight, popularity fallback when dry", "[sample][negatives]") {
    // Item 0 has neighbours 1..4 with weights 1, 2, 3, 4; item 5 is isolated.
    const poem::item_graph g(std::vector<std::uint64_t>{0, 4, 5, 6, 7, 8, 8}, std::vector<std::uint32_t>{1, 2, 3, 4, 0, 0, 0, 0},
                             std::vector<float>{1, 2, 3, 4, 1, 2, 3, 4});
    std::vector<std::uint64_t> pos = {0}, none;
    poem::rng r(2024);
    std::vector<std::size_t> counts(5);
    const std::size_t draws = 200000;
    for (std::size_t k = 0; k < draws; ++k)
        ++counts[poem::hard_negatives(g, pos, none, nullptr, {1, 1}, r).items.at(0)];
    const double stat = chi2(counts, {0, 0.1, 0.2, 0.3, 0.4}, draws);
    INFO("chi2 = " << stat);
    CHECK(stat < chi2_critical_001(3));

    const auto pop = poem::popularity_alias(std::vector<std::uint32_t>{100, 50, 10, 10, 10, 1000});
    const auto imp = pop.implied_probabilities();
    CHECK(imp[5] / imp[0] == Approx(std::pow(10.0, 0.75)).epsilon(1e-6));
    // Engaged 1 and 2: the graph yields 3 and 4; popularity tops up with 5 (never 0, 1 or 2).
    std::vector<std::uint64_t> engaged = {1, 2};
    const auto res = poem::hard_negatives(g, pos, engaged, &pop, {3, 1}, r);
    CHECK(res.from_graph == 2);
    CHECK(res.from_popularity == 1);
    CHECK(res.items[2] == 5);
    // Exhausted catalogue: fewer than asked, no endless loop.
    const auto few = poem::hard_negatives(g, pos, engaged, &pop, {10, 1}, r);
    CHECK(few.items.size() == 3);
    // Without a popularity table: only the graph.
    CHECK(poem::hard_negatives(g, pos, engaged, nullptr, {10, 1}, r).items.size() == 2);
    CHECK_THAT(error_of([&] { poem::hard_negatives(g, pos, engaged, nullptr, {1, 3}, r); }),
               Catch::Contains("hard_negative_config.hops"));
    // Positives are checked against the graph, never truncated; excluded ids are any u64.
    const std::vector<std::uint64_t> outside = {0, (std::uint64_t(1) << 32) + 1};
    CHECK_THAT(error_of([&] { poem::hard_negatives(g, outside, engaged, nullptr, {1, 1}, r); }),
               Catch::Contains("positives[1] = 4294967297 is not below the item graph's item_count 6"));
    CHECK(poem::hard_negatives(g, pos, outside, nullptr, {10, 1}, r).items.size() == 4);
    CHECK_THAT(error_of([] { poem::popularity_alias(std::vector<int>{1, -1}); }), Catch::Contains("counts[1]"));
}

// ---- hierarchical samples -------------------------------------------------------------------------------

TEST_CASE("hierarchical samples: tiers, negatives, pairs and margins as configured", "[sample][hierarchical]") {
    const auto g = random_graph(1000, 10, 17, 0.0);
    std::vector<std::uint32_t> counts(1000, 5);
    const auto pop = poem::popularity_alias(counts);
    // 6 candidates: 10 (like), 20 (rank 0), 30 (click, rank 1), 40 (nothing), 50 (follow, rank 2), 60 (play 40 s).
    const std::vector<std::uint64_t> ids = {10, 20, 30, 40, 50, 60};
    const std::vector<std::uint32_t> rank = {3, 0, 1, 5, 2, 4};
    std::vector<poem::engagement_event> fb(6);
    for (std::size_t c = 0; c < 6; ++c) fb[c].item_id = ids[c];
    fb[0].like = true;
    fb[2].click = true;
    fb[2].play_time = 50.0f;  // 50 s of a 60-s video: no long view under a 55-s rule
    fb[2].duration = 60.0f;
    fb[4].follow = true;
    fb[5].play_time = 40.0f;  // unknown duration
    const std::vector<std::uint64_t> history = {10, 11, 12, 13, 14};
    poem::hierarchy_config cfg;
    cfg.engagement.long_view_seconds = 55.0f;
    cfg.system_top_k = 2;
    cfg.hard_negatives = 3;
    cfg.random_negatives = 4;
    cfg.base_margin = 0.25f;
    cfg.max_pairs = 0;
    poem::rng r(1);
    const auto s = poem::hierarchical_samples(fb, rank, history, &g, &pop, cfg, r);
    using T = poem::sample_tier;
    REQUIRE(s.candidate_count == 6);
    REQUIRE(s.items.size() == 13);
    CHECK(std::vector<T>(s.tiers.begin(), s.tiers.begin() + 6) ==
          std::vector<T>{T::strong_positive, T::system_favoured, T::system_favoured, T::exposed, T::strong_positive, T::exposed});
    CHECK(s.tier_sizes == std::array<std::size_t, 5>{2, 2, 2, 3, 4});
    std::set<std::uint64_t> banned(history.begin(), history.end());
    banned.insert(ids.begin(), ids.end());
    std::set<std::uint64_t> negs;
    for (std::size_t k = 6; k < 13; ++k) {
        CHECK(s.tiers[k] == (k < 9 ? T::hard_negative : T::random_negative));
        CHECK(banned.count(s.items[k]) == 0);
        CHECK(negs.insert(s.items[k]).second);
    }
    // Pairs: every cross-tier pair once, better first, margin = 0.25 * gap.
    CHECK(s.pairs_total == 2 * 11 + 2 * 9 + 2 * 7 + 3 * 4);
    CHECK(s.pairs.size() == s.pairs_total);
    for (const auto& p : s.pairs) {
        const int gap = static_cast<int>(s.tiers[p.j]) - static_cast<int>(s.tiers[p.i]);
        CHECK(gap > 0);
        CHECK(p.margin == Approx(0.25 * gap));
    }
    SECTION("the engagement rule's long view, custom margins per gap, and a pair cap") {
        cfg.engagement.long_view_seconds = 30.0f;  // now 40 s is a long view (and 50 s of 60)
        cfg.margin_by_gap = {0.1f, 0.5f, 0.7f, 1.0f};
        cfg.max_pairs = 0;
        poem::rng r1(9);
        const auto full = poem::hierarchical_samples(fb, rank, history, &g, &pop, cfg, r1);
        CHECK(full.tiers[5] == T::strong_positive);
        CHECK(full.tiers[2] == T::strong_positive);
        poem::hierarchy_config no_lv = cfg;
        no_lv.engagement.long_view = false;
        poem::rng r0(9);
        const auto t0 = poem::hierarchical_samples(fb, rank, history, &g, &pop, no_lv, r0);
        CHECK(t0.tiers[5] == T::exposed);
        CHECK(t0.tiers[2] == T::system_favoured);  // a click alone is never strong
        for (const auto& p : full.pairs)
            CHECK(p.margin == cfg.margin_by_gap[static_cast<std::size_t>(full.tiers[p.j]) - static_cast<std::size_t>(full.tiers[p.i]) - 1]);
        cfg.max_pairs = 20;
        poem::rng r2(9), r3(9);
        const auto capped = poem::hierarchical_samples(fb, rank, history, &g, &pop, cfg, r2);
        const auto again = poem::hierarchical_samples(fb, rank, history, &g, &pop, cfg, r3);
        CHECK(capped.items == full.items);  // same draws before the cap
        CHECK(capped.pairs_total == full.pairs.size());
        REQUIRE(capped.pairs.size() == 20);
        CHECK(capped.pairs == again.pairs);
        auto it = full.pairs.begin();
        for (const auto& p : capped.pairs) {  // an ordered subset of the full list
            it = std::find(it, full.pairs.end(), p);
            CHECK(it != full.pairs.end());
        }
    }
    SECTION("quintuple input gives the same sample") {
        std::vector<poem::quintuple> q(6);
        for (std::size_t c = 0; c < 6; ++c) q[c] = {ids[c], 100, 1.0f - 0.1f * static_cast<float>(rank[c]), 0.0f, 0};
        poem::rng r1(1);
        const auto t = poem::hierarchical_samples(span<const poem::quintuple>(q), fb, history, &g, &pop, cfg, r1);
        CHECK(t.items == s.items);
        auto wrong = fb;
        wrong[3].item_id = 41;
        CHECK_THAT(error_of([&] { poem::hierarchical_samples(span<const poem::quintuple>(q), wrong, history, &g, &pop, cfg, r1); }),
                   Catch::Contains("feedback[3].item_id = 41"));
        CHECK(t.tiers == s.tiers);
        CHECK(t.pairs == s.pairs);
    }
    SECTION("no graph, no popularity: candidates only") {
        poem::rng r1(1);
        const auto t = poem::hierarchical_samples(fb, rank, history, nullptr, nullptr, cfg, r1);
        CHECK(t.items.size() == 6);
        CHECK(t.pairs_total == 2 * 4 + 2 * 2);
    }
    SECTION("bad input throws") {
        poem::rng r1(1);
        const std::vector<std::uint32_t> short_rank = {0, 1};
        CHECK_THAT(error_of([&] { poem::hierarchical_samples(fb, short_rank, history, &g, &pop, cfg, r1); }),
                   Catch::Contains("fused_rank"));
        cfg.margin_by_gap = {1.0f};
        CHECK_THAT(error_of([&] { poem::hierarchical_samples(fb, rank, history, &g, &pop, cfg, r1); }),
                   Catch::Contains("margin_by_gap"));
        cfg.margin_by_gap.clear();
        cfg.engagement.long_view_seconds = -1.0f;
        CHECK_THAT(error_of([&] { poem::hierarchical_samples(fb, rank, history, &g, &pop, cfg, r1); }),
                   Catch::Contains("hierarchy_config.engagement.long_view_seconds"));
        cfg.engagement.long_view_seconds = 10.0f;
        cfg.base_margin = NAN;
        CHECK_THAT(error_of([&] { poem::hierarchical_samples(fb, rank, history, &g, &pop, cfg, r1); }),
                   Catch::Contains("base_margin"));
        cfg.base_margin = 0.1f;
        auto far = fb;
        far[0].item_id = 1000;  // a strong positive outside the graph
        CHECK_THAT(error_of([&] { poem::hierarchical_samples(far, rank, history, &g, &pop, cfg, r1); }),
                   Catch::Contains("candidates[0].item_id = 1000"));
    }
}

TEST_CASE("hierarchical pairs feed the loss: pairwise_loss_config, arguments in poem's order", "[sample][loss]") {
    const std::vector<float> scores = {0.9f, 0.1f, 0.5f, -0.2f};
    const std::vector<poem::margin_pair> pairs = {{0, 1, 0.2f}, {2, 3, 0.5f}, {1, 3, 0.4f}};
    for (auto form : {poem::pairwise_form::hinge, poem::pairwise_form::softplus}) {
        std::vector<float> g1(4), g2(4);
        const float l1 = poem::pairwise_loss(span<const float>(scores), span<const poem::margin_pair>(pairs),
                                             poem::pairwise_loss_config{form}, span<float>(g1));
        const float l2 = form == poem::pairwise_form::hinge
                             ? poem::pairwise_hinge(span<const float>(scores), span<const poem::margin_pair>(pairs), span<float>(g2))
                             : poem::pairwise_softplus(span<const float>(scores), span<const poem::margin_pair>(pairs), span<float>(g2));
        CHECK(l1 == l2);
        CHECK(g1 == g2);
        std::vector<float> gp(2), gn(2), gp2(2), gn2(2);
        const std::vector<float> pos = {0.3f, 0.7f}, neg = {0.1f, 0.6f};
        CHECK(poem::dense_pairwise_loss(span<const float>(pos), span<const float>(neg), 0.25f, poem::pairwise_loss_config{form},
                                        span<float>(gp), span<float>(gn)) ==
              Approx(poem::detail::dense_pairwise_loss_scalar(span<const float>(pos), {}, 0.25f, span<const float>(neg), {},
                                                              poem::pairwise_loss_config{form}, span<float>(gp2), span<float>(gn2)))
                  .margin(1e-6));
        for (std::size_t i = 0; i < 2; ++i) {
            CHECK(gp[i] == Approx(gp2[i]).margin(1e-6));
            CHECK(gn[i] == Approx(gn2[i]).margin(1e-6));
        }
    }
    std::vector<float> g(4);
    CHECK_THAT(error_of([&] {
                   poem::pairwise_loss(span<const float>(scores), span<const poem::margin_pair>(pairs),
                                       poem::pairwise_loss_config{static_cast<poem::pairwise_form>(7)}, span<float>(g));
               }),
               Catch::Contains("pairwise_loss_config.form"));
}
