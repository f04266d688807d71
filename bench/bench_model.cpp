// model/: the batched forward pass against the same model and weights run by LibTorch (when found),
// and the MLP tower alone against a naive triple loop. GFLOP/s counts multiply-adds as 2 FLOPs.
//
// The model: d = 32, 1 head, K = 4 objectives, 8 levels, 1 chrono feature, MLP 256-128-64, 3 heads,
// vocab 100000, random weights; requests of N candidates with chronological and partial-order
// sequences of 100 valid tokens each. Every side runs on one thread: run with
// OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 (LibTorch's BLAS ignores at::set_num_threads); the
// context entries say what was set. LibTorch's GEMMs go through whichever libblas.so.3 the loader
// finds: `make bench` puts Debian's OpenBLAS first (scripts/local-openblas.sh), and the context entry
// libtorch_blas says which library this process mapped ("reference" for Debian's default libblas3).
// BM_model_mlp_onednn runs the tower through oneDNN's matmuls (fp32; bf16 where oneDNN has it, from
// an input already in bf16 and from the fp32 input poem's tower takes).
// BM_model_softmax times the attention's softmax alone.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_common.hpp"
#include "model_file.hpp"
#include "poem/core/rng.hpp"
#include "poem/core/workspace.hpp"
#include "poem/model/model.hpp"
#include "poem/model/safetensors.hpp"

#ifdef POEM_HAVE_LIBTORCH
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#endif
#ifdef POEM_HAVE_ONEDNN
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

using poem_bench::make_model_file;

constexpr std::size_t seq_len = 100;

const poem::model_config& bench_config() {
    static const poem::model_config cfg = [] {
        poem::model_config c;
        c.vocab = 100000;
        return c;
    }();
    return cfg;
}
const poem::safetensors_file& bench_file() {
    static const poem::safetensors_file f = make_model_file(bench_config(), 42);
    return f;
}
const poem::model& bench_model(poem::precision p = poem::precision::fp32) {
    static const poem::model fp32 = poem::model::from_file(bench_file());
    static const poem::model bf16 = poem::model::from_file(bench_file(), {poem::precision::bf16});
    return p == poem::precision::bf16 ? bf16 : fp32;
}

struct request {
    std::size_t n = 0, k = 0;
    std::vector<std::uint64_t> cand_ids, chrono_ids, po_ids;
    std::vector<float> cand_fused, cand_rank, cand_obj, chrono_age, chrono_feats, po_fused, po_rank, po_age;
    std::vector<std::uint32_t> cand_level, po_level;
    std::vector<std::uint8_t> chrono_mask, po_mask;

    poem::candidate_view cand() const {
        return {cand_ids, cand_fused, cand_rank, cand_level, poem::matrix_view<const float>(cand_obj.data(), k, n)};
    }
    poem::chrono_view chrono() const {
        return {chrono_ids, chrono_age, poem::matrix_view<const float>(chrono_feats.data(), seq_len, 1), chrono_mask};
    }
    poem::po_view po() const { return {po_ids, po_fused, po_rank, po_level, po_age, po_mask}; }
};

request make_request(std::size_t n, std::uint64_t seed) {
    const auto& cfg = bench_config();
    poem::rng g(seed);
    request r;
    r.n = n;
    r.k = cfg.n_objectives;
    for (std::size_t i = 0; i < n; ++i) {
        r.cand_ids.push_back(g());
        r.cand_fused.push_back(g.uniform_float());
        r.cand_rank.push_back(g.uniform_float());
        r.cand_level.push_back(static_cast<std::uint32_t>(g.below(cfg.n_levels)));
    }
    for (std::size_t i = 0; i < n * r.k; ++i) r.cand_obj.push_back(g.uniform_float());
    for (std::size_t i = 0; i < seq_len; ++i) {
        r.chrono_ids.push_back(g());
        r.chrono_age.push_back(g.uniform_float() * 1e5f);
        r.chrono_feats.push_back(g.uniform_float());
        r.chrono_mask.push_back(1);
        r.po_ids.push_back(g());
        r.po_fused.push_back(g.uniform_float());
        r.po_rank.push_back(g.uniform_float());
        r.po_level.push_back(static_cast<std::uint32_t>(g.below(cfg.n_levels)));
        r.po_age.push_back(g.uniform_float() * 1e5f);
        r.po_mask.push_back(1);
    }
    return r;
}

