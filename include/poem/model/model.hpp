#pragma once
// The POEM model's forward pass: the C++ twin of python/poem_ref/model.py (docs/model.md).
//
//   const poem::model m = poem::model::load("poem.safetensors");   // immutable, share across threads
//   (poem::model::load(path, {poem::precision::bf16}): the tower in bf16, see model_options)
//   poem::workspace ws;                                             // one per thread
//   poem::prediction p = m.predict(candidates, chrono, po, ws);      // N rows x heads
//
// One call scores the N candidates of a request together: the sequences' keys and values are computed
// once, the attention over them is two GEMMs (N x d_head x L, N x L x d_head) per head, and the tower
// is one GEMM per layer (N x in -> 256 -> 128 -> 64 -> heads), all through the register-blocked kernel
// of detail/gemm.hpp with the weights packed at load. All scratch lives in the caller's workspace
// (scoped: released when each call returns), so `predict` is const and thread-safe.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "poem/core/error.hpp"
#include "poem/core/prefetch.hpp"
#include "poem/core/span.hpp"
#include "poem/core/rng.hpp"
#include "poem/core/workspace.hpp"
#include "poem/model/detail/kernels.hpp"
#include "poem/model/detail/json_guard.hpp"
#include "poem/model/learned_fusion_file.hpp"
#include "poem/model/safetensors.hpp"

namespace poem {

struct model_config;
void validate(const model_config& c);

// The arithmetic of the tower and heads (their weights are packed for it at load).
//   fp32: fp32 weights and products, within 1e-5 of PyTorch float32 (the default).
//   bf16: weights and each layer's inputs rounded to bfloat16, products summed in fp32 in vdpbf16ps's
//         order (model/detail/gemm_bf16.hpp: the same bits from every SIMD target but amx, whose AMX
//         tiles sum in their own order, model/detail/gemm_amx.hpp). The attention stays fp32.
//         docs/model.md gives the accuracy measured against fp32 and the speed.
enum class precision { fp32, bf16 };

inline const char* to_string(precision p) noexcept { return p == precision::bf16 ? "bf16" : "fp32"; }

// "fp32" or "bf16"; anything else throws poem::error naming the value.
inline precision precision_from_string(const std::string& name) {
    if (name == "fp32") return precision::fp32;
    if (name == "bf16") return precision::bf16;
    detail::fail("poem: precision \"", detail::clip(name), "\" is not one of \"fp32\", \"bf16\"");
}

// How a model is loaded.
struct model_options {
    poem::precision precision = poem::precision::fp32;
};

// The model's shape, stored as JSON under the safetensors metadata key "poem_config".
struct model_config {
    std::size_t vocab = 100000;
    std::size_t d = 32;
    std::size_t n_heads = 1;
    std::size_t n_objectives = 4;
    std::size_t n_levels = 8;
    std::size_t chrono_feats = 1;
    std::vector<std::size_t> mlp{256, 128, 64};
    std::vector<std::string> heads{"long_view", "click", "watch_time"};
    bool use_po = true;

    static constexpr const char* metadata_key = "poem_config";
    static constexpr std::size_t max_width = 1u << 16;  // any one dimension, a sanity bound

    std::size_t d_head() const noexcept { return d / n_heads; }
    std::size_t tower_in() const noexcept { return d * (use_po ? 3 : 2) + 3 + n_objectives; }
    std::size_t outputs() const noexcept { return heads.size(); }

