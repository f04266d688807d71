#pragma once
// The model's bf16 matrix kernel on AMX tiles (Intel Sapphire Rapids and later): the dispatch target
// `amx` only (cmake/poem_dispatch.cmake defines POEM_AMX for it and compiles it with -mamx-tile
// -mamx-bf16; src/dispatch/select.cpp asks Linux for the tile state before choosing it). Header-only
// builds never run it: using AMX needs that request, which is the dispatch library's.
//
// Same inputs and outputs as gemm_bf16_simd (gemm_bf16.hpp): B packed in pair words, panels padded
// to bf16_panel_rows(K) pair rows, which is exactly a tile's layout (16 pair rows of 16 columns, 64
// bytes, 128 bytes apart). A is rounded into scratch as pair words in rows of bf16_panel_rows(K)
// words, zero-padded to a multiple of 32 rows. Per 32 rows of A and panel of 32 columns: four fp32
// accumulator tiles started at the bias, then per 16 pair rows two A tiles, two B tiles and four
// tdpbf16ps; then the register kernels' epilogue (finish_tile: row scale, ReLU, trimmed store).
//
// Numerics: tdpbf16ps sums in fp32 too, but not in vdpbf16ps's documented order, so its outputs are
// not bit-identical to the other targets'; the tests hold it to the double-precision reference
// within the fp32 accumulation's error (and report how often the bits agree).

#if defined(POEM_AMX)

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "poem/model/detail/gemm.hpp"
#include "poem/model/detail/gemm_bf16.hpp"

#if !defined(__AMX_TILE__) || !defined(__AMX_BF16__) || !defined(__AVX512BF16__)
#error "poem: POEM_AMX needs -mamx-tile -mamx-bf16 and the avx512bf16 flags"
#endif

namespace poem::detail {

// ldtilecfg's operand: palette 1, each tile's rows and bytes per row.
struct amx_tile_config {
    std::uint8_t palette = 1;
    std::uint8_t start_row = 0;
    std::uint8_t reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};
};
static_assert(sizeof(amx_tile_config) == 64, "poem: ldtilecfg reads 64 bytes");

inline namespace POEM_TARGET_NAMESPACE {

// The tile intrinsics are asm statements that do not tell the compiler which memory they read: this
// makes the stores before them (the rounded A, the bias rows, the tile config) happen first.
inline void amx_memory_barrier() noexcept { __asm__ volatile("" ::: "memory"); }

// C = A * B + bias (ReLU if asked) for a bf16-packed B, on AMX; scratch: bf16_scratch_size(m, b.k).
inline void gemm_bf16_amx(std::size_t m, const float* a, std::size_t lda, const packed_bf16_view& b,
                          const epilogue& ep, float* c, std::size_t ldc, float* scratch) noexcept {
    using batch = xsimd::batch<float, xsimd::avx512bw>;
    constexpr std::size_t tile_rows = 16, block_rows = 2 * tile_rows, half = panel_width / 2;
    const std::size_t ld = bf16_panel_rows(b.k);  // pair words per row of A, and pair rows per panel
    const std::size_t m_pad = (m + block_rows - 1) / block_rows * block_rows;
    round_rows_bf16_pairs(m, a, lda, b.k, scratch, ld);
    std::memset(scratch + m * ld, 0, (m_pad - m) * ld * sizeof(float));

    // Tiles 0-3: C, 2 x 2 of 16 x 16 fp32 (four independent accumulation chains); 4, 5: A, 16 rows x
    // 16 pairs each; 6, 7: B, 16 pair rows x 16 columns each. Every tile is 16 rows of 64 bytes.
    amx_tile_config cfg;
    for (int t = 0; t < 8; ++t) {
        cfg.rows[t] = tile_rows;
        cfg.colsb[t] = 64;
    }
    amx_memory_barrier();
    _tile_loadconfig(&cfg);

    alignas(64) float bias_rows[tile_rows * panel_width];
    alignas(64) float acc[block_rows * panel_width];
    constexpr long row_bytes = panel_width * sizeof(float);
    const long a_bytes = static_cast<long>(ld * sizeof(float));
    const std::size_t a_tile = tile_rows * ld;  // floats from one A tile to the next
    const std::size_t panels = (b.n + panel_width - 1) / panel_width;
    for (std::size_t p = 0; p < panels; ++p) {
        const std::uint32_t* bp = b.data + p * ld * panel_width;
        for (std::size_t r = 0; r < tile_rows; ++r)
            std::memcpy(bias_rows + r * panel_width, b.bias + p * panel_width, sizeof(float) * panel_width);
        const std::size_t ncols = std::min(panel_width, b.n - p * panel_width);
        for (std::size_t i0 = 0; i0 < m; i0 += block_rows) {
            amx_memory_barrier();
            _tile_loadd(0, bias_rows, row_bytes);
            _tile_loadd(1, bias_rows + half, row_bytes);
            _tile_loadd(2, bias_rows, row_bytes);
            _tile_loadd(3, bias_rows + half, row_bytes);
            const float* ai = scratch + i0 * ld;
            for (std::size_t t = 0; t < ld; t += tile_rows) {
                _tile_loadd(4, ai + t, a_bytes);
                _tile_loadd(5, ai + a_tile + t, a_bytes);
                _tile_loadd(6, bp + t * panel_width, row_bytes);
                _tile_loadd(7, bp + t * panel_width + half, row_bytes);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            _tile_stored(0, acc, row_bytes);
            _tile_stored(1, acc + half, row_bytes);
            _tile_stored(2, acc + tile_rows * panel_width, row_bytes);
            _tile_stored(3, acc + tile_rows * panel_width + half, row_bytes);
            const std::size_t rows = std::min(block_rows, m - i0);
            for (std::size_t r = 0; r < rows; ++r) {  // the register kernels' epilogue, one row at a time
                std::array<batch, 1> c0{batch::load_aligned(acc + r * panel_width)};
                std::array<batch, 1> c1{batch::load_aligned(acc + r * panel_width + half)};
                const epilogue e(ep.relu, ep.row_scale != nullptr ? ep.row_scale + i0 + r : nullptr);
                finish_tile<xsimd::avx512bw>(std::index_sequence<0>{}, c0, c1, e, c + (i0 + r) * ldc + p * panel_width,
                                             ldc, ncols);
            }
        }
    }
    _tile_release();
}

// gemm_bf16_chain on AMX: layer by layer through gemm_bf16_amx.
inline void gemm_bf16_chain_amx(std::size_t m, const float* x, std::size_t ldx, const packed_bf16_view* layers,
                                std::size_t count, float* out, std::size_t ldo, float* scratch) noexcept {
    gemm_bf16_chain_layers(&gemm_bf16_amx, m, x, ldx, layers, count, out, ldo, scratch);
}

}  // namespace POEM_TARGET_NAMESPACE
}  // namespace poem::detail

#endif  // POEM_AMX