void set_counters(benchmark::State& state, double flops, std::size_t n) {
    state.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * static_cast<std::int64_t>(n)));
}

void run_predict(benchmark::State& state, poem::precision p) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const poem::model& m = bench_model(p);
    poem_bench::rotating<request> reqs(4, [&](std::size_t i) { return make_request(n, 100 + i); });
    poem::workspace ws;
    std::vector<float> out(n * m.outputs());
    for (auto _ : state) {
        const request& r = reqs.next();
        m.predict(r.cand(), r.chrono(), r.po(), ws, poem::matrix_view<float>(out.data(), n, m.outputs()));
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    set_counters(state, m.flops(n, seq_len, seq_len), n);
}
void BM_model_predict(benchmark::State& state) { run_predict(state, poem::precision::fp32); }
BENCHMARK(BM_model_predict)->Arg(16)->Arg(100)->Arg(1000)->Arg(4000);
// The tower and heads in bf16 (poem::model_options): on CPUs without AVX512_BF16 the products run on
// widened values (model/detail/gemm_bf16.hpp).
void BM_model_predict_bf16(benchmark::State& state) { run_predict(state, poem::precision::bf16); }
BENCHMARK(BM_model_predict_bf16)->Arg(100)->Arg(1000)->Arg(4000);

// The tower and heads alone (N x 103 -> 256 -> 128 -> 64 -> 3).
struct tower_input {
    std::vector<float> x;
};
tower_input make_tower_input(std::size_t n, std::uint64_t seed) {
    poem::rng g(seed);
    tower_input t;
    t.x.resize(n * bench_config().tower_in());
    for (auto& v : t.x) v = g.uniform_float() * 2 - 1;
    return t;
}

void run_mlp(benchmark::State& state, poem::precision p) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const poem::model& m = bench_model(p);
    const std::size_t in = m.config().tower_in();
    poem_bench::rotating<tower_input> xs(4, [&](std::size_t i) { return make_tower_input(n, 7 + i); });
    poem::workspace ws;
    std::vector<float> out(n * m.outputs());
    for (auto _ : state) {
        m.tower(xs.next().x.data(), in, n, ws, poem::matrix_view<float>(out.data(), n, m.outputs()));
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    set_counters(state, m.tower_flops(n), n);
}
void BM_model_mlp(benchmark::State& state) { run_mlp(state, poem::precision::fp32); }
BENCHMARK(BM_model_mlp)->Arg(100)->Arg(1000)->Arg(4000);
void BM_model_mlp_bf16(benchmark::State& state) { run_mlp(state, poem::precision::bf16); }
BENCHMARK(BM_model_mlp_bf16)->Arg(100)->Arg(1000)->Arg(4000);

// The same tower as plain float triple loops over the unpacked weights.
void BM_model_mlp_naive(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto& f = bench_file();
    const auto& cfg = bench_config();
    std::vector<std::vector<float>> w, b;
    std::vector<std::size_t> widths{cfg.tower_in()};
    for (std::size_t i = 0; i < cfg.mlp.size(); ++i) {
        w.push_back(f.to_f32("tower." + std::to_string(2 * i) + ".weight"));
        b.push_back(f.to_f32("tower." + std::to_string(2 * i) + ".bias"));
        widths.push_back(cfg.mlp[i]);
    }
    w.push_back(f.to_f32("head.weight"));
    b.push_back(f.to_f32("head.bias"));
    widths.push_back(cfg.outputs());
    poem_bench::rotating<tower_input> xs(4, [&](std::size_t i) { return make_tower_input(n, 7 + i); });
    std::vector<float> h0(n * 256), h1(n * 256);
    for (auto _ : state) {
        const float* in = xs.next().x.data();
        for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
            const std::size_t k = widths[l], o = widths[l + 1];
            float* out = l % 2 ? h1.data() : h0.data();
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = 0; j < o; ++j) {
                    float s = b[l][j];
                    for (std::size_t kk = 0; kk < k; ++kk) s += in[i * k + kk] * w[l][j * k + kk];
                    out[i * o + j] = (l + 2 < widths.size() && s < 0) ? 0.0f : s;
                }
            in = out;
        }
        benchmark::DoNotOptimize(h0.data());
        benchmark::DoNotOptimize(h1.data());
        benchmark::ClobberMemory();
    }
    set_counters(state, bench_model().tower_flops(n), n);
}
BENCHMARK(BM_model_mlp_naive)->Arg(100)->Arg(1000);

