// fusion/: specs, fuse(), ranks and quintuples on numpy arrays.
#include "common.hpp"

#include <memory>

#include "poem/fusion/fuse.hpp"
#include "poem/fusion/learned.hpp"
#include "poem/model/learned_fusion_file.hpp"

namespace poem_py {

void bind_fusion(py::module_& m) {
    py::enum_<poem::direction>(m, "Direction")
        .value("higher_is_better", poem::direction::higher_is_better)
        .value("lower_is_better", poem::direction::lower_is_better);
    py::enum_<poem::normalization>(m, "Normalization")
        .value("rank_pct", poem::normalization::rank_pct)
        .value("min_max", poem::normalization::min_max)
        .value("z_score", poem::normalization::z_score)
        .value("log1p_min_max", poem::normalization::log1p_min_max);
    py::enum_<poem::fusion_method>(m, "FusionMethod")
        .value("weighted_rank", poem::fusion_method::weighted_rank)
        .value("reciprocal_rank", poem::fusion_method::reciprocal_rank)
        .value("weighted_value", poem::fusion_method::weighted_value)
        .value("learned", poem::fusion_method::learned);

    // Immutable once built: Python shares the C++ object (FusionConfig.learned, Model.learned_fusion).
    using learned_ptr = std::shared_ptr<poem::learned_fusion>;
    py::class_<poem::learned_fusion, learned_ptr>(
        m, "LearnedFusion",
        "A trained two-step fusion ensemble (docs/fusion.md, poem_ref.fusion.LearnedFusion): the K normalised "
        "objective values of a candidate in, one fused score in (0, 1) out. Immutable.")
        .def_static(
            "load", [](const std::filesystem::path& path) {
                return std::make_shared<poem::learned_fusion>(poem::load_learned_fusion(path.string()));
            },
            py::arg("path"),
            "Read the fusion.* tensors of a safetensors file (poem_ref.export_fusion's, or a model file carrying "
            "them); F32, F16 or BF16. Raises poem.Error naming the file and the tensor that does not fit.")
        .def_static(
            "from_tensors",
            [](const py::dict& tensors) {
                const char* names[] = {"fusion.component.weight", "fusion.component.bias", "fusion.aggregate.weight",
                                       "fusion.aggregate.bias",   "fusion.out.weight",     "fusion.out.bias",
                                       "fusion.skip.weight"};
                const int dims[] = {2, 2, 2, 1, 2, 1, 2};
                for (const auto& item : tensors) {
                    const std::string key = py::str(item.first);
                    bool known = false;
                    for (const char* n : names) known |= key == n;
                    poem::check(known, "LearnedFusion.from_tensors: unknown tensor '", poem::detail::clip(key),
                                "' (fusion.component.weight, ..., fusion.skip.weight)");
                }
                std::vector<carray<float>> a;
                for (int t = 0; t < 7; ++t) {
                    poem::check(tensors.contains(names[t]), "LearnedFusion.from_tensors: tensor '", names[t],
                                "' is missing");
                    a.push_back(float_arg<float>(tensors[names[t]], names[t], dims[t]));
                }
                const auto k = static_cast<std::size_t>(a[0].shape(0)), d = static_cast<std::size_t>(a[0].shape(1));
                const auto h = static_cast<std::size_t>(a[2].shape(0));
                poem::check(k >= 1 && k <= poem::max_objectives && d >= 1 && d <= poem::learned_fusion::max_component_dim &&
                                h >= 1 && h <= poem::learned_fusion::max_hidden,
                            "LearnedFusion.from_tensors: K = ", k, ", D = ", d, " (fusion.component.weight) and H = ", h,
                            " (fusion.aggregate.weight) must be in 1..", poem::max_objectives, ", 1..",
                            poem::learned_fusion::max_component_dim, " and 1..", poem::learned_fusion::max_hidden);
                const std::vector<std::vector<std::size_t>> shapes = {{k, d}, {k, d}, {h, k * d}, {h}, {1, h}, {1}, {1, k}};
                auto shown = [](const std::vector<std::size_t>& v) {
                    std::string out = "(";
                    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
                    return out + (v.size() == 1 ? ",)" : ")");
                };
                for (int t = 0; t < 7; ++t) {
                    const std::vector<std::size_t> got(a[t].shape(), a[t].shape() + a[t].ndim());
                    if (got != shapes[t])
                        poem::detail::fail("poem: LearnedFusion.from_tensors: tensor '", names[t], "' has shape ",
                                           shown(got), ", expected ", shown(shapes[t]), " for K = ", k, ", D = ", d,
                                           ", H = ", h);
                }
                auto vec = [&](int t) { return std::vector<float>(a[t].data(), a[t].data() + a[t].size()); };
                return std::make_shared<poem::learned_fusion>(k, d, h, vec(0), vec(1), vec(2), vec(3), vec(4), vec(5),
                                                              vec(6));
            },
            py::arg("tensors"),
            "Build from a dict of the file's tensor names (fusion.component.weight [K, D], fusion.component.bias "
            "[K, D], fusion.aggregate.weight [H, K*D], fusion.aggregate.bias [H], fusion.out.weight [1, H], "
            "fusion.out.bias [1], fusion.skip.weight [1, K]) to arrays, e.g. poem_ref.fusion.fusion_tensors(m).\n\n" FLOAT_RULE)
        .def_property_readonly("objectives", &poem::learned_fusion::objectives, "K, the objectives it fuses.")
        .def_property_readonly("component_dim", &poem::learned_fusion::component_dim, "D, components per objective.")
        .def_property_readonly("hidden", &poem::learned_fusion::hidden, "H, the aggregation's hidden units.")
        .def(
            "score",
            [](const poem::learned_fusion& self, const py::object& normalized_arg) {
                const auto x = float_arg<float>(normalized_arg, "LearnedFusion.score: normalized", 2);
                const auto v = matrix(x, "normalized");
                std::vector<float> fused(v.cols());
                {
                    py::gil_scoped_release release;
                    self.score(v, poem::span<float>(fused));
                }
                return to_numpy(std::move(fused));
            },
            py::arg("normalized"),
            "Fused scores (N,) of a K x N matrix of normalised values in [0, 1] (fuse()'s 'normalized').\n\n" FLOAT_RULE)
        .def("__eq__", [](const poem::learned_fusion& a, const poem::learned_fusion& b) { return a == b; })
        .def("__repr__", [](const poem::learned_fusion& f) {
            return "LearnedFusion(objectives=" + std::to_string(f.objectives()) + ", component_dim=" +
                   std::to_string(f.component_dim()) + ", hidden=" + std::to_string(f.hidden()) + ")";
        });

    py::class_<poem::objective_config>(m, "ObjectiveConfig")
        .def(py::init([](poem::direction d, poem::normalization n, double w) {
                 return poem::objective_config{d, n, float_field(w, "ObjectiveConfig.weight")};
             }),
             py::arg("direction") = poem::direction::higher_is_better,
             py::arg("normalization") = poem::normalization::rank_pct, py::arg("weight") = 1.0)
        .def_readwrite("direction", &poem::objective_config::dir)
        .def_readwrite("normalization", &poem::objective_config::norm)
        .def_property(
            "weight", [](const poem::objective_config& c) { return c.weight; },
            [](poem::objective_config& c, double w) { c.weight = float_field(w, "ObjectiveConfig.weight"); });

    py::class_<poem::fusion_config>(m, "FusionConfig")
        .def(py::init([](std::vector<poem::objective_config> o, poem::fusion_method method, double alpha, double beta,
                         learned_ptr learned) {
                 return poem::fusion_config{std::move(o), method, float_field(alpha, "FusionConfig.alpha"),
                                            float_field(beta, "FusionConfig.beta"), std::move(learned)};
             }),
             py::arg("objectives"), py::arg("method") = poem::fusion_method::weighted_rank, py::arg("alpha") = 1.0,
             py::arg("beta") = 60.0, py::arg("learned") = py::none(),
             "learned: the LearnedFusion that method learned scores with (None for the formulas); the objective "
             "weights are not used by method learned.")
        .def_readwrite("objectives", &poem::fusion_config::objectives)
        .def_readwrite("method", &poem::fusion_config::method)
        .def_property(
            "alpha", [](const poem::fusion_config& c) { return c.alpha; },
            [](poem::fusion_config& c, double v) { c.alpha = float_field(v, "FusionConfig.alpha"); })
        .def_property(
            "beta", [](const poem::fusion_config& c) { return c.beta; },
            [](poem::fusion_config& c, double v) { c.beta = float_field(v, "FusionConfig.beta"); })
        .def_property(
            "learned", [](const poem::fusion_config& c) { return std::const_pointer_cast<poem::learned_fusion>(c.learned); },
            [](poem::fusion_config& c, learned_ptr f) { c.learned = std::move(f); },
            "The LearnedFusion of method learned, or None.");

    py::class_<poem::workspace>(m, "Workspace").def(py::init<>()).def_property_readonly("capacity", &poem::workspace::capacity);

    // fuse(scores[K, N], spec) -> dict of numpy arrays; the result's vectors move into numpy untouched.
    m.def(
        "fuse",
        [](const py::object& scores_arg, const poem::fusion_config& spec, poem::workspace* ws) {
            const auto scores = float_arg<float>(scores_arg, "fuse: scores", 2);
            poem::workspace local;
            poem::fusion_result r;
            {
                py::gil_scoped_release release;
                poem::fuse(matrix(scores, "scores"), spec, ws ? *ws : local, r);
            }
            const auto k = static_cast<py::ssize_t>(r.k), n = static_cast<py::ssize_t>(r.n);
            py::dict out;
            out["ranks"] = to_numpy(std::move(r.ranks), {k, n});
            out["normalized"] = to_numpy(std::move(r.normalized), {k, n});
            out["fused"] = to_numpy(std::move(r.fused));
            out["fused_rank"] = to_numpy(std::move(r.fused_rank));
            out["order"] = to_numpy(std::move(r.order));
            out["nonfinite"] = to_numpy(std::move(r.nonfinite));
            out["nonfinite_count"] = r.nonfinite_count;
            out["nonfinite_scores"] = r.nonfinite_scores;
            return out;
        },
        py::arg("scores"), py::arg("spec"), py::arg("workspace") = nullptr,
        "Fuse a K x N score matrix (rows = objectives). Returns ranks, normalized, fused, fused_rank, order, "
        "nonfinite flags and counts.\n\n" FLOAT_RULE);

    m.def(
        "rank_scores",
        [](const py::object& scores, poem::direction d) {
            const auto x = float_arg<float>(scores, "rank_scores: scores", 1);
            std::vector<float> rank(static_cast<std::size_t>(x.size()));
            poem::workspace ws;
            poem::rank_scores(view(x), d, ws, poem::span<float>(rank));
            return to_numpy(std::move(rank));
        },
        py::arg("scores"), py::arg("direction") = poem::direction::higher_is_better,
        "Average ranks (0 = best) of one objective (1-D scores); non-finite scores rank last.\n\n" FLOAT_RULE);
}

}  // namespace poem_py
