#pragma once
// The model's bf16 matrix kernel: C (M x N) = A (M x K) * B (K x N) + bias, optionally ReLU, with A's
// and B's values rounded to bfloat16 and the products summed in fp32, in the order AVX512_BF16's
// vdpbf16ps defines. k is taken in pairs (2t, 2t + 1); each pair adds to the fp32 accumulator first the
// product of its odd elements, then that of its even ones, each addition rounded to nearest even.
//
// The product of two bf16 values (8 significant bits each) is exact in fp32, so an fp32 FMA of the
// widened values rounds exactly as vdpbf16ps does: every kernel here, scalar or SIMD, gives the same
// bits (denormal products aside: vdpbf16ps flushes them to zero, the widening kernels do not).
//
// Packing: B as in gemm.hpp, panels of panel_width columns, but each panel row holds a pair of k rows
// as one 32-bit word per column, bf16(B[2t][j]) in the low half and bf16(B[2t + 1][j]) in the high half
// (vdpbf16ps's operand layout, and AMX's); an odd K is padded with a zero row, and each panel with zero
// pair rows to bf16_panel_rows(K), a multiple of 16 (an AMX tile's rows; the other kernels skip them).
// The bias stays fp32. Weights are rounded and packed once at load (model_options::precision = bf16).
//
// A is rounded per call into caller scratch (bf16_scratch_size floats): the widening kernels keep it as
// fp32 values with the low 16 bits zero and broadcast them like the fp32 kernel does.
//
// Native: where the flags say vdpbf16ps pays (POEM_VDPBF16PS, core/simd.hpp: AVX512_BF16 on a CPU that
// is not Intel's, such as -march=znver4 or the dispatch target avx512bf16), the AVX-512 kernel runs
// vdpbf16ps itself: A's rows are rounded into pair words like B's, and each step is one broadcast pair
// word of A against two pair-word rows of B. Same bits as the widening kernels, denormals aside
// (vdpbf16ps treats denormal inputs as zero).

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include <xsimd/xsimd.hpp>

#include "poem/core/bits.hpp"
#include "poem/core/simd.hpp"
#include "poem/model/detail/gemm.hpp"

namespace poem::detail {

// binary32 -> bfloat16 bits, rounded to nearest even; a NaN stays a NaN (quietened), an overflow
// rounds to infinity as IEEE rounding does.
inline std::uint16_t bf16_bits(float x) noexcept {
    const std::uint32_t u = float_bits(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u | 0x00400000u) >> 16);
    return static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// x rounded to the nearest bfloat16, as a float.
inline float round_bf16(float x) noexcept { return bits_float(static_cast<std::uint32_t>(bf16_bits(x)) << 16); }

// Pair rows of a K-row matrix.
inline std::size_t bf16_pairs(std::size_t k) noexcept { return (k + 1) / 2; }

// Pair rows per packed panel: bf16_pairs(k) rounded up to a multiple of 16.
inline std::size_t bf16_panel_rows(std::size_t k) noexcept { return (bf16_pairs(k) + 15) / 16 * 16; }

// Floats of scratch gemm_bf16 needs for m rows of A with k columns, on any target: m rows of
// 2 * bf16_pairs(k) (the widening kernels), or m rounded up to 32 rows of bf16_panel_rows(k) pair words
// (AMX), and one more so that it is never empty (the caller's sizes are bounded far below overflow).
inline std::size_t bf16_scratch_size(std::size_t m, std::size_t k) noexcept {
    return std::max(m * 2 * bf16_pairs(k), (m + 31) / 32 * 32 * bf16_panel_rows(k)) + 1;
}

// A packed bf16 B and its fp32 bias, not owned: what the bf16 kernels take.
struct packed_bf16_view {
    const std::uint32_t* data = nullptr;  // panels * bf16_panel_rows(k) * panel_width words, 64-byte aligned
    const float* bias = nullptr;          // panels * panel_width, 64-byte aligned
    std::size_t k = 0, n = 0;
};

// A packed bf16 B with its bias: what a layer holds in bf16 precision.
struct packed_bf16 {
    std::size_t k = 0, n = 0;
    aligned_array<std::uint32_t> data;
    aligned_floats bias;