// The attention's softmax alone: N rows of seq_len scores (one attention's, N candidates against 100
// tokens), exp(s - max) and 1 / sum as the forward pass calls it; the copy of the scores (the kernel
// works in place) is timed on both sides. _naive: the scalar reference, double sums.
void run_softmax(benchmark::State& state, bool naive) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const std::size_t ld = (seq_len + 15) / 16 * 16;
    poem_bench::rotating<std::vector<float>> scores(4, [&](std::size_t i) {
        poem::rng g(11 + i);
        std::vector<float> v(n * ld);
        for (auto& x : v) x = (g.uniform_float() - 0.5f) * 20;
        return v;
    });
    std::vector<float> s(n * ld), inv_sum(n);
    for (auto _ : state) {
        const std::vector<float>& x = scores.next();
        std::copy(x.begin(), x.end(), s.begin());
        if (naive) poem::detail::softmax_rows_scalar(s.data(), n, seq_len, ld, inv_sum.data());
        else poem::detail::softmax_rows(s.data(), n, seq_len, ld, inv_sum.data());
        benchmark::DoNotOptimize(s.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * static_cast<std::int64_t>(n * seq_len)));
}
void BM_model_softmax(benchmark::State& state) { run_softmax(state, false); }
BENCHMARK(BM_model_softmax)->Arg(100)->Arg(1000);
void BM_model_softmax_naive(benchmark::State& state) { run_softmax(state, true); }
BENCHMARK(BM_model_softmax_naive)->Arg(100)->Arg(1000);

#ifdef POEM_HAVE_ONEDNN
// The same tower and heads as oneDNN matmuls (bias, ReLU as a post-op), what a user of oneDNN would
// run: primitives created and weights reordered to oneDNN's chosen layout once, outside the timed
// loop. Debian's oneDNN uses OpenMP: one thread via omp_set_num_threads(1) (the context says so).
// The label names the implementation oneDNN picked for each layer (primitive_desc::impl_info_str).
struct onednn_tower {
    using tag = dnnl::memory::format_tag;
    using dt = dnnl::memory::data_type;
    struct layer {
        dnnl::matmul prim;
        dnnl::memory w, b, dst;
        std::string impl;
    };
    dnnl::engine eng{dnnl::engine::kind::cpu, 0};
    dnnl::stream strm{eng};
    std::vector<layer> layers;
    dnnl::memory::desc src_md;
    dnnl::memory src;          // the first layer's input, written by `from_f32`
    dnnl::reorder from_f32;    // an fp32 input (n x tower_in, row-major) to src_md

