#pragma once
// A randomly initialised model, built in memory as a safetensors file, for the benchmarks that need
// one (bench_model, bench_pipeline).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "poem/core/rng.hpp"
#include "poem/model/model.hpp"

namespace poem_bench {

// A safetensors file (in memory) holding a randomly initialised model of `cfg`.
inline poem::safetensors_file make_model_file(const poem::model_config& cfg, std::uint64_t seed) {
    poem::rng g(seed);
    std::vector<std::pair<std::string, std::vector<std::size_t>>> shapes = {
        {"item_emb.weight", {cfg.vocab, cfg.d}}, {"chrono_in.weight", {cfg.d, 1 + cfg.chrono_feats}},
        {"chrono_in.bias", {cfg.d}}, {"level_emb.weight", {cfg.n_levels, cfg.d}}, {"po_in.weight", {cfg.d, 3}},
        {"po_in.bias", {cfg.d}}};
    for (const char* p : {"chrono_attn", "po_attn"})
        for (const char* x : {".q", ".k", ".v"}) {
            shapes.push_back({std::string(p) + x + ".weight", {cfg.d, cfg.d}});
            shapes.push_back({std::string(p) + x + ".bias", {cfg.d}});
        }
    std::size_t w = cfg.tower_in();
    for (std::size_t i = 0; i < cfg.mlp.size(); ++i) {
        shapes.push_back({"tower." + std::to_string(2 * i) + ".weight", {cfg.mlp[i], w}});
        shapes.push_back({"tower." + std::to_string(2 * i) + ".bias", {cfg.mlp[i]}});
        w = cfg.mlp[i];
    }
    shapes.push_back({"head.weight", {cfg.outputs(), w}});
    shapes.push_back({"head.bias", {cfg.outputs()}});

    nlohmann::json header;
    std::vector<float> data;
    for (const auto& [name, shape] : shapes) {
        std::size_t n = 1;
        for (auto s : shape) n *= s;
        const float scale = shape.size() == 2 ? 1.0f / std::sqrt(static_cast<float>(shape[1])) : 0.2f;
        header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {data.size() * 4, (data.size() + n) * 4}}};
        for (std::size_t i = 0; i < n; ++i) data.push_back((g.uniform_float() * 2 - 1) * scale * 1.7f);
    }
    nlohmann::json c = {{"vocab", cfg.vocab}, {"d", cfg.d}, {"n_heads", cfg.n_heads},
                        {"n_objectives", cfg.n_objectives}, {"n_levels", cfg.n_levels},
                        {"chrono_feats", cfg.chrono_feats}, {"mlp", cfg.mlp}, {"heads", cfg.heads},
                        {"use_po", cfg.use_po}, {"version", 1}, {"hash", "splitmix64"}};
    header["__metadata__"] = {{"poem_config", c.dump()}};
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' ');
    std::vector<char> bytes(8);
    const std::uint64_t hl = h.size();
    std::memcpy(bytes.data(), &hl, 8);
    bytes.insert(bytes.end(), h.begin(), h.end());
    const char* p = reinterpret_cast<const char*>(data.data());
    bytes.insert(bytes.end(), p, p + data.size() * 4);
    return poem::safetensors_file::from_bytes(bytes.data(), bytes.size(), "bench model");
}

}  // namespace poem_bench
