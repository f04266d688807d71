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

// A 1-D record array of QUINTUPLE_DTYPE exactly (no field converted); a copy only when not contiguous.
py::array_t<poem::quintuple, py::array::c_style> quintuple_arg(py::handle obj, const char* name) {
    return record_arg<poem::quintuple>(obj, name, "QUINTUPLE_DTYPE");
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
                         double gap_abs, double gap_rel, std::vector<std::size_t> topk,
                         std::vector<std::uint32_t> quota, std::uint32_t beyond, poem::selection_policy policy) {
                 poem::level_config s;
                 s.method = method;
                 s.directions = std::move(directions);
                 s.tiers = tiers;
                 s.gap_abs = float_field(gap_abs, "LevelConfig.gap_abs");
                 s.gap_rel = float_field(gap_rel, "LevelConfig.gap_rel");
                 s.topk = std::move(topk);
                 s.quota.per_level = std::move(quota);
                 s.quota.beyond = beyond;
                 s.policy = policy;
                 return s;
             }),
             py::arg("method") = poem::level_method::pareto, py::arg("directions") = std::vector<poem::direction>{},
             py::arg("tiers") = 4, py::arg("gap_abs") = 0.1, py::arg("gap_rel") = std::numeric_limits<double>::infinity(),
             py::arg("topk") = std::vector<std::size_t>{10, 50, 200},
             py::arg("quota") = std::vector<std::uint32_t>{4, 3, 2, 1, 1}, py::arg("beyond") = 0u,
             py::arg("policy") = poem::selection_policy::top_fused)
        .def_readwrite("method", &poem::level_config::method)
        .def_readwrite("directions", &poem::level_config::directions)
        .def_readwrite("tiers", &poem::level_config::tiers);

    m.def(
        "assign_levels",
        [](const py::object& scores_arg, const py::object& fused_arg, const poem::level_config& spec,
           poem::workspace* ws) {
            const auto scores = float_arg<float>(scores_arg, "assign_levels: scores", 2);
            const auto fused = float_arg<float>(fused_arg, "assign_levels: fused", 1);
            poem::workspace local;
            poem::levels_result r;
            poem::assign_levels(matrix(scores, "scores"), view(fused), spec, ws ? *ws : local, r);
            return to_numpy(std::move(r.level));
        },
        py::arg("scores"), py::arg("fused"), py::arg("spec"), py::arg("workspace") = nullptr,
        "Levels (0 = best) of a request's candidates: Pareto layers of the K x N scores, or tiers of the fused scores.\n\n"
        FLOAT_RULE);

    m.attr("QUINTUPLE_DTYPE") = py::dtype::of<poem::quintuple>();
    m.def(
        "quintuples",
        [](const py::object& ids_arg, std::int64_t request_time, const py::dict& fused, const py::object& levels_arg) {
            const auto ids = int_arg<std::uint64_t>(ids_arg, "quintuples: ids");
            std::optional<carray<std::uint32_t>> levels;
            if (!levels_arg.is_none()) levels = int_arg<std::uint32_t>(levels_arg, "quintuples: levels");
            poem::check(fused.contains("fused") && fused.contains("fused_rank"),
                        "quintuples: fused: expected fuse()'s result (keys 'fused' and 'fused_rank')");
            poem::fusion_result f;
            const auto fs = float_arg<float>(fused["fused"], "quintuples: fused['fused']");
            const auto fr = int_arg<std::uint32_t>(fused["fused_rank"], "quintuples: fused['fused_rank']");
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
        "A request's quintuples (record array of QUINTUPLE_DTYPE) from fuse()'s result and the levels.\n\n" ID_RULE
        " " INDEX_RULE);

    m.def(
        "sample_levels",
        [](const py::object& tokens_arg, const poem::level_config& spec, std::uint64_t seed) {
            const auto tokens = quintuple_arg(tokens_arg, "sample_levels: tokens");
            poem::rng gen(seed);
            return to_numpy(poem::select_by_level(view(tokens), spec, gen));
        },
        py::arg("tokens"), py::arg("spec"), py::arg("seed") = 0,
        "The quintuples of a request that go into the user's state (per-level quotas). tokens: a 1-D record array "
        "of exactly QUINTUPLE_DTYPE (any other dtype raises poem.DtypeError).");

    py::class_<poem::partial_order_state>(m, "PartialOrderState")
        .def(py::init<std::size_t, std::size_t>(), py::arg("max_tokens") = 256, py::arg("max_requests") = 32)
        .def("record", [](poem::partial_order_state& s, const py::object& tokens) {
            s.record(view(quintuple_arg(tokens, "PartialOrderState.record: tokens")));
        }, py::arg("tokens"), "Append a request's quintuples (1-D record array of exactly QUINTUPLE_DTYPE).")
        .def("sequence", [](const poem::partial_order_state& s, std::int64_t now, std::size_t length) {
            return sequence_dict(s.sequence(now, length));
        }, py::arg("now"), py::arg("length"))
        .def("serialize", [](const poem::partial_order_state& s) {
            const auto b = s.serialize();
            return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
        })
        .def_static("deserialize", [](const py::buffer& data) {
            py::buffer_info info;
            return poem::partial_order_state::deserialize(bytes_view(data, info, "PartialOrderState.deserialize: data"));
        }, py::arg("data"), "A state from its bytes (bytes, bytearray or memoryview).")
        .def_property_readonly("token_count", &poem::partial_order_state::token_count)
        .def_property_readonly("request_count", &poem::partial_order_state::request_count);

    py::class_<poem::engagement_config>(m, "EngagementConfig")
        .def(py::init([](bool click, bool long_view, double long_view_seconds, bool like, bool follow) {
                 return poem::engagement_config{click, long_view,
                                                float_field(long_view_seconds, "EngagementConfig.long_view_seconds"),
                                                like, follow};
             }),
             py::arg("click") = true, py::arg("long_view") = true, py::arg("long_view_seconds") = 10.0,
             py::arg("like") = true, py::arg("follow") = true);

    py::class_<engagement_log>(m, "EngagementLog")
        .def(py::init<>())
        .def("extend",
             [](engagement_log& log, const py::object& item_arg, const py::object& time_arg,
                const py::object& play_arg, const py::object& duration_arg, const py::object& click_arg,
                const py::object& like_arg, const py::object& follow_arg) {
                 const auto events = engagement_events(0, item_arg, time_arg, play_arg, duration_arg, click_arg, like_arg,
                                                       follow_arg, "EngagementLog.extend");
                 log.events.insert(log.events.end(), events.begin(), events.end());
             },
             py::arg("item"), py::arg("time"), py::arg("play_time"), py::arg("duration"), py::arg("click"),
             py::arg("like"), py::arg("follow"),
             "Append events (1-D arrays of one length). " ID_RULE " time: integers (int64). " FLOAT_RULE " " MASK_RULE)
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
