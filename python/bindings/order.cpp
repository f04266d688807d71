// order/: levels, quintuples as a numpy record array, level sampling, the partial-order state and the
// chronological sequence.
#include "common.hpp"

#include "poem/fusion/fuse.hpp"
#include "poem/order/chrono.hpp"
#include "poem/order/level_selection.hpp"
#include "poem/order/levels.hpp"
#include "poem/order/state.hpp"

namespace poem_py {

namespace {

// A record array of quintuples viewed as a span (no copy).
poem::span<const poem::quintuple> quintuple_view(const py::array_t<poem::quintuple, py::array::c_style>& a) {
    poem::check(a.ndim() == 1, "tokens: expected a 1-D array of quintuples");
    return {a.data(), static_cast<std::size_t>(a.size())};
}

py::dict sequence_dict(poem::po_sequence&& s) {
    py::dict d;
    d["item_id"] = to_numpy(std::move(s.item_id));
    d["fused_score"] = to_numpy(std::move(s.fused_score));
    d["rank_pct"] = to_numpy(std::move(s.rank_pct));
    d["level"] = to_numpy(std::move(s.level));
    d["age_seconds"] = to_numpy(std::move(s.age_seconds));
    d["request_index"] = to_numpy(std::move(s.request_index));
    d["mask"] = to_numpy(std::move(s.mask));
    d["count"] = s.count;
    return d;
}

// The user's engagement log, kept on the C++ side so a sequence costs no conversion.
struct engagement_log {
    std::vector<poem::engagement_event> events;
};

}  // namespace

void bind_order(py::module_& m) {
    PYBIND11_NUMPY_DTYPE(poem::quintuple, item_id, request_time, fused_score, rank_pct, level);
    py::enum_<poem::level_method>(m, "LevelMethod")
        .value("pareto", poem::level_method::pareto)
        .value("fused_tiers", poem::level_method::fused_tiers)
        .value("gap_tiers", poem::level_method::gap_tiers)
        .value("topk_tiers", poem::level_method::topk_tiers);
    py::enum_<poem::selection_policy>(m, "SamplePolicy")
        .value("top_fused", poem::selection_policy::top_fused)
        .value("weighted", poem::selection_policy::weighted);

    py::class_<poem::level_config>(m, "LevelConfig")
        .def(py::init([](poem::level_method method, std::vector<poem::direction> directions, std::size_t tiers,
                         float gap_abs, float gap_rel, std::vector<std::size_t> topk,
                         std::vector<std::uint32_t> quota, std::uint32_t beyond, poem::selection_policy policy) {
                 poem::level_config s;
                 s.method = method;
                 s.directions = std::move(directions);
                 s.tiers = tiers;
                 s.gap_abs = gap_abs;
                 s.gap_rel = gap_rel;
                 s.topk = std::move(topk);
                 s.quota.per_level = std::move(quota);
                 s.quota.beyond = beyond;
                 s.policy = policy;
                 return s;
             }),
             py::arg("method") = poem::level_method::pareto, py::arg("directions") = std::vector<poem::direction>{},
             py::arg("tiers") = 4, py::arg("gap_abs") = 0.1f, py::arg("gap_rel") = std::numeric_limits<float>::infinity(),
             py::arg("topk") = std::vector<std::size_t>{10, 50, 200},
             py::arg("quota") = std::vector<std::uint32_t>{4, 3, 2, 1, 1}, py::arg("beyond") = 0u,
             py::arg("policy") = poem::selection_policy::top_fused)
        .def_readwrite("method", &poem::level_config::method)
        .def_readwrite("directions", &poem::level_config::directions)
        .def_readwrite("tiers", &poem::level_config::tiers);

    m.def(
        "assign_levels",
        [](const carray<float>& scores, const carray<float>& fused, const poem::level_config& spec, poem::workspace* ws) {
            poem::workspace local;
            poem::levels_result r;
            poem::assign_levels(matrix(scores, "scores"), view(fused), spec, ws ? *ws : local, r);
            return to_numpy(std::move(r.level));
        },
        py::arg("scores"), py::arg("fused"), py::arg("spec"), py::arg("workspace") = nullptr,
        "Levels (0 = best) of a request's candidates: Pareto layers of the K x N scores, or tiers of the fused scores.");

    m.attr("QUINTUPLE_DTYPE") = py::dtype::of<poem::quintuple>();
    m.def(
        "quintuples",
        [](const carray<std::uint64_t>& ids, std::int64_t request_time, const py::dict& fused,
           std::optional<carray<std::uint32_t>> levels) {
            poem::fusion_result f;
            const auto fs = fused["fused"].cast<carray<float>>();
            const auto fr = fused["fused_rank"].cast<carray<std::uint32_t>>();
            f.fused.assign(fs.data(), fs.data() + fs.size());
            f.fused_rank.assign(fr.data(), fr.data() + fr.size());
            f.n = f.fused.size();
            poem::check(f.fused_rank.size() == f.n, "fused: fused_rank and fused differ in length");
            std::vector<poem::quintuple> q;
            poem::quintuples(view(ids), request_time, f, q);
            if (levels) poem::write_levels(poem::span<poem::quintuple>(q), view(*levels));
            return to_numpy(std::move(q));
        },
        py::arg("ids"), py::arg("request_time"), py::arg("fused"), py::arg("levels") = py::none(),
        "A request's quintuples (record array of QUINTUPLE_DTYPE) from fuse()'s result and the levels.");

    m.def(
        "sample_levels",
        [](const py::array_t<poem::quintuple, py::array::c_style>& tokens, const poem::level_config& spec,
           std::uint64_t seed) {
            poem::rng gen(seed);
            return to_numpy(poem::select_by_level(quintuple_view(tokens), spec, gen));
        },
        py::arg("tokens"), py::arg("spec"), py::arg("seed") = 0,
        "The quintuples of a request that go into the user's state (per-level quotas).");

    py::class_<poem::partial_order_state>(m, "PartialOrderState")
        .def(py::init<std::size_t, std::size_t>(), py::arg("max_tokens") = 256, py::arg("max_requests") = 32)
        .def("record", [](poem::partial_order_state& s, const py::array_t<poem::quintuple, py::array::c_style>& t) {
            s.record(quintuple_view(t));
        })
        .def("sequence", [](const poem::partial_order_state& s, std::int64_t now, std::size_t length) {
            return sequence_dict(s.sequence(now, length));
        }, py::arg("now"), py::arg("length"))
        .def("serialize", [](const poem::partial_order_state& s) {
            const auto b = s.serialize();
            return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
        })
        .def_static("deserialize", [](const py::bytes& b) {
            const std::string_view v = b;
            return poem::partial_order_state::deserialize(
                poem::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(v.data()), v.size()));
        })
        .def_property_readonly("token_count", &poem::partial_order_state::token_count)
        .def_property_readonly("request_count", &poem::partial_order_state::request_count);

