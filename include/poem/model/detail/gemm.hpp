#pragma once
// The model's one matrix kernel: C (M x N) = A (M x K) * B (K x N) + bias, optionally ReLU, with B
// pre-packed in column panels. A and C are row-major with leading dimensions lda and ldc.
//
// Packing: B is cut into panels of `panel_width` = 32 columns; panel p holds K rows of 32 floats,
// k-major and 64-byte aligned, the last panel zero-padded; the bias is packed the same way. Weights are
// packed once at load; the attention packs its keys and values per request.
//
// One layout for every target: 32 columns are two AVX-512 batches, four AVX2 ones, eight SSE2 ones.
// A target's micro-kernel covers nr = 2 of its batches and walks a panel in 32 / nr sub-panels (row
// stride 32), so weights packed once run on whichever target the runtime dispatch picks
// (core/dispatch.hpp), and POEM_FORCE_SCALAR changes a code path, never a layout.
//
// Micro-kernel: `mr` rows x nr columns of accumulators held in registers (mr = 12 with 32 vector
// registers, AVX-512; 6 otherwise), each k step two aligned loads of B and mr broadcasts of A feeding
// 2 * mr FMAs. Bias and ReLU are applied to the accumulators before the single store of C. Where at
// most one batch of columns is left to store (the heads' 3 outputs), a narrow kernel does half of it.
// `gemm_scalar` runs the same packed layout without SIMD (the POEM_FORCE_SCALAR path, and any panel
// width a caller packed with); `gemm_naive` is the plain triple loop on an unpacked B that the tests
// compare against.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <utility>

#include <xsimd/xsimd.hpp>

#include "poem/core/simd.hpp"

namespace poem::detail {

// An owning, 64-byte aligned, zero-initialised buffer of trivial values (packed weights: floats, or
// bf16 pairs as 32-bit words).
template <class T>
class aligned_array {
public:
    aligned_array() = default;
    explicit aligned_array(std::size_t n) : size_(n) {
        if (n > (std::numeric_limits<std::size_t>::max() - 63) / sizeof(T)) throw std::bad_alloc();
        const std::size_t bytes = std::max<std::size_t>(64, (n * sizeof(T) + 63) / 64 * 64);
        void* p = std::aligned_alloc(64, bytes);
        if (p == nullptr) throw std::bad_alloc();
        std::memset(p, 0, bytes);
        data_.reset(static_cast<T*>(p));
    }
    T* data() noexcept { return data_.get(); }
    const T* data() const noexcept { return data_.get(); }
    std::size_t size() const noexcept { return size_; }

private:
    struct deleter {
        void operator()(T* p) const noexcept { std::free(p); }
    };
    std::unique_ptr<T, deleter> data_;
    std::size_t size_ = 0;
};
using aligned_floats = aligned_array<float>;

// The panel width every packed B has, whatever the target (see above).
inline constexpr std::size_t panel_width = 32;

// The rows of A one pass over B's sub-panels covers (gemm_simd): about half of a 512 KB L2.
inline constexpr std::size_t a_chunk_bytes = 128 * 1024;

// A target's micro-kernel: mr rows x nr columns (nr divides panel_width).
template <class Arch>
struct gemm_shape {
    static constexpr std::size_t lanes = xsimd::batch<float, Arch>::size;
    static constexpr std::size_t nr = 2 * lanes;
    static constexpr std::size_t mr = lanes >= 16 ? 12 : 6;
    static_assert(panel_width % nr == 0, "poem: a target's micro-kernel must tile the panel");
};
// The widest panel gemm_scalar's accumulators hold.
inline constexpr std::size_t max_panel_width = 64;
static_assert(panel_width <= max_panel_width, "poem: gemm panel wider than gemm_scalar's accumulators");

// Where a packed panel layout starts for a K x N matrix: panels * K * nr floats.
inline std::size_t packed_size(std::size_t k, std::size_t n, std::size_t nr = panel_width) noexcept {
    return (n + nr - 1) / nr * nr * k;
}

// Packs the K x N matrix whose element (k, j) is src[k * sk + j * sj], times `scale`, into `dst`
// (packed_size(k, n, nr) floats, 64-byte aligned). For a torch Linear weight W (out x in), B = W^T:
// sk = 1, sj = in.
inline void pack_b(const float* src, std::size_t sk, std::size_t sj, std::size_t k, std::size_t n, float* dst,
                   float scale = 1.0f, std::size_t nr = panel_width) noexcept {
    const std::size_t panels = (n + nr - 1) / nr;
    for (std::size_t p = 0; p < panels; ++p) {
        const std::size_t j0 = p * nr;
        const std::size_t w = std::min(nr, n - j0);
        float* out = dst + p * k * nr;
        for (std::size_t kk = 0; kk < k; ++kk) {
            float* row = out + kk * nr;
            std::size_t j = 0;
            for (; j < w; ++j) row[j] = src[kk * sk + (j0 + j) * sj] * scale;
            for (; j < nr; ++j) row[j] = 0.0f;
        }
    }
}

// A packed B and its packed bias, not owned: what the kernels take.
struct packed_view {
    const float* data = nullptr;  // packed_size(k, n, nr), 64-byte aligned
    const float* bias = nullptr;  // panels * nr, 64-byte aligned
    std::size_t k = 0, n = 0, nr = panel_width;
};

// A packed B with its bias: what a layer holds.
struct packed_b {
    std::size_t k = 0, n = 0, nr = panel_width;
    aligned_floats data;  // packed_size(k, n, nr)
    aligned_floats bias;  // panels * nr, zero-padded (zeros when the layer has none)

