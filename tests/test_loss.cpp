// loss/: margin pairwise hinge and softplus, pair list and dense forms, SIMD against the scalar
// reference, both against a brute-force double-precision reference, and against PyTorch's autograd
// (/usr/bin/python3 with python3-torch, which `make test` installs: without it that test fails).
//
// Tolerances (stated): SIMD vs scalar reference, loss within 1e-5 relative, gradients within
// 1e-5 of the largest gradient magnitude (hinge gradients are exactly equal: z is bit-identical and
// the indicator sums are exact). Against brute force (double) and PyTorch (float64 autograd):
// loss within 1e-4 relative, gradients within 1e-4 of the largest gradient magnitude (float
// accumulation over up to 10^5 pairs).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "poem/core/rng.hpp"
#include "poem/loss/pairwise.hpp"

using poem::margin_pair;
using poem::pairwise_form;
using poem::span;

namespace {

struct reference {
    double loss = 0.0;
    std::vector<double> grad;
};

// Brute force, double precision, straight from the definition.
reference brute(const std::vector<float>& s, const std::vector<margin_pair>& pairs, pairwise_form form) {
    reference r;
    r.grad.assign(s.size(), 0.0);
    if (pairs.empty()) return r;
    const double inv = 1.0 / static_cast<double>(pairs.size());
    for (const auto& p : pairs) {
        const double z = static_cast<double>(p.margin) - (static_cast<double>(s[p.i]) - static_cast<double>(s[p.j]));
        double l, d;
        if (form == pairwise_form::hinge) {
            l = z > 0 ? z : 0;
            d = z > 0 ? 1 : 0;
        } else {
            l = z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
            d = 1.0 / (1.0 + std::exp(-z));
        }
        r.loss += l * inv;
        r.grad[p.i] -= d * inv;
        r.grad[p.j] += d * inv;
    }
    return r;
}

double max_abs(const std::vector<double>& g) {
    double m = 0.0;
    for (double x : g) m = std::max(m, std::fabs(x));
    return m;
}

// Every positive (indices 0..P-1 of the concatenation) against every negative (P..P+Q-1).
std::vector<margin_pair> dense_pairs(std::size_t P, std::size_t Q, const std::vector<float>& a, const std::vector<float>& b) {
    std::vector<margin_pair> pairs;
    for (std::size_t i = 0; i < P; ++i)
        for (std::size_t j = 0; j < Q; ++j)
            pairs.push_back({static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(P + j), a[i] + b[j]});
    return pairs;
}

void check_close(double got, double want, double rel, const char* what) {
    INFO(what << ": got " << got << ", want " << want);
    CHECK(std::fabs(got - want) <= rel * std::max(1.0, std::fabs(want)));
}

template <class G, class R>
void check_grad(const G& got, const R& want, double tol, const char* what) {
    REQUIRE(got.size() == want.size());
    std::vector<double> w(want.begin(), want.end());
    const double scale = std::max(max_abs(w), 1e-30);
    for (std::size_t k = 0; k < got.size(); ++k) {
        INFO(what << "[" << k << "]: got " << got[k] << ", want " << w[k]);
        CHECK(std::fabs(static_cast<double>(got[k]) - w[k]) <= tol * scale);
    }
}

std::vector<float> random_scores(std::size_t n, poem::rng& g, float lo, float hi) {
    std::vector<float> x(n);
    for (auto& v : x) v = lo + (hi - lo) * g.uniform_float();
    return x;
}

}  // namespace