    // Parses and validates; every error names the field (`source` names the file).
    static model_config from_json(const std::string& text, const std::string& source = "<config>") {
        using nlohmann::json;
        auto bad = [&](auto&&... parts) { detail::fail("poem: model config in '", source, "': ", parts...); };
        // An object of fields and arrays of values (mlp, heads): nothing deeper, no key twice.
        detail::json_guard::check(text, 2, "model config in '" + source + "'");
        json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded() || !j.is_object()) bad("not a JSON object");
        model_config c;
        auto size_field = [&](const char* key, std::size_t& out, std::size_t lo, std::size_t hi) {
            const auto it = j.find(key);
            if (it == j.end()) bad("field '", key, "' is missing");
            if (!it->is_number_unsigned()) bad("field '", key, "' is not a non-negative integer");
            const auto v = it->get<std::uint64_t>();
            if (v < lo || v > hi) bad("field '", key, "' = ", v, " is outside [", lo, ", ", hi, "]");
            out = static_cast<std::size_t>(v);
        };
        size_field("vocab", c.vocab, 1, std::size_t(1) << 40);
        size_field("d", c.d, 1, max_width);
        size_field("n_heads", c.n_heads, 1, max_width);
        size_field("n_objectives", c.n_objectives, 0, max_width);
        size_field("n_levels", c.n_levels, 2, max_width);
        size_field("chrono_feats", c.chrono_feats, 0, max_width);
        if (c.d % c.n_heads != 0) bad("d = ", c.d, " is not a multiple of n_heads = ", c.n_heads);
        const auto mlp = j.find("mlp");
        if (mlp == j.end() || !mlp->is_array() || mlp->empty()) bad("field 'mlp' is not a non-empty array");
        c.mlp.clear();
        for (const auto& w : *mlp) {
            if (!w.is_number_unsigned() || w.get<std::uint64_t>() < 1 || w.get<std::uint64_t>() > max_width)
                bad("field 'mlp' holds ", detail::clip(w.dump()), ", not a width in [1, ", max_width, "]");
            c.mlp.push_back(w.get<std::size_t>());
        }
        const auto heads = j.find("heads");
        if (heads == j.end() || !heads->is_array() || heads->empty() || heads->size() > max_width)
            bad("field 'heads' is not a non-empty array");
        c.heads.clear();
        for (const auto& h : *heads) {
            if (!h.is_string()) bad("field 'heads' holds ", detail::clip(h.dump()), ", not a name");
            c.heads.push_back(h.get<std::string>());
        }
        const auto po = j.find("use_po");
        if (po == j.end() || !po->is_boolean()) bad("field 'use_po' is not a boolean");
        c.use_po = po->get<bool>();
        const auto version = j.find("version");
        if (version != j.end() && !(version->is_number_unsigned() && version->get<std::uint64_t>() == 1))
            bad("field 'version' = ", detail::clip(version->dump()), " is not 1, the version this reader knows");
        const auto hash = j.find("hash");
        if (hash != j.end() && !(hash->is_string() && hash->get<std::string>() == "splitmix64"))
            bad("field 'hash' = ", detail::clip(hash->dump()), " is not \"splitmix64\"");
        validate(c);
        return c;
    }
};

// Throws poem::error naming the field unless the shape is one the forward pass can run (the checks of
// from_json, for a config built in code).
inline void validate(const model_config& c) {
    constexpr std::size_t w = model_config::max_width;
    check(c.vocab >= 1 && c.vocab <= (std::size_t(1) << 40), "model_config.vocab = ", c.vocab, " is outside [1, 2^40]");
    check(c.d >= 1 && c.d <= w, "model_config.d = ", c.d, " is outside [1, ", w, "]");
    check(c.n_heads >= 1 && c.n_heads <= w && c.d % c.n_heads == 0, "model_config.n_heads = ", c.n_heads,
          " does not divide d = ", c.d);
    check(c.n_objectives <= w, "model_config.n_objectives = ", c.n_objectives, " > ", w);
    check(c.n_levels >= 2 && c.n_levels <= w, "model_config.n_levels = ", c.n_levels, " is outside [2, ", w, "]");
    check(c.chrono_feats <= w, "model_config.chrono_feats = ", c.chrono_feats, " > ", w);
    check(!c.mlp.empty() && c.mlp.size() <= 64, "model_config.mlp must hold 1 to 64 widths, holds ", c.mlp.size());
    for (std::size_t i = 0; i < c.mlp.size(); ++i)
        check(c.mlp[i] >= 1 && c.mlp[i] <= w, "model_config.mlp[", i, "] = ", c.mlp[i], " is outside [1, ", w, "]");
    check(!c.heads.empty() && c.heads.size() <= w, "model_config.heads must hold 1 to ", w, " names");
}

// The embedding row of a 64-bit item id: SplitMix64's finaliser, then modulo vocab (as in Python).
inline std::uint64_t hash_row(std::uint64_t id, std::uint64_t vocab) noexcept { return mix64(id) % vocab; }

