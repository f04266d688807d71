// serve/: request_ranker against the composition of the layers it calls, its history contract (rank()
// reads, record() and log() write; no request sees itself or a later one), NaN scores, config errors,
// determinism.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "poem/core/rng.hpp"
#include "poem/serve/request_ranker.hpp"

namespace {

using Catch::Matchers::Contains;

const std::string fixture_dir = std::string(POEM_SOURCE_DIR) + "/tests/fixtures/model/";

// small_f32: 2 objective rows, 1 chrono feature, partial-order branch, 3 heads.
const poem::model& small_model() {
    static const poem::model m = poem::model::load(fixture_dir + "small_f32.safetensors");
    return m;
}

// K objectives; with one raw row per objective through `raw` when given.
poem::ranker_config config(std::size_t k, std::vector<poem::raw_transform> raw = {}) {
    poem::ranker_config c;
    for (std::size_t j = 0; j < k; ++j)
        c.fusion.objectives.push_back({j % 2 ? poem::direction::lower_is_better : poem::direction::higher_is_better,
                                       j == 1 ? poem::normalization::log1p_min_max : poem::normalization::rank_pct,
                                       1.0f + float(j)});
    c.levels.method = poem::level_method::pareto;
    c.levels.directions = poem::directions_of(c.fusion);
    c.raw_features = std::move(raw);
    c.po_length = 12;
    c.chrono_length = 9;
    c.state_tokens = 40;
    c.state_requests = 6;
    c.log_capacity = 16;
    return c;
}

struct request {
    std::vector<std::uint64_t> ids;
    std::vector<float> scores;  // K x N
    poem::matrix_view<const float> view(std::size_t k) const {
        return {scores.data(), k, ids.size()};
    }
};

request make_request(std::size_t k, std::size_t n, std::uint64_t seed) {
    poem::rng g(seed);
    request r;
    for (std::size_t i = 0; i < n; ++i) r.ids.push_back(g.below(60));  // few ids: repeats across requests
    for (std::size_t i = 0; i < k * n; ++i) r.scores.push_back(g.uniform_float() * (i >= n && i < 2 * n ? 90.0f : 1.0f));
    return r;
}

poem::engagement_event event(std::uint64_t item, std::int64_t t, bool click) {
    return {item, t, click ? 12.0f : 1.0f, 20.0f, click, false, false};
}

// A user with some requests recorded and some engagements logged, all before t = 1000.
poem::user_history warm_user(const poem::request_ranker& ranker, std::size_t k, poem::workspace& ws) {
    poem::user_history u = ranker.new_user();
    poem::ranked_request out;
    for (std::int64_t t = 0; t < 5; ++t) {
        const request r = make_request(k, 20 + 7 * std::size_t(t), 100 + std::uint64_t(t));
        ranker.rank(u, 100 * t, r.ids, r.view(k), ws, out);
        ranker.record(u, out, ws);
        for (std::size_t i = 0; i < 3; ++i) ranker.log(u, event(r.ids[i], 100 * t + 10 + std::int64_t(i), i != 1));
    }
    return u;
}

std::vector<std::uint8_t> bytes_of(const poem::partial_order_state& s) {
    std::vector<std::uint8_t> b;
    s.serialize_into(b);
    return b;
}

// What rank() should produce, computed from the layers directly.
struct reference {
    poem::fusion_result fused;
    poem::levels_result levels;
    std::vector<float> rank_pct, objectives, scores;
    poem::po_sequence po;
    poem::chrono_sequence chrono;
};

reference compose(const poem::request_ranker& ranker, const poem::user_history& u, std::int64_t now, const request& r,
                  std::size_t k) {
    const auto& c = ranker.config();
    const poem::model& m = ranker.model();
    const std::size_t n = r.ids.size(), rows = k + c.raw_features.size();
    poem::workspace ws;
    reference ref;
    ref.fused = poem::fuse(r.view(k), c.fusion, ws);
    ref.levels = poem::assign_levels(r.view(k), ref.fused, c.levels, ws);
    for (std::size_t i = 0; i < n; ++i) ref.rank_pct.push_back(1.0f - (float(ref.fused.fused_rank[i]) + 0.5f) / float(n));
    ref.objectives.assign(ref.fused.normalized.begin(), ref.fused.normalized.end());
    for (std::size_t j = 0; j < c.raw_features.size(); ++j)
        for (std::size_t i = 0; i < n; ++i) {
            const float x = r.scores[j * n + i];
            float v = x;
            if (!std::isfinite(x)) v = 0.0f;
            else if (c.raw_features[j] == poem::raw_transform::log1p) v = std::log1p(x > 0.0f ? x : 0.0f);
            ref.objectives.push_back(v);
        }
    ref.po = u.state.sequence(now, c.po_length);
    ref.chrono = poem::build_chrono_sequence(u.log, now, c.chrono_length, c.engagement);
    ref.scores.resize(n * m.outputs());
    m.predict_into({r.ids, ref.fused.fused, ref.rank_pct, ref.levels.level,
                    poem::matrix_view<const float>(ref.objectives.data(), rows, n)},
                   {ref.chrono.item_id, ref.chrono.age_seconds,
                    poem::matrix_view<const float>(ref.chrono.play_ratio.data(), c.chrono_length, 1), ref.chrono.mask},
                   {ref.po.item_id, ref.po.fused_score, ref.po.rank_pct, ref.po.level, ref.po.age_seconds, ref.po.mask},
                   ws, poem::matrix_view<float>(ref.scores.data(), n, m.outputs()));
    return ref;
}

void require_sorted_permutation(const poem::ranked_request& out, std::size_t head) {
    const std::size_t n = out.size();
    REQUIRE(out.order.size() == n);
    std::vector<int> seen(n, 0);
    for (auto i : out.order) {
        REQUIRE(i < n);
        ++seen[i];
    }
    for (auto s : seen) REQUIRE(s == 1);
    for (std::size_t t = 1; t < n; ++t) {
        const float a = out.scores(out.order[t - 1], head), b = out.scores(out.order[t], head);
        if (!std::isfinite(b)) continue;  // non-finite last
        REQUIRE(std::isfinite(a));
        REQUIRE(a >= b);
        if (a == b) REQUIRE(out.order[t - 1] < out.order[t]);
    }
}

}  // namespace

