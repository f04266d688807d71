// The runtime SIMD target: naming, selection, refusal (core/dispatch.hpp). Agreement between targets is
// tested where each kernel is (test_fusion, test_model, test_primitives loop over every target this CPU
// runs), and ctest reruns every test binary once per compiled target.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "poem/core/dispatch.hpp"
#include "poem/core/workspace.hpp"
#include "poem/fusion/fuse.hpp"
#include "simd_target_scope.hpp"

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string error_of(void (*f)()) {
    try {
        f();
    } catch (const poem::error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("simd_target names one of the targets this CPU runs, and set_simd_target switches", "[dispatch]") {
    const char* env = std::getenv("POEM_SIMD");
    const std::vector<std::string> targets = poem::simd_targets();
    REQUIRE(!targets.empty());
    const std::string active = poem::simd_target();
    REQUIRE(std::find(targets.begin(), targets.end(), active) != targets.end());
    if (env == nullptr || *env == '\0') REQUIRE(active == targets.front());  // the best, unless overridden
    else REQUIRE(active == env);
#ifdef POEM_DISPATCH
    REQUIRE(targets.back() == "scalar");
    for (const std::string& t : targets) {
        poem::set_simd_target(t);
        REQUIRE(poem::simd_target() == t);
    }
    poem::set_simd_target(active);
#else
    REQUIRE(targets.size() == 1);
    REQUIRE(contains(error_of([] { poem::set_simd_target("scalar-or-other"); }), "no runtime dispatch"));
#endif
}

TEST_CASE("set_simd_target refuses a name that is not a target, naming it and the targets", "[dispatch]") {
    const std::string before = poem::simd_targets().front();
    const std::string msg = error_of([] { poem::set_simd_target("avx9"); });
    REQUIRE(contains(msg, "avx9"));
#ifdef POEM_DISPATCH
    REQUIRE(contains(msg, "not a target of this build"));
    REQUIRE(contains(msg, "scalar"));
    REQUIRE(poem::simd_targets().front() == before);  // nothing changed
#endif
}

TEST_CASE("every target fuses a request to the same result as the scalar reference", "[dispatch]") {
    // Tolerance (docs/fusion.md): ranks and min-max values bit-identical, z-score/log1p/reciprocal 1e-6.
    const std::size_t k = 4, n = 1000;
    std::vector<float> scores(k * n);
    for (std::size_t i = 0; i < scores.size(); ++i) scores[i] = static_cast<float>((i * 2654435761u) % 1000) / 997.0f;
    scores[17] = std::numeric_limits<float>::quiet_NaN();
    poem::fusion_config cfg;
    for (poem::normalization norm : {poem::normalization::rank_pct, poem::normalization::min_max,
                                     poem::normalization::z_score, poem::normalization::log1p_min_max})
        cfg.objectives.push_back({poem::direction::higher_is_better, norm, 0.25f});
    poem::workspace ws;
    const simd_target_scope restore;
    auto run = [&](const std::string& target) {
        poem::set_simd_target(target);
        return poem::fuse(poem::matrix_view<const float>(scores.data(), k, n), cfg, ws);
    };
    const std::vector<std::string> targets = poem::simd_targets();
    for (poem::fusion_method m : {poem::fusion_method::weighted_rank, poem::fusion_method::reciprocal_rank,
                                  poem::fusion_method::weighted_value}) {
        cfg.method = m;
        const poem::fusion_result ref = run(targets.back());
        for (const std::string& t : targets) {
            INFO("target " << t << ", method " << static_cast<int>(m));
            const poem::fusion_result got = run(t);
            REQUIRE(got.ranks == ref.ranks);
            for (std::size_t i = 0; i < k * n; ++i) REQUIRE(got.normalized[i] == Approx(ref.normalized[i]).margin(1e-6));
            for (std::size_t i = 0; i < n; ++i) REQUIRE(got.fused[i] == Approx(ref.fused[i]).margin(1e-6));
        }
    }
}

#ifdef POEM_DISPATCH
// Run by ctest with POEM_SIMD set (tests/CMakeLists.txt): a bogus value and a valid one.
TEST_CASE("POEM_SIMD: a value that cannot run is refused by name; a valid one is honoured", "[.env]") {
    const char* env = std::getenv("POEM_SIMD");
    REQUIRE(env != nullptr);
    const std::vector<std::string> targets = poem::simd_targets();
    if (std::find(targets.begin(), targets.end(), env) != targets.end()) {
        REQUIRE(poem::simd_target() == std::string(env));
        return;
    }
    const std::string msg = error_of([] { (void)poem::simd_target(); });
    REQUIRE(contains(msg, "POEM_SIMD="));
    REQUIRE(contains(msg, env));
    poem::set_simd_target("scalar");  // an explicit choice supersedes the variable
    REQUIRE(poem::simd_target() == std::string("scalar"));
}
#endif