    onednn_tower(std::size_t n, dt type) {
        const auto& f = bench_file();
        const auto& cfg = bench_config();
        std::vector<std::size_t> widths{cfg.tower_in()};
        std::vector<std::string> names;
        for (std::size_t i = 0; i < cfg.mlp.size(); ++i) {
            widths.push_back(cfg.mlp[i]);
            names.push_back("tower." + std::to_string(2 * i));
        }
        widths.push_back(cfg.outputs());
        names.push_back("head");
        const auto rows = static_cast<dnnl::memory::dim>(n);
        for (std::size_t l = 0; l < names.size(); ++l) {
            const auto k = static_cast<dnnl::memory::dim>(widths[l]), o = static_cast<dnnl::memory::dim>(widths[l + 1]);
            const bool last = l + 1 == names.size();
            const dnnl::memory::desc src({rows, k}, type, tag::ab);
            const dnnl::memory::desc wany({k, o}, type, tag::any);
            const dnnl::memory::desc bias({1, o}, dt::f32, tag::ab);
            const dnnl::memory::desc dst({rows, o}, last ? dt::f32 : type, tag::ab);
            if (l == 0) src_md = src;
            dnnl::post_ops ops;
            if (!last) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
            dnnl::primitive_attr attr;
            attr.set_post_ops(ops);
            const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, wany, bias, dst), attr, eng);
            layer L;
            L.impl = pd.impl_info_str();
            // torch's W (o x k, row-major) is B = W^T (k x o) in layout "ba"; reorder once to oneDNN's.
            auto wt = f.to_f32(names[l] + ".weight");
            auto bt = f.to_f32(names[l] + ".bias");
            dnnl::memory wuser({{k, o}, dt::f32, tag::ba}, eng, wt.data());
            L.w = dnnl::memory(pd.weights_desc(), eng);
            dnnl::reorder(wuser, L.w).execute(strm, wuser, L.w);
            L.b = dnnl::memory(bias, eng);
            std::copy(bt.begin(), bt.end(), static_cast<float*>(L.b.get_data_handle()));
            L.dst = dnnl::memory(dst, eng);
            L.prim = dnnl::matmul(pd);
            layers.push_back(std::move(L));
        }
        src = dnnl::memory(src_md, eng);
        const dnnl::memory::desc user({src_md.dims(), dt::f32, tag::ab});
        from_f32 = dnnl::reorder(dnnl::reorder::primitive_desc(eng, user, eng, src_md));
        strm.wait();
    }
    // An f32 input (n x tower_in, row-major) in the type the first layer takes.
    dnnl::memory input(const std::vector<float>& x) {
        dnnl::memory user({src_md.dims(), dt::f32, tag::ab}, eng, const_cast<float*>(x.data()));
        dnnl::memory m(src_md, eng);
        dnnl::reorder(user, m).execute(strm, user, m);
        strm.wait();
        return m;
    }
    // An f32 input as a user's memory (the caller keeps x).
    dnnl::memory user_input(const std::vector<float>& x) {
        return dnnl::memory({src_md.dims(), dt::f32, tag::ab}, eng, const_cast<float*>(x.data()));
    }
    // The tower on an fp32 input: the conversion to the first layer's type (a reorder), then the layers.
    const float* run_f32(const dnnl::memory& x) {
        from_f32.execute(strm, {{DNNL_ARG_FROM, x}, {DNNL_ARG_TO, src}});
        return run(src);
    }
    const float* run(const dnnl::memory& x) {
        const dnnl::memory* in = &x;
        for (auto& L : layers) {
            L.prim.execute(strm, {{DNNL_ARG_SRC, *in}, {DNNL_ARG_WEIGHTS, L.w}, {DNNL_ARG_BIAS, L.b},
                                  {DNNL_ARG_DST, L.dst}});
            in = &L.dst;
        }
        strm.wait();
        return static_cast<const float*>(layers.back().dst.get_data_handle());
    }
    std::string impls() const {
        std::string s;
        for (const auto& L : layers) s += (s.empty() ? "" : ",") + L.impl;
        return s;
    }
};

// The widest instruction set oneDNN's JIT uses on this CPU.
std::string onednn_isa() {
    using isa = dnnl::cpu_isa;
    switch (dnnl::get_effective_cpu_isa()) {
        case isa::sse41: return "sse41";
        case isa::avx: return "avx";
        case isa::avx2: return "avx2";
        case isa::avx2_vnni: return "avx2_vnni";
        case isa::avx512_core: return "avx512_core";
        case isa::avx512_core_vnni: return "avx512_core_vnni";
        case isa::avx512_core_bf16: return "avx512_core_bf16";
        case isa::avx512_core_amx: return "avx512_core_amx";
        default: return "other";
    }
}

const bool onednn_context = [] {
    omp_set_num_threads(1);
    const dnnl_version_t* v = dnnl_version();
    benchmark::AddCustomContext("onednn", std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                                              std::to_string(v->patch) + " cpu_runtime=" +
                                              (v->cpu_runtime == DNNL_RUNTIME_OMP ? "omp" : "other") +
                                              " isa=" + onednn_isa());
    benchmark::AddCustomContext("onednn_threads", "omp_set_num_threads(1); omp_get_max_threads() = " +
                                                      std::to_string(omp_get_max_threads()));
    return true;
}();