TEST_CASE("loss: pair list equals brute force", "[loss]") {
    poem::rng g(1);
    for (auto form : {pairwise_form::hinge, pairwise_form::softplus}) {
        const auto s = random_scores(50, g, -2.0f, 2.0f);
        std::vector<margin_pair> pairs;
        for (int k = 0; k < 300; ++k)
            pairs.push_back({static_cast<std::uint32_t>(g.below(50)), static_cast<std::uint32_t>(g.below(50)), g.uniform_float()});
        std::vector<float> grad(50);
        const float loss = poem::pairwise_loss(s, pairs, {form}, span<float>(grad));
        const auto ref = brute(s, pairs, form);
        check_close(loss, ref.loss, 1e-5, "loss");
        check_grad(grad, ref.grad, 1e-5, "grad");
        // The named entry points and the gradient-free call agree.
        std::vector<float> grad2(50);
        const float l2 = form == pairwise_form::hinge ? poem::pairwise_hinge(s, pairs, grad2) : poem::pairwise_softplus(s, pairs, grad2);
        CHECK(l2 == loss);
        CHECK(grad2 == grad);
        CHECK(poem::pairwise_loss(s, pairs, {form}, span<float>()) == loss);
    }
}

TEST_CASE("loss: dense SIMD equals the scalar reference and brute force, every shape", "[loss]") {
    poem::rng g(2);
    for (auto form : {pairwise_form::hinge, pairwise_form::softplus})
        for (std::size_t P : {1u, 3u, 4u, 5u, 9u, 100u})
            for (std::size_t Q : {1u, 7u, 15u, 16u, 17u, 33u, 64u, 900u}) {
                INFO("form " << static_cast<int>(form) << ", P = " << P << ", Q = " << Q);
                const auto pos = random_scores(P, g, -1.0f, 2.0f);
                const auto neg = random_scores(Q, g, -2.0f, 1.0f);
                const float m = 0.3f;
                std::vector<float> gp(P), gn(Q), sp(P), sn(Q);
                const float loss = poem::dense_pairwise_loss(pos, neg, m, {form}, gp, gn);
                const float sloss = poem::detail::dense_pairwise_loss_scalar(pos, {}, m, neg, {}, {form}, sp, sn);
                check_close(loss, sloss, 1e-5, "simd vs scalar loss");
                if (form == pairwise_form::hinge) {
                    CHECK(gp == sp);
                    CHECK(gn == sn);
                } else {
                    check_grad(gp, sp, 1e-5, "simd vs scalar grad_pos");
                    check_grad(gn, sn, 1e-5, "simd vs scalar grad_neg");
                }
                std::vector<float> all(pos);
                all.insert(all.end(), neg.begin(), neg.end());
                const auto ref = brute(all, dense_pairs(P, Q, std::vector<float>(P, m), std::vector<float>(Q, 0.0f)), form);
                check_close(loss, ref.loss, 1e-4, "loss vs brute force");
                std::vector<float> grad(gp);
                grad.insert(grad.end(), gn.begin(), gn.end());
                check_grad(grad, ref.grad, 1e-4, "grad vs brute force");
            }
}

TEST_CASE("loss: hinge on exact values (ties at z = 0 included) matches brute force exactly", "[loss]") {
    // Multiples of 1/64 in [-4, 4]: every z is exact in float, many are exactly 0 (gradient 0 there).
    poem::rng g(3);
    const std::size_t P = 37, Q = 250;
    std::vector<float> pos(P), neg(Q);
    for (auto& x : pos) x = static_cast<float>(static_cast<int>(g.below(512)) - 256) / 64.0f;
    for (auto& x : neg) x = static_cast<float>(static_cast<int>(g.below(512)) - 256) / 64.0f;
    std::vector<float> gp(P), gn(Q), sp(P), sn(Q);
    const float loss = poem::dense_pairwise_loss(pos, neg, 0.25f, {}, gp, gn);
    const float sloss = poem::detail::dense_pairwise_loss_scalar(pos, {}, 0.25f, neg, {}, {}, sp, sn);
    std::vector<float> all(pos);
    all.insert(all.end(), neg.begin(), neg.end());
    const auto pairs = dense_pairs(P, Q, std::vector<float>(P, 0.25f), std::vector<float>(Q, 0.0f));
    std::size_t ties = 0;
    for (const auto& p : pairs) ties += (p.margin - (all[p.i] - all[p.j])) == 0.0f;
    CHECK(ties > 10);
    const auto ref = brute(all, pairs, pairwise_form::hinge);
    CHECK(loss == sloss);
    CHECK(gp == sp);
    CHECK(gn == sn);
    check_close(loss, ref.loss, 1e-6, "loss");
    std::vector<float> grad(gp);
    grad.insert(grad.end(), gn.begin(), gn.end());
    check_grad(grad, ref.grad, 1e-6, "grad");
}