// The N candidates of a request (all spans of N; objectives K x N, objectives as rows).
struct candidate_view {
    span<const std::uint64_t> item_id;
    span<const float> fused_score;
    span<const float> rank_pct;
    span<const std::uint32_t> level;
    matrix_view<const float> objectives;  // normalised objective scores, K x N
    std::size_t size() const noexcept { return item_id.size(); }
};

// The chronological sequence: L tokens (features L x F, a row per token); mask 0 = padding.
struct chrono_view {
    span<const std::uint64_t> item_id;
    span<const float> age_seconds;
    matrix_view<const float> features;
    span<const std::uint8_t> mask;
    std::size_t size() const noexcept { return item_id.size(); }
};

// The partial-order sequence: L quintuple tokens with their age; mask 0 = padding.
struct po_view {
    span<const std::uint64_t> item_id;
    span<const float> fused_score;
    span<const float> rank_pct;
    span<const std::uint32_t> level;
    span<const float> age_seconds;
    span<const std::uint8_t> mask;
    std::size_t size() const noexcept { return item_id.size(); }
};

// Every head's output for every candidate: rows = candidates, cols = heads (config().heads order).
struct prediction {
    std::size_t rows = 0, cols = 0;
    std::vector<float> values;  // rows x cols, row-major
    float operator()(std::size_t r, std::size_t c) const noexcept { return values[r * cols + c]; }
    span<const float> row(std::size_t r) const noexcept { return {values.data() + r * cols, cols}; }
};

class model {
public:
    static model load(const std::string& path, const model_options& options = {}) {
        return from_file(safetensors_file::open(path), options);
    }

    static model from_file(const safetensors_file& f, const model_options& options = {}) {
        const auto& meta = f.metadata();
        const auto it = meta.find(model_config::metadata_key);
        check(it != meta.end(), "model '", f.source(), "': no '", model_config::metadata_key,
              "' entry in the safetensors __metadata__");
        model m;
        m.cfg_ = model_config::from_json(it->second, f.source());
        m.metadata_ = meta;
        m.source_ = f.source();
        m.precision_ = options.precision;
        check(m.precision_ == precision::fp32 || m.precision_ == precision::bf16, "model '", f.source(),
              "': model_options.precision = ", static_cast<int>(m.precision_), " is not fp32 or bf16");
        const model_config& c = m.cfg_;
        const std::size_t d = c.d;

        // Every tensor the config needs, with its shape, before anything is converted.
        std::vector<std::pair<std::string, std::vector<std::size_t>>> need = {
            {"item_emb.weight", {c.vocab, d}}, {"chrono_in.weight", {d, 1 + c.chrono_feats}},
            {"chrono_in.bias", {d}}};
        auto attn = [&](const std::string& p) {
            for (const char* x : {".q", ".k", ".v"}) {
                need.push_back({p + x + ".weight", {d, d}});
                need.push_back({p + x + ".bias", {d}});
            }
        };
        attn("chrono_attn");
        if (c.use_po) {
            need.push_back({"level_emb.weight", {c.n_levels, d}});
            need.push_back({"po_in.weight", {d, 3}});
            need.push_back({"po_in.bias", {d}});
            attn("po_attn");
        }
        std::size_t width = c.tower_in();
        for (std::size_t i = 0; i < c.mlp.size(); ++i) {
            need.push_back({"tower." + std::to_string(2 * i) + ".weight", {c.mlp[i], width}});
            need.push_back({"tower." + std::to_string(2 * i) + ".bias", {c.mlp[i]}});
            width = c.mlp[i];
        }
        need.push_back({"head.weight", {c.outputs(), width}});
        need.push_back({"head.bias", {c.outputs()}});
        for (const auto& [name, shape] : need) {
            const st_tensor* t = f.find(name);
            check(t != nullptr, "model '", f.source(), "': tensor '", name, "' is missing");
            check(t->shape == shape, "model '", f.source(), "': tensor '", name, "' has shape ",
                  shape_string(t->shape), ", the config needs ", shape_string(shape));
        }

        m.item_emb_ = f.to_f32("item_emb.weight");
        m.chrono_.in_w = f.to_f32("chrono_in.weight");
        m.chrono_.in_b = f.to_f32("chrono_in.bias");
        m.chrono_.load(f, "chrono_attn", d);
        if (c.use_po) {
            m.level_emb_ = f.to_f32("level_emb.weight");
            m.po_.in_w = f.to_f32("po_in.weight");
            m.po_.in_b = f.to_f32("po_in.bias");
            m.po_.load(f, "po_attn", d);
        }
        width = c.tower_in();
        for (std::size_t i = 0; i < c.mlp.size(); ++i) {
            m.tower_.push_back(linear(f, "tower." + std::to_string(2 * i), c.mlp[i], width, m.precision_));
            width = c.mlp[i];
        }
        m.head_ = linear(f, "head", c.outputs(), width, m.precision_);
        if (has_learned_fusion(f)) m.fusion_ = std::make_shared<const poem::learned_fusion>(learned_fusion_from(f));
        return m;
    }