    packed_bf16() = default;
    // From a torch Linear weight W (n x k, row-major) and its bias (n floats, or nullptr).
    packed_bf16(const float* w, const float* b, std::size_t n_out, std::size_t k_in)
        : k(k_in), n(n_out), data((n_out + panel_width - 1) / panel_width * bf16_panel_rows(k_in) * panel_width),
          bias((n_out + panel_width - 1) / panel_width * panel_width) {
        const std::size_t panels = (n + panel_width - 1) / panel_width, pairs = bf16_pairs(k);
        const std::size_t rows = bf16_panel_rows(k);
        for (std::size_t p = 0; p < panels; ++p)
            for (std::size_t t = 0; t < pairs; ++t)
                for (std::size_t j = 0; j < panel_width && p * panel_width + j < n; ++j) {
                    const float* row = w + (p * panel_width + j) * k;  // B(kk, col) = W[col][kk]
                    const std::uint32_t lo = bf16_bits(row[2 * t]);
                    const std::uint32_t hi = 2 * t + 1 < k ? bf16_bits(row[2 * t + 1]) : 0u;
                    data.data()[(p * rows + t) * panel_width + j] = lo | hi << 16;
                }
        if (b != nullptr) std::copy(b, b + n_out, bias.data());
    }
    packed_bf16_view view() const noexcept { return {data.data(), bias.data(), k, n}; }
};

inline namespace POEM_TARGET_NAMESPACE {

// A's m rows (k columns, lda apart) rounded to bf16 into rows of 2 * bf16_pairs(k) floats (the last
// one zero when k is odd). Returns the rows' stride.
inline std::size_t round_rows_bf16(std::size_t m, const float* a, std::size_t lda, std::size_t k, float* out) noexcept {
    const std::size_t ld = 2 * bf16_pairs(k);
    for (std::size_t i = 0; i < m; ++i) {
        const float* x = a + i * lda;
        float* y = out + i * ld;
        for (std::size_t j = 0; j < k; ++j) y[j] = round_bf16(x[j]);
        if (k < ld) y[k] = 0.0f;
    }
    return ld;
}

// bf16_bits of each lane, SIMD: the rounded value's binary32 bits, whose high half is the bf16 (the low
// half is left as the addition made it). Round to nearest even on the bits; NaN kept (quietened). The
// NaN test is xsimd::isnan: xsimd 8.1's != on AVX and AVX-512 is ordered, so v != v is false for NaN.
template <class Arch>
xsimd::batch<std::uint32_t, Arch> bf16_rounded_bits(const xsimd::batch<float, Arch>& v) noexcept {
    using batch = xsimd::batch<float, Arch>;
    using ubatch = xsimd::batch<std::uint32_t, Arch>;
    const ubatch u = xsimd::bitwise_cast<ubatch>(v);
    const ubatch rounded = u + ubatch(0x7FFFu) + ((u >> 16) & ubatch(1u));
    const batch quiet_nan = xsimd::bitwise_cast<batch>(u | ubatch(0x00400000u));
    return xsimd::bitwise_cast<ubatch>(xsimd::select(xsimd::isnan(v), quiet_nan, xsimd::bitwise_cast<batch>(rounded)));
}

// round_rows_bf16, SIMD.
template <class Arch>
std::size_t round_rows_bf16_simd(std::size_t m, const float* a, std::size_t lda, std::size_t k, float* out) noexcept {
    using batch = xsimd::batch<float, Arch>;
    using ubatch = xsimd::batch<std::uint32_t, Arch>;
    constexpr std::size_t L = batch::size;
    const std::size_t ld = 2 * bf16_pairs(k);
    const ubatch high(0xFFFF0000u);
    for (std::size_t i = 0; i < m; ++i) {
        const float* x = a + i * lda;
        float* y = out + i * ld;
        std::size_t j = 0;
        for (; j + L <= k; j += L)
            xsimd::bitwise_cast<batch>(bf16_rounded_bits(batch::load_unaligned(x + j)) & high).store_unaligned(y + j);
        for (; j < k; ++j) y[j] = round_bf16(x[j]);
        if (k < ld) y[k] = 0.0f;
    }
    return ld;
}

// bf16 panels (packed_bf16), widened: step t is pair row t of the sub-panel; each pair word splits
// into its high bf16 (the word with the low half cleared) and its low one (the word shifted up), both
// exact fp32 values, and the odd element's products go first. a: rounded rows (round_rows_bf16).
struct bf16_panel {
    using value_type = std::uint32_t;
    template <class Arch, bool Narrow, std::size_t... R>
    static void step(std::index_sequence<R...>, std::size_t t, const float* a, std::size_t lda, const std::uint32_t* b,
                     std::array<xsimd::batch<float, Arch>, sizeof...(R)>& c0,
                     std::array<xsimd::batch<float, Arch>, sizeof...(R)>& c1) noexcept {
        using batch = xsimd::batch<float, Arch>;
        using ubatch = xsimd::batch<std::uint32_t, Arch>;
        const ubatch high(0xFFFF0000u);
        const ubatch w0 = ubatch::load_aligned(b + t * panel_width);
        const ubatch w1 = ubatch::load_aligned(b + t * panel_width + ubatch::size);
        const batch odd0 = xsimd::bitwise_cast<batch>(w0 & high), odd1 = xsimd::bitwise_cast<batch>(w1 & high);
        (fma_row<Arch, Narrow>(a[R * lda + 2 * t + 1], odd0, odd1, std::get<R>(c0), std::get<R>(c1)), ...);
        const batch even0 = xsimd::bitwise_cast<batch>(w0 << 16), even1 = xsimd::bitwise_cast<batch>(w1 << 16);
        (fma_row<Arch, Narrow>(a[R * lda + 2 * t], even0, even1, std::get<R>(c0), std::get<R>(c1)), ...);
    }
};
template <class Arch, std::size_t MR, bool Narrow>
using micro_kernel_bf16 = micro_kernel<Arch, MR, bf16_panel, fp32_tile, Narrow>;

#if defined(__AVX512BF16__)
// Whether Arch runs the native vdpbf16ps kernel (an AVX-512 target compiled with AVX512_BF16, where
// POEM_VDPBF16PS says it pays). The pair-word rounding below serves the AMX kernel too.
template <class Arch>
inline constexpr bool native_bf16 = POEM_VDPBF16PS && std::is_base_of<xsimd::avx512dq, Arch>::value;  // dq: simd.hpp

// A mask of the first min(n, 32) lanes.
inline std::uint32_t first_lanes(std::size_t n) noexcept { return n >= 32 ? ~0u : (1u << n) - 1; }

// A's m rows rounded to bf16 as pair words (bf16(x[2t]) low, bf16(x[2t + 1]) high: the bf16 values in
// order), rows of ld >= bf16_pairs(k) words (zeros after the values), stored in the float scratch.
// bf16_bits' rounding, denormals included: the AMX kernel reads these words too. 32 values at a time go
// through vcvtne2ps2bf16, which gives bf16_bits' bf16 for every binary32 value but the denormals (it
// makes them zero; bf16_tile says how this was checked); a block holding a denormal takes
// bf16_rounded_bits instead. Whole blocks are read with plain loads: masked ones that miss L1 made the
// tower 4-8 % slower on a Zen 5 when its input came from L3 (scripts/ab_tower.sh). Returns ld.
inline std::size_t round_rows_bf16_pairs(std::size_t m, const float* a, std::size_t lda, std::size_t k, float* out,
                                         std::size_t ld) noexcept {
    using batch = xsimd::batch<float, xsimd::avx512bw>;
    constexpr int denormal = 0x20;  // vfpclassps: denormal
    auto exact = [](__m512 x) { return _mm512_cvtepi32_epi16(_mm512_srli_epi32(bf16_rounded_bits(batch(x)), 16)); };
    for (std::size_t i = 0; i < m; ++i) {
        const float* x = a + i * lda;
        std::uint16_t* y = reinterpret_cast<std::uint16_t*>(out + i * ld);
        for (std::size_t j = 0; j < 2 * ld; j += 32) {
            const std::size_t valid = j < k ? std::min<std::size_t>(32, k - j) : 0;
            const bool whole = valid == 32;
            const std::uint32_t lanes = first_lanes(valid);  // the low 16 for lo, the high 16 for hi
            const __m512 lo = whole ? _mm512_loadu_ps(x + j)
                                    : _mm512_maskz_loadu_ps(static_cast<__mmask16>(lanes), x + j);
            const __m512 hi = whole ? _mm512_loadu_ps(x + j + 16)
                                    : _mm512_maskz_loadu_ps(static_cast<__mmask16>(lanes >> 16), x + j + 16);
            __m512i h = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
            if (__builtin_expect((_mm512_fpclass_ps_mask(lo, denormal) | _mm512_fpclass_ps_mask(hi, denormal)) != 0, 0))
                h = _mm512_inserti64x4(_mm512_castsi256_si512(exact(lo)), exact(hi), 1);
            const std::size_t store = std::min<std::size_t>(32, 2 * ld - j);
            _mm512_mask_storeu_epi16(y + j, first_lanes(store), h);
        }
    }
    return ld;
}

// bf16 panels, native: step t is pair row t; a holds pair words (round_rows_bf16_pairs).
struct bf16_native_panel {
    using value_type = std::uint32_t;
    template <class Arch, bool Narrow, std::size_t... R>
    static void step(std::index_sequence<R...>, std::size_t t, const float* a, std::size_t lda, const std::uint32_t* b,
                     std::array<xsimd::batch<float, Arch>, sizeof...(R)>& c0,
                     std::array<xsimd::batch<float, Arch>, sizeof...(R)>& c1) noexcept {
        static_assert(xsimd::batch<float, Arch>::size == 16, "poem: vdpbf16ps covers 16 fp32 lanes");
        const __m512bh b0 = (__m512bh)_mm512_load_si512(b + t * panel_width);
        const __m512bh b1 = (__m512bh)_mm512_load_si512(b + t * panel_width + 16);
        auto row = [&](const float* word, xsimd::batch<float, Arch>& x0, xsimd::batch<float, Arch>& x1) {
            std::int32_t w;
            std::memcpy(&w, word, sizeof w);
            const __m512bh ar = (__m512bh)_mm512_set1_epi32(w);
            x0 = _mm512_dpbf16_ps(x0, ar, b0);
            if constexpr (!Narrow) x1 = _mm512_dpbf16_ps(x1, ar, b1);
        };
        (row(a + R * lda + t, std::get<R>(c0), std::get<R>(c1)), ...);
    }
};
template <class Arch, std::size_t MR, bool Narrow>
using micro_kernel_bf16_native = micro_kernel<Arch, MR, bf16_native_panel, fp32_tile, Narrow>;

// A tile's outputs rounded to bf16 after the epilogue, stored as a row of bf16 values: the next layer
// of a chain reads them as its pair words, with no rounding pass and half the bytes. The rounding is
// vcvtne2ps2bf16's, one instruction for 32 values, where bf16_rounded_bits takes six and a pack: it
// gives bf16_rounded_bits' bf16 for every binary32 value but the denormals (checked over all 2^32 on a
// Zen 5), which it makes zero. None comes out of vdpbf16ps (it flushes denormal results), and one made
// by a row scale would be read as zero by the next layer's vdpbf16ps anyway (it treats denormal inputs
// as zero): the chain keeps the bits of its layers run one by one (gemm_bf16_chain test).
struct bf16_tile {
    using value_type = std::uint16_t;
    template <class Arch, std::size_t... R>
    static void finish(std::index_sequence<R...> rows, std::array<xsimd::batch<float, Arch>, sizeof...(R)>& c0,
                       std::array<xsimd::batch<float, Arch>, sizeof...(R)>& c1, const epilogue& ep, std::uint16_t* c,
                       std::size_t ldc, std::size_t ncols) noexcept {
        apply_epilogue<Arch>(rows, c0, c1, ep);
        const __mmask32 keep = first_lanes(ncols);
        auto put = [&](std::uint16_t* row, const xsimd::batch<float, Arch>& x0, const xsimd::batch<float, Arch>& x1) {
            const auto h = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);  // x0's 16 values first
            if (ncols == 32) _mm512_storeu_si512(row, h);
            else _mm512_mask_storeu_epi16(row, keep, h);
        };
        (put(c + R * ldc, std::get<R>(c0), std::get<R>(c1)), ...);
    }
};
template <class Arch, std::size_t MR, bool Narrow>
using micro_kernel_bf16_to_bf16 = micro_kernel<Arch, MR, bf16_native_panel, bf16_tile, Narrow>;

// The most outputs bf16_few_outputs computes (the model's heads: 1 to 3).
inline constexpr std::size_t few_outputs = 4;

// Sixteen rows of 32-bit words (x[r], lane s: row r's word s) transposed in place (x[s], lane r), in
// four rounds of sixteen shuffles.
template <std::size_t... I>
inline void transpose_16x16(std::index_sequence<I...>, __m512i (&x)[16]) noexcept {
    static_assert(sizeof...(I) == 4, "poem: four groups of four words");
    __m512i t[16];
    // Pairs of rows interleaved, then pairs of pairs: x[4g + c]'s 128-bit block L is word 4L + c of rows
    // 4g to 4g + 3.
    ((t[4 * I] = _mm512_unpacklo_epi32(x[4 * I], x[4 * I + 1]), t[4 * I + 1] = _mm512_unpackhi_epi32(x[4 * I], x[4 * I + 1]),
      t[4 * I + 2] = _mm512_unpacklo_epi32(x[4 * I + 2], x[4 * I + 3]),
      t[4 * I + 3] = _mm512_unpackhi_epi32(x[4 * I + 2], x[4 * I + 3])), ...);
    ((x[4 * I] = _mm512_unpacklo_epi64(t[4 * I], t[4 * I + 2]), x[4 * I + 1] = _mm512_unpackhi_epi64(t[4 * I], t[4 * I + 2]),
      x[4 * I + 2] = _mm512_unpacklo_epi64(t[4 * I + 1], t[4 * I + 3]),
      x[4 * I + 3] = _mm512_unpackhi_epi64(t[4 * I + 1], t[4 * I + 3])), ...);
    // Then the 128-bit blocks: word s gathers block s / 4 of x[s % 4], x[4 + s % 4], x[8 + ...], x[12 + ...].
    ((t[I] = _mm512_shuffle_i32x4(x[I], x[4 + I], 0x88), t[4 + I] = _mm512_shuffle_i32x4(x[I], x[4 + I], 0xDD),
      t[8 + I] = _mm512_shuffle_i32x4(x[8 + I], x[12 + I], 0x88),
      t[12 + I] = _mm512_shuffle_i32x4(x[8 + I], x[12 + I], 0xDD)), ...);
    ((x[I] = _mm512_shuffle_i32x4(t[I], t[8 + I], 0x88), x[4 + I] = _mm512_shuffle_i32x4(t[4 + I], t[12 + I], 0x88),
      x[8 + I] = _mm512_shuffle_i32x4(t[I], t[8 + I], 0xDD),
      x[12 + I] = _mm512_shuffle_i32x4(t[4 + I], t[12 + I], 0xDD)), ...);
}

// C = A * B + bias for a bf16-packed B of at most few_outputs columns (a chain's heads), no epilogue;
// a holds pair words (lda of them a row). The narrow micro-kernel would spend a broadcast of A per row
// and step on a vector of which 3 lanes of 16 count. Here rows are the lanes: 16 rows' pair words are
// transposed so that each step is one vector of 16 rows against a broadcast weight pair per output.
// Each output still starts at its bias and takes the same vdpbf16ps per pair, in the same order: the
// same bits.
struct bf16_few_outputs {
    // Row blocks of 16 a pass: the model's chunk of 96 rows (3 outputs: 18 accumulators).
    static constexpr std::size_t blocks = 6;