TEST_CASE("request_ranker: rank() is fusion, levels, sequences and the forward pass, bit for bit") {
    for (const auto& [k, raw] : {std::pair<std::size_t, std::vector<poem::raw_transform>>{2, {}},
                                 {1, {poem::raw_transform::identity}}, {1, {poem::raw_transform::log1p}}}) {
        const poem::request_ranker ranker(small_model(), config(k, raw));
        poem::workspace ws;
        const poem::user_history u = warm_user(ranker, k, ws);
        REQUIRE(u.state.request_count() > 0);
        for (std::size_t n : {1, 2, 17, 64, 300}) {
            const request r = make_request(k, n, 7 * n + k);
            poem::ranked_request out;
            ranker.rank(u, 1000, r.ids, r.view(k), ws, out);
            const reference ref = compose(ranker, u, 1000, r, k);
            CAPTURE(k, raw.size(), n);
            REQUIRE(out.size() == n);
            REQUIRE(out.item_id == r.ids);
            REQUIRE(out.fused.fused == ref.fused.fused);
            REQUIRE(out.levels.level == ref.levels.level);
            REQUIRE(out.rank_pct == ref.rank_pct);
            REQUIRE(out.objectives == ref.objectives);
            REQUIRE(out.po.item_id == ref.po.item_id);
            REQUIRE(out.po.mask == ref.po.mask);
            REQUIRE(out.chrono.item_id == ref.chrono.item_id);
            REQUIRE(out.chrono.mask == ref.chrono.mask);
            REQUIRE(out.po.count > 0);
            REQUIRE(out.chrono.count > 0);
            REQUIRE(out.scores.rows == n);
            REQUIRE(out.scores.cols == 3);
            REQUIRE(out.scores.values == ref.scores);
            require_sorted_permutation(out, ranker.config().rank_head);
        }
    }
}

