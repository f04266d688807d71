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

// Item ids as u64: any integer array (signed or unsigned) whose values are all >= 0; floats, bools
// and negative ids are refused, naming the argument (no silent conversion).
std::vector<std::uint64_t> u64_ids(const py::object& obj, const char* what) {
    const py::array a = py::array::ensure(obj);
    poem::check(static_cast<bool>(a), what, ": expected an array of item ids");
    if (a.size() == 0) return {};  // an empty list is fine whatever its dtype
    const auto kind = a.dtype().kind();
    poem::check(kind == 'u' || kind == 'i', what, ": item ids must be an integer array, got dtype ",
                std::string(py::str(a.dtype())));
    poem::check(a.ndim() <= 1, what, ": expected a 1-D array, got ", a.ndim(), " dimensions");
    std::vector<std::uint64_t> out(static_cast<std::size_t>(a.size()));
    if (kind == 'u') {
        const auto c = carray<std::uint64_t>::ensure(a);
        std::copy(c.data(), c.data() + c.size(), out.begin());
    } else {
        const auto c = carray<std::int64_t>::ensure(a);
        for (std::size_t i = 0; i < out.size(); ++i) {
            poem::check(c.data()[i] >= 0, what, "[", i, "] = ", c.data()[i], " is negative");
            out[i] = static_cast<std::uint64_t>(c.data()[i]);
        }
    }
    return out;
}

}  // namespace