// from_f32: the timed loop starts from fp32 features, as poem's tower does, and converts them to the
// first layer's type (for fp32, no conversion: the same as without).
void BM_model_mlp_onednn(benchmark::State& state, dnnl::memory::data_type type, bool from_f32) {
    const auto n = static_cast<std::size_t>(state.range(0));
    omp_set_num_threads(1);
    std::unique_ptr<onednn_tower> t;
    try {
        t = std::make_unique<onednn_tower>(n, type);
    } catch (const dnnl::error& e) {
        // oneDNN 2.6 has bf16 matmuls only from avx512_core up: on an AVX2 CPU there is none to time.
        state.SkipWithError(("oneDNN (isa " + onednn_isa() + ") creates no such matmul: " + e.what()).c_str());
        return;
    }
    const std::string impls = t->impls();
    state.SetLabel(impls);
    if (type != dnnl::memory::data_type::f32 && impls.find("ref") != std::string::npos) {
        // The reference implementation is a scalar loop, not what bf16 hardware would give: no number.
        state.SkipWithError(("oneDNN has only its reference bf16 matmul on this CPU (" + impls + ")").c_str());
        return;
    }
    std::vector<tower_input> raw;  // what the fp32 inputs' memories point into
    raw.reserve(4);
    std::vector<dnnl::memory> xs;
    for (std::size_t i = 0; i < 4; ++i) {
        raw.push_back(make_tower_input(n, 7 + i));
        xs.push_back(from_f32 ? t->user_input(raw.back().x) : t->input(raw.back().x));
    }
    {  // the same outputs as poem's tower in the same precision: within 1e-4 in fp32; in bf16, where the
       // two round their activations at different points, within 2 % of the largest output
        const bool fp32 = type == dnnl::memory::data_type::f32;
        const poem::model& m = bench_model(fp32 ? poem::precision::fp32 : poem::precision::bf16);
        poem::workspace ws;
        std::vector<float> want(n * m.outputs());
        m.tower(raw[0].x.data(), m.config().tower_in(), n, ws, poem::matrix_view<float>(want.data(), n, m.outputs()));
        const float* got = from_f32 ? t->run_f32(xs[0]) : t->run(xs[0]);
        double worst = 0, largest = 0;
        for (std::size_t i = 0; i < want.size(); ++i) {
            worst = std::max(worst, std::abs(static_cast<double>(want[i]) - got[i]));
            largest = std::max(largest, std::abs(static_cast<double>(want[i])));
        }
        if (!(worst <= (fp32 ? 1e-4 : 0.02 * largest))) {
            state.SkipWithError(("oneDNN and poem disagree by " + std::to_string(worst) + " (largest output " +
                                 std::to_string(largest) + ")")
                                    .c_str());
            return;
        }
        state.counters["max_diff"] = worst;
    }
    std::size_t at = 0;
    for (auto _ : state) {
        const float* y = from_f32 ? t->run_f32(xs[at]) : t->run(xs[at]);
        at = (at + 1) % xs.size();
        benchmark::DoNotOptimize(y);
        benchmark::ClobberMemory();
    }
    set_counters(state, bench_model().tower_flops(n), n);
}
BENCHMARK_CAPTURE(BM_model_mlp_onednn, fp32, dnnl::memory::data_type::f32, false)->Arg(100)->Arg(1000)->Arg(4000);
BENCHMARK_CAPTURE(BM_model_mlp_onednn, bf16, dnnl::memory::data_type::bf16, false)->Arg(100)->Arg(1000)->Arg(4000);
BENCHMARK_CAPTURE(BM_model_mlp_onednn, bf16_from_fp32, dnnl::memory::data_type::bf16, true)
    ->Arg(100)
    ->Arg(1000)
    ->Arg(4000);
#else
const bool onednn_context = [] {
    benchmark::AddCustomContext("onednn", "not found at configure time: BM_model_mlp_onednn not built");
    return true;
}();
#endif

#ifdef POEM_HAVE_LIBTORCH
// The same forward pass with ATen ops on the same weights (what a LibTorch service would run).
struct torch_model {
    struct attn {
        at::Tensor qw, qb, kw, kb, vw, vb;
    };
    at::Tensor item_emb, level_emb, ch_w, ch_b, po_w, po_b, head_w, head_b;
    attn ch, po;
    std::vector<std::pair<at::Tensor, at::Tensor>> tower;
    poem::model_config cfg;