    py::class_<poem::engagement_config>(m, "EngagementConfig")
        .def(py::init([](bool click, bool long_view, float long_view_seconds, bool like, bool follow) {
                 return poem::engagement_config{click, long_view, long_view_seconds, like, follow};
             }),
             py::arg("click") = true, py::arg("long_view") = true, py::arg("long_view_seconds") = 10.0f,
             py::arg("like") = true, py::arg("follow") = true);

    py::class_<engagement_log>(m, "EngagementLog")
        .def(py::init<>())
        .def("extend",
             [](engagement_log& log, const carray<std::uint64_t>& item, const carray<std::int64_t>& time,
                const carray<float>& play, const carray<float>& duration, const carray<bool>& click,
                const carray<bool>& like, const carray<bool>& follow) {
                 const std::size_t n = static_cast<std::size_t>(item.size());
                 poem::check(static_cast<std::size_t>(time.size()) == n && static_cast<std::size_t>(play.size()) == n &&
                                 static_cast<std::size_t>(duration.size()) == n && static_cast<std::size_t>(click.size()) == n &&
                                 static_cast<std::size_t>(like.size()) == n && static_cast<std::size_t>(follow.size()) == n,
                             "EngagementLog.extend: arrays differ in length");
                 for (std::size_t i = 0; i < n; ++i)
                     log.events.push_back({0, item.data()[i], time.data()[i], play.data()[i], duration.data()[i],
                                           click.data()[i], like.data()[i], follow.data()[i]});
             })
        .def("__len__", [](const engagement_log& log) { return log.events.size(); })
        .def("sequence",
             [](const engagement_log& log, std::int64_t now, std::size_t length, const poem::engagement_config& rule) {
                 auto s = poem::build_chrono_sequence(poem::span<const poem::engagement_event>(log.events), now, length, rule);
                 py::dict d;
                 d["item_id"] = to_numpy(std::move(s.item_id));
                 d["age_seconds"] = to_numpy(std::move(s.age_seconds));
                 d["play_ratio"] = to_numpy(std::move(s.play_ratio));
                 d["click"] = to_numpy(std::move(s.click));
                 d["like"] = to_numpy(std::move(s.like));
                 d["follow"] = to_numpy(std::move(s.follow));
                 d["long_view"] = to_numpy(std::move(s.long_view));
                 d["mask"] = to_numpy(std::move(s.mask));
                 d["count"] = s.count;
                 return d;
             },
             py::arg("now"), py::arg("length"), py::arg("rule") = poem::engagement_config{},
             "The last `length` engaged items before `now`, newest first, padded, with a mask.");
}

}  // namespace poem_py