    const model_config& config() const noexcept { return cfg_; }
    // The file's safetensors __metadata__ (string -> string): the config, the serving config, provenance.
    const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
    // Where the model came from (the file's path), for messages.
    const std::string& source() const noexcept { return source_; }
    std::size_t outputs() const noexcept { return cfg_.outputs(); }
    // The tower's arithmetic, as loaded (model_options).
    poem::precision precision() const noexcept { return precision_; }
    // The learned fusion ensemble the file carries beside the model (fusion.* tensors), or null.
    const std::shared_ptr<const poem::learned_fusion>& learned_fusion() const noexcept { return fusion_; }

    // Scores the candidates into `out` (N x outputs(), any row stride via matrix_view's cols = outputs()).
    // Throws poem::error when a view's size disagrees with the others or with the config.
    void predict(const candidate_view& cand, const chrono_view& chrono, const po_view& po, workspace& ws,
                 matrix_view<float> out) const {
        const model_config& c = cfg_;
        const std::size_t n = cand.size();
        check_inputs(cand, chrono, po);
        check(out.rows() == n && out.cols() == c.outputs(), "model: output is ", out.rows(), " x ", out.cols(),
              ", expected ", n, " x ", c.outputs());
        if (n == 0) return;
        const std::size_t d = c.d;
        const std::size_t ldx = round_up(c.tower_in(), 16);
        auto scope = ws.scope();

        // Chronological tokens: item embedding + W (log1p(age), features) + b; their keys and values.
        packed_sequence seq_c, seq_p;
        {
            const std::size_t lv = valid_count(chrono.mask);
            seq_c = alloc_sequence(lv, scope);
            auto inner = ws.scope();
            const std::uint32_t* idx = compact(chrono.mask, inner);
            float* t = inner.alloc<float>(lv * d + 1).data();
            const std::size_t nf = 1 + c.chrono_feats;
            for (std::size_t r = 0; r < lv; ++r) {
                const std::size_t s = idx[r];
                float* tok = t + r * d;
                const float* e = item_emb_.data() + hash_row(chrono.item_id[s], c.vocab) * d;
                const float la = log_age(chrono.age_seconds[s]);
                for (std::size_t j = 0; j < d; ++j) {
                    const float* w = chrono_.in_w.data() + j * nf;
                    float acc = chrono_.in_b[j] + w[0] * la;
                    for (std::size_t f = 1; f < nf; ++f) acc += w[f] * chrono.features(s, f - 1);
                    tok[j] = e[j] + acc;
                }
            }
            pack_sequence(chrono_, t, seq_c, ws);
        }
        // Partial-order tokens: item + level embedding + W (fused, rank_pct, log1p(age)) + b.
        if (c.use_po) {
            const std::size_t lv = valid_count(po.mask);
            seq_p = alloc_sequence(lv, scope);
            auto inner = ws.scope();
            const std::uint32_t* idx = compact(po.mask, inner);
            float* t = inner.alloc<float>(lv * d + 1).data();
            for (std::size_t r = 0; r < lv; ++r) {
                const std::size_t s = idx[r];
                float* tok = t + r * d;
                const float* e = item_emb_.data() + hash_row(po.item_id[s], c.vocab) * d;
                const float* le = level_emb_.data() + level_of(po.level[s]) * d;
                const float f0 = po.fused_score[s], f1 = po.rank_pct[s], f2 = log_age(po.age_seconds[s]);
                for (std::size_t j = 0; j < d; ++j) {
                    const float* w = po_.in_w.data() + j * 3;
                    tok[j] = e[j] + le[j] + (po_.in_b[j] + w[0] * f0 + w[1] * f1 + w[2] * f2);
                }
            }
            pack_sequence(po_, t, seq_p, ws);
        }
        // The attention GEMMs' bias: zeros as wide as their widest B.
        const std::size_t zeros = round_up(std::max({seq_c.lv, seq_p.lv, c.d_head(), std::size_t(1)}), detail::panel_width);
        float* zero = scope.alloc<float>(zeros).data();
        std::fill_n(zero, zeros, 0.0f);

        // The candidates in chunks of rows, each through the attention and the tower before the next,
        // so that the tower input, the attention scores and the activations stay in L2.
        const std::size_t rows_max = std::min(n, chunk_rows);
        float* x = scope.alloc<float>(rows_max * ldx).data();
        const std::size_t dense = d * (c.use_po ? 3 : 2);
        const float level_scale = 1.0f / static_cast<float>(c.n_levels - 1);
        for (std::size_t i0 = 0; i0 < n; i0 += rows_max) {
            const std::size_t rows = std::min(rows_max, n - i0);
            // Candidate embeddings (the attention queries' input) and dense features, in the tower input.
            for (std::size_t r = 0; r < rows; ++r) {
                const std::size_t i = i0 + r;
                float* row = x + r * ldx;
                std::memcpy(row, item_emb_.data() + hash_row(cand.item_id[i], c.vocab) * d, d * sizeof(float));
                row[dense + 0] = cand.fused_score[i];
                row[dense + 1] = cand.rank_pct[i];
                row[dense + 2] = static_cast<float>(level_of(cand.level[i])) * level_scale;
                for (std::size_t k = 0; k < c.n_objectives; ++k) row[dense + 3 + k] = cand.objectives(k, i);
            }
            attend(chrono_, seq_c, zero, x, ldx, d, rows, ws);
            if (c.use_po) attend(po_, seq_p, zero, x, ldx, 2 * d, rows, ws);
            tower_layers(x, ldx, rows, ws, out.data() + i0 * out.cols(), out.cols());
        }
    }

