// The serving path end to end (poem::request_ranker): one request of N candidates with K = 4
// objectives, fusion, Pareto levels, the user's partial-order sequence (100 tokens) and chronological
// sequence (100 tokens), the forward pass and the final order, then record() into the user's state.
// Items are requests. The model: d = 32, 1 head, 8 objective rows (4 normalised + 4 raw scores),
// 8 levels, MLP 256-128-64, 3 heads, vocab 100000, random weights.
//
// BM_pipeline_request_naive runs the same request with the naive fusion (std::sort argsort per
// objective) and the naive Pareto levels (Deb's O(K N^2) sort) of bench_fusion and bench_order, and
// the same model: what the fast fusion and order layers are worth inside a request. The model's own
// baselines (a naive tower, LibTorch) are in bench_model. BM_pipeline_stage splits the fast request
// into its stages.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "bench_common.hpp"
#include "model_file.hpp"
#include "naive_fusion.hpp"
#include "naive_order.hpp"
#include "poem/core/rng.hpp"
#include "poem/serve/request_ranker.hpp"

namespace {

constexpr std::size_t k_objectives = 4;
constexpr std::size_t seq_len = 100;

const poem::model& bench_model(poem::precision precision = poem::precision::fp32) {
    auto make = [](poem::precision p) {
        poem::model_config c;
        c.vocab = 100000;
        c.d = 32;
        c.n_heads = 1;
        c.n_objectives = 2 * k_objectives;
        c.n_levels = 8;
        c.chrono_feats = 1;
        return poem::model::from_file(poem_bench::make_model_file(c, 42), {p});
    };
    static const poem::model fp32 = make(poem::precision::fp32);
    if (precision == poem::precision::fp32) return fp32;
    static const poem::model bf16 = make(poem::precision::bf16);
    return bf16;
}

poem::ranker_config bench_ranker_config() {
    poem::ranker_config c;
    for (std::size_t j = 0; j < k_objectives; ++j)
        c.fusion.objectives.push_back({poem::direction::higher_is_better,
                                       j == 3 ? poem::normalization::log1p_min_max : poem::normalization::rank_pct,
                                       1.0f + static_cast<float>(j == 1)});
    c.levels.method = poem::level_method::pareto;
    c.levels.directions = poem::directions_of(c.fusion);
    c.raw_features.assign(k_objectives, poem::raw_transform::identity);
    c.raw_features[3] = poem::raw_transform::log1p;
    c.po_length = seq_len;
    c.chrono_length = seq_len;
    c.state_tokens = 256;
    c.state_requests = 32;
    return c;
}

struct request {
    std::vector<std::uint64_t> ids;
    std::vector<float> scores;  // K x N: three correlated rates and a watch time in seconds
};

poem_bench::rotating<request> requests(std::size_t n) {
    return {8, [n](std::size_t r) {
                poem::rng g(31 * n + r);
                request q;
                q.scores.resize(k_objectives * n);
                for (std::size_t i = 0; i < n; ++i) {
                    q.ids.push_back(g.below(1000000));
                    const float base = g.uniform_float();
                    for (std::size_t j = 0; j < 3; ++j) q.scores[j * n + i] = 0.7f * base + 0.3f * g.uniform_float();
                    q.scores[3 * n + i] = 60.0f * (0.5f * base + 0.5f * g.uniform_float());
                }
                return q;
            }};
}

// A user seen for a while: 40 earlier requests in the state, 400 engagement events in the log, so
// both sequences are full (100 real tokens each).
poem::user_history warm_user(const poem::request_ranker& ranker, std::size_t n, poem::workspace& ws) {
    poem::user_history u = ranker.new_user(1);
    poem::rng g(7);
    poem::ranked_request out;
    auto reqs = requests(n);
    for (std::int64_t t = 0; t < 40; ++t) {
        const request& q = reqs.next();
        ranker.rank(u, 1000 * t, q.ids, poem::matrix_view<const float>(q.scores.data(), k_objectives, n), ws, out);
        ranker.record(u, out, ws);
    }
    for (std::int64_t t = 0; t < 400; ++t) {
        poem::engagement_event e;
        e.user_id = u.user_id;
        e.item_id = g.below(1000000);
        e.time = 100 * t;
        e.play_time = 30.0f * g.uniform_float();
        e.duration = 30.0f;
        e.click = g.uniform_float() < 0.5f;
        ranker.log(u, e);
    }
    return u;
}

void set_counters(benchmark::State& state, std::size_t n) {
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.counters["candidates/s"] = benchmark::Counter(static_cast<double>(state.iterations() * n),
                                                        benchmark::Counter::kIsRate);
}

void run_requests(benchmark::State& state, poem::precision precision) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const poem::request_ranker ranker(bench_model(precision), bench_ranker_config());
    poem::workspace ws;
    poem::user_history user = warm_user(ranker, n, ws);
    auto reqs = requests(n);
    poem::ranked_request out;
    std::int64_t now = 100000;
    for (auto _ : state) {
        const request& q = reqs.next();
        ranker.rank(user, now, q.ids, poem::matrix_view<const float>(q.scores.data(), k_objectives, n), ws, out);
        ranker.record(user, out, ws);
        benchmark::DoNotOptimize(out.order.data());
        now += 1;
    }
    state.counters["po_tokens"] = static_cast<double>(out.po.count);
    state.counters["chrono_tokens"] = static_cast<double>(out.chrono.count);
    set_counters(state, n);
}

void BM_pipeline_request(benchmark::State& state) { run_requests(state, poem::precision::fp32); }
BENCHMARK(BM_pipeline_request)->ArgName("N")->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);
// The same requests with the model loaded in bf16 (docs/model.md, "Precision").
void BM_pipeline_request_bf16(benchmark::State& state) { run_requests(state, poem::precision::bf16); }
BENCHMARK(BM_pipeline_request_bf16)->ArgName("N")->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

