// One core's arithmetic peaks, for quoting a kernel's fraction of peak from the same run
// (scripts/device-check.sh runs it beside the benches): fp32 FMAs on AVX2 and AVX-512 registers (24
// independent accumulation chains, more than latency x ports on any x86 core), AVX512_BF16's vdpbf16ps
// the same way, and AMX's tdpbf16ps (four accumulator tiles), each where the CPU has it (and, for AMX,
// Linux grants the tile state). Prints one JSON object, GFLOP/s, best of five timed loops each.
//   g++ -O2 -o cpu_peak scripts/cpu_peak.cpp
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace {

double seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// `name`: c = a * c + b on `chains` registers of `vec` (fully unrolled, so the array lives in
// registers), each FMA waiting only on its own chain's previous one; GFLOP/s.
#define POEM_FMA_PEAK(name, isa, vec, lanes, chains, set1, fmadd, store)                           \
    __attribute__((target(isa))) double name(long iters) {                                        \
        const vec a = set1(0.9999f), b = set1(1e-4f);                                             \
        vec c[chains];                                                                            \
        _Pragma("GCC unroll 32") for (int i = 0; i < chains; ++i) c[i] = set1(1e-3f * i);         \
        const double t0 = seconds();                                                              \
        for (long it = 0; it < iters; ++it) {                                                     \
            _Pragma("GCC unroll 32") for (int i = 0; i < chains; ++i) c[i] = fmadd(a, c[i], b);   \
        }                                                                                         \
        const double t = seconds() - t0;                                                          \
        alignas(64) float out[lanes];                                                             \
        float keep = 0; /* reads every chain, so none is optimised away */                        \
        _Pragma("GCC unroll 32") for (int i = 0; i < chains; ++i) {                               \
            store(out, c[i]);                                                                     \
            keep += out[0];                                                                       \
        }                                                                                         \
        if (keep == 12345.0f) std::puts("");                                                      \
        return static_cast<double>(iters) * chains * lanes * 2 / t / 1e9;                         \
    }
POEM_FMA_PEAK(fma_avx512, "avx512f", __m512, 16, 24, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_store_ps)
POEM_FMA_PEAK(fma_avx2, "avx2,fma", __m256, 8, 12, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_store_ps)

// AVX512_BF16's vdpbf16ps: c += a[2t] b[2t] + a[2t+1] b[2t+1] per fp32 lane, 4 flops a lane; in the same
// macro's form (c = dp(a, c, b) on 24 independent chains).
__attribute__((target("avx512f,avx512bf16"))) inline __m512 dpbf16(__m512 a, __m512 c, __m512 b) {
    return _mm512_dpbf16_ps(c, (__m512bh)a, (__m512bh)b);
}
POEM_FMA_PEAK(dpbf16_half, "avx512f,avx512bf16", __m512, 16, 24, _mm512_set1_ps, dpbf16, _mm512_store_ps)
double dpbf16_avx512(long iters) { return 2 * dpbf16_half(iters); }  // the macro counts 2 flops a lane

// ldtilecfg's operand: palette 1, each tile's bytes per row and rows.
struct tile_config {
    std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};
};

__attribute__((target("amx-tile,amx-bf16"))) double amx_bf16(long iters) {
    tile_config cfg;
    for (int t = 0; t < 8; ++t) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    alignas(64) static std::uint16_t ones[16 * 32];
    for (auto& x : ones) x = 0x3f80;  // bf16 1.0
    alignas(64) static float acc[16 * 16];
    _tile_loadconfig(&cfg);
    _tile_zero(0);  // GCC's tile intrinsics are asm statements: one per statement
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, ones, 64);
    _tile_loadd(5, ones, 64);
    _tile_loadd(6, ones, 64);
    _tile_loadd(7, ones, 64);
    const double t0 = seconds();
    for (long it = 0; it < iters; ++it) {  // 2 x 2 tiles of C: four independent chains
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    const double t = seconds() - t0;
    _tile_stored(0, acc, 64);
    _tile_release();
    if (acc[0] == 0.5f) std::puts("");
    return static_cast<double>(iters) * 4 * 16 * 16 * 32 * 2 / t / 1e9;
}

// AMX-TILE and AMX-BF16 (CPUID 7.0 EDX bits 24, 22) and Linux's permission for the tile data.
bool amx_usable() {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 24) & 1u) || !((d >> 22) & 1u)) return false;
    constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
}

template <class F>
double best_of_5(F f, long iters) {
    double best = 0;
    for (int r = 0; r < 5; ++r) {
        const double g = f(iters);
        best = g > best ? g : best;
    }
    return best;
}

}  // namespace

int main() {
    __builtin_cpu_init();
    std::printf("{");
    const char* sep = "";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        std::printf("%s\"fp32_fma_avx2_gflops\": %.1f", sep, best_of_5(fma_avx2, 40000000));
        sep = ", ";
    }
    if (__builtin_cpu_supports("avx512f")) {
        std::printf("%s\"fp32_fma_avx512_gflops\": %.1f", sep, best_of_5(fma_avx512, 20000000));
        sep = ", ";
    }
    if (__builtin_cpu_supports("avx512bf16")) {
        std::printf("%s\"bf16_vdpbf16ps_gflops\": %.1f", sep, best_of_5(dpbf16_avx512, 20000000));
        sep = ", ";
    }
    if (amx_usable()) std::printf("%s\"amx_bf16_gflops\": %.1f", sep, best_of_5(amx_bf16, 2000000));
    std::printf("}\n");
}