    // Rows r0 to r0 + 15 of a (zeros past `rows`), the words in `words` (zeros past them), transposed into
    // columns r0 to r0 + 15 of cols.
    template <std::size_t... R>
    static void transpose_block(std::index_sequence<R...>, std::size_t r0, std::size_t rows, const std::uint32_t* a,
                                std::size_t lda, __mmask16 words, std::uint32_t (*cols)[blocks * 16]) noexcept {
        __m512i x[16] = {(r0 + R < rows ? _mm512_maskz_loadu_epi32(words, a + (r0 + R) * lda)
                                        : _mm512_setzero_si512())...};
        transpose_16x16(std::make_index_sequence<4>{}, x);
        ((void)_mm512_store_si512(cols[R] + r0, x[R]), ...);
    }

    // Up to blocks * 16 rows, sizeof...(H) outputs; the blocks past `rows` are skipped.
    template <std::size_t... G, std::size_t... H>
    POEM_FLATTEN static void pass(std::index_sequence<G...>, std::index_sequence<H...>, std::size_t rows,
                                  const std::uint32_t* a, std::size_t lda, const packed_bf16_view& b, float* c,
                                  std::size_t ldc) noexcept {
        constexpr std::size_t outputs = sizeof...(H);
        const std::size_t pairs = bf16_pairs(b.k), used = (rows + 15) / 16;
        __m512 acc[blocks][outputs];
        auto start = [&](__m512 (&acc_g)[outputs]) { ((void)(acc_g[H] = _mm512_set1_ps(b.bias[H])), ...); };
        (start(acc[G]), ...);
        alignas(64) std::uint32_t cols[16][blocks * 16];  // 16 pair steps x the pass's rows
        for (std::size_t t0 = 0; t0 < pairs; t0 += 16) {
            const std::size_t steps = std::min<std::size_t>(16, pairs - t0);
            const auto words = static_cast<__mmask16>(first_lanes(steps));
            auto transpose = [&](std::size_t g) {
                if (g < used) transpose_block(std::make_index_sequence<16>{}, g * 16, rows, a + t0, lda, words, cols);
            };
            (transpose(G), ...);
            for (std::size_t s = 0; s < steps; ++s) {
                const std::uint32_t* w = b.data + (t0 + s) * panel_width;
                const __m512bh wh[outputs] = {(__m512bh)_mm512_set1_epi32(static_cast<int>(w[H]))...};
                auto block = [&](std::size_t g, __m512 (&acc_g)[outputs]) {
                    if (g >= used) return;
                    const auto v = (__m512bh)_mm512_load_si512(cols[s] + g * 16);
                    ((void)(acc_g[H] = _mm512_dpbf16_ps(acc_g[H], v, wh[H])), ...);
                };
                (block(G, acc[G]), ...);
            }
        }
        alignas(64) float out[outputs][16];
        auto put = [&](std::size_t g, const __m512 (&acc_g)[outputs]) {
            ((void)_mm512_store_ps(out[H], acc_g[H]), ...);
            for (std::size_t r = 0; r < 16 && g * 16 + r < rows; ++r) ((void)(c[(g * 16 + r) * ldc + H] = out[H][r]), ...);
        };
        (put(G, acc[G]), ...);
    }