    static at::Tensor t(const poem::safetensors_file& f, const std::string& name) {
        const auto& info = f.at(name);
        std::vector<std::int64_t> shape(info.shape.begin(), info.shape.end());
        const auto v = f.to_f32(info);
        return at::from_blob(const_cast<float*>(v.data()), shape, at::kFloat).clone();
    }
    explicit torch_model(const poem::safetensors_file& f) : cfg(bench_config()) {
        item_emb = t(f, "item_emb.weight");
        level_emb = t(f, "level_emb.weight");
        ch_w = t(f, "chrono_in.weight"), ch_b = t(f, "chrono_in.bias");
        po_w = t(f, "po_in.weight"), po_b = t(f, "po_in.bias");
        for (auto [a, p] : {std::pair<attn*, std::string>{&ch, "chrono_attn"}, {&po, "po_attn"}}) {
            a->qw = t(f, p + ".q.weight"), a->qb = t(f, p + ".q.bias");
            a->kw = t(f, p + ".k.weight"), a->kb = t(f, p + ".k.bias");
            a->vw = t(f, p + ".v.weight"), a->vb = t(f, p + ".v.bias");
        }
        for (std::size_t i = 0; i < cfg.mlp.size(); ++i)
            tower.emplace_back(t(f, "tower." + std::to_string(2 * i) + ".weight"),
                               t(f, "tower." + std::to_string(2 * i) + ".bias"));
        head_w = t(f, "head.weight"), head_b = t(f, "head.bias");
    }

    at::Tensor attend(const attn& a, const at::Tensor& e_c, const at::Tensor& tok, const at::Tensor& mask) const {
        const std::int64_t n = e_c.size(0), l = tok.size(0), h = static_cast<std::int64_t>(cfg.n_heads);
        const std::int64_t d = static_cast<std::int64_t>(cfg.d), dh = d / h;
        const auto q = at::linear(e_c, a.qw, a.qb).view({n, h, dh}).transpose(0, 1);   // h n dh
        const auto k = at::linear(tok, a.kw, a.kb).view({l, h, dh}).permute({1, 2, 0});  // h dh l
        const auto v = at::linear(tok, a.vw, a.vb).view({l, h, dh}).transpose(0, 1);   // h l dh
        auto s = at::matmul(q, k).div_(std::sqrt(static_cast<double>(dh)));
        s.masked_fill_(mask.logical_not(), -INFINITY);
        const auto p = at::softmax(s, -1);
        return at::matmul(p, v).transpose(0, 1).reshape({n, d});
    }

    at::Tensor rows(const std::vector<std::uint64_t>& ids) const {
        auto r = at::empty({static_cast<std::int64_t>(ids.size())}, at::kLong);
        auto* p = r.data_ptr<std::int64_t>();
        for (std::size_t i = 0; i < ids.size(); ++i) p[i] = static_cast<std::int64_t>(poem::hash_row(ids[i], cfg.vocab));
        return r;
    }
    static at::Tensor vec(const std::vector<float>& v) {
        return at::from_blob(const_cast<float*>(v.data()), {static_cast<std::int64_t>(v.size())}, at::kFloat);
    }

    at::Tensor forward(const request& r) const {
        const auto n = static_cast<std::int64_t>(r.n);
        const auto l = static_cast<std::int64_t>(seq_len);
        const auto e_c = item_emb.index_select(0, rows(r.cand_ids));
        // chronological tokens
        const auto ch_x = at::stack({at::log1p(vec(r.chrono_age).clamp_min(0)), vec(r.chrono_feats)}, 1);
        const auto ch_tok = item_emb.index_select(0, rows(r.chrono_ids)) + at::linear(ch_x, ch_w, ch_b);
        const auto ch_mask = at::from_blob(const_cast<std::uint8_t*>(r.chrono_mask.data()), {l}, at::kByte).to(at::kBool);
        // partial-order tokens
        const auto lv = at::from_blob(const_cast<std::uint32_t*>(r.po_level.data()), {l}, at::kInt)
                            .clamp(0, static_cast<std::int64_t>(cfg.n_levels) - 1).to(at::kLong);
        const auto po_x = at::stack({vec(r.po_fused), vec(r.po_rank), at::log1p(vec(r.po_age).clamp_min(0))}, 1);
        const auto po_tok = item_emb.index_select(0, rows(r.po_ids)) + level_emb.index_select(0, lv) +
                            at::linear(po_x, po_w, po_b);
        const auto po_mask = at::from_blob(const_cast<std::uint8_t*>(r.po_mask.data()), {l}, at::kByte).to(at::kBool);
        const auto lvl_c = at::from_blob(const_cast<std::uint32_t*>(r.cand_level.data()), {n}, at::kInt)
                               .clamp(0, static_cast<std::int64_t>(cfg.n_levels) - 1)
                               .to(at::kFloat)
                               .div_(static_cast<double>(cfg.n_levels - 1));
        const auto obj = at::from_blob(const_cast<float*>(r.cand_obj.data()), {static_cast<std::int64_t>(r.k), n}, at::kFloat);
        auto x = at::cat({e_c, attend(ch, e_c, ch_tok, ch_mask), attend(po, e_c, po_tok, po_mask),
                          vec(r.cand_fused).unsqueeze(1), vec(r.cand_rank).unsqueeze(1), lvl_c.unsqueeze(1), obj.t()},
                         1);
        for (const auto& [w, b] : tower) x = at::relu(at::linear(x, w, b));
        return at::linear(x, head_w, head_b);
    }
};

