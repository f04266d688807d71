#pragma once
// request_ranker: one request through POEM's serving path, the layer that ties the others together.
//
//   const poem::request_ranker ranker(model);          // the model file's serving config; share across threads
//   poem::user_history user = ranker.new_user(id);     // or user_history::deserialize(kv bytes)
//   ranker.rank(user, now, item_ids, scores, ws, out); // fusion, levels, sequences, forward pass
//   ranker.record(user, out, ws);                      // after serving: the request joins the state
//   ranker.log(user, event);                           // later: what the user did with an item
//
// rank() reads the user's history and writes only `out`, so a request never sees itself: the
// partial-order sequence holds earlier requests, the chronological one engagements before `now`.
// The model's candidate features (candidate_features() below, what training reads too): fused score,
// fused rank percentile, level, then the "objective" rows: the K scores normalised by the fusion spec;
// when `raw_features` names one transform per objective, the K raw scores through it (what normalising
// within a request drops: how good a candidate is in absolute terms); then the S side features (rows
// K.. of `scores`: what the caller knows of each candidate besides the upstream scores, such as item
// statistics) through theirs. A non-finite raw score or side feature enters as 0; fusion ranks a
// non-finite score last (the fusion policy, docs/fusion.md).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/rng.hpp"
#include "poem/core/span.hpp"
#include "poem/core/workspace.hpp"
#include "poem/fusion/fuse.hpp"
#include "poem/fusion/rank.hpp"
#include "poem/model/model.hpp"
#include "poem/order/chrono.hpp"
#include "poem/order/level_selection.hpp"
#include "poem/order/levels.hpp"
#include "poem/order/state.hpp"
#include "poem/serve/ranker_config.hpp"
#include "poem/serve/user_history.hpp"

namespace poem {

// The seed of everything random in one request of one user (level selection under the weighted policy):
// SplitMix64 steps over (config seed, user id, request time, the user's count of recorded requests).
// It depends on nothing else, so a request draws the same whichever thread or process ranks it, in
// whatever order users are replayed; two users ranked in the same second, and two requests of one user
// in the same second, draw different streams.
inline std::uint64_t request_seed(std::uint64_t seed, std::uint64_t user_id, std::int64_t time,
                                  std::uint64_t ordinal) noexcept {
    std::uint64_t h = rng(seed)();
    h = rng(h ^ user_id)();
    h = rng(h ^ static_cast<std::uint64_t>(time))();
    return rng(h ^ ordinal)();
}

// One ranked request; reuse it across requests to keep its memory.
struct ranked_request {
    enum class status { empty, ranked, recorded };

    std::uint64_t user_id = 0;
    std::int64_t time = 0;
    std::vector<std::uint64_t> item_id;
    fusion_result fused;
    levels_result levels;
    std::vector<float> rank_pct;        // N: fused rank percentile
    std::size_t objective_rows = 0;     // the config's: K normalised rows, the raw rows, the side rows
    std::vector<float> objectives;      // objective_rows x N
    std::vector<quintuple> tokens;      // N: the candidates' quintuples, levels filled in
    po_sequence po;
    chrono_sequence chrono;
    prediction scores;                  // N x heads (N x 0 for a ranker without a model)
    std::vector<std::uint32_t> order;   // candidates best first: by scores(., rank_head), ties by index,
                                        // non-finite last; by fused score for a ranker without a model
    std::vector<quintuple> recorded;    // record(): the tokens that joined the user's state
    status state = status::empty;       // rank() sets ranked when it completes, record() recorded

    std::size_t size() const noexcept { return item_id.size(); }
};

// The model's candidate features of a ranked request, N x (3 + objective rows), row-major: fused score,
// fused rank percentile, level, then the objective rows. The layout of python/poem_ref's `cand_feats`.
inline void candidate_features(const ranked_request& r, matrix_view<float> out) {
    const std::size_t n = r.size(), rows = r.objective_rows;
    check(out.rows() == n && out.cols() == 3 + rows, "candidate_features: out is ", out.rows(), " x ", out.cols(),
          ", expected ", n, " x ", 3 + rows);
    for (std::size_t i = 0; i < n; ++i) {
        out(i, 0) = r.fused.fused[i];
        out(i, 1) = r.rank_pct[i];
        out(i, 2) = static_cast<float>(r.levels.level[i]);
        for (std::size_t k = 0; k < rows; ++k) out(i, 3 + k) = r.objectives[k * n + i];
    }
}

// A raw score or side feature as the model sees it: non-finite as 0, log1p(max(x, 0)) under log1p.
inline float transformed(float x, raw_transform t) noexcept {
    if (!std::isfinite(x)) return 0.0f;
    return t == raw_transform::log1p ? std::log1p(std::max(x, 0.0f)) : x;
}

class request_ranker {
public:
    // Serves `m` with the configuration it was trained with (its "poem_serving" metadata); throws
    // poem::error when the file carries none. The model must outlive the ranker. Fusion method learned
    // takes the ensemble the file carries (model::learned_fusion()); a file with none is refused.
    explicit request_ranker(const model& m) : request_ranker(&m, serving_config_of(m)) {}