TEST_CASE("loss: dense with margins per item and per tier equals the pair list", "[loss]") {
    poem::rng g(4);
    const std::size_t P = 13, Q = 45;
    const auto pos = random_scores(P, g, -1.0f, 1.0f);
    const auto neg = random_scores(Q, g, -1.0f, 1.0f);
    std::vector<std::uint8_t> pt(P), nt(Q);
    for (auto& t : pt) t = static_cast<std::uint8_t>(g.below(2));
    for (auto& t : nt) t = static_cast<std::uint8_t>(2 + g.below(3));
    std::vector<float> a(P), b(Q);
    for (std::size_t i = 0; i < P; ++i) a[i] = -0.2f * pt[i];
    for (std::size_t j = 0; j < Q; ++j) b[j] = 0.2f * nt[j];
    std::vector<float> all(pos);
    all.insert(all.end(), neg.begin(), neg.end());
    for (auto form : {pairwise_form::hinge, pairwise_form::softplus}) {
        const auto ref = brute(all, dense_pairs(P, Q, a, b), form);
        std::vector<float> gp(P), gn(Q), tp(P), tn(Q), sp(P), sn(Q);
        const float l1 = poem::dense_pairwise_loss(pos, a, neg, b, {form}, gp, gn);
        const float l2 = poem::dense_pairwise_loss_tiered(span<const float>(pos), span<const std::uint8_t>(pt), span<const float>(neg),
                                                          span<const std::uint8_t>(nt), 0.2f, {form}, span<float>(tp), span<float>(tn));
        const float l3 = poem::detail::dense_pairwise_loss_scalar(pos, a, 0.0f, neg, b, {form}, sp, sn);
        for (float l : {l1, l2, l3}) check_close(l, ref.loss, 1e-5, "loss");
        std::vector<float> grad(gp), tgrad(tp);
        grad.insert(grad.end(), gn.begin(), gn.end());
        tgrad.insert(tgrad.end(), tn.begin(), tn.end());
        check_grad(grad, ref.grad, 1e-5, "grad");
        check_grad(tgrad, ref.grad, 1e-5, "tiered grad");
        // One-sided margins: an empty span means 0, on either side; loss and gradients as brute force.
        std::vector<float> zp(P), zn(Q);
        const float l4 = poem::dense_pairwise_loss(pos, {}, neg, b, {form}, zp, zn);
        const auto ref4 = brute(all, dense_pairs(P, Q, std::vector<float>(P, 0.0f), b), form);
        check_close(l4, ref4.loss, 1e-5, "one-sided loss");
        std::vector<float> zgrad(zp);
        zgrad.insert(zgrad.end(), zn.begin(), zn.end());
        check_grad(zgrad, ref4.grad, 1e-5, "one-sided grad");
        std::vector<float> yp(P), yn(Q);
        const float l5 = poem::dense_pairwise_loss(pos, a, neg, {}, {form}, yp, yn);
        const auto ref5 = brute(all, dense_pairs(P, Q, a, std::vector<float>(Q, 0.0f)), form);
        check_close(l5, ref5.loss, 1e-5, "one-sided (positive margins) loss");
        std::vector<float> ygrad(yp);
        ygrad.insert(ygrad.end(), yn.begin(), yn.end());
        check_grad(ygrad, ref5.grad, 1e-5, "one-sided (positive margins) grad");
        // Central finite differences of the loss agree with the gradient: softplus everywhere; the hinge
        // at every score none of whose pairs lies within 2h of its kink (there it has no derivative).
        // Tolerance: 5e-3 of the largest gradient, below one pair's share 1 / (P Q) of it.
        const float h = 5e-3f;
        std::size_t checked = 0;
        for (std::size_t k = 0; k < P + Q; ++k) {
            bool near_kink = false;
            for (std::size_t i = 0; i < P; ++i)
                for (std::size_t j = 0; j < Q; ++j)
                    if ((k == i || k == P + j) && std::fabs(b[j] - (pos[i] - neg[j])) < 2 * h) near_kink = true;
            if (form == pairwise_form::hinge && near_kink) continue;
            ++checked;
            std::vector<float> up(pos), un(neg), dp(pos), dn(neg), tp2(P), tn2(Q);
            (k < P ? up[k] : un[k - P]) += h;
            (k < P ? dp[k] : dn[k - P]) -= h;
            const double lu = poem::dense_pairwise_loss(up, {}, un, b, {form}, tp2, tn2);
            const double ld = poem::dense_pairwise_loss(dp, {}, dn, b, {form}, tp2, tn2);
            const double fd = (lu - ld) / (2.0 * h);
            INFO("finite difference, score " << k << ": " << fd << " vs gradient " << zgrad[k]);
            CHECK(std::fabs(fd - zgrad[k]) <= 5e-3 * max_abs(ref4.grad));
        }
        CHECK(checked >= (P + Q) / 2);
    }
}

