// fusion/: specs, fuse(), ranks and quintuples on numpy arrays.
#include "common.hpp"

#include "poem/fusion/fuse.hpp"

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
        .value("weighted_value", poem::fusion_method::weighted_value);

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
        .def(py::init([](std::vector<poem::objective_config> o, poem::fusion_method method, double alpha, double beta) {
                 return poem::fusion_config{std::move(o), method, float_field(alpha, "FusionConfig.alpha"),
                                            float_field(beta, "FusionConfig.beta")};
             }),
             py::arg("objectives"), py::arg("method") = poem::fusion_method::weighted_rank, py::arg("alpha") = 1.0,
             py::arg("beta") = 60.0)
        .def_readwrite("objectives", &poem::fusion_config::objectives)
        .def_readwrite("method", &poem::fusion_config::method)
        .def_property(
            "alpha", [](const poem::fusion_config& c) { return c.alpha; },
            [](poem::fusion_config& c, double v) { c.alpha = float_field(v, "FusionConfig.alpha"); })
        .def_property(
            "beta", [](const poem::fusion_config& c) { return c.beta; },
            [](poem::fusion_config& c, double v) { c.beta = float_field(v, "FusionConfig.beta"); });

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