    // Serves `m` with `cfg`. When the model carries a serving config, `cfg` must build the same
    // inputs (it may differ in log_capacity and rank_head only); poem::error names the first field
    // that differs. Method learned: `cfg`'s ensemble if set, else the model file's; both set must be equal.
    request_ranker(const model& m, ranker_config cfg) : request_ranker(&m, std::move(cfg)) {
        const auto it = m.metadata().find(ranker_config::metadata_key);
        if (it == m.metadata().end()) return;
        const ranker_config trained = ranker_config_from_json(it->second, m.source());
        const std::string field = first_difference(cfg_, trained);
        check(field.empty(), "ranker_config.", field, ": differs from the serving config the model '", m.source(),
              "' was trained with");
    }

    // No model: rank() builds everything but the scores (fusion, levels, features, sequences) and orders
    // by fused score. This is how an offline replay builds a model's training data with the serving code.
    // Method learned needs cfg.fusion.learned set.
    explicit request_ranker(ranker_config cfg) : request_ranker(nullptr, std::move(cfg)) {}

    const ranker_config& config() const noexcept { return cfg_; }
    bool has_model() const noexcept { return model_ != nullptr; }
    const poem::model& model() const {
        check(model_ != nullptr, "request_ranker: this ranker has no model");
        return *model_;
    }

    user_history new_user(std::uint64_t user_id) const {
        user_history h;
        h.user_id = user_id;
        h.state = partial_order_state(cfg_.state_tokens, cfg_.state_requests);
        return h;
    }

    // Scores the request's N candidates for `user` at `now`. `scores`: (K + S) x N, the K objectives'
    // scores as rows, then the config's S side features. Reads the history, writes only `out` (so no
    // request sees itself). A rank() that throws leaves `out` empty (status::empty): record() refuses it.
    void rank(const user_history& user, std::int64_t now, span<const std::uint64_t> item_ids,
              matrix_view<const float> scores, workspace& ws, ranked_request& out) const {
        out.state = ranked_request::status::empty;
        const std::size_t n = item_ids.size(), k = cfg_.fusion.objectives.size();
        check(scores.rows() == cfg_.score_rows() && scores.cols() == n, "rank: scores are ", scores.rows(), " x ",
              scores.cols(), ", expected ", k, " objectives + ", cfg_.side_features.size(), " side features x ", n,
              " candidates");
        out.user_id = user.user_id;
        out.time = now;
        out.item_id.assign(item_ids.begin(), item_ids.end());
        out.recorded.clear();
        const matrix_view<const float> objective_scores(scores.data(), k, n);  // rows 0..K-1
        fuse(objective_scores, cfg_.fusion, ws, out.fused);
        assign_levels(objective_scores, out.fused, cfg_.levels, ws, out.levels);
        out.rank_pct.resize(n);
        for (std::size_t i = 0; i < n; ++i) out.rank_pct[i] = out.fused.fused_rank_pct(i);
        quintuples(out.item_id, now, out.fused, out.tokens);
        write_levels(out.tokens, out.levels);

        const std::size_t rows = cfg_.objective_rows();
        out.objective_rows = rows;
        out.objectives.resize(rows * n);
        std::copy(out.fused.normalized.begin(), out.fused.normalized.begin() + static_cast<std::ptrdiff_t>(k * n),
                  out.objectives.begin());
        // Raw rows: score row r through raw_features[r]; side rows: score row k + s through side_features[s].
        const std::size_t raw = cfg_.raw_features.size();
        for (std::size_t r = 0; r < raw + cfg_.side_features.size(); ++r) {
            const bool side = r >= raw;
            const raw_transform t = side ? cfg_.side_features[r - raw] : cfg_.raw_features[r];
            const float* src = scores.data() + (side ? k + r - raw : r) * n;
            float* dst = out.objectives.data() + (k + r) * n;
            for (std::size_t i = 0; i < n; ++i) dst[i] = transformed(src[i], t);
        }

        user.state.sequence(now, cfg_.po_length, ws, out.po);
        build_chrono_sequence(user.log, now, cfg_.chrono_length, cfg_.engagement, ws, out.chrono);

        if (model_ == nullptr) {
            out.scores.rows = n;
            out.scores.cols = 0;
            out.scores.values.clear();
            out.order.assign(out.fused.order.begin(), out.fused.order.end());
            out.state = ranked_request::status::ranked;
            return;
        }
        const std::size_t chrono_feats = model_->config().chrono_feats;
        const candidate_view cand{out.item_id, out.fused.fused, out.rank_pct, out.levels.level,
                                  matrix_view<const float>(out.objectives.data(), rows, n)};
        const chrono_view chrono{out.chrono.item_id, out.chrono.age_seconds,
                                 matrix_view<const float>(out.chrono.play_ratio.data(), cfg_.chrono_length, chrono_feats),
                                 out.chrono.mask};
        const po_view po{out.po.item_id, out.po.fused_score, out.po.rank_pct, out.po.level, out.po.age_seconds,
                         out.po.mask};
        out.scores.rows = n;
        out.scores.cols = model_->outputs();
        out.scores.values.resize(n * out.scores.cols);
        model_->predict(cand, chrono, po, ws, matrix_view<float>(out.scores.values.data(), n, out.scores.cols));

        // The final order: the ranking head, best first (ties by index, non-finite last).
        {
            auto scope = ws.scope();
            const span<float> head = scope.alloc<float>(n);
            for (std::size_t i = 0; i < n; ++i) head[i] = out.scores(i, cfg_.rank_head);
            out.order.resize(n);
            rank_order(span<const float>(head), direction::higher_is_better, ws, span<std::uint32_t>(out.order));
        }
        out.state = ranked_request::status::ranked;
    }

