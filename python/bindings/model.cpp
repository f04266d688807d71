// model/: the POEM forward pass on numpy arrays, scoring a request's N candidates in one call.
#include "common.hpp"

#include <limits>
#include <memory>

#include "poem/model/model.hpp"

namespace poem_py {

namespace {

constexpr std::size_t any_length = std::numeric_limits<std::size_t>::max();

// A 1-D array of `n` elements. Checked here so that errors name the Python keyword; view() alone would
// silently flatten a 2-D array.
template <class T>
poem::span<const T> vector_arg(const carray<T>& a, const char* what, std::size_t n = any_length) {
    poem::check(a.ndim() == 1, what, ": expected a 1-D array, got ", a.ndim(), " dimensions");
    poem::check(n == any_length || static_cast<std::size_t>(a.size()) == n, what, ": expected ",
                n, " elements, got ", a.size());
    return view(a);
}

template <class T>
poem::matrix_view<const T> matrix_arg(const carray<T>& a, const char* what, std::size_t rows, std::size_t cols,
                                      const char* rows_name, const char* cols_name) {
    const auto m = matrix(a, what);
    poem::check(m.rows() == rows && m.cols() == cols, what, ": expected shape (", rows, ", ", cols, ") = (",
                rows_name, ", ", cols_name, "), got (", m.rows(), ", ", m.cols(), ")");
    return m;
}

py::dict config_dict(const poem::model_config& c) {
    py::dict d;
    d["vocab"] = c.vocab;
    d["d"] = c.d;
    d["n_heads"] = c.n_heads;
    d["n_objectives"] = c.n_objectives;
    d["n_levels"] = c.n_levels;
    d["chrono_feats"] = c.chrono_feats;
    d["mlp"] = c.mlp;
    d["heads"] = c.heads;
    d["use_po"] = c.use_po;
    return d;
}

}  // namespace

void bind_model(py::module_& m) {
    py::class_<poem::model>(m, "Model",
                            "The POEM model's forward pass (docs/model.md). Immutable once loaded: share one "
                            "across threads, with one Workspace per thread.")
        .def_static(
            "load",
            [](const std::filesystem::path& path, const std::string& precision) {
                const poem::model_options options{poem::precision_from_string(precision)};
                py::gil_scoped_release release;  // reading and packing a large embedding takes a while
                return poem::model::load(path.string(), options);
            },
            py::arg("path"), py::kw_only(), py::arg("precision") = "fp32",
            "Load a model from a safetensors file written by poem_ref.export (str or os.PathLike). precision: "
            "\"fp32\" (default) or \"bf16\" (the tower and heads with bfloat16 weights and inputs, fp32 sums; "
            "docs/model.md).")
        .def_static(
            "from_bytes",
            [](const py::buffer& data, const std::string& precision) {
                const poem::model_options options{poem::precision_from_string(precision)};
                // The buffer export (held by `info`) keeps the memory valid and a bytearray from being
                // resized; from_bytes copies it once. Only an immutable bytes object is read without the GIL.
                py::buffer_info info;
                const auto b = bytes_view(data, info, "Model.from_bytes: data");
                const auto load = [&] {
                    return poem::model::from_file(poem::safetensors_file::from_bytes(
                        reinterpret_cast<const char*>(b.data()), b.size(), "<bytes>"), options);
                };
                if (!py::isinstance<py::bytes>(data)) return load();
                py::gil_scoped_release release;
                return load();
            },
            py::arg("data"), py::kw_only(), py::arg("precision") = "fp32",
            "Load a model from the bytes of a safetensors file (bytes, bytearray or memoryview); precision as in load.")
        .def_property_readonly("config", [](const poem::model& self) { return config_dict(self.config()); })
        .def_property_readonly("outputs", &poem::model::outputs, "Columns of predict's result (len(heads)).")
        .def_property_readonly(
            "precision", [](const poem::model& self) { return std::string(poem::to_string(self.precision())); },
            "The tower's arithmetic as loaded: \"fp32\" or \"bf16\".")
        .def_property_readonly(
            "learned_fusion",
            [](const poem::model& self) { return std::const_pointer_cast<poem::learned_fusion>(self.learned_fusion()); },
            "The LearnedFusion the file carries beside the model (fusion.* tensors), or None.")
        .def(
            "predict",
            [](const poem::model& self, const py::object& cand_item_id_arg,
               const py::object& cand_fused_arg,
               const py::object& cand_rank_pct_arg,
               const py::object& cand_level_arg,
               const py::object& objectives_arg,
               const py::object& chrono_item_id_arg,
               const py::object& chrono_age_arg,
               const py::object& chrono_features_arg,
               const py::object& chrono_mask_arg,
               const py::object& po_item_id_arg,
               const py::object& po_fused_arg,
               const py::object& po_rank_pct_arg,
               const py::object& po_level_arg,
               const py::object& po_age_arg,
               const py::object& po_mask_arg, poem::workspace* ws) {
                const auto cand_item_id = int_arg<std::uint64_t>(cand_item_id_arg, "cand_item_id", 1);
                const auto cand_fused = float_arg<float>(cand_fused_arg, "cand_fused", 1);
                const auto cand_rank_pct = float_arg<float>(cand_rank_pct_arg, "cand_rank_pct", 1);
                const auto cand_level = int_arg<std::uint32_t>(cand_level_arg, "cand_level", 1);
                const auto objectives = float_arg<float>(objectives_arg, "objectives", 2);
                const auto chrono_item_id = int_arg<std::uint64_t>(chrono_item_id_arg, "chrono_item_id", 1);
                const auto chrono_age = float_arg<float>(chrono_age_arg, "chrono_age", 1);
                const auto chrono_features = float_arg<float>(chrono_features_arg, "chrono_features", 2);
                const auto chrono_mask = mask_arg<std::uint8_t>(chrono_mask_arg, "chrono_mask", 1);
                const auto po_item_id = int_arg<std::uint64_t>(po_item_id_arg, "po_item_id", 1);
                const auto po_fused = float_arg<float>(po_fused_arg, "po_fused", 1);
                const auto po_rank_pct = float_arg<float>(po_rank_pct_arg, "po_rank_pct", 1);
                const auto po_level = int_arg<std::uint32_t>(po_level_arg, "po_level", 1);
                const auto po_age = float_arg<float>(po_age_arg, "po_age", 1);
                const auto po_mask = mask_arg<std::uint8_t>(po_mask_arg, "po_mask", 1);
                const poem::model_config& c = self.config();
                const auto ids = vector_arg(cand_item_id, "cand_item_id");
                const std::size_t n = ids.size();
                const poem::candidate_view cand{
                    ids, vector_arg(cand_fused, "cand_fused", n), vector_arg(cand_rank_pct, "cand_rank_pct", n),
                    vector_arg(cand_level, "cand_level", n),
                    matrix_arg(objectives, "objectives", c.n_objectives, n, "n_objectives", "N")};

                const auto chrono_ids = vector_arg(chrono_item_id, "chrono_item_id");
                const std::size_t lc = chrono_ids.size();
                const poem::chrono_view chrono{
                    chrono_ids, vector_arg(chrono_age, "chrono_age", lc),
                    matrix_arg(chrono_features, "chrono_features", lc, c.chrono_feats, "Lc", "chrono_feats"),
                    vector_arg(chrono_mask, "chrono_mask", lc)};

                // A chronological-only model ignores the partial-order arrays, as the C++ call does.
                const auto po_ids = vector_arg(po_item_id, "po_item_id");
                const std::size_t lp = c.use_po ? po_ids.size() : any_length;
                const poem::po_view po{po_ids,
                                       vector_arg(po_fused, "po_fused", lp),
                                       vector_arg(po_rank_pct, "po_rank_pct", lp),
                                       vector_arg(po_level, "po_level", lp),
                                       vector_arg(po_age, "po_age", lp),
                                       vector_arg(po_mask, "po_mask", lp)};

                // The result is written straight into the numpy array, allocated while the GIL is held.
                py::array_t<float> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(c.outputs())});
                const poem::matrix_view<float> out_view(out.mutable_data(), n, c.outputs());
                poem::workspace local;
                {
                    py::gil_scoped_release release;
                    self.predict(cand, chrono, po, ws ? *ws : local, out_view);
                }
                return out;
            },
            py::arg("cand_item_id"), py::arg("cand_fused"), py::arg("cand_rank_pct"), py::arg("cand_level"),
            py::arg("objectives"), py::arg("chrono_item_id"), py::arg("chrono_age"), py::arg("chrono_features"),
            py::arg("chrono_mask"), py::arg("po_item_id"), py::arg("po_fused"), py::arg("po_rank_pct"),
            py::arg("po_level"), py::arg("po_age"), py::arg("po_mask"), py::arg("workspace") = nullptr,
            "Score the N candidates of one request: returns an N x outputs float32 array (columns in "
            "config['heads'] order). objectives is n_objectives x N, chrono_features Lc x chrono_feats; masks "
            "are 0 for padding. Runs without the GIL: share the Model across threads, but give each thread "
            "its own Workspace.\n\nArguments: *_item_id: " ID_RULE " *_level: " INDEX_RULE " Scores, ages and "
            "features: " FLOAT_RULE " *_mask: " MASK_RULE " Non-contiguous (e.g. Fortran-ordered) arrays are copied once.");
}

}  // namespace poem_py
