#pragma once
// Reading a learned fusion ensemble (fusion/learned.hpp) from safetensors: a file of its own written by
// python/poem_ref's export_fusion, or a model file that carries the same tensors beside the model's.
//
// Tensors (F32, F16 or BF16): fusion.component.weight [K, D], fusion.component.bias [K, D],
// fusion.aggregate.weight [H, K*D], fusion.aggregate.bias [H], fusion.out.weight [1, H], fusion.out.bias [1],
// fusion.skip.weight [1, K]. Metadata "poem_fusion", when present, is {"version": 1, ...}; any other
// version is refused. Every error names the file and the tensor.

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "poem/core/error.hpp"
#include "poem/fusion/learned.hpp"
#include "poem/model/detail/json_guard.hpp"
#include "poem/model/safetensors.hpp"

namespace poem {

inline constexpr const char* learned_fusion_metadata_key = "poem_fusion";
inline constexpr const char* learned_fusion_prefix = "fusion.";

// Whether the file holds any fusion.* tensor.
inline bool has_learned_fusion(const safetensors_file& f) {
    for (const st_tensor& t : f.tensors())
        if (t.name.rfind(learned_fusion_prefix, 0) == 0) return true;
    return false;
}

inline learned_fusion learned_fusion_from(const safetensors_file& f) {
    const std::string& src = f.source();
    const auto meta = f.metadata().find(learned_fusion_metadata_key);
    if (meta != f.metadata().end()) {
        const std::string where = "learned fusion '" + src + "': metadata '" + learned_fusion_metadata_key + "'";
        detail::json_guard::check(meta->second, 1, where);
        const nlohmann::json j = nlohmann::json::parse(meta->second, nullptr, /*allow_exceptions=*/false);
        check(!j.is_discarded() && j.is_object(), where, " is not a JSON object");
        const auto v = j.find("version");
        check(v != j.end() && v->is_number_unsigned() && v->get<std::uint64_t>() == 1, where, ": version ",
              v == j.end() ? std::string("missing") : detail::clip(v->dump()), ", this reader knows 1");
    }
    auto tensor = [&](const char* name) -> const st_tensor& {
        const std::string full = std::string(learned_fusion_prefix) + name;
        const st_tensor* t = f.find(full);
        check(t != nullptr, "learned fusion '", src, "': tensor '", full, "' is missing");
        return *t;
    };
    const st_tensor& cw = tensor("component.weight");
    check(cw.shape.size() == 2, "learned fusion '", src, "': tensor 'fusion.component.weight' has shape ", shape_string(cw.shape),
          ", expected [K, D]");
    const st_tensor& aw = tensor("aggregate.weight");
    check(aw.shape.size() == 2, "learned fusion '", src, "': tensor 'fusion.aggregate.weight' has shape ", shape_string(aw.shape),
          ", expected [H, K*D]");
    const std::size_t k = cw.shape[0], d = cw.shape[1], h = aw.shape[0];
    check(k >= 1 && k <= max_objectives && d >= 1 && d <= learned_fusion::max_component_dim, "learned fusion '", src,
          "': tensor 'fusion.component.weight' has shape ", shape_string(cw.shape), ", K in 1..", max_objectives, " and D in 1..",
          learned_fusion::max_component_dim, " expected");
    check(h >= 1 && h <= learned_fusion::max_hidden, "learned fusion '", src, "': tensor 'fusion.aggregate.weight' has shape ",
          shape_string(aw.shape), ", H in 1..", learned_fusion::max_hidden, " expected");
    const std::vector<std::pair<const char*, std::vector<std::size_t>>> need = {
        {"component.bias", {k, d}}, {"aggregate.weight", {h, k * d}}, {"aggregate.bias", {h}},
        {"out.weight", {1, h}},     {"out.bias", {1}},                {"skip.weight", {1, k}}};
    for (const auto& [name, shape] : need) {
        const st_tensor& t = tensor(name);
        check(t.shape == shape, "learned fusion '", src, "': tensor 'fusion.", name, "' has shape ", shape_string(t.shape),
              ", expected ", shape_string(shape), " (K = ", k, ", D = ", d, ", H = ", h, " from fusion.component.weight and "
              "fusion.aggregate.weight)");
    }
    // to_f32 names the file and the tensor of a non-finite weight.
    auto values = [&](const char* name) { return f.to_f32(tensor(name)); };
    return learned_fusion(k, d, h, values("component.weight"), values("component.bias"), values("aggregate.weight"),
                          values("aggregate.bias"), values("out.weight"), values("out.bias"), values("skip.weight"));
}

inline learned_fusion load_learned_fusion(const std::string& path) {
    return learned_fusion_from(safetensors_file::open(path));
}

}  // namespace poem
