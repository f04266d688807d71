// The model's tower and heads (poem::model::tower) of two builds of poem's headers, timed in one
// process with the builds interleaved call by call, so that both see the same machine state: this
// machine kind drifts by more between processes than a kernel change of a few per cent moves. Built
// and run by scripts/ab_tower.sh; this file is compiled three times. With AB_SIDE (before or after)
// it is one side, a shared object of its own, every symbol but its entry points hidden, so that the
// two builds' inline functions never stand in for each other. Without AB_SIDE it is the driver.
#include <cstddef>

#ifdef AB_SIDE
#include "poem/model/model.hpp"

#define AB_CAT2(a, b) a##b
#define AB_CAT(a, b) AB_CAT2(a, b)
#define AB_EXPORT extern "C" __attribute__((visibility("default")))

namespace {
const poem::model& model_of(const char* path, bool bf16) {
    if (bf16) {
        static const poem::model m = poem::model::load(path, {poem::precision::bf16});
        return m;
    }
    static const poem::model m = poem::model::load(path);
    return m;
}
}  // namespace

AB_EXPORT std::size_t AB_CAT(AB_SIDE, _tower_in)(const char* path) { return model_of(path, false).config().tower_in(); }
AB_EXPORT std::size_t AB_CAT(AB_SIDE, _outputs)(const char* path) { return model_of(path, false).outputs(); }
AB_EXPORT void AB_CAT(AB_SIDE, _tower)(const char* path, bool bf16, const float* x, std::size_t n, float* out) {
    static poem::workspace ws;
    const poem::model& m = model_of(path, bf16);
    m.tower(x, m.config().tower_in(), n, ws, poem::matrix_view<float>(out, n, m.outputs()));
}

#else
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

extern "C" std::size_t before_tower_in(const char*);
extern "C" std::size_t before_outputs(const char*);
extern "C" void before_tower(const char*, bool, const float*, std::size_t, float*);
extern "C" void after_tower(const char*, bool, const float*, std::size_t, float*);

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s model.safetensors\n", argv[0]);
        return 2;
    }
    const char* path = argv[1];
    const std::size_t in = before_tower_in(path), outs = before_outputs(path);
    constexpr std::size_t inputs = 4;  // rotated, as BM_model_mlp does
    std::printf("| precision | N | before us | after us | after / before | outputs |\n|---|---|---|---|---|---|\n");
    for (bool bf16 : {true, false})
        for (std::size_t n : {100u, 1000u, 4000u}) {
            std::mt19937 g(7);
            std::uniform_real_distribution<float> u(-1, 1);
            std::vector<float> x(inputs * n * in), out_b(n * outs), out_a(n * outs);
            for (auto& v : x) v = u(g);
            std::vector<double> tb, ta;
            bool identical = true;
            const auto start = std::chrono::steady_clock::now();
            // Pairs of calls, the order flipped each time, for about two seconds (at least 50 pairs).
            for (std::size_t it = 0; it < 50 || std::chrono::steady_clock::now() - start < std::chrono::seconds(2); ++it) {
                const float* xi = x.data() + (it % inputs) * n * in;
                for (int side = 0; side < 2; ++side) {
                    const bool after = (side + it) % 2 == 1;
                    const auto t0 = std::chrono::steady_clock::now();
                    (after ? after_tower : before_tower)(path, bf16, xi, n, after ? out_a.data() : out_b.data());
                    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
                    (after ? ta : tb).push_back(us);
                }
                identical = identical && std::memcmp(out_a.data(), out_b.data(), out_a.size() * sizeof(float)) == 0;
            }
            auto median = [](std::vector<double>& v) {
                std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
                return v[v.size() / 2];
            };
            const double mb = median(tb), ma = median(ta);
            std::printf("| %s | %zu | %.1f | %.1f | %.3f | %s |\n", bf16 ? "bf16" : "fp32", n, mb, ma, ma / mb,
                        identical ? "bit-identical" : "differ");
        }
}
#endif
