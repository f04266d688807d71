// serve/: the request ranker, the per-user history and the ranked request. The offline replay that
// builds training data (python/poem_eval) is a loop over these calls, so training and serving share
// one orchestration. Arrays of a RankedRequest are numpy views of its memory (read-only, valid while
// the RankedRequest lives and until it is passed as `out` to another rank()).
#include "common.hpp"

#include <string_view>

#include "poem/serve/request_ranker.hpp"

namespace poem_py {

namespace {

// A read-only numpy view of `v` (shape `shape`, C order) that keeps `owner` alive.
template <class T>
py::array view_of(const std::vector<T>& v, std::vector<py::ssize_t> shape, py::handle owner) {
    if (shape.empty()) shape = {static_cast<py::ssize_t>(v.size())};
    py::array_t<T> a(shape, v.data(), owner);
    py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return std::move(a);
}

py::dict po_dict(const poem::po_sequence& s, py::handle owner) {
    py::dict d;
    d["item_id"] = view_of(s.item_id, {}, owner);
    d["fused_score"] = view_of(s.fused_score, {}, owner);
    d["rank_pct"] = view_of(s.rank_pct, {}, owner);
    d["level"] = view_of(s.level, {}, owner);
    d["age_seconds"] = view_of(s.age_seconds, {}, owner);
    d["request_index"] = view_of(s.request_index, {}, owner);
    d["mask"] = view_of(s.mask, {}, owner);
    d["count"] = s.count;
    return d;
}

py::dict chrono_dict(const poem::chrono_sequence& s, py::handle owner) {
    py::dict d;
    d["item_id"] = view_of(s.item_id, {}, owner);
    d["age_seconds"] = view_of(s.age_seconds, {}, owner);
    d["play_ratio"] = view_of(s.play_ratio, {}, owner);
    d["click"] = view_of(s.click, {}, owner);
    d["like"] = view_of(s.like, {}, owner);
    d["follow"] = view_of(s.follow, {}, owner);
    d["long_view"] = view_of(s.long_view, {}, owner);
    d["mask"] = view_of(s.mask, {}, owner);
    d["count"] = s.count;
    return d;
}

}  // namespace

void bind_serve(py::module_& m) {
    py::enum_<poem::raw_transform>(m, "RawTransform")
        .value("identity", poem::raw_transform::identity)
        .value("log1p", poem::raw_transform::log1p);

    py::class_<poem::ranker_config>(m, "RankerConfig",
                                    "Everything that decides what a RequestRanker builds from a request; the model "
                                    "file carries it as JSON (metadata key 'poem_serving').")
        .def(py::init([](const poem::fusion_config& fusion, const poem::level_config& levels,
                         std::vector<poem::raw_transform> raw_features, std::size_t po_length,
                         std::size_t chrono_length, std::size_t state_tokens, std::size_t state_requests,
                         std::size_t log_capacity, const poem::engagement_config& engagement, std::uint64_t seed,
                         std::size_t rank_head, std::vector<poem::raw_transform> side_features) {
                 poem::ranker_config c;
                 c.fusion = fusion;
                 c.levels = levels;
                 c.raw_features = std::move(raw_features);
                 c.side_features = std::move(side_features);
                 c.po_length = po_length;
                 c.chrono_length = chrono_length;
                 c.state_tokens = state_tokens;
                 c.state_requests = state_requests;
                 c.log_capacity = log_capacity;
                 c.engagement = engagement;
                 c.seed = seed;
                 c.rank_head = rank_head;
                 poem::validate(c);
                 return c;
             }),
             py::arg("fusion"), py::arg("levels"), py::arg("raw_features") = std::vector<poem::raw_transform>{},
             py::arg("po_length") = 32, py::arg("chrono_length") = 32, py::arg("state_tokens") = 128,
             py::arg("state_requests") = 16, py::arg("log_capacity") = 1024,
             py::arg("engagement") = poem::engagement_config{}, py::arg("seed") = 0, py::arg("rank_head") = 0,
             py::arg("side_features") = std::vector<poem::raw_transform>{},
             "side_features: one transform per side feature row, the rows a request passes after its K scores "
             "(item statistics, user counts...): the model sees them, fusion, levels and sequences do not.")
        .def_static("from_json", &poem::ranker_config_from_json, py::arg("text"), py::arg("source") = "<config>",
                    "Parse and validate the JSON of to_json() (strict: every field, no unknown ones).")
        .def("to_json", [](const poem::ranker_config& c) { return poem::to_json(c); })
        .def("first_difference", &poem::first_difference, py::arg("other"),
             "The first field in which the two configs build different inputs ('' when none).")
        .def_property_readonly("objective_rows", &poem::ranker_config::objective_rows)
        .def_property_readonly("score_rows", &poem::ranker_config::score_rows,
                               "Rows of the scores a request passes: K objectives, then the side features.")
        .def_readonly("po_length", &poem::ranker_config::po_length)
        .def_readonly("chrono_length", &poem::ranker_config::chrono_length)
        .def_readonly("seed", &poem::ranker_config::seed)
        .def_readonly("rank_head", &poem::ranker_config::rank_head)
        .def_readonly("state_tokens", &poem::ranker_config::state_tokens)
        .def_readonly("state_requests", &poem::ranker_config::state_requests)
        .def_readonly("raw_features", &poem::ranker_config::raw_features)
        .def_readonly("side_features", &poem::ranker_config::side_features)
        .def_property_readonly("metadata_key", [](const poem::ranker_config&) { return poem::ranker_config::metadata_key; })
        .def("__eq__", [](const poem::ranker_config& a, const poem::ranker_config& b) {
            return poem::to_json(a) == poem::to_json(b);
        });

    py::class_<poem::user_history>(m, "UserHistory",
                                   "What the ranker keeps of one user (partial-order state and engaged events); "
                                   "serialize() is the one record a host stores per user.")
        .def_readonly("user_id", &poem::user_history::user_id)
        .def_readonly("requests_recorded", &poem::user_history::requests_recorded)
        .def_property_readonly("token_count", [](const poem::user_history& h) { return h.state.token_count(); })
        .def_property_readonly("request_count", [](const poem::user_history& h) { return h.state.request_count(); })
        .def_property_readonly("log_size", [](const poem::user_history& h) { return h.log.size(); })
        .def("serialize",
             [](const poem::user_history& h) {
                 const auto b = h.serialize();
                 return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
             })
        .def_static(
            "deserialize",
            [](const py::buffer& data) {
                py::buffer_info info;
                return poem::user_history::deserialize(bytes_view(data, info, "UserHistory.deserialize: data"));
            },
            py::arg("data"), "A history from its bytes (bytes, bytearray or memoryview); poem.Error names the offset.")
        .def("__eq__", [](const poem::user_history& a, const poem::user_history& b) { return a == b; });

    py::class_<poem::ranked_request>(m, "RankedRequest", "One ranked request; arrays are read-only views.")
        .def(py::init<>())
        .def_readonly("user_id", &poem::ranked_request::user_id)
        .def_readonly("time", &poem::ranked_request::time)
        .def_property_readonly("size", &poem::ranked_request::size)
        .def_property_readonly("status",
                               [](const poem::ranked_request& r) {
                                   return r.state == poem::ranked_request::status::empty    ? "empty"
                                          : r.state == poem::ranked_request::status::ranked ? "ranked"
                                                                                             : "recorded";
                               })
        .def_property_readonly("item_id", [](py::object self) {
            return view_of(self.cast<const poem::ranked_request&>().item_id, {}, self);
        })
        .def_property_readonly("fused", [](py::object self) {
            return view_of(self.cast<const poem::ranked_request&>().fused.fused, {}, self);
        })
        .def_property_readonly("fused_rank", [](py::object self) {
            return view_of(self.cast<const poem::ranked_request&>().fused.fused_rank, {}, self);
        })
        .def_property_readonly("rank_pct", [](py::object self) {
            return view_of(self.cast<const poem::ranked_request&>().rank_pct, {}, self);
        })
        .def_property_readonly("level", [](py::object self) {
            return view_of(self.cast<const poem::ranked_request&>().levels.level, {}, self);
        })
        .def_property_readonly("objectives", [](py::object self) {
            const auto& r = self.cast<const poem::ranked_request&>();
            const auto n = static_cast<py::ssize_t>(r.size());
            return view_of(r.objectives, {static_cast<py::ssize_t>(r.objective_rows), n}, self);
        }, "objective_rows x N: the normalised scores, then the raw feature rows.")
        .def_property_readonly("scores", [](py::object self) {
            const auto& r = self.cast<const poem::ranked_request&>();
            return view_of(r.scores.values, {static_cast<py::ssize_t>(r.scores.rows), static_cast<py::ssize_t>(r.scores.cols)},
                           self);
        }, "N x heads: the model's outputs (N x 0 for a ranker without a model).")
        .def_property_readonly("order", [](py::object self) {
            return view_of(self.cast<const poem::ranked_request&>().order, {}, self);
        })
        .def_property_readonly("tokens", [](py::object self) {
            return view_of(self.cast<const poem::ranked_request&>().tokens, {}, self);
        }, "The candidates' quintuples (QUINTUPLE_DTYPE), levels filled in.")
        .def_property_readonly("recorded", [](py::object self) {
            return view_of(self.cast<const poem::ranked_request&>().recorded, {}, self);
        }, "After record(): the quintuples that joined the user's state.")
        .def_property_readonly("po", [](py::object self) { return po_dict(self.cast<const poem::ranked_request&>().po, self); })
        .def_property_readonly("chrono",
                               [](py::object self) { return chrono_dict(self.cast<const poem::ranked_request&>().chrono, self); })
        .def("candidate_features",
             [](const poem::ranked_request& r) {
                 const std::size_t n = r.size(), rows = r.objective_rows;
                 py::array_t<float> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(3 + rows)});
                 poem::candidate_features(r, poem::matrix_view<float>(out.mutable_data(), n, 3 + rows));
                 return out;
             },
             "N x (3 + objective_rows): fused score, rank percentile, level, objective rows (the model's input).");

    m.def("request_seed", &poem::request_seed, py::arg("seed"), py::arg("user_id"), py::arg("time"),
          py::arg("ordinal"), "The seed of one request's random choices (docs/serving.md).");

    py::class_<poem::request_ranker>(m, "RequestRanker",
                                     "One request end to end (docs/serving.md): the same C++ code serves and builds "
                                     "training data. Immutable: share it across threads.")
        .def(py::init<const poem::model&>(), py::arg("model"), py::keep_alive<1, 2>(),
             "Serve `model` with the serving config its file carries.")
        .def(py::init<const poem::model&, poem::ranker_config>(), py::arg("model"), py::arg("config"),
             py::keep_alive<1, 2>(), "Serve `model` with `config` (which must agree with the model's own).")
        .def(py::init<poem::ranker_config>(), py::arg("config"),
             "No model: rank() builds fusion, levels, features and sequences, and orders by fused score.")
        .def_property_readonly("config", &poem::request_ranker::config)
        .def_property_readonly("has_model", &poem::request_ranker::has_model)
        .def("new_user", &poem::request_ranker::new_user, py::arg("user_id"))
        .def(
            "rank",
            [](const poem::request_ranker& self, const poem::user_history& user, std::int64_t now,
               const py::object& item_ids_arg, const py::object& scores_arg, poem::workspace* ws,
               std::optional<py::object> out) {
                const auto item_ids = int_arg<std::uint64_t>(item_ids_arg, "rank: item_ids", 1);
                const auto scores = float_arg<float>(scores_arg, "rank: scores", 2);
                const auto sc = matrix(scores, "rank: scores");
                py::object result = out ? *out : py::cast(poem::ranked_request{});
                auto& r = result.cast<poem::ranked_request&>();
                poem::workspace local;
                {
                    py::gil_scoped_release release;
                    self.rank(user, now, view(item_ids), sc, ws ? *ws : local, r);
                }
                return result;
            },
            py::arg("history"), py::arg("now"), py::arg("item_ids"), py::arg("scores"), py::arg("workspace") = nullptr,
            py::arg("out") = py::none(),
            "Rank one request: item_ids (N, uint64), scores ((K + S) x N, float32: the K objectives, then the config's "
            "S side features). Returns a RankedRequest (`out` "
            "when given: its earlier arrays then change).\n\nitem_ids: " ID_RULE " scores: " FLOAT_RULE)
        .def(
            "record",
            [](const poem::request_ranker& self, poem::user_history& user, poem::ranked_request& r,
               poem::workspace* ws) {
                poem::workspace local;
                self.record(user, r, ws ? *ws : local);
            },
            py::arg("history"), py::arg("ranked"), py::arg("workspace") = nullptr,
            "After serving: the request's tokens, selected by level, join the user's state.")
        .def(
            "log",
            [](const poem::request_ranker& self, poem::user_history& user, const py::object& item_arg,
               const py::object& time_arg, const py::object& play_time_arg, const py::object& duration_arg,
               const py::object& click_arg, const py::object& like_arg, const py::object& follow_arg) {
                for (const poem::engagement_event& e : engagement_events(user.user_id, item_arg, time_arg, play_time_arg,
                                                                         duration_arg, click_arg, like_arg, follow_arg, "log"))
                    self.log(user, e);
            },
            py::arg("history"), py::arg("item"), py::arg("time"), py::arg("play_time"), py::arg("duration"),
            py::arg("click"), py::arg("like"), py::arg("follow"),
            "What the history's user did with items, in order (one event per entry, 1-D arrays of one length); only "
            "engaged events are kept.\n\nitem: " ID_RULE " time: integers within int64. play_time, duration: " FLOAT_RULE
            " click, like, follow: " MASK_RULE);
}

}  // namespace poem_py