    prediction predict(const candidate_view& cand, const chrono_view& chrono, const po_view& po,
                       workspace& ws) const {
        prediction p;
        p.rows = cand.size();
        p.cols = outputs();
        p.values.resize(p.rows * p.cols);
        predict(cand, chrono, po, ws, matrix_view<float>(p.values.data(), p.rows, p.cols));
        return p;
    }

    // The tower and heads alone on a prepared input (N x tower_in, rows `ld` apart): for benchmarks.
    void tower(const float* x, std::size_t ld, std::size_t n, workspace& ws, matrix_view<float> out) const {
        check(ld >= cfg_.tower_in(), "model: tower input stride ", ld, " < tower_in ", cfg_.tower_in());
        check(out.rows() == n && out.cols() == outputs(), "model: tower output is ", out.rows(), " x ",
              out.cols(), ", expected ", n, " x ", outputs());
        if (n) tower_layers(x, ld, n, ws, out.data(), out.cols());
    }

    // Floating-point operations of one predict (multiply-adds count 2) with lc / lp valid tokens.
    double flops(std::size_t n, std::size_t lc, std::size_t lp) const noexcept {
        const double d = static_cast<double>(cfg_.d), nn = static_cast<double>(n);
        auto seq = [&](double l) { return l > 0 ? 2 * nn * d * d + 4 * l * d * d + 4 * nn * l * d : 0.0; };
        return seq(static_cast<double>(lc)) + (cfg_.use_po ? seq(static_cast<double>(lp)) : 0.0) + tower_flops(n);
    }
    double tower_flops(std::size_t n) const noexcept {
        double f = 0;
        std::size_t w = cfg_.tower_in();
        for (std::size_t h : cfg_.mlp) {
            f += 2.0 * static_cast<double>(n) * static_cast<double>(w * h);
            w = h;
        }
        return f + 2.0 * static_cast<double>(n) * static_cast<double>(w * outputs());
    }

private:
    // A Linear layer's weights, packed for the precision it runs in (the other stays empty).
    struct linear {
        detail::packed_b w;
        detail::packed_bf16 w16;
        linear() = default;
        linear(const safetensors_file& f, const std::string& p, std::size_t out, std::size_t in,
               poem::precision prec = poem::precision::fp32) {
            const auto wt = f.to_f32(p + ".weight");
            const auto bt = f.to_f32(p + ".bias");
            if (prec == poem::precision::bf16) w16 = detail::packed_bf16(wt.data(), bt.data(), out, in);
            else w = detail::packed_b(wt.data(), bt.data(), out, in);
        }
        // out = in * W^T + b (ReLU if asked), in fp32 (bf16 layers run as one chain: tower_layers).
        void apply(std::size_t rows, const float* in, std::size_t ld, bool relu, float* out,
                   std::size_t ldo) const noexcept {
            detail::gemm(rows, in, ld, w.view(), relu, out, ldo);
        }
    };
    struct sequence_branch {
        std::vector<float> in_w, in_b;
        linear q, k, v;
        void load(const safetensors_file& f, const std::string& p, std::size_t d) {
            q = linear(f, p + ".q", d, d);
            k = linear(f, p + ".k", d, d);
            v = linear(f, p + ".v", d, d);
        }
    };