    packed_b() = default;
    // From a torch Linear weight W (n x k, row-major) and its bias (n floats, or nullptr).
    packed_b(const float* w, const float* b, std::size_t n_out, std::size_t k_in, std::size_t width = panel_width)
        : k(k_in), n(n_out), nr(width), data(packed_size(k_in, n_out, width)),
          bias((n_out + width - 1) / width * width) {
        pack_b(w, 1, k_in, k_in, n_out, data.data(), 1.0f, width);
        if (b != nullptr) std::copy(b, b + n_out, bias.data());
    }
    packed_view view() const noexcept { return {data.data(), bias.data(), k, n, nr}; }
};

// What happens to a tile of C between the last FMA and the store: C = row_scale[i] * (A B + bias)
// (when row_scale is given: the attention folds the softmax's 1 / sum into it), then ReLU if asked.
struct epilogue {
    bool relu = false;
    const float* row_scale = nullptr;  // m floats, or nullptr
    epilogue(bool r = false, const float* scale = nullptr) noexcept : relu(r), row_scale(scale) {}  // NOLINT
};

// ---- the SIMD micro-kernel and driver ------------------------------------------------------------

inline namespace POEM_TARGET_NAMESPACE {

// The epilogue's arithmetic on a tile's accumulators (A B + bias): times row_scale when given, then
// ReLU if asked.
template <class Arch, std::size_t... R>
inline void apply_epilogue(std::index_sequence<R...>, std::array<xsimd::batch<float, Arch>, sizeof...(R)>& c0,
                           std::array<xsimd::batch<float, Arch>, sizeof...(R)>& c1, const epilogue& ep) noexcept {
    using batch = xsimd::batch<float, Arch>;
    if (ep.row_scale != nullptr) {
        ((void)(std::get<R>(c0) *= batch(ep.row_scale[R]), std::get<R>(c1) *= batch(ep.row_scale[R])), ...);
    }
    if (ep.relu) {
        const batch zero(0.0f);
        ((void)(std::get<R>(c0) = xsimd::max(std::get<R>(c0), zero)), ...);
        ((void)(std::get<R>(c1) = xsimd::max(std::get<R>(c1), zero)), ...);
    }
}

// The end of an fp32 micro-kernel: apply_epilogue, then one store of the tile's rows (trimmed to ncols
// columns).
template <class Arch, std::size_t... R>
inline void finish_tile(std::index_sequence<R...> rows, std::array<xsimd::batch<float, Arch>, sizeof...(R)>& c0,
                        std::array<xsimd::batch<float, Arch>, sizeof...(R)>& c1, const epilogue& ep, float* c,
                        std::size_t ldc, std::size_t ncols) noexcept {
    using batch = xsimd::batch<float, Arch>;
    constexpr std::size_t L = batch::size;
    apply_epilogue<Arch>(rows, c0, c1, ep);
    if (ncols == 2 * L) {
        ((std::get<R>(c0).store_unaligned(c + R * ldc), std::get<R>(c1).store_unaligned(c + R * ldc + L)), ...);
    } else {
        alignas(64) float tmp[2 * L];
        auto put = [&](std::size_t r, const batch& x0, const batch& x1) {
            x0.store_aligned(tmp);
            x1.store_aligned(tmp + L);
            std::memcpy(c + r * ldc, tmp, ncols * sizeof(float));
        };
        (put(R, std::get<R>(c0), std::get<R>(c1)), ...);
    }
}

// One row of a micro-kernel's k step: one broadcast of A feeding two FMAs (keeps 2 * mr + 3 registers
// live); Narrow: the first only (a sub-panel with at most one batch of columns left to store).
template <class Arch, bool Narrow>
inline void fma_row(float a, const xsimd::batch<float, Arch>& b0, const xsimd::batch<float, Arch>& b1,
                    xsimd::batch<float, Arch>& c0, xsimd::batch<float, Arch>& c1) noexcept {
    const xsimd::batch<float, Arch> ar(a);
    c0 = fmadd(ar, b0, c0);
    if constexpr (!Narrow) c1 = fmadd(ar, b1, c1);
}

// fp32 panels (pack_b): step kk is row kk of the sub-panel, two aligned loads.
struct fp32_panel {
    using value_type = float;
    template <class Arch, bool Narrow, std::size_t... R>
    static void step(std::index_sequence<R...>, std::size_t kk, const float* a, std::size_t lda, const float* b,
                     std::array<xsimd::batch<float, Arch>, sizeof...(R)>& c0,
                     std::array<xsimd::batch<float, Arch>, sizeof...(R)>& c1) noexcept {
        using batch = xsimd::batch<float, Arch>;
        const batch b0 = batch::load_aligned(b + kk * panel_width);
        const batch b1 = batch::load_aligned(b + kk * panel_width + batch::size);
        (fma_row<Arch, Narrow>(a[R * lda + kk], b0, b1, std::get<R>(c0), std::get<R>(c1)), ...);
    }
};

// How a micro-kernel's tile leaves the registers: in fp32 (finish_tile), or rounded to bf16 for the
// next layer of a chain (bf16_tile, gemm_bf16.hpp).
struct fp32_tile {
    using value_type = float;
    template <class Arch, std::size_t... R>
    static void finish(std::index_sequence<R...> rows, std::array<xsimd::batch<float, Arch>, sizeof...(R)>& c0,
                       std::array<xsimd::batch<float, Arch>, sizeof...(R)>& c1, const epilogue& ep, float* c,
                       std::size_t ldc, std::size_t ncols) noexcept {
        finish_tile<Arch>(rows, c0, c1, ep, c, ldc, ncols);
    }
};

// The micro-kernel: MR rows x two batches of accumulators, started at the bias, then `k_steps` steps
// of the Panel format (fp32_panel here, bf16_panel in gemm_bf16.hpp), then the Tile's finish. Narrow:
// the steps update the first batch only, for a sub-panel with at most one batch of columns to store
// (the heads' few outputs): half the products, the same bits in the columns stored.
template <class Arch, std::size_t MR, class Panel, class Tile = fp32_tile, bool Narrow = false>
struct micro_kernel {
    using batch = xsimd::batch<float, Arch>;
    static constexpr std::size_t L = batch::size;

    // Flattened: GCC left finish_tile out of line for 12 rows, so the 24 accumulators went through the
    // stack after every tile (bf16 tower on a Zen 5: 0.417 -> 0.384 ms at N = 1000).
    template <std::size_t... R>
    POEM_FLATTEN static void run(std::index_sequence<R...> rows, std::size_t k_steps, const float* a,
                                 std::size_t lda, const typename Panel::value_type* b, const float* bias,
                                 const epilogue& ep, typename Tile::value_type* c, std::size_t ldc,
                                 std::size_t ncols) noexcept {
        const batch bias0 = batch::load_aligned(bias);
        const batch bias1 = batch::load_aligned(bias + L);
        std::array<batch, MR> c0{((void)R, bias0)...};
        std::array<batch, MR> c1{((void)R, bias1)...};
        for (std::size_t t = 0; t < k_steps; ++t) Panel::template step<Arch, Narrow>(rows, t, a, lda, b, c0, c1);
        Tile::template finish<Arch>(rows, c0, c1, ep, c, ldc, ncols);
    }

    static void call(std::size_t k_steps, const float* a, std::size_t lda, const typename Panel::value_type* b,
                     const float* bias, const epilogue& ep, typename Tile::value_type* c, std::size_t ldc,
                     std::size_t ncols) noexcept {
        run(std::make_index_sequence<MR>{}, k_steps, a, lda, b, bias, ep, c, ldc, ncols);
    }
};
template <class Arch, std::size_t MR, bool Narrow>
using micro_kernel_fp32 = micro_kernel<Arch, MR, fp32_panel, fp32_tile, Narrow>;

// A micro-kernel of MR = I + 1 rows for each I, whole and narrow: the driver's tables, indexed by the
// rows left.
template <class F, std::size_t N>
struct micro_tables {
    std::array<F, N> whole, narrow;
};
template <template <class, std::size_t, bool> class Kernel, class Arch, std::size_t... I>
constexpr auto micro_table(std::index_sequence<I...>) {
    return micro_tables<decltype(&Kernel<Arch, 1, false>::call), sizeof...(I)>{
        {&Kernel<Arch, I + 1, false>::call...}, {&Kernel<Arch, I + 1, true>::call...}};
}

// Runs a micro-kernel table over B's panels (k_steps rows of panel_width values of the kernel's
// Panel::value_type each, panel_rows >= k_steps rows apart) for C = A * B + bias, C's elements of the
// kernel's Tile::value_type (ldc of them apart). full_panels: C's rows
// have room for every panel's columns (ldc >= panels * panel_width), so the last panel is stored whole
// (its padding columns get the padded, zero, weights and bias) instead of trimmed.
template <class Arch, class Table, class BT, class CT>
void drive_panels(const Table& table, std::size_t m, const float* a, std::size_t lda, const BT* b, std::size_t k_steps,
                  std::size_t panel_rows, std::size_t n, const float* bias, const epilogue& ep, CT* c,
                  std::size_t ldc, bool full_panels) noexcept {
    using shape = gemm_shape<Arch>;
    constexpr std::size_t nr = shape::nr;
    const std::size_t panels = (n + panel_width - 1) / panel_width;
    full_panels = full_panels && ldc >= panels * panel_width;
    const std::size_t stored = full_panels ? panels * panel_width : n;  // columns of C written
    // Chunks of rows outer, then B's sub-panels, then the chunk's row blocks: one sub-panel (k x nr) stays
    // in L1 while the chunk's mr-row blocks of A (about a_chunk_bytes, in L2) stream past it. Row
    // blocks outer instead streamed the whole B from L2 per mr rows (B: 100 to 130 KB per tower layer).
    const std::size_t chunk = std::max<std::size_t>(1, a_chunk_bytes / (sizeof(float) * std::max<std::size_t>(lda, 1)) /
                                                        shape::mr) * shape::mr;
    for (std::size_t ic = 0; ic < m; ic += chunk) {
        const std::size_t iend = std::min(m, ic + chunk);
        for (std::size_t p = 0; p < panels; ++p) {
            const BT* bp = b + p * panel_rows * panel_width;
            for (std::size_t s = 0; s < panel_width; s += nr) {
                const std::size_t col = p * panel_width + s;
                if (col >= stored) break;
                const std::size_t ncols = std::min(nr, stored - col);
                const auto& kernels = ncols <= shape::lanes ? table.narrow : table.whole;
                for (std::size_t i0 = ic; i0 < iend; i0 += shape::mr) {
                    const std::size_t rows = std::min(shape::mr, iend - i0);
                    const epilogue e(ep.relu, ep.row_scale ? ep.row_scale + i0 : nullptr);
                    kernels[rows - 1](k_steps, a + i0 * lda, lda, bp + s, bias + col, e, c + i0 * ldc + col, ldc, ncols);
                }
            }
        }
    }
}

// The same packed computation without SIMD: the POEM_FORCE_SCALAR path (any panel width up to
// max_panel_width: b.nr, whatever B was packed with).
inline void gemm_scalar(std::size_t m, const float* a, std::size_t lda, const packed_view& b, const epilogue& ep, float* c,
                        std::size_t ldc, bool full_panels = false) noexcept {
    const std::size_t nr = b.nr;
    const std::size_t panels = (b.n + nr - 1) / nr;
    full_panels = full_panels && ldc >= panels * nr;
    float acc[max_panel_width];
    for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t p = 0; p < panels; ++p) {
            const std::size_t w = full_panels ? nr : std::min(nr, b.n - p * nr);
            const float* bp = b.data + p * b.k * nr;
            for (std::size_t j = 0; j < nr; ++j) acc[j] = b.bias[p * nr + j];
            for (std::size_t kk = 0; kk < b.k; ++kk) {
                const float x = a[i * lda + kk];
                for (std::size_t j = 0; j < nr; ++j) acc[j] += x * bp[kk * nr + j];
            }
            const float scale = ep.row_scale ? ep.row_scale[i] : 1.0f;
            for (std::size_t j = 0; j < w; ++j) {
                const float v = ep.row_scale ? acc[j] * scale : acc[j];
                c[i * ldc + p * nr + j] = ep.relu && !(v > 0.0f) ? 0.0f : v;
            }
        }
    }
}