    // After the request is served: its tokens, selected by level (seeded by request_seed()), join the
    // user's state (`r.recorded` holds them). Refuses a request that did not complete rank(), one
    // already recorded, and one ranked for another user.
    void record(user_history& user, ranked_request& r, workspace& ws) const {
        check(r.state != ranked_request::status::empty,
              "record: the ranked_request holds no completed rank() (it threw, or none ran)");
        check(r.state != ranked_request::status::recorded, "record: this ranked_request is already recorded");
        check(r.user_id == user.user_id, "record: the request was ranked for user ", r.user_id, ", not ", user.user_id);
        rng gen(request_seed(cfg_.seed, user.user_id, r.time, user.requests_recorded));
        select_by_level(r.tokens, cfg_.levels, gen, ws, r.recorded);
        user.state.record(r.recorded, ws);
        ++user.requests_recorded;
        r.state = ranked_request::status::recorded;
    }

    // What the user did with an item. Only events the engagement rule counts are kept (no other can
    // enter a chronological sequence), so trimming never drops an engagement for non-engaged
    // exposures: the oldest go once the log holds twice log_capacity.
    // Refuses another user's event.
    void log(user_history& user, const engagement_event& e) const {
        check(e.user_id == user.user_id, "log: the event is user ", e.user_id, "'s, the history user ", user.user_id,
              "'s");
        if (!is_engaged(e, cfg_.engagement)) return;
        user.log.push_back(e);
        if (user.log.size() >= 2 * cfg_.log_capacity)
            user.log.erase(user.log.begin(), user.log.end() - static_cast<std::ptrdiff_t>(cfg_.log_capacity));
    }

private:
    request_ranker(const poem::model* m, ranker_config cfg) : model_(m), cfg_(std::move(cfg)) {
        validate(cfg_);
        if (cfg_.fusion.method == fusion_method::learned) supply_ensemble();
        if (m == nullptr) return;
        const model_config& mc = m->config();
        const std::size_t k = cfg_.fusion.objectives.size();
        check(mc.n_objectives == cfg_.objective_rows(), "ranker_config: the model '", m->source(), "' takes ",
              mc.n_objectives, " objective rows; the config gives ", k, " (fusion.objectives) + ",
              cfg_.raw_features.size(), " (raw_features) + ", cfg_.side_features.size(), " (side_features)");
        check(mc.chrono_feats <= 1, "ranker_config: the model '", m->source(), "' wants ", mc.chrono_feats,
              " features per chronological token; the ranker gives 1 (play ratio)");
        check(cfg_.rank_head < mc.outputs(), "ranker_config.rank_head = ", cfg_.rank_head, ", the model '",
              m->source(), "' has ", mc.outputs(), " outputs");
    }

    // Method learned: the config's ensemble if it holds one, else the model file's; both must agree.
    void supply_ensemble() {
        const std::shared_ptr<const learned_fusion> file = model_ ? model_->learned_fusion() : nullptr;
        if (cfg_.fusion.learned == nullptr) {
            check(model_ != nullptr, "ranker_config.fusion.learned: method learned needs an ensemble, and a ranker "
                  "without a model has no model file to take it from");
            check(file != nullptr, "ranker_config.fusion.learned: method learned needs an ensemble; none is set and the "
                  "model '", model_->source(), "' carries no fusion.* tensors");
            cfg_.fusion.learned = file;
        } else if (file != nullptr) {
            check(*cfg_.fusion.learned == *file, "ranker_config.fusion.learned: differs from the ensemble the model '",
                  model_->source(), "' carries");
        }
        validate(cfg_.fusion, cfg_.fusion.objectives.size());
    }

    static ranker_config serving_config_of(const poem::model& m) {
        const auto it = m.metadata().find(ranker_config::metadata_key);
        check(it != m.metadata().end(), "request_ranker: the model '", m.source(), "' carries no '",
              ranker_config::metadata_key, "' serving config in its metadata: pass a ranker_config");
        return ranker_config_from_json(it->second, m.source());
    }

    const poem::model* model_;
    ranker_config cfg_;
};

}  // namespace poem