    template <std::size_t Outputs>
    static void run(std::size_t m, const std::uint32_t* a, std::size_t lda, const packed_bf16_view& b, float* c,
                    std::size_t ldc) noexcept {
        for (std::size_t i0 = 0; i0 < m; i0 += blocks * 16)
            pass(std::make_index_sequence<blocks>{}, std::make_index_sequence<Outputs>{},
                 std::min(blocks * 16, m - i0), a + i0 * lda, lda, b, c + i0 * ldc, ldc);
    }

    // b.n in 1 to few_outputs.
    static void run(std::size_t m, const float* a, std::size_t lda, const packed_bf16_view& b, float* c,
                    std::size_t ldc) noexcept {
        const auto* words = reinterpret_cast<const std::uint32_t*>(a);
        switch (b.n) {
            case 1: return run<1>(m, words, lda, b, c, ldc);
            case 2: return run<2>(m, words, lda, b, c, ldc);
            case 3: return run<3>(m, words, lda, b, c, ldc);
            default: return run<4>(m, words, lda, b, c, ldc);
        }
    }
};
#endif

// The scalar reference: the same packed words, the same order of additions.
inline void gemm_bf16_scalar(std::size_t m, const float* a, std::size_t lda, const packed_bf16_view& b,
                             const epilogue& ep, float* c, std::size_t ldc, float* scratch) noexcept {
    const std::size_t ld = round_rows_bf16(m, a, lda, b.k, scratch);
    const std::size_t panels = (b.n + panel_width - 1) / panel_width, pairs = bf16_pairs(b.k);
    const std::size_t panel_rows = bf16_panel_rows(b.k);
    float acc[panel_width];
    for (std::size_t i = 0; i < m; ++i) {
        const float* x = scratch + i * ld;
        for (std::size_t p = 0; p < panels; ++p) {
            const std::size_t w = std::min(panel_width, b.n - p * panel_width);
            const std::uint32_t* bp = b.data + p * panel_rows * panel_width;
            for (std::size_t j = 0; j < panel_width; ++j) acc[j] = b.bias[p * panel_width + j];
            for (std::size_t t = 0; t < pairs; ++t)
                for (std::size_t j = 0; j < panel_width; ++j) {
                    const std::uint32_t word = bp[t * panel_width + j];
                    acc[j] += x[2 * t + 1] * bits_float(word & 0xFFFF0000u);
                    acc[j] += x[2 * t] * bits_float(word << 16);
                }
            for (std::size_t j = 0; j < w; ++j) {
                const float v = ep.row_scale ? acc[j] * ep.row_scale[i] : acc[j];
                c[i * ldc + p * panel_width + j] = ep.relu && !(v > 0.0f) ? 0.0f : v;
            }
        }
    }
}

// C = A * B + bias (ReLU if asked) for a bf16-packed B; scratch: bf16_scratch_size(m, b.k) floats.
template <class Arch>
void gemm_bf16_simd(std::size_t m, const float* a, std::size_t lda, const packed_bf16_view& b, const epilogue& ep,
                    float* c, std::size_t ldc, float* scratch) noexcept {
#if defined(__AVX512BF16__)
    if constexpr (native_bf16<Arch>) {
        const std::size_t ld = round_rows_bf16_pairs(m, a, lda, b.k, scratch, bf16_pairs(b.k));
        static constexpr auto table =
            micro_table<micro_kernel_bf16_native, Arch>(std::make_index_sequence<gemm_shape<Arch>::mr>{});
        drive_panels<Arch>(table, m, scratch, ld, b.data, bf16_pairs(b.k), bf16_panel_rows(b.k), b.n, b.bias, ep, c,
                           ldc, false);
        return;
    }
#endif
    const std::size_t ld = round_rows_bf16_simd<Arch>(m, a, lda, b.k, scratch);
    static constexpr auto table = micro_table<micro_kernel_bf16, Arch>(std::make_index_sequence<gemm_shape<Arch>::mr>{});
    drive_panels<Arch>(table, m, scratch, ld, b.data, bf16_pairs(b.k), bf16_panel_rows(b.k), b.n, b.bias, ep, c, ldc,
                       false);
}

// What a chain of bf16 layers (below) needs room for.
struct bf16_chain_extent {
    std::size_t wide = 0;  // the widest layer's outputs, rounded up to whole panels
    std::size_t deep = 0;  // the deepest layer's inputs
    bf16_chain_extent(const packed_bf16_view* layers, std::size_t count) noexcept {
        for (std::size_t l = 0; l < count; ++l) {
            wide = std::max(wide, layers[l].n);
            deep = std::max(deep, layers[l].k);
        }
        wide = (wide + panel_width - 1) / panel_width * panel_width;
    }
};

// A chain of bf16 layers (the model's tower and heads): x (m rows of layers[0].k columns, ldx apart)
// through layers[0], ..., layers[count - 1], ReLU after all but the last, whose output goes to `out`
// (ldo apart). The same bits as gemm_bf16 layer by layer with fp32 activations between them: a layer
// rounds its input to bf16 first, so the native kernel hands the next layer its outputs already
// rounded (bf16_tile) instead of fp32 that the next layer rounds in a pass of its own.
// Scratch: bf16_chain_scratch_size(m, layers, count) floats.
inline std::size_t bf16_chain_scratch_size(std::size_t m, const packed_bf16_view* layers, std::size_t count) noexcept {
    const bf16_chain_extent e(layers, count);
    return 2 * m * e.wide + bf16_scratch_size(m, e.deep);
}

// The chain through a target's gemm_bf16, layer by layer (activations in fp32, 2 x m x the widest layer
// rounded up to panel_width floats of scratch, then the GEMM's own).
template <class Gemm>
void gemm_bf16_chain_layers(Gemm gemm, std::size_t m, const float* x, std::size_t ldx, const packed_bf16_view* layers,
                            std::size_t count, float* out, std::size_t ldo, float* scratch) noexcept {
    const std::size_t wide = bf16_chain_extent(layers, count).wide;
    float* act[2] = {scratch, scratch + m * wide};
    const float* in = x;
    std::size_t ld = ldx;
    for (std::size_t l = 0; l < count; ++l) {
        const bool last = l + 1 == count;
        float* dst = last ? out : act[l % 2];
        const std::size_t ldd = last ? ldo : layers[l].n;
        gemm(m, in, ld, layers[l], epilogue(!last), dst, ldd, scratch + 2 * m * wide);
        in = dst;
        ld = ldd;
    }
}

inline void gemm_bf16_chain_scalar(std::size_t m, const float* x, std::size_t ldx, const packed_bf16_view* layers,
                                   std::size_t count, float* out, std::size_t ldo, float* scratch) noexcept {
    gemm_bf16_chain_layers(&gemm_bf16_scalar, m, x, ldx, layers, count, out, ldo, scratch);
}

template <class Arch>
void gemm_bf16_chain_simd(std::size_t m, const float* x, std::size_t ldx, const packed_bf16_view* layers,
                          std::size_t count, float* out, std::size_t ldo, float* scratch) noexcept {
#if defined(__AVX512BF16__)
    if constexpr (native_bf16<Arch>) {
        // Two buffers of pair words: the input rounded (rows of bf16_pairs(k) words), then each layer's
        // bf16 outputs (rows of its whole panels, so that an odd width's padding column is the zero the
        // next layer's pair needs). Rows no longer than that: a chunk of A then stays in L1.
        const bf16_chain_extent e(layers, count);
        const std::size_t words = std::max(bf16_pairs(e.deep), e.wide / 2);
        float* buf[2] = {scratch, scratch + m * words};
        std::size_t ld = round_rows_bf16_pairs(m, x, ldx, layers[0].k, buf[0], bf16_pairs(layers[0].k));
        static constexpr auto to_bf16 =
            micro_table<micro_kernel_bf16_to_bf16, Arch>(std::make_index_sequence<gemm_shape<Arch>::mr>{});
        static constexpr auto to_fp32 =
            micro_table<micro_kernel_bf16_native, Arch>(std::make_index_sequence<gemm_shape<Arch>::mr>{});
        for (std::size_t l = 0; l < count; ++l) {
            const packed_bf16_view& b = layers[l];
            if (l + 1 == count && b.n >= 1 && b.n <= few_outputs) {
                bf16_few_outputs::run(m, buf[l % 2], ld, b, out, ldo);
            } else if (l + 1 == count) {
                drive_panels<Arch>(to_fp32, m, buf[l % 2], ld, b.data, bf16_pairs(b.k), bf16_panel_rows(b.k), b.n,
                                   b.bias, epilogue(false), out, ldo, false);
            } else {
                const std::size_t ld_out = (b.n + panel_width - 1) / panel_width * panel_width / 2;
                drive_panels<Arch>(to_bf16, m, buf[l % 2], ld, b.data, bf16_pairs(b.k), bf16_panel_rows(b.k), b.n,
                                   b.bias, epilogue(true), reinterpret_cast<std::uint16_t*>(buf[(l + 1) % 2]),
                                   2 * ld_out, true);
                ld = ld_out;
            }
        }
        return;
    }
#endif
    gemm_bf16_chain_layers(&gemm_bf16_simd<Arch>, m, x, ldx, layers, count, out, ldo, scratch);
}

// Reference for tests: C = round(A) * round(W)^T + bias for a torch weight W (n x k), rounded to bf16,
// summed in double.
inline void gemm_bf16_naive(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda,
                            const float* w, const float* bias, bool relu, float* c, std::size_t ldc) noexcept {
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            double s = bias ? bias[j] : 0.0;
            for (std::size_t kk = 0; kk < k; ++kk)
                s += static_cast<double>(round_bf16(a[i * lda + kk])) * round_bf16(w[j * k + kk]);
            const float v = static_cast<float>(s);
            c[i * ldc + j] = relu && !(v > 0.0f) ? 0.0f : v;
        }
}

}  // namespace POEM_TARGET_NAMESPACE
}  // namespace poem::detail
