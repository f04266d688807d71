// sample/ and loss/: alias tables, the item graph and its walks, hard negatives, hierarchical samples,
// and the margin pairwise losses with their gradients.
#include "common.hpp"

#include <cmath>
#include <string>

#include "poem/core/rng.hpp"
#include "poem/loss/pairwise.hpp"
#include "poem/sample/alias.hpp"
#include "poem/sample/hard_negatives.hpp"
#include "poem/sample/hierarchical.hpp"
#include "poem/sample/item_graph.hpp"
#include "poem/sample/item_graph_builder.hpp"
#include "poem/sample/item_graph_io.hpp"
#include "poem/sample/walk.hpp"

namespace poem_py {

namespace {

template <class T>
std::size_t same_length(std::size_t n, const carray<T>& a, const char* what) {
    poem::check(static_cast<std::size_t>(a.size()) == n, what, ": expected ", n, " elements, got ", a.size());
    return n;
}

// Item ids as u64 (int_arg's rules: integers of any width, none negative).
std::vector<std::uint64_t> u64_ids(const py::object& obj, const char* what) {
    const auto c = int_arg<std::uint64_t>(obj, what);
    return {c.data(), c.data() + c.size()};
}

}  // namespace

void bind_sample(py::module_& m) {
    py::class_<poem::alias_table>(m, "AliasTable")
        .def(py::init([](const py::object& w) { return poem::alias_table(view(float_arg<double>(w, "AliasTable: weights"))); }),
             py::arg("weights"), "Weights: a 1-D float array (float16/32/64, or integers exact in float64).")
        .def("__len__", &poem::alias_table::size)
        .def("draw", [](const poem::alias_table& t, std::size_t n, std::uint64_t seed) {
            poem::check(!t.empty(), "AliasTable.draw: empty table");
            std::vector<std::uint32_t> out(n);
            poem::rng g(seed);
            t.draw(g, poem::span<std::uint32_t>(out));
            return to_numpy(std::move(out));
        }, py::arg("n"), py::arg("seed") = 0);
    m.def("popularity_alias", [](const py::object& counts, double power) {
        return poem::popularity_alias(view(float_arg<double>(counts, "popularity_alias: counts")), power);
    }, py::arg("counts"), py::arg("power") = 0.75,
       "Alias table over count^power (popularity negatives). counts: a 1-D float array (float16/32/64) or an "
       "integer array whose values are exact in float64 (|x| <= 2^53).");

    py::class_<poem::graph_build_config>(m, "GraphConfig")
        .def(py::init([](std::uint32_t window_items, double window_seconds, std::uint32_t top_m, bool damp) {
                 // Refused rather than truncated or overflowed: a whole number of seconds within int64.
                 poem::check(std::isfinite(window_seconds) && std::trunc(window_seconds) == window_seconds &&
                                 std::fabs(window_seconds) < 9.2e18,
                             "GraphConfig.window_seconds = ", window_seconds,
                             ": expected a whole number of seconds within int64");
                 poem::graph_build_config c{window_items, static_cast<std::int64_t>(window_seconds), top_m, damp};
                 poem::validate(c);
                 return c;
             }),
             py::arg("window_items") = 5, py::arg("window_seconds") = 3600.0, py::arg("top_m") = 50,
             py::arg("damp_activity") = true);

    py::class_<poem::item_graph>(m, "ItemGraph")
        .def_static("build",
                    [](const py::object& user, const py::object& item, const py::object& time_arg,
                       std::uint64_t item_count, const poem::graph_build_config& cfg) {
                        const auto time = int_arg<std::int64_t>(time_arg, "ItemGraph.build: time");
                        const auto users = u64_ids(user, "ItemGraph.build: user");
                        const auto items = u64_ids(item, "ItemGraph.build: item");
                        const std::size_t n = users.size();
                        poem::check(items.size() == n, "ItemGraph.build: item: expected ", n, " elements, got ", items.size());
                        same_length(n, time, "ItemGraph.build: time");
                        std::vector<poem::engagement_event> ev(n);
                        for (std::size_t i = 0; i < n; ++i) {
                            ev[i].user_id = users[i];
                            ev[i].item_id = items[i];
                            ev[i].time = time.data()[i];
                        }
                        py::gil_scoped_release release;
                        return poem::build_item_graph(poem::span<const poem::engagement_event>(ev), item_count, cfg);
                    },
                    py::arg("user"), py::arg("item"), py::arg("time"), py::arg("item_count"),
                    py::arg("config") = poem::graph_build_config{},
                    "Co-engagement graph over items 0 .. item_count - 1 from engaged events (user, item, time: 1-D "
                    "arrays of one length). " ID_RULE " time: any integer array within int64.")
        .def_static("load", [](const std::filesystem::path& path) { return poem::load_item_graph(path.string()); },
                    py::arg("path"), "Load a graph written by save() (path: str or os.PathLike).")
        .def("save", [](const poem::item_graph& g, const std::filesystem::path& path) {
            poem::save_item_graph(g, path.string());
        }, py::arg("path"), "Write the graph atomically (path: str or os.PathLike).")
        .def("to_bytes", [](const poem::item_graph& g) {
            const auto b = poem::serialize_item_graph(g);
            return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
        }, "The bytes save() writes.")
        .def_static("from_bytes", [](const py::buffer& data) {
            py::buffer_info info;
            return poem::deserialize_item_graph(bytes_view(data, info, "ItemGraph.from_bytes: data"));
        }, py::arg("data"), "A graph from the bytes of to_bytes() (bytes, bytearray or memoryview).")
        .def_property_readonly_static("npos", [](py::object) { return poem::item_graph::npos; })
        .def_property_readonly("num_items", &poem::item_graph::item_count)
        .def_property_readonly("num_edges", &poem::item_graph::edge_count)
        .def("neighbors", [](const poem::item_graph& g, std::uint64_t item) {
            g.check_item(item, "ItemGraph.neighbors: item");
            const auto nb = g.neighbors(item);
            const auto w = g.weights(item);
            return py::make_tuple(copy_numpy(std::vector<std::uint64_t>(nb.begin(), nb.end())),
                                  copy_numpy(std::vector<float>(w.begin(), w.end())));
        }, py::arg("item"))
        .def("walks", [](const poem::item_graph& g, const py::object& starts, std::size_t length, std::uint64_t seed) {
            const auto s = u64_ids(starts, "ItemGraph.walks: starts");
            std::vector<std::uint64_t> out(s.size() * length);
            poem::rng gen(seed);
            poem::workspace ws;
            poem::walk_batch(g, poem::span<const std::uint64_t>(s.data(), s.size()), length, gen, ws,
                             poem::span<std::uint64_t>(out));
            return to_numpy(std::move(out), {static_cast<py::ssize_t>(s.size()), static_cast<py::ssize_t>(length)});
        }, py::arg("starts"), py::arg("length"), py::arg("seed") = 0,
           "B x length uint64 walks (row b from starts[b]); a walk that ends is padded with ItemGraph.npos. " ID_RULE);

    m.def(
        "hard_negatives",
        [](const poem::item_graph& g, const py::object& positives, const py::object& excluded, std::size_t count,
           std::uint32_t hops, std::uint64_t seed, const poem::alias_table* popularity) {
            const auto pos = u64_ids(positives, "hard_negatives: positives");
            const auto exc = u64_ids(excluded, "hard_negatives: excluded");
            poem::rng gen(seed);
            auto r = poem::hard_negatives(g, poem::span<const std::uint64_t>(pos.data(), pos.size()),
                                          poem::span<const std::uint64_t>(exc.data(), exc.size()), popularity,
                                          poem::hard_negative_config{count, hops}, gen);
            py::dict d;
            d["from_graph"] = r.from_graph;
            d["from_popularity"] = r.from_popularity;
            d["items"] = to_numpy(std::move(r.items));
            return d;
        },
        py::arg("graph"), py::arg("positives"), py::arg("excluded"), py::arg("count") = 10, py::arg("hops") = 1,
        py::arg("seed") = 0, py::arg("popularity") = nullptr, "Hard negatives near the positives. " ID_RULE);

    py::class_<poem::hierarchy_config>(m, "HierarchyConfig")
        .def(py::init([](std::size_t system_top_k, const poem::engagement_config& engagement, std::size_t hard_negatives,
                         std::uint32_t hops, std::size_t random_negatives, double base_margin,
                         std::vector<double> margin_by_gap, std::size_t max_pairs) {
                 std::vector<float> margins(margin_by_gap.size());
                 for (std::size_t k = 0; k < margins.size(); ++k)
                     margins[k] = float_field(margin_by_gap[k], "HierarchyConfig.margin_by_gap");
                 poem::hierarchy_config c{system_top_k, engagement, hard_negatives, hops, random_negatives,
                                          float_field(base_margin, "HierarchyConfig.base_margin"), std::move(margins),
                                          max_pairs};
                 poem::validate(c);
                 return c;
             }),
             py::arg("system_top_k") = 3, py::arg("engagement") = poem::engagement_config{}, py::arg("hard_negatives") = 5,
             py::arg("hops") = 1, py::arg("random_negatives") = 5, py::arg("base_margin") = 0.1,
             py::arg("margin_by_gap") = std::vector<double>{}, py::arg("max_pairs") = 1024);

    m.def(
        "hierarchical_samples",
        [](const py::object& items, const py::object& fused_rank_arg, const py::object& play_time_arg,
           const py::object& duration_arg, const py::object& click_arg, const py::object& like_arg,
           const py::object& follow_arg, const py::object& history, const poem::item_graph* graph,
           const poem::alias_table* popularity, const poem::hierarchy_config& cfg, std::uint64_t seed) {
            const auto fused_rank = int_arg<std::uint32_t>(fused_rank_arg, "hierarchical_samples: fused_rank");
            const auto ev = engagement_events(0, items, py::none(), play_time_arg, duration_arg, click_arg, like_arg,
                                              follow_arg, "hierarchical_samples", "items");
            const auto hist = u64_ids(history, "hierarchical_samples: history");
            const std::size_t n = ev.size();
            same_length(n, fused_rank, "hierarchical_samples: fused_rank");
            poem::rng gen(seed);
            auto s = poem::hierarchical_samples(poem::span<const poem::engagement_event>(ev), view(fused_rank),
                                                poem::span<const std::uint64_t>(hist.data(), hist.size()), graph,
                                                popularity, cfg, gen);
            std::vector<std::int32_t> pi(s.pairs.size()), pj(s.pairs.size());
            std::vector<float> pm(s.pairs.size());
            for (std::size_t k = 0; k < s.pairs.size(); ++k) {
                pi[k] = static_cast<std::int32_t>(s.pairs[k].i);
                pj[k] = static_cast<std::int32_t>(s.pairs[k].j);
                pm[k] = s.pairs[k].margin;
            }
            std::vector<std::uint8_t> tiers(s.tiers.size());
            for (std::size_t k = 0; k < tiers.size(); ++k) tiers[k] = static_cast<std::uint8_t>(s.tiers[k]);
            py::dict d;
            d["items"] = to_numpy(std::move(s.items));
            d["tiers"] = to_numpy(std::move(tiers));
            d["tier_sizes"] = std::vector<std::size_t>(s.tier_sizes.begin(), s.tier_sizes.end());
            d["candidate_count"] = s.candidate_count;
            d["pair_i"] = to_numpy(std::move(pi));
            d["pair_j"] = to_numpy(std::move(pj));
            d["pair_margin"] = to_numpy(std::move(pm));
            d["pairs_total"] = s.pairs_total;
            return d;
        },
        py::arg("items"), py::arg("fused_rank"), py::arg("play_time"), py::arg("duration"), py::arg("click"),
        py::arg("like"), py::arg("follow"), py::arg("history"), py::arg("graph") = nullptr, py::arg("popularity") = nullptr,
        py::arg("config") = poem::hierarchy_config{}, py::arg("seed") = 0,
        "Tiers of one request's candidates (strong positive: long view, like or follow under config.engagement)\n"
        "plus hard and random negatives, and the margin pairs between tiers (1-D arrays of one length).\n" ID_RULE
        " fused_rank: " INDEX_RULE " play_time, duration: " FLOAT_RULE " click, like, follow: " MASK_RULE);

    py::enum_<poem::pairwise_form>(m, "PairwiseForm")
        .value("hinge", poem::pairwise_form::hinge)
        .value("softplus", poem::pairwise_form::softplus);
    m.def(
        "pairwise_loss",
        [](const py::object& scores_arg, const py::object& i_arg, const py::object& j_arg,
           const py::object& margin_arg, poem::pairwise_form form) {
            const auto scores = float_arg<float>(scores_arg, "pairwise_loss: scores");
            const auto i = int_arg<std::uint32_t>(i_arg, "pairwise_loss: i");
            const auto j = int_arg<std::uint32_t>(j_arg, "pairwise_loss: j");
            const auto margin = float_arg<float>(margin_arg, "pairwise_loss: margin");
            const std::size_t p = static_cast<std::size_t>(i.size());
            same_length(p, j, "pairwise_loss: j");
            same_length(p, margin, "pairwise_loss: margin");
            std::vector<poem::margin_pair> pairs(p);
            for (std::size_t k = 0; k < p; ++k) {
                pairs[k] = {i.data()[k], j.data()[k], margin.data()[k]};
            }
            std::vector<float> grad(static_cast<std::size_t>(scores.size()));
            const float loss = poem::pairwise_loss(view(scores), poem::span<const poem::margin_pair>(pairs),
                                                   poem::pairwise_loss_config{form}, poem::span<float>(grad));
            return py::make_tuple(loss, to_numpy(std::move(grad)));
        },
        py::arg("scores"), py::arg("i"), py::arg("j"), py::arg("margin"), py::arg("form") = poem::pairwise_form::hinge,
        "Mean margin pairwise loss over the pairs and its gradient with respect to every score. i, j: pair "
        "indices, any integer array within uint32 (negative or larger values are refused). " FLOAT_RULE);
    m.def(
        "dense_pairwise_loss",
        [](const py::object& pos_arg, const py::object& neg_arg, double margin_arg, poem::pairwise_form form) {
            const auto pos = float_arg<float>(pos_arg, "dense_pairwise_loss: pos");
            const auto neg = float_arg<float>(neg_arg, "dense_pairwise_loss: neg");
            const float margin = float_field(margin_arg, "dense_pairwise_loss: margin");
            std::vector<float> gp(static_cast<std::size_t>(pos.size())), gn(static_cast<std::size_t>(neg.size()));
            const float loss = poem::dense_pairwise_loss(view(pos), view(neg), margin, poem::pairwise_loss_config{form},
                                                         poem::span<float>(gp), poem::span<float>(gn));
            return py::make_tuple(loss, to_numpy(std::move(gp)), to_numpy(std::move(gn)));
        },
        py::arg("pos"), py::arg("neg"), py::arg("margin"), py::arg("form") = poem::pairwise_form::hinge,
        "Every positive against every negative (SIMD kernel): mean loss and both gradients. " FLOAT_RULE);
}

}  // namespace poem_py