    static std::size_t round_up(std::size_t n, std::size_t m) noexcept { return (n + m - 1) / m * m; }
    std::size_t level_of(std::uint32_t level) const noexcept {
        return std::min<std::size_t>(level, cfg_.n_levels - 1);
    }
    // log1p of the age, negative (and NaN) ages taken as 0.
    static float log_age(float age) noexcept { return std::log1p(age > 0.0f ? age : 0.0f); }

    static constexpr std::size_t max_rows = std::size_t(1) << 24;
    // Candidates per pass through the attention and the tower: a multiple of every target's micro-kernel
    // rows (6, 12); the tower input, scores and activations of 96 rows take about 250 KB.
    static constexpr std::size_t chunk_rows = 96;

    void check_inputs(const candidate_view& cand, const chrono_view& chrono, const po_view& po) const {
        const std::size_t n = cand.size();
        // Bounds that keep every scratch size (rows x widths up to max_width) far from overflowing.
        check(n <= max_rows, "model: ", n, " candidates, at most ", max_rows);
        check(chrono.size() <= max_rows && po.size() <= max_rows, "model: sequences of ", chrono.size(), " and ",
              po.size(), " tokens, at most ", max_rows);
        check_size(cand.fused_score, n, "candidates.fused_score");
        check_size(cand.rank_pct, n, "candidates.rank_pct");
        check_size(cand.level, n, "candidates.level");
        check(cand.objectives.rows() == cfg_.n_objectives && cand.objectives.cols() == n,
              "candidates.objectives: expected ", cfg_.n_objectives, " x ", n, ", got ", cand.objectives.rows(),
              " x ", cand.objectives.cols());
        const std::size_t lc = chrono.size();
        check_size(chrono.age_seconds, lc, "chrono.age_seconds");
        check_size(chrono.mask, lc, "chrono.mask");
        check(cfg_.chrono_feats == 0 || (chrono.features.rows() == lc && chrono.features.cols() == cfg_.chrono_feats),
              "chrono.features: expected ", lc, " x ", cfg_.chrono_feats, ", got ", chrono.features.rows(), " x ",
              chrono.features.cols());
        if (cfg_.use_po) {
            const std::size_t lp = po.size();
            check_size(po.fused_score, lp, "po.fused_score");
            check_size(po.rank_pct, lp, "po.rank_pct");
            check_size(po.level, lp, "po.level");
            check_size(po.age_seconds, lp, "po.age_seconds");
            check_size(po.mask, lp, "po.mask");
        }
        // The non-finite policy: a NaN or infinity in an input the model reads is refused, naming the
        // first one (a finite, meaningless score would be served otherwise). Padding is not read.
        auto finite = [](float x, const char* what, std::size_t row, const char* col, std::size_t k = ~std::size_t(0)) {
            if (std::isfinite(x)) return;
            if (k == ~std::size_t(0)) detail::fail("poem: model: ", what, " ", row, " has a non-finite ", col, " (", x, ")");
            detail::fail("poem: model: ", what, " ", row, " has a non-finite ", col, "[", k, "] (", x, ")");
        };
        for (std::size_t i = 0; i < n; ++i) {
            finite(cand.fused_score[i], "candidate", i, "fused_score");
            finite(cand.rank_pct[i], "candidate", i, "rank_pct");
        }
        for (std::size_t k = 0; k < cfg_.n_objectives; ++k)
            for (std::size_t i = 0; i < n; ++i) finite(cand.objectives(k, i), "candidate", i, "objectives", k);
        for (std::size_t t = 0; t < lc; ++t) {
            if (!chrono.mask[t]) continue;
            finite(chrono.age_seconds[t], "chronological token", t, "age_seconds");
            for (std::size_t f = 0; f < cfg_.chrono_feats; ++f) finite(chrono.features(t, f), "chronological token", t, "features", f);
        }
        if (cfg_.use_po)
            for (std::size_t t = 0; t < po.size(); ++t) {
                if (!po.mask[t]) continue;
                finite(po.fused_score[t], "partial-order token", t, "fused_score");
                finite(po.rank_pct[t], "partial-order token", t, "rank_pct");
                finite(po.age_seconds[t], "partial-order token", t, "age_seconds");
            }
    }

