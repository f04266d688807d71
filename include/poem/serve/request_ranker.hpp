#pragma once
// request_ranker: one request through POEM's serving path, the layer that ties the others together.
//
//   poem::request_ranker ranker(model, config);       // immutable, share across threads
//   poem::user_history& user = ...;                   // the host keeps one per user
//   ranker.rank(user, now, item_ids, scores, ws, out);  // fusion, levels, sequences, forward pass
//   ranker.record(user, out, ws);                     // after serving: the request joins the state
//   ranker.log(user, event);                          // later: what the user did with an item
//
// rank() reads the user's history and writes only `out`, so a request never sees itself: the
// partial-order sequence holds earlier requests, the chronological one engagements before `now`.
// The model's candidate features are those of python/poem_eval/pipeline.py (candidate_features):
// fused score, fused rank percentile, level, then K "objective" rows: the K scores normalised by the
// fusion spec, followed, when `raw_features` names one transform per objective, by the K raw scores
// through it (what normalising within a request drops: how good a candidate is in absolute terms).
// A non-finite raw score enters as 0; fusion ranks it last (the fusion policy, docs/fusion.md).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
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

namespace poem {

// How an objective's raw score is fed to the model beside its normalised value.
enum class raw_transform {
    identity,
    log1p,  // log1p(max(x, 0)): for unbounded scores such as a predicted watch time in seconds
};

struct ranker_config {
    fusion_spec fusion;
    level_spec levels;                        // directions: one per objective (directions_of(fusion))
    std::vector<raw_transform> raw_features;  // empty, or one per objective
    std::size_t po_length = 32;               // partial-order sequence length
    std::size_t chrono_length = 32;           // chronological sequence length
    std::size_t state_tokens = 128;           // partial_order_state bounds
    std::size_t state_requests = 16;
    std::size_t log_capacity = 1024;          // engaged events kept per user (newest), >= chrono_length
    engagement_rule engagement;               // which events enter the chronological sequence
    std::uint64_t seed = 0;                   // level sampling (level_spec.policy == weighted)
    std::size_t rank_head = 0;                // the model output that orders the candidates
};

// What the ranker remembers of one user.
struct user_history {
    partial_order_state state;
    std::vector<engagement_event> log;  // engaged events, in arrival order
};

// One ranked request; reuse it across requests to keep its memory.
struct ranked_request {
    std::int64_t time = 0;
    std::vector<std::uint64_t> item_id;
    fusion_result fused;
    levels_result levels;
    std::vector<float> rank_pct;       // N: fused rank percentile
    std::vector<float> objectives;     // model().config().n_objectives x N
    po_sequence po;
    chrono_sequence chrono;
    prediction scores;                 // N x heads
    std::vector<std::uint32_t> order;  // candidates by scores(., rank_head), best first (ties: index;
                                       // non-finite last)

    std::size_t size() const noexcept { return item_id.size(); }
    std::vector<float> rank_score_;    // scratch: rank()'s ranking head, record()'s quintuples
    std::vector<quintuple> tokens_;
    std::vector<quintuple> sampled_;
};

class request_ranker {
public:
    // The model must outlive the ranker. Throws poem::error when the config and the model disagree.
    request_ranker(const model& m, ranker_config cfg) : model_(&m), cfg_(std::move(cfg)) {
        const std::size_t k = cfg_.fusion.objectives.size();
        validate(cfg_.fusion, k);
        validate(cfg_.levels, k);
        validate(cfg_.engagement);
        const model_config& mc = m.config();
        check(cfg_.raw_features.empty() || cfg_.raw_features.size() == k, "ranker_config.raw_features: ",
              cfg_.raw_features.size(), " transforms for ", k, " objectives (0 or ", k, ")");
        check(mc.n_objectives == k + cfg_.raw_features.size(), "ranker_config: the model takes ",
              mc.n_objectives, " objective rows, the config gives ", k + cfg_.raw_features.size());
        check(mc.chrono_feats <= 1, "ranker_config: the model wants ", mc.chrono_feats,
              " features per chronological token; the ranker gives 1 (play ratio)");
        check(cfg_.rank_head < mc.outputs(), "ranker_config.rank_head = ", cfg_.rank_head, ", the model has ",
              mc.outputs(), " outputs");
        check(cfg_.po_length <= max_chrono_length && cfg_.chrono_length <= max_chrono_length,
              "ranker_config: sequence lengths must be <= ", max_chrono_length);
        for (std::size_t j = 0; j < cfg_.raw_features.size(); ++j)
            check(cfg_.raw_features[j] == raw_transform::identity || cfg_.raw_features[j] == raw_transform::log1p,
                  "ranker_config.raw_features[", j, "]: unknown transform ", static_cast<int>(cfg_.raw_features[j]));
        (void)new_user();  // the state bounds: partial_order_state checks them, here rather than per user
        check(cfg_.log_capacity >= cfg_.chrono_length, "ranker_config.log_capacity (", cfg_.log_capacity,
              ") < chrono_length (", cfg_.chrono_length, ")");
    }