TEST_CASE("request_ranker: an empty request ranks to nothing and records nothing") {
    const poem::request_ranker ranker(small_model(), config(2));
    poem::workspace ws;
    poem::user_history u = warm_user(ranker, 2, ws);
    const auto before = bytes_of(u.state);
    poem::ranked_request out;
    const request r = make_request(2, 0, 1);
    ranker.rank(u, 1000, r.ids, r.view(2), ws, out);
    REQUIRE(out.size() == 0);
    REQUIRE(out.order.empty());
    REQUIRE(out.scores.values.empty());
    ranker.record(u, out, ws);
    REQUIRE(bytes_of(u.state) == before);
}

TEST_CASE("request_ranker: the ranking head decides the order; ties keep candidate order") {
    auto c = config(2);
    c.rank_head = 2;
    const poem::request_ranker ranker(small_model(), c);
    poem::workspace ws;
    const poem::user_history u = warm_user(ranker, 2, ws);
    request r = make_request(2, 40, 3);
    for (std::size_t i = 20; i < 40; ++i) {  // exact duplicates of the first 20: equal predictions
        r.ids[i] = r.ids[i - 20];
        r.scores[i] = r.scores[i - 20];
        r.scores[40 + i] = r.scores[40 + i - 20];
    }
    poem::ranked_request out;
    ranker.rank(u, 1000, r.ids, r.view(2), ws, out);
    require_sorted_permutation(out, 2);
}

TEST_CASE("request_ranker: NaN and infinite scores: every candidate comes out, predictions stay finite") {
    const poem::request_ranker ranker(small_model(), config(1, {poem::raw_transform::log1p}));
    poem::workspace ws;
    const poem::user_history u = warm_user(ranker, 1, ws);
    request r = make_request(1, 50, 9);
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    r.scores[3] = nan;
    r.scores[10] = inf;
    r.scores[11] = -inf;
    r.scores[12] = -5.0f;  // log1p of a negative raw score: clamped at 0
    poem::ranked_request out;
    ranker.rank(u, 1000, r.ids, r.view(1), ws, out);
    REQUIRE(out.fused.nonfinite_count == 3);
    REQUIRE(out.objectives[50 + 3] == 0.0f);
    REQUIRE(out.objectives[50 + 10] == 0.0f);
    REQUIRE(out.objectives[50 + 11] == 0.0f);
    REQUIRE(out.objectives[50 + 12] == 0.0f);
    for (float v : out.scores.values) REQUIRE(std::isfinite(v));
    require_sorted_permutation(out, 0);
}

TEST_CASE("request_ranker: rank() reads the history; record() and log() are what change it") {
    const poem::request_ranker ranker(small_model(), config(2));
    poem::workspace ws;
    poem::user_history u = warm_user(ranker, 2, ws);
    const auto state_before = bytes_of(u.state);
    const std::size_t log_before = u.log.size();

    // A request at t = 1000 whose items are new (ids >= 1000): it must not see itself.
    request r = make_request(2, 30, 5);
    for (std::size_t i = 0; i < r.ids.size(); ++i) r.ids[i] = 1000 + i;
    poem::ranked_request out;
    ranker.rank(u, 1000, r.ids, r.view(2), ws, out);
    REQUIRE(bytes_of(u.state) == state_before);
    REQUIRE(u.log.size() == log_before);
    for (std::size_t i = 0; i < out.po.length; ++i) REQUIRE((out.po.mask[i] == 0 || out.po.item_id[i] < 1000));

    ranker.record(u, out, ws);
    REQUIRE(bytes_of(u.state) != state_before);
    poem::ranked_request later, earlier;
    const request q = make_request(2, 10, 6);
    ranker.rank(u, 1001, q.ids, q.view(2), ws, later);
    std::size_t fresh = 0;
    for (std::size_t i = 0; i < later.po.length; ++i) fresh += later.po.mask[i] && later.po.item_id[i] >= 1000;
    REQUIRE(fresh > 0);
    REQUIRE(later.po.item_id[0] >= 1000);  // the newest request comes first
    ranker.rank(u, 999, q.ids, q.view(2), ws, earlier);  // a replay behind the clock skips it
    for (std::size_t i = 0; i < earlier.po.length; ++i)
        REQUIRE((earlier.po.mask[i] == 0 || earlier.po.item_id[i] < 1000));

    // Engagements enter the chronological sequence only strictly before `now`.
    ranker.log(u, event(5000, 1500, true));
    ranker.rank(u, 1500, q.ids, q.view(2), ws, out);
    for (std::size_t i = 0; i < out.chrono.length; ++i) REQUIRE(out.chrono.item_id[i] != 5000);
    ranker.rank(u, 1501, q.ids, q.view(2), ws, out);
    REQUIRE(out.chrono.mask[0] == 1);
    REQUIRE(out.chrono.item_id[0] == 5000);
    REQUIRE(out.chrono.age_seconds[0] == 1.0f);
}