    // Positions of the valid tokens, in order (valid_count of them), in memory of `scope`.
    static const std::uint32_t* compact(span<const std::uint8_t> mask, workspace_scope& scope) {
        std::uint32_t* idx = scope.alloc<std::uint32_t>(mask.size() + 1).data();
        std::size_t lv = 0;
        for (std::size_t i = 0; i < mask.size(); ++i)
            if (mask[i]) idx[lv++] = static_cast<std::uint32_t>(i);
        return idx;
    }
    static std::size_t valid_count(span<const std::uint8_t> mask) noexcept {
        std::size_t lv = 0;
        for (auto m : mask) lv += m != 0;
        return lv;
    }

    // The keys and values of a sequence's lv valid tokens, per head packed as the attention GEMMs' B:
    // k holds n_heads blocks of packed_size(dh, lv) (K^T / sqrt(dh)), v n_heads of packed_size(lv, dh).
    struct packed_sequence {
        float* k = nullptr;
        float* v = nullptr;
        std::size_t lv = 0;
    };
    packed_sequence alloc_sequence(std::size_t lv, workspace_scope& scope) const {
        const std::size_t dh = cfg_.d_head(), h = cfg_.n_heads;
        packed_sequence p;
        p.lv = lv;
        p.k = scope.alloc<float>(h * detail::packed_size(dh, lv) + 1).data();
        p.v = scope.alloc<float>(h * detail::packed_size(lv, dh) + 1).data();
        return p;
    }
    // Fills p from the tokens (p.lv x d).
    void pack_sequence(const sequence_branch& br, const float* tokens, const packed_sequence& p, workspace& ws) const {
        const std::size_t d = cfg_.d, dh = cfg_.d_head(), lv = p.lv;
        if (lv == 0) return;
        auto scope = ws.scope();
        float* km = scope.alloc<float>(lv * d).data();
        float* vm = scope.alloc<float>(lv * d).data();
        detail::gemm(lv, tokens, d, br.k.w.view(), false, km, d);
        detail::gemm(lv, tokens, d, br.v.w.view(), false, vm, d);
        const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
        for (std::size_t h = 0; h < cfg_.n_heads; ++h) {
            // B(k, j) = K[j][h*dh + k] / sqrt(dh); B(k, j) = V[k][h*dh + j]
            detail::pack_b(km + h * dh, 1, d, dh, lv, p.k + h * detail::packed_size(dh, lv), scale);
            detail::pack_b(vm + h * dh, d, 1, lv, dh, p.v + h * detail::packed_size(lv, dh));
        }
    }