TEST_CASE("loss: softplus never overflows; empty inputs; bad inputs throw", "[loss]") {
    const std::vector<float> pos = {-1e4f, 0.0f, 1e4f, 30.0f}, neg = {1e4f, -1e4f, 0.5f};
    std::vector<float> gp(4), gn(3);
    const float l = poem::dense_pairwise_loss(pos, neg, 1.0f, {pairwise_form::softplus}, gp, gn);
    CHECK(std::isfinite(l));
    std::vector<float> all(pos);
    all.insert(all.end(), neg.begin(), neg.end());
    const auto ref = brute(all, dense_pairs(4, 3, std::vector<float>(4, 1.0f), std::vector<float>(3, 0.0f)), pairwise_form::softplus);
    check_close(l, ref.loss, 1e-5, "extreme softplus");
    for (float x : gp) CHECK((x <= 0.0f && x >= -1.0f / 4));
    for (float x : gn) CHECK((x >= 0.0f && x <= 1.0f / 3));

    std::vector<float> none, g0, g3(3, 7.0f);
    CHECK(poem::dense_pairwise_loss(none, neg, 1.0f, {}, g0, g3) == 0.0f);
    CHECK(g3 == std::vector<float>(3, 0.0f));
    std::vector<float> sgrad(4, 5.0f);
    CHECK(poem::pairwise_loss(pos, std::vector<margin_pair>{}, {}, sgrad) == 0.0f);
    CHECK(sgrad == std::vector<float>(4, 0.0f));

    auto err = [](auto f) {
        try {
            f();
        } catch (const poem::error& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    std::vector<float> bad = pos;
    bad[3] = NAN;
    CHECK_THAT(err([&] { poem::dense_pairwise_loss(bad, neg, 1.0f, {}, gp, gn); }), Catch::Contains("pos[3]"));
    CHECK_THAT(err([&] { poem::dense_pairwise_loss(pos, neg, INFINITY, {}, gp, gn); }), Catch::Contains("margin"));
    std::vector<float> g2(2);
    CHECK_THAT(err([&] { poem::dense_pairwise_loss(pos, neg, 1.0f, {}, gp, g2); }), Catch::Contains("grad_neg"));
    const std::vector<margin_pair> out_of_range = {{0, 1, 0.1f}, {0, 4, 0.1f}};
    CHECK_THAT(err([&] { poem::pairwise_loss(pos, out_of_range, {}, gp); }), Catch::Contains("pairs[1]"));
    const std::vector<margin_pair> nan_margin = {{0, 1, NAN}};
    CHECK_THAT(err([&] { poem::pairwise_loss(pos, nan_margin, {}, gp); }), Catch::Contains("pairs[0].margin"));
    CHECK_THAT(err([&] { poem::pairwise_loss(bad, nan_margin, {}, gp); }), Catch::Contains("scores[3]"));
}

TEST_CASE("loss: equals PyTorch autograd", "[loss][torch]") {
    // `make test` installs python3-torch: a machine without it fails here rather than passing unchecked.
    const int have_torch = std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1");
    INFO("/usr/bin/python3 cannot import torch: install python3-torch (make deps)");
    REQUIRE(have_torch == 0);
    poem::rng g(5);
    struct case_t {
        std::vector<float> scores;
        std::vector<margin_pair> pairs;
        pairwise_form form;
        std::size_t P = 0, Q = 0;  // > 0: a dense case (scores = positives then negatives, one margin)
        float margin = 0.0f;
    };
    std::vector<case_t> cases;
    for (auto form : {pairwise_form::hinge, pairwise_form::softplus}) {
        case_t c;
        c.scores = random_scores(40, g, -3.0f, 3.0f);
        for (int k = 0; k < 200; ++k)
            c.pairs.push_back({static_cast<std::uint32_t>(g.below(40)), static_cast<std::uint32_t>(g.below(40)), 2.0f * g.uniform_float()});
        c.form = form;
        cases.push_back(c);
        case_t d;
        d.P = 24;
        d.Q = 77;
        d.margin = 0.5f;
        d.scores = random_scores(d.P + d.Q, g, -2.0f, 2.0f);
        d.pairs = dense_pairs(d.P, d.Q, std::vector<float>(d.P, d.margin), std::vector<float>(d.Q, 0.0f));
        d.form = form;
        cases.push_back(d);
    }
    nlohmann::json in;
    for (const auto& c : cases) {
        nlohmann::json jc;
        jc["scores"] = c.scores;
        jc["form"] = c.form == pairwise_form::hinge ? "hinge" : "softplus";
        jc["pairs"] = nlohmann::json::array();
        for (const auto& p : c.pairs) jc["pairs"].push_back({p.i, p.j, p.margin});
        in["cases"].push_back(jc);
    }
    char in_path[] = "/tmp/poem_loss_in_XXXXXX";
    char out_path[] = "/tmp/poem_loss_out_XXXXXX";
    const int fd_in = mkstemp(in_path), fd_out = mkstemp(out_path);
    REQUIRE(fd_in >= 0);
    REQUIRE(fd_out >= 0);
    close(fd_in);
    close(fd_out);
    std::ofstream(in_path) << in.dump();
    const std::string cmd = std::string("OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 ") + POEM_SOURCE_DIR +
                            "/python/tools/loss_reference.py " + in_path + " " + out_path;
    const int rc = std::system(cmd.c_str());
    nlohmann::json out;
    if (rc == 0) std::ifstream(out_path) >> out;
    std::remove(in_path);
    std::remove(out_path);
    REQUIRE(rc == 0);
    REQUIRE(out["cases"].size() == cases.size());
    INFO("torch " << out["torch"].get<std::string>());
    for (std::size_t k = 0; k < cases.size(); ++k) {
        const auto& c = cases[k];
        const double tloss = out["cases"][k]["loss"].get<double>();
        const auto tgrad = out["cases"][k]["grad"].get<std::vector<double>>();
        INFO("case " << k);
        if (c.P == 0) {
            std::vector<float> grad(c.scores.size());
            const float l = poem::pairwise_loss(c.scores, c.pairs, {c.form}, grad);
            check_close(l, tloss, 1e-5, "pair-list loss vs torch");
            check_grad(grad, tgrad, 1e-5, "pair-list grad vs torch");
        } else {
            const std::vector<float> pos(c.scores.begin(), c.scores.begin() + static_cast<std::ptrdiff_t>(c.P));
            const std::vector<float> neg(c.scores.begin() + static_cast<std::ptrdiff_t>(c.P), c.scores.end());
            std::vector<float> gp(c.P), gn(c.Q);
            const float l = poem::dense_pairwise_loss(pos, neg, c.margin, {c.form}, gp, gn);
            check_close(l, tloss, 1e-4, "dense loss vs torch");
            std::vector<float> grad(gp);
            grad.insert(grad.end(), gn.begin(), gn.end());
            check_grad(grad, tgrad, 1e-4, "dense grad vs torch");
        }
    }
}