TEST_CASE("request_ranker: the log keeps the newest log_capacity events once it holds twice that") {
    const auto c = config(2);  // log_capacity 16
    const poem::request_ranker ranker(small_model(), c);
    poem::user_history u = ranker.new_user();
    for (std::int64_t i = 0; i < 31; ++i) ranker.log(u, event(std::uint64_t(i), i, true));
    REQUIRE(u.log.size() == 31);
    ranker.log(u, event(31, 31, true));
    REQUIRE(u.log.size() == c.log_capacity);
    for (std::size_t i = 0; i < u.log.size(); ++i) REQUIRE(u.log[i].item_id == 32 - c.log_capacity + i);
}

TEST_CASE("request_ranker: configs the model cannot take, and bad scores, throw poem::error") {
    const poem::model& m = small_model();
    auto throws = [&](poem::ranker_config c, const char* what) {
        REQUIRE_THROWS_WITH(poem::request_ranker(m, std::move(c)), Contains(what));
    };
    throws(config(2, {poem::raw_transform::identity}), "raw_features");
    throws(config(3), "objective rows");
    throws(config(1), "objective rows");
    auto c = config(2);
    c.rank_head = 3;
    throws(c, "rank_head");
    c = config(2);
    c.log_capacity = 4;
    throws(c, "log_capacity");
    c = config(2);
    c.levels.directions.pop_back();
    REQUIRE_THROWS_AS(poem::request_ranker(m, c), poem::error);
    c = config(2);
    c.fusion.objectives[0].weight = -1.0f;
    REQUIRE_THROWS_AS(poem::request_ranker(m, c), poem::error);

    const poem::model po_model = poem::model::load(fixture_dir + "po_f32.safetensors");  // 2 chrono features
    REQUIRE_THROWS_WITH(poem::request_ranker(po_model, config(4)), Contains("chronological"));

    const poem::request_ranker ranker(m, config(2));
    poem::workspace ws;
    poem::ranked_request out;
    const poem::user_history u = ranker.new_user();
    const request r = make_request(2, 10, 1);
    REQUIRE_THROWS_WITH(ranker.rank(u, 0, r.ids, poem::matrix_view<const float>(r.scores.data(), 1, 10), ws, out),
                        Contains("scores are 1 x 10"));
    REQUIRE_THROWS_WITH(ranker.rank(u, 0, poem::span<const std::uint64_t>(r.ids.data(), 9), r.view(2), ws, out),
                        Contains("expected 2 objectives x 9"));
}

TEST_CASE("request_ranker: same inputs and seed, same outputs and states (weighted level sampling too)") {
    auto c = config(2);
    c.levels.policy = poem::sample_policy::weighted;
    c.seed = 99;
    const poem::request_ranker a(small_model(), c), b(small_model(), c);
    poem::workspace wa, wb;
    poem::user_history ua = a.new_user(), ub = b.new_user();
    poem::ranked_request oa, ob;
    for (std::int64_t t = 0; t < 12; ++t) {
        const request r = make_request(2, 25 + std::size_t(t), 500 + std::uint64_t(t));
        a.rank(ua, 10 * t, r.ids, r.view(2), wa, oa);
        b.rank(ub, 10 * t, r.ids, r.view(2), wb, ob);
        REQUIRE(oa.scores.values == ob.scores.values);
        REQUIRE(oa.order == ob.order);
        a.record(ua, oa, wa);
        b.record(ub, ob, wb);
        REQUIRE(bytes_of(ua.state) == bytes_of(ub.state));
    }
}