    // Target attention of n candidates (their embeddings in x's first d columns) over a packed sequence:
    // writes softmax(q k^T / sqrt(dh)) v, per head, into x's columns [col, col + d). `zero`: bias zeros
    // as wide as the sequence and d_head, rounded up to panels.
    void attend(const sequence_branch& br, const packed_sequence& seq, const float* zero, float* x, std::size_t ldx,
                std::size_t col, std::size_t n, workspace& ws) const {
        const std::size_t d = cfg_.d, lv = seq.lv;
        float* out_cols = x + col;
        if (lv == 0) {
            for (std::size_t i = 0; i < n; ++i) std::fill_n(out_cols + i * ldx, d, 0.0f);
            return;
        }
        const std::size_t nr = detail::panel_width;
        const std::size_t dh = cfg_.d_head();
        auto scope = ws.scope();
        float* q = scope.alloc<float>(n * d).data();
        detail::gemm(n, x, ldx, br.q.w.view(), false, q, d);
        const std::size_t lds = round_up(lv, nr);
        float* s = scope.alloc<float>(n * lds).data();
        float* inv_sum = scope.alloc<float>(n).data();
        for (std::size_t h = 0; h < cfg_.n_heads; ++h) {
            const detail::packed_view kt{seq.k + h * detail::packed_size(dh, lv), zero, dh, lv, nr};
            const detail::packed_view v{seq.v + h * detail::packed_size(lv, dh), zero, lv, dh, nr};
            detail::gemm(n, q + h * dh, d, kt, false, s, lds, true);
            detail::softmax_rows(s, n, lv, lds, inv_sum);  // exp(s - max); 1 / sum applied by the next GEMM
            detail::gemm(n, s, lds, v, detail::epilogue(false, inv_sum), out_cols + h * dh, ldx);
        }
    }

    // The tower and heads on n rows of x, in chunks of chunk_rows (the activations stay in L2).
    void tower_layers(const float* x, std::size_t ldx, std::size_t n, workspace& ws, float* out, std::size_t ldo) const {
        std::size_t widest = 0;
        for (std::size_t w : cfg_.mlp) widest = std::max(widest, w);
        const std::size_t rows_max = std::min(n, chunk_rows);
        auto scope = ws.scope();
        if (precision_ == poem::precision::bf16) {  // one chain of bf16 layers (gemm_bf16.hpp)
            const std::size_t count = tower_.size() + 1;
            detail::packed_bf16_view* layers = scope.alloc<detail::packed_bf16_view>(count).data();
            for (std::size_t i = 0; i < count; ++i)
                new (layers + i) detail::packed_bf16_view((i < tower_.size() ? tower_[i] : head_).w16.view());
            float* scratch = scope.alloc<float>(detail::bf16_chain_scratch_size(rows_max, layers, count)).data();
            for (std::size_t i0 = 0; i0 < n; i0 += rows_max) {
                // The next chunk's rows, asked for before this chunk's layers: a caller's x beyond L2
                // would otherwise make the chain's rounding wait on each of its lines (the fp32 tower
                // measured neither gain nor loss from it, so it goes without).
                if (const std::size_t next = i0 + rows_max; next < n)
                    detail::prefetch_l2(x + next * ldx,
                                        ((std::min(rows_max, n - next) - 1) * ldx + cfg_.tower_in()) * sizeof(float));
                detail::gemm_bf16_chain(std::min(rows_max, n - i0), x + i0 * ldx, ldx, layers, count, out + i0 * ldo,
                                        ldo, scratch);
            }
            return;
        }
        float* ping_pong[2] = {scope.alloc<float>(rows_max * widest).data(), scope.alloc<float>(rows_max * widest).data()};
        for (std::size_t i0 = 0; i0 < n; i0 += rows_max) {
            const std::size_t rows = std::min(rows_max, n - i0);
            const float* in = x + i0 * ldx;
            std::size_t ld = ldx;
            for (std::size_t i = 0; i < tower_.size(); ++i) {
                const std::size_t w = cfg_.mlp[i];
                float* h = ping_pong[i % 2];
                tower_[i].apply(rows, in, ld, true, h, w);
                in = h;
                ld = w;
            }
            // The heads straight into the caller's rows (one micro-kernel column block, trimmed).
            head_.apply(rows, in, ld, false, out + i0 * ldo, ldo);
        }
    }

    model_config cfg_;
    std::map<std::string, std::string> metadata_;
    std::string source_;
    poem::precision precision_ = poem::precision::fp32;
    std::shared_ptr<const poem::learned_fusion> fusion_;
    std::vector<float> item_emb_, level_emb_;
    sequence_branch chrono_, po_;
    std::vector<linear> tower_;
    linear head_;
};

}  // namespace poem