// C = A * B + bias (ReLU if asked). B packed with panel_width runs the micro-kernel over each panel's
// sub-panels; any other width (a caller's own packing) goes through gemm_scalar. full_panels: see
// drive_panels.
template <class Arch>
void gemm_simd(std::size_t m, const float* a, std::size_t lda, const packed_view& b, const epilogue& ep, float* c,
               std::size_t ldc, bool full_panels = false) noexcept {
    if (b.nr != panel_width) return gemm_scalar(m, a, lda, b, ep, c, ldc, full_panels);
    static constexpr auto table = micro_table<micro_kernel_fp32, Arch>(std::make_index_sequence<gemm_shape<Arch>::mr>{});
    drive_panels<Arch>(table, m, a, lda, b.data, b.k, b.k, b.n, b.bias, ep, c, ldc, full_panels);
}

// Reference: C = A * W^T + bias for a torch weight W (n x k), double accumulation, plain loops.
inline void gemm_naive(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* w,
                       const float* bias, bool relu, float* c, std::size_t ldc) noexcept {
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            double s = bias ? bias[j] : 0.0;
            for (std::size_t kk = 0; kk < k; ++kk) s += static_cast<double>(a[i * lda + kk]) * w[j * k + kk];
            const float v = static_cast<float>(s);
            c[i * ldc + j] = relu && !(v > 0.0f) ? 0.0f : v;
        }
}

}  // namespace POEM_TARGET_NAMESPACE
}  // namespace poem::detail