    const ranker_config& config() const noexcept { return cfg_; }
    const poem::model& model() const noexcept { return *model_; }

    user_history new_user() const { return {partial_order_state(cfg_.state_tokens, cfg_.state_requests), {}}; }

    // Scores the request's N candidates (`scores`: K x N, objectives as rows) for `user` at `now`.
    void rank(const user_history& user, std::int64_t now, span<const std::uint64_t> item_ids,
              matrix_view<const float> scores, workspace& ws, ranked_request& out) const {
        const std::size_t n = item_ids.size(), k = cfg_.fusion.objectives.size();
        check(scores.rows() == k && scores.cols() == n, "rank: scores are ", scores.rows(), " x ", scores.cols(),
              ", expected ", k, " objectives x ", n, " candidates");
        out.time = now;
        out.item_id.assign(item_ids.begin(), item_ids.end());
        fuse(scores, cfg_.fusion, ws, out.fused);
        assign_levels(scores, out.fused, cfg_.levels, ws, out.levels);
        out.rank_pct.resize(n);
        for (std::size_t i = 0; i < n; ++i) out.rank_pct[i] = out.fused.fused_rank_pct(i);

        const std::size_t rows = k + cfg_.raw_features.size();
        out.objectives.resize(rows * n);
        std::copy(out.fused.normalized.begin(), out.fused.normalized.begin() + k * n, out.objectives.begin());
        for (std::size_t r = 0; r < cfg_.raw_features.size(); ++r) {
            float* dst = out.objectives.data() + (k + r) * n;
            const bool log = cfg_.raw_features[r] == raw_transform::log1p;
            for (std::size_t i = 0; i < n; ++i) {
                const float x = scores(r, i);
                dst[i] = !std::isfinite(x) ? 0.0f : log ? std::log1p(std::max(x, 0.0f)) : x;
            }
        }

        user.state.sequence(now, cfg_.po_length, ws, out.po);
        build_chrono_sequence(user.log, now, cfg_.chrono_length, cfg_.engagement, ws, out.chrono);

        const candidate_view cand{out.item_id, out.fused.fused, out.rank_pct, out.levels.level,
                                  matrix_view<const float>(out.objectives.data(), rows, n)};
        const chrono_view chrono{out.chrono.item_id, out.chrono.age_seconds,
                                 matrix_view<const float>(out.chrono.play_ratio.data(), cfg_.chrono_length,
                                                          model_->config().chrono_feats),
                                 out.chrono.mask};
        const po_view po{out.po.item_id, out.po.fused_score, out.po.rank_pct, out.po.level, out.po.age_seconds,
                         out.po.mask};
        out.scores.rows = n;
        out.scores.cols = model_->outputs();
        out.scores.values.resize(n * out.scores.cols);
        model_->predict(cand, chrono, po, ws, matrix_view<float>(out.scores.values.data(), n, out.scores.cols));

        // The final order: rank_order on the ranking head (ties by index, non-finite last).
        out.rank_score_.resize(n);
        for (std::size_t i = 0; i < n; ++i) out.rank_score_[i] = out.scores(i, cfg_.rank_head);
        out.order.resize(n);
        rank_order(span<const float>(out.rank_score_), direction::higher_is_better, ws, span<std::uint32_t>(out.order));
    }

    // After the request is served: its quintuples, sampled by level, join the user's state.
    void record(user_history& user, ranked_request& r, workspace& ws) const {
        quintuples(r.item_id, r.time, r.fused, r.tokens_);
        write_levels(r.tokens_, r.levels);
        rng gen(cfg_.seed ^ static_cast<std::uint64_t>(r.time));
        select_by_level(r.tokens_, cfg_.levels, gen, ws, r.sampled_);
        user.state.record(r.sampled_, ws);
    }

    // What the user did with an item. Only events the engagement rule counts are kept (no other can
    // enter a chronological sequence), so trimming never drops an engagement for non-engaged
    // exposures: the oldest go once the log holds twice log_capacity.
    void log(user_history& user, const engagement_event& e) const {
        if (!is_engaged(e, cfg_.engagement)) return;
        user.log.push_back(e);
        if (user.log.size() >= 2 * cfg_.log_capacity)
            user.log.erase(user.log.begin(), user.log.end() - static_cast<std::ptrdiff_t>(cfg_.log_capacity));
    }

private:
    const poem::model* model_;
    ranker_config cfg_;
};

}  // namespace poem