void bind_sample(py::module_& m) {
    py::class_<poem::alias_table>(m, "AliasTable")
        .def(py::init([](const carray<double>& w) { return poem::alias_table(view(w)); }), py::arg("weights"))
        .def("__len__", &poem::alias_table::size)
        .def("draw", [](const poem::alias_table& t, std::size_t n, std::uint64_t seed) {
            poem::check(!t.empty(), "AliasTable.draw: empty table");
            std::vector<std::uint32_t> out(n);
            poem::rng g(seed);
            t.draw(g, poem::span<std::uint32_t>(out));
            return to_numpy(std::move(out));
        }, py::arg("n"), py::arg("seed") = 0);
    m.def("popularity_alias", [](const carray<double>& counts, double power) {
        return poem::popularity_alias(view(counts), power);
    }, py::arg("counts"), py::arg("power") = 0.75, "Alias table over count^power (popularity negatives).");

    py::class_<poem::graph_build_config>(m, "GraphConfig")
        .def(py::init([](std::uint32_t window_items, double window_seconds, std::uint32_t top_m, bool damp) {
                 poem::check(std::isfinite(window_seconds), "graph_build_config.window_seconds must be finite");
                 poem::graph_build_config c{window_items, static_cast<std::int64_t>(window_seconds), top_m, damp};
                 poem::validate(c);
                 return c;
             }),
             py::arg("window_items") = 5, py::arg("window_seconds") = 3600.0, py::arg("top_m") = 50,
             py::arg("damp_activity") = true);

    py::class_<poem::item_graph>(m, "ItemGraph")
        .def_static("build",
                    [](const py::object& user, const py::object& item, const carray<std::int64_t>& time,
                       std::uint64_t item_count, const poem::graph_build_config& cfg) {
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
                    "Co-engagement graph over items 0 .. item_count - 1 from engaged events (user, item, time).")
        .def_static("load", &poem::load_item_graph, py::arg("path"))
        .def("save", [](const poem::item_graph& g, const std::string& path) { poem::save_item_graph(g, path); },
             py::arg("path"))
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
           "B x length uint64 walks (row b from starts[b]); a walk that ends is padded with ItemGraph.npos.");

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
        py::arg("seed") = 0, py::arg("popularity") = nullptr);

    py::class_<poem::hierarchy_config>(m, "HierarchyConfig")
        .def(py::init([](std::size_t system_top_k, const poem::engagement_config& engagement, std::size_t hard_negatives,
                         std::uint32_t hops, std::size_t random_negatives, float base_margin,
                         std::vector<float> margin_by_gap, std::size_t max_pairs) {
                 poem::hierarchy_config c{system_top_k, engagement, hard_negatives, hops,
                                          random_negatives, base_margin, std::move(margin_by_gap), max_pairs};
                 poem::validate(c);
                 return c;
             }),
             py::arg("system_top_k") = 3, py::arg("engagement") = poem::engagement_config{}, py::arg("hard_negatives") = 5,
             py::arg("hops") = 1, py::arg("random_negatives") = 5, py::arg("base_margin") = 0.1f,
             py::arg("margin_by_gap") = std::vector<float>{}, py::arg("max_pairs") = 1024);

    m.def(
        "hierarchical_samples",
        [](const py::object& items, const carray<std::uint32_t>& fused_rank, const carray<float>& play_time,
           const carray<float>& duration, const carray<bool>& click, const carray<bool>& like, const carray<bool>& follow,
           const py::object& history, const poem::item_graph* graph, const poem::alias_table* popularity,
           const poem::hierarchy_config& cfg, std::uint64_t seed) {
            const auto ids = u64_ids(items, "hierarchical_samples: items");
            const auto hist = u64_ids(history, "hierarchical_samples: history");
            const std::size_t n = ids.size();
            same_length(n, fused_rank, "hierarchical_samples: fused_rank");
            same_length(n, play_time, "hierarchical_samples: play_time");
            same_length(n, duration, "hierarchical_samples: duration");
            same_length(n, click, "hierarchical_samples: click");
            same_length(n, like, "hierarchical_samples: like");
            same_length(n, follow, "hierarchical_samples: follow");
            std::vector<poem::engagement_event> ev(n);
            for (std::size_t i = 0; i < n; ++i) {
                ev[i].item_id = ids[i];
                ev[i].play_time = play_time.data()[i];
                ev[i].duration = duration.data()[i];
                ev[i].click = click.data()[i];
                ev[i].like = like.data()[i];
                ev[i].follow = follow.data()[i];
            }
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
        "plus hard and random negatives, and the margin pairs between tiers. Item ids: integer arrays, uint64 out.");

    py::enum_<poem::pairwise_form>(m, "PairwiseForm")
        .value("hinge", poem::pairwise_form::hinge)
        .value("softplus", poem::pairwise_form::softplus);
    m.def(
        "pairwise_loss",
        [](const carray<float>& scores, const carray<std::int32_t>& i, const carray<std::int32_t>& j,
           const carray<float>& margin, poem::pairwise_form form) {
            const std::size_t p = static_cast<std::size_t>(i.size());
            same_length(p, j, "pairwise_loss: j");
            same_length(p, margin, "pairwise_loss: margin");
            std::vector<poem::margin_pair> pairs(p);
            for (std::size_t k = 0; k < p; ++k) {
                poem::check(i.data()[k] >= 0 && j.data()[k] >= 0, "pairwise_loss: pair ", k, " has a negative index");
                pairs[k] = {static_cast<std::uint32_t>(i.data()[k]), static_cast<std::uint32_t>(j.data()[k]), margin.data()[k]};
            }
            std::vector<float> grad(static_cast<std::size_t>(scores.size()));
            const float loss = poem::pairwise_loss(view(scores), poem::span<const poem::margin_pair>(pairs),
                                                   poem::pairwise_loss_config{form}, poem::span<float>(grad));
            return py::make_tuple(loss, to_numpy(std::move(grad)));
        },
        py::arg("scores"), py::arg("i"), py::arg("j"), py::arg("margin"), py::arg("form") = poem::pairwise_form::hinge,
        "Mean margin pairwise loss over the pairs and its gradient with respect to every score.");
    m.def(
        "dense_pairwise_loss",
        [](const carray<float>& pos, const carray<float>& neg, float margin, poem::pairwise_form form) {
            std::vector<float> gp(static_cast<std::size_t>(pos.size())), gn(static_cast<std::size_t>(neg.size()));
            const float loss = poem::dense_pairwise_loss(view(pos), view(neg), margin, poem::pairwise_loss_config{form},
                                                         poem::span<float>(gp), poem::span<float>(gn));
            return py::make_tuple(loss, to_numpy(std::move(gp)), to_numpy(std::move(gn)));
        },
        py::arg("pos"), py::arg("neg"), py::arg("margin"), py::arg("form") = poem::pairwise_form::hinge,
        "Every positive against every negative (SIMD kernel): mean loss and both gradients.");
}

}  // namespace poem_py