// Which BLAS LibTorch's GEMMs go through (Debian's libblas.so.3 is an alternative: reference BLAS or
// OpenBLAS), read from this process's mappings, so that results say what LibTorch was compared on.
std::string blas_in_use() {
    std::ifstream maps("/proc/self/maps");
    std::string found;
    for (std::string line; std::getline(maps, line);) {
        const auto slash = line.find('/');
        if (slash == std::string::npos) continue;
        const std::string path = line.substr(slash);
        if ((path.find("blas") != std::string::npos || path.find("mkl") != std::string::npos) &&
            found.find(path) == std::string::npos)
            found += (found.empty() ? "" : ", ") + path;
    }
    return found.empty() ? "none mapped" : found;
}

// What the mapped BLAS is, in a word: "openblas", "reference" (Debian's libblas3, some 20x slower on
// this model's GEMMs: not what a service deploys), "mkl", or "unknown".
std::string blas_kind(const std::string& mapped) {
    if (mapped.find("openblas") != std::string::npos) return "openblas";
    if (mapped.find("mkl") != std::string::npos) return "mkl";
    if (mapped.find("/blas/libblas.so") != std::string::npos) return "reference";
    return "unknown";
}

const bool torch_context = [] {
    at::set_num_threads(1);
    const std::string mapped = blas_in_use(), kind = blas_kind(mapped);
    benchmark::AddCustomContext("libtorch_blas", kind + " (" + mapped + ")");
    if (kind != "openblas" && kind != "mkl")
        std::fprintf(stderr, "poem: LibTorch runs on the %s BLAS: BM_model_predict_libtorch is not a deployed "
                             "LibTorch's speed (make bench puts OpenBLAS on LD_LIBRARY_PATH)\n", kind.c_str());
    const char* omp = std::getenv("OMP_NUM_THREADS");
    benchmark::AddCustomContext("OMP_NUM_THREADS", omp ? omp : "unset");
    benchmark::AddCustomContext("libtorch_threads", "at::set_num_threads(1); at::get_num_threads() = " +
                                                        std::to_string(at::get_num_threads()));
    return true;
}();

void BM_model_predict_libtorch(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    at::set_num_threads(1);
    c10::NoGradGuard no_grad;  // c10's: ATen 2.x headers no longer alias it in at::
    static const torch_model tm(bench_file());
    poem_bench::rotating<request> reqs(4, [&](std::size_t i) { return make_request(n, 100 + i); });
    {  // same outputs as poem's forward pass
        const request& r = make_request(n, 100);
        poem::workspace ws;
        const auto p = bench_model().predict(r.cand(), r.chrono(), r.po(), ws);
        const auto y = tm.forward(r).contiguous();
        double worst = 0;
        for (std::size_t i = 0; i < p.values.size(); ++i)
            worst = std::max(worst, std::abs(static_cast<double>(p.values[i] - y.data_ptr<float>()[i])));
        if (worst > 1e-4) state.SkipWithError(("LibTorch and poem disagree by " + std::to_string(worst)).c_str());
    }
    for (auto _ : state) {
        auto y = tm.forward(reqs.next());
        benchmark::DoNotOptimize(y.data_ptr<float>());
    }
    set_counters(state, bench_model().flops(n, seq_len, seq_len), n);
}
BENCHMARK(BM_model_predict_libtorch)->Arg(16)->Arg(100)->Arg(1000)->Arg(4000);
#else
const bool torch_context = [] {
    benchmark::AddCustomContext("libtorch", "not found at configure time: BM_model_predict_libtorch not built");
    return true;
}();
#endif

}  // namespace