// The same request, fusion and levels done naively; the model, sequences and state as above.
void BM_pipeline_request_naive(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const poem::ranker_config cfg = bench_ranker_config();
    const poem::request_ranker ranker(bench_model(), cfg);
    const poem::model& m = bench_model();
    poem::workspace ws;
    poem::user_history user = warm_user(ranker, n, ws);
    auto reqs = requests(n);
    poem_bench::naive_out fused;
    poem_bench::naive_state levels;
    poem::po_sequence po;
    poem::chrono_sequence chrono;
    std::vector<float> rank_pct(n), objectives(2 * k_objectives * n), pred(n * m.outputs());
    std::vector<std::uint32_t> order(n);
    std::vector<poem::quintuple> tokens, sampled;
    std::int64_t now = 100000;
    for (auto _ : state) {
        const request& q = reqs.next();
        poem_bench::naive_fuse(q.scores.data(), k_objectives, n, cfg.fusion, fused);
        poem_bench::naive_levels(q.scores.data(), k_objectives, n, cfg.levels.directions, levels);
        for (std::size_t t = 0; t < n; ++t) rank_pct[fused.order[t]] = 1.0f - (float(t) + 0.5f) / float(n);
        for (std::size_t j = 0; j < k_objectives; ++j)
            for (std::size_t i = 0; i < n; ++i) {
                const float x = q.scores[j * n + i];
                objectives[j * n + i] = 1.0f - (fused.ranks[j * n + i] + 0.5f) / float(n);
                objectives[(k_objectives + j) * n + i] = j == 3 ? std::log1p(std::max(x, 0.0f)) : x;
            }
        user.state.sequence(now, seq_len, ws, po);
        poem::build_chrono_sequence(user.log, now, seq_len, cfg.engagement, ws, chrono);
        const poem::candidate_view cand{q.ids, fused.fused, rank_pct, levels.level,
                                        poem::matrix_view<const float>(objectives.data(), 2 * k_objectives, n)};
        const poem::chrono_view cv{chrono.item_id, chrono.age_seconds,
                                   poem::matrix_view<const float>(chrono.play_ratio.data(), seq_len, 1), chrono.mask};
        const poem::po_view pv{po.item_id, po.fused_score, po.rank_pct, po.level, po.age_seconds, po.mask};
        m.predict(cand, cv, pv, ws, poem::matrix_view<float>(pred.data(), n, m.outputs()));
        for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
        std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
            return pred[a * m.outputs()] > pred[b * m.outputs()];
        });
        tokens.resize(n);
        for (std::size_t i = 0; i < n; ++i)
            tokens[i] = {q.ids[i], now, fused.fused[i], rank_pct[i], levels.level[i]};
        poem::rng gen(now);
        poem::select_by_level(tokens, cfg.levels, gen, ws, sampled);
        user.state.record(sampled, ws);
        benchmark::DoNotOptimize(order.data());
        now += 1;
    }
    set_counters(state, n);
}
BENCHMARK(BM_pipeline_request_naive)->ArgName("N")->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

// Where a request's time goes: 0 fusion, 1 levels, 2 both sequences, 3 forward pass, 4 record.
void BM_pipeline_stage(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const int stage = static_cast<int>(state.range(1));
    const poem::ranker_config cfg = bench_ranker_config();
    const poem::request_ranker ranker(bench_model(), cfg);
    poem::workspace ws;
    poem::user_history user = warm_user(ranker, n, ws);
    auto reqs = requests(n);
    std::vector<poem::ranked_request> outs(8);
    std::int64_t now = 100000;
    for (auto& o : outs) {  // full requests to time the later stages on
        const request& q = reqs.next();
        ranker.rank(user, now, q.ids, poem::matrix_view<const float>(q.scores.data(), k_objectives, n), ws, o);
    }
    const poem::model& m = bench_model();
    std::size_t at = 0;
    for (auto _ : state) {
        const request& q = reqs.next();
        poem::ranked_request& o = outs[at];
        at = (at + 1) % outs.size();
        const poem::matrix_view<const float> s(q.scores.data(), k_objectives, n);
        switch (stage) {
            case 0: poem::fuse(s, cfg.fusion, ws, o.fused); break;
            case 1: poem::assign_levels(s, o.fused, cfg.levels, ws, o.levels); break;
            case 2:
                user.state.sequence(now, seq_len, ws, o.po);
                poem::build_chrono_sequence(user.log, now, seq_len, cfg.engagement, ws, o.chrono);
                break;
            case 3: {
                const poem::candidate_view cand{o.item_id, o.fused.fused, o.rank_pct, o.levels.level,
                                                poem::matrix_view<const float>(o.objectives.data(), 2 * k_objectives, n)};
                const poem::chrono_view cv{o.chrono.item_id, o.chrono.age_seconds,
                                           poem::matrix_view<const float>(o.chrono.play_ratio.data(), seq_len, 1),
                                           o.chrono.mask};
                const poem::po_view pv{o.po.item_id, o.po.fused_score, o.po.rank_pct, o.po.level, o.po.age_seconds,
                                       o.po.mask};
                m.predict(cand, cv, pv, ws, poem::matrix_view<float>(o.scores.values.data(), n, m.outputs()));
                break;
            }
            default:
                o.state = poem::ranked_request::status::ranked;  // the same request again: record() alone
                ranker.record(user, o, ws);
                break;
        }
        benchmark::ClobberMemory();
        now += 1;
    }
    set_counters(state, n);
}
BENCHMARK(BM_pipeline_stage)
    ->ArgNames({"N", "stage"})
    ->ArgsProduct({{1000}, {0, 1, 2, 3, 4}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
