// serve/: request_ranker by its properties (every candidate comes out once, no request sees itself, the
// order follows the ranking head, the state after N requests is the state built by recording the same
// selected tokens directly, the model never changes the inputs), its history contract (rank() reads,
// record() and log() write), the seed derivation, the user_history byte format, the serving config
// carried by the model file, NaN scores, config errors, determinism and threads sharing one ranker.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "poem/core/rng.hpp"
#include "poem/model/safetensors.hpp"
#include "poem/serve/request_ranker.hpp"

namespace {

using Catch::Matchers::Contains;

const std::string fixture_dir = std::string(POEM_SOURCE_DIR) + "/tests/fixtures/model/";
const float nan_f = std::numeric_limits<float>::quiet_NaN();
const float inf_f = std::numeric_limits<float>::infinity();

// small_f32: 2 objective rows, 1 chrono feature, partial-order branch, 3 heads.
const poem::model& small_model() {
    static const poem::model m = poem::model::load(fixture_dir + "small_f32.safetensors");
    return m;
}

// chrono_f32: 3 objective rows, no chrono feature, no partial-order branch.
const poem::model& chrono_model() {
    static const poem::model m = poem::model::load(fixture_dir + "chrono_f32.safetensors");
    return m;
}

// What the synthetic model's first output (head 0) is.
enum class head0 {
    random,    // random weights, as the other heads
    constant,  // zero weights: the bias, the same for every candidate (all tie)
    overflow,  // 3e38 on one hidden unit, 0 elsewhere: +inf where that unit exceeds ~1.13, finite elsewhere
};

// A model with `n_objectives` rows and `chrono_feats` features per chronological token, random weights,
// built in memory: no fixture has 2 objectives + 2 raw rows with at most one chrono feature.
// With `fusion`, the file carries that learned ensemble too (fusion.* tensors, as poem_ref.export writes).
poem::model synthetic_model(std::size_t n_objectives, std::size_t chrono_feats, std::uint64_t seed,
                            head0 first = head0::random, const std::string& serving = "",
                            const poem::learned_fusion* fusion = nullptr) {
    const std::size_t vocab = 97, d = 8, n_levels = 4, hidden = 12, heads = 3;
    const std::size_t tower_in = 3 * d + 3 + n_objectives;
    std::vector<std::pair<std::string, std::vector<std::size_t>>> tensors = {
        {"item_emb.weight", {vocab, d}}, {"chrono_in.weight", {d, 1 + chrono_feats}}, {"chrono_in.bias", {d}},
        {"level_emb.weight", {n_levels, d}}, {"po_in.weight", {d, 3}}, {"po_in.bias", {d}},
        {"tower.0.weight", {hidden, tower_in}}, {"tower.0.bias", {hidden}},
        {"head.weight", {heads, hidden}}, {"head.bias", {heads}}};
    for (const char* branch : {"chrono_attn", "po_attn"})
        for (const char* p : {".q", ".k", ".v"}) {
            tensors.push_back({std::string(branch) + p + ".weight", {d, d}});
            tensors.push_back({std::string(branch) + p + ".bias", {d}});
        }
    nlohmann::json header, cfg;
    cfg["vocab"] = vocab;
    cfg["d"] = d;
    cfg["n_heads"] = 2;
    cfg["n_objectives"] = n_objectives;
    cfg["n_levels"] = n_levels;
    cfg["chrono_feats"] = chrono_feats;
    cfg["mlp"] = {hidden};
    cfg["heads"] = {"long_view", "click", "watch_time"};
    cfg["use_po"] = true;
    header["__metadata__"]["poem_config"] = cfg.dump();
    if (!serving.empty()) header["__metadata__"]["poem_serving"] = serving;
    poem::rng g(seed);
    std::vector<float> buffer;
    for (const auto& [name, shape] : tensors) {
        std::size_t numel = 1;
        for (auto s : shape) numel *= s;
        header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {4 * buffer.size(), 4 * (buffer.size() + numel)}}};
        for (std::size_t i = 0; i < numel; ++i) buffer.push_back(g.uniform_float() - 0.5f);
        if (name == "head.weight" && first != head0::random)  // row 0: the first `hidden` weights
            for (std::size_t i = 0; i < hidden; ++i)
                buffer[buffer.size() - numel + i] = first == head0::overflow && i == 5 ? 3e38f : 0.0f;
    }
    if (fusion != nullptr) {
        const std::size_t k = fusion->objectives(), d = fusion->component_dim(), h = fusion->hidden();
        const std::vector<float> ob{fusion->out_bias()};
        const std::pair<const char*, std::pair<std::vector<std::size_t>, const std::vector<float>*>> parts[] = {
            {"fusion.component.weight", {{k, d}, &fusion->component_weight()}},
            {"fusion.component.bias", {{k, d}, &fusion->component_bias()}},
            {"fusion.aggregate.weight", {{h, k * d}, &fusion->aggregate_weight()}},
            {"fusion.aggregate.bias", {{h}, &fusion->aggregate_bias()}},
            {"fusion.out.weight", {{1, h}, &fusion->out_weight()}},
            {"fusion.out.bias", {{1}, &ob}},
            {"fusion.skip.weight", {{1, k}, &fusion->skip_weight()}}};
        header["__metadata__"]["poem_fusion"] = R"({"version": 1})";
        for (const auto& [name, part] : parts) {
            const auto& v = *part.second;
            header[name] = {{"dtype", "F32"}, {"shape", part.first}, {"data_offsets", {4 * buffer.size(), 4 * (buffer.size() + v.size())}}};
            buffer.insert(buffer.end(), v.begin(), v.end());
        }
    }
    const std::string h = header.dump();
    std::vector<char> bytes(8);
    for (int i = 0; i < 8; ++i) bytes[std::size_t(i)] = static_cast<char>(std::uint64_t(h.size()) >> (8 * i));
    bytes.insert(bytes.end(), h.begin(), h.end());
    const std::size_t at = bytes.size();
    bytes.resize(at + 4 * buffer.size());
    std::memcpy(bytes.data() + at, buffer.data(), 4 * buffer.size());
    return poem::model::from_file(poem::safetensors_file::from_bytes(bytes.data(), bytes.size(), "synthetic"));
}

// 2 objectives + 2 raw rows, 1 chrono feature.
const poem::model& four_row_model() {
    static const poem::model m = synthetic_model(4, 1, 17);
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
    std::size_t k = 0;
    poem::matrix_view<const float> view() const { return {scores.data(), k, ids.size()}; }
};

// Row 0 on a 1/8 grid (ties), row 1 in [-10, 80) (negatives for log1p's clamp), the others in [0, 1).
request make_request(std::size_t k, std::size_t n, std::uint64_t seed, std::uint64_t id_range = 60) {
    poem::rng g(seed);
    request r;
    r.k = k;
    for (std::size_t i = 0; i < n; ++i) r.ids.push_back(g.below(id_range));  // few ids: repeats across requests
    for (std::size_t j = 0; j < k; ++j)
        for (std::size_t i = 0; i < n; ++i) {
            const float u = g.uniform_float();
            r.scores.push_back(j == 0 ? std::floor(u * 8.0f) / 8.0f : j == 1 ? u * 90.0f - 10.0f : u);
        }
    return r;
}

// Replaces about one score in `every` by NaN, +inf or -inf.
void poison(request& r, std::uint64_t seed, std::uint64_t every = 7) {
    poem::rng g(seed);
    for (float& x : r.scores)
        if (g.below(every) == 0) x = std::array<float, 3>{nan_f, inf_f, -inf_f}[g.below(3)];
}

poem::engagement_event event(std::uint64_t item, std::int64_t t, bool click, std::uint64_t user = 1) {
    poem::engagement_event e;
    e.user_id = user;
    e.item_id = item;
    e.time = t;
    e.play_time = click ? 12.0f : 1.0f;
    e.duration = 20.0f;
    e.click = click;
    return e;
}

// A user with some requests recorded and some engagements logged, all before t = 1000.
poem::user_history warm_user(const poem::request_ranker& ranker, std::size_t k, poem::workspace& ws,
                             std::uint64_t user_id = 1) {
    poem::user_history u = ranker.new_user(user_id);
    poem::ranked_request out;
    for (std::int64_t t = 0; t < 5; ++t) {
        const request r = make_request(k, 20 + 7 * std::size_t(t), 100 + std::uint64_t(t));
        ranker.rank(u, 100 * t, r.ids, r.view(), ws, out);
        ranker.record(u, out, ws);
        for (std::size_t i = 0; i < 3; ++i)
            ranker.log(u, event(r.ids[i], 100 * t + 10 + std::int64_t(i), i != 1, user_id));
    }
    return u;
}

std::vector<std::uint8_t> bytes_of(const poem::partial_order_state& s) {
    std::vector<std::uint8_t> b;
    s.serialize(b);
    return b;
}

bool same_log(const std::vector<poem::engagement_event>& a, const std::vector<poem::engagement_event>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].item_id != b[i].item_id || a[i].time != b[i].time || a[i].click != b[i].click ||
            std::memcmp(&a[i].play_time, &b[i].play_time, sizeof(float)) != 0)
            return false;
    return true;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// `order` is a permutation of 0..N-1 by scores(., head) best first, ties by index, non-finite last.
void require_sorted_permutation(const poem::ranked_request& out, std::size_t head) {
    const std::size_t n = out.size();
    REQUIRE(out.order.size() == n);
    std::vector<int> seen(n, 0);
    for (auto i : out.order) {
        REQUIRE(i < n);
        ++seen[i];
    }
    REQUIRE(std::count(seen.begin(), seen.end(), 1) == std::ptrdiff_t(n));
    for (std::size_t t = 1; t < n; ++t) {
        const float a = out.scores(out.order[t - 1], head), b = out.scores(out.order[t], head);
        if (!std::isfinite(b)) continue;  // non-finite last
        REQUIRE(std::isfinite(a));
        REQUIRE(a >= b);
        if (a == b) REQUIRE(out.order[t - 1] < out.order[t]);
    }
}

// The per-level quotas of `c` summed over the levels of `r`: the most tokens record() can select.
std::size_t quota_bound(const poem::ranker_config& c, const poem::ranked_request& r) {
    std::size_t total = 0;
    for (std::uint32_t l = 0; l < r.levels.count; ++l) {
        const auto in_level = std::size_t(std::count(r.levels.level.begin(), r.levels.level.end(), l));
        total += std::min<std::size_t>(c.levels.quota(l), in_level);
    }
    return total;
}

}  // namespace

TEST_CASE("request_ranker: every candidate comes out once, in the order of the ranking head, with inputs the model never changes") {
    using rt = poem::raw_transform;
    struct variant {
        const char* name;
        const poem::model* m;
        poem::ranker_config c;
    };
    std::vector<variant> variants = {
        {"small K=2", &small_model(), config(2)},
        {"small K=1 identity", &small_model(), config(1, {rt::identity})},
        {"small K=1 log1p", &small_model(), config(1, {rt::log1p})},
        {"synthetic K=2 identity,log1p", &four_row_model(), config(2, {rt::identity, rt::log1p})},
        {"synthetic K=2 log1p,identity reciprocal topk", &four_row_model(), config(2, {rt::log1p, rt::identity})},
        {"chrono_f32 K=3 fused tiers (no chrono feature, no po branch)", &chrono_model(), config(3)},
        {"small K=2 empty sequences", &small_model(), config(2)},
    };
    variants[4].c.fusion.method = poem::fusion_method::reciprocal_rank;
    variants[4].c.levels.method = poem::level_method::topk_tiers;
    variants[4].c.levels.topk = {3, 10, 40};
    variants[5].c.fusion.method = poem::fusion_method::weighted_value;
    variants[5].c.levels.method = poem::level_method::fused_tiers;
    variants[5].c.levels.tiers = 3;
    variants[6].c.po_length = variants[6].c.chrono_length = variants[6].c.log_capacity = 0;
    for (std::size_t v = 0; v < variants.size(); ++v) {
        variants[v].c.rank_head = v % 3;
        const poem::request_ranker ranker(*variants[v].m, variants[v].c);
        const std::size_t k = variants[v].c.fusion.objectives.size();
        poem::workspace ws;
        const poem::user_history u = warm_user(ranker, k, ws);
        REQUIRE(u.state.request_count() > 0);
        poem::ranked_request out;  // reused across sizes: nothing stale may leak into a smaller request
        for (std::size_t n : {300, 1, 2, 17, 0, 64, 5, 64}) {
            request r = make_request(k, n, 7 * n + k + 31 * v);
            const bool poisoned = n == 64 && out.size() == 64;  // the second N = 64: NaN and +-inf scores
            if (poisoned) poison(r, n + v);
            CAPTURE(variants[v].name, n, poisoned);
            ranker.rank(u, 1000, r.ids, r.view(), ws, out);
            REQUIRE(out.state == poem::ranked_request::status::ranked);
            REQUIRE(out.user_id == u.user_id);
            REQUIRE(out.time == 1000);
            REQUIRE(out.item_id == r.ids);
            REQUIRE(out.fused.fused.size() == n);
            REQUIRE(out.rank_pct.size() == n);
            REQUIRE(out.levels.level.size() == n);
            REQUIRE(out.objectives.size() == ranker.config().objective_rows() * n);
            REQUIRE(out.scores.rows == n);
            REQUIRE(out.scores.cols == ranker.model().outputs());
            REQUIRE(out.tokens.size() == n);
            for (std::size_t i = 0; i < n; ++i) {
                REQUIRE(out.tokens[i].item_id == r.ids[i]);
                REQUIRE(out.tokens[i].request_time == 1000);
                REQUIRE(out.tokens[i].level == out.levels.level[i]);
                REQUIRE(out.tokens[i].fused_score == out.fused.fused[i]);
                REQUIRE(out.rank_pct[i] == 1.0f - (float(out.fused.fused_rank[i]) + 0.5f) / float(n));
                REQUIRE(out.levels.level[i] < out.levels.count);
            }
            for (std::uint32_t l = 0; l < out.levels.count; ++l)  // levels are dense
                REQUIRE(std::find(out.levels.level.begin(), out.levels.level.end(), l) != out.levels.level.end());
            // The model reads the inputs and never shapes them: a ranker without one builds the same bits,
            // and orders by fused score.
            const poem::request_ranker bare(variants[v].c);
            poem::ranked_request b;
            bare.rank(u, 1000, r.ids, r.view(), ws, b);
            REQUIRE(same_bits(b.fused.fused, out.fused.fused));
            REQUIRE(b.levels.level == out.levels.level);
            REQUIRE(same_bits(b.objectives, out.objectives));
            REQUIRE(same_bits(b.rank_pct, out.rank_pct));
            REQUIRE(b.po.item_id == out.po.item_id);
            REQUIRE(same_bits(b.po.fused_score, out.po.fused_score));
            REQUIRE(same_bits(b.po.age_seconds, out.po.age_seconds));
            REQUIRE(b.po.mask == out.po.mask);
            REQUIRE(b.chrono.item_id == out.chrono.item_id);
            REQUIRE(same_bits(b.chrono.play_ratio, out.chrono.play_ratio));
            REQUIRE(b.scores.cols == 0);
            REQUIRE(b.order == out.fused.order);
            // The features a training job reads: fused, rank percentile, level, then the objective rows.
            const std::size_t rows = ranker.config().objective_rows();
            std::vector<float> feats(n * (3 + rows));
            poem::candidate_features(out, poem::matrix_view<float>(feats.data(), n, 3 + rows));
            for (std::size_t i = 0; i < n; ++i) {
                REQUIRE(feats[i * (3 + rows) + 0] == out.fused.fused[i]);
                REQUIRE(feats[i * (3 + rows) + 2] == float(out.levels.level[i]));
                for (std::size_t j = 0; j < rows; ++j) REQUIRE(feats[i * (3 + rows) + 3 + j] == out.objectives[j * n + i]);
            }
            if (variants[v].c.po_length > 0) {
                REQUIRE(out.po.count > 0);
                REQUIRE(out.chrono.count > 0);
            }
            for (float x : out.scores.values) REQUIRE(std::isfinite(x));
            require_sorted_permutation(out, variants[v].c.rank_head);
        }
    }
}

TEST_CASE("request_ranker: an empty request ranks to nothing, still reads the history, and records nothing") {
    const poem::request_ranker ranker(small_model(), config(2));
    poem::workspace ws;
    poem::user_history u = warm_user(ranker, 2, ws);
    const auto before = bytes_of(u.state);
    const auto log_before = u.log;
    poem::ranked_request out;
    const request r = make_request(2, 0, 1);
    ranker.rank(u, 1000, r.ids, r.view(), ws, out);
    REQUIRE(out.size() == 0);
    REQUIRE(out.order.empty());
    REQUIRE(out.scores.rows == 0);
    REQUIRE(out.scores.values.empty());
    REQUIRE(out.objectives.empty());
    REQUIRE(out.po.count > 0);  // the sequences are the user's, whatever the request holds
    REQUIRE(out.chrono.count > 0);
    ranker.record(u, out, ws);
    REQUIRE(bytes_of(u.state) == before);
    REQUIRE(same_log(u.log, log_before));

    // A new user: empty sequences, all padding.
    const poem::user_history fresh = ranker.new_user(1);
    ranker.rank(fresh, 0, r.ids, r.view(), ws, out);
    REQUIRE(out.po.count == 0);
    REQUIRE(out.chrono.count == 0);
    REQUIRE(std::count(out.po.mask.begin(), out.po.mask.end(), 0) == 12);
}

TEST_CASE("request_ranker: the ranking head decides the order; ties keep candidate order; non-finite last") {
    SECTION("each head of small_f32") {
        std::vector<std::vector<std::uint32_t>> orders;
        for (std::size_t head = 0; head < 3; ++head) {
            auto c = config(2);
            c.rank_head = head;
            const poem::request_ranker ranker(small_model(), c);
            poem::workspace ws;
            const poem::user_history u = warm_user(ranker, 2, ws);
            const request r = make_request(2, 40, 3);
            poem::ranked_request out;
            ranker.rank(u, 1000, r.ids, r.view(), ws, out);
            CAPTURE(head);
            require_sorted_permutation(out, head);
            orders.push_back(out.order);
        }
        REQUIRE(orders[0] != orders[1]);  // same request, same predictions: the head is what decides
        REQUIRE(orders[1] != orders[2]);
    }
    SECTION("a head that gives every candidate the same output: candidate order") {
        const poem::model m = synthetic_model(2, 1, 5, head0::constant);
        const poem::request_ranker ranker(m, config(2));
        poem::workspace ws;
        const poem::user_history u = warm_user(ranker, 2, ws);
        const request r = make_request(2, 70, 4);
        poem::ranked_request out;
        ranker.rank(u, 1000, r.ids, r.view(), ws, out);
        for (std::size_t i = 1; i < 70; ++i) REQUIRE(out.scores(i, 0) == out.scores(0, 0));
        std::vector<std::uint32_t> identity(70);
        std::iota(identity.begin(), identity.end(), 0u);
        REQUIRE(out.order == identity);
    }
    SECTION("a head that overflows: finite outputs best first, then the non-finite ones in candidate order") {
        const poem::model m = synthetic_model(2, 1, 5, head0::overflow);
        const poem::request_ranker ranker(m, config(2));
        poem::workspace ws;
        const poem::user_history u = warm_user(ranker, 2, ws);
        std::size_t finite = 0, nonfinite = 0;
        for (std::uint64_t seed = 0; seed < 4; ++seed) {
            const request r = make_request(2, 200, 40 + seed);
            poem::ranked_request out;
            ranker.rank(u, 1000, r.ids, r.view(), ws, out);
            std::vector<std::uint32_t> good, bad;  // the reference, built from the outputs alone
            for (std::uint32_t i = 0; i < 200; ++i) (std::isfinite(out.scores(i, 0)) ? good : bad).push_back(i);
            for (auto i : bad) REQUIRE(out.scores(i, 0) == inf_f);  // the largest outputs, yet last
            std::stable_sort(good.begin(), good.end(),
                             [&](std::uint32_t a, std::uint32_t b) { return out.scores(a, 0) > out.scores(b, 0); });
            good.insert(good.end(), bad.begin(), bad.end());
            REQUIRE(out.order == good);
            require_sorted_permutation(out, 0);
            finite += 200 - bad.size();
            nonfinite += bad.size();
        }
        REQUIRE(finite > 0);  // both kinds did occur (about half each with these weights)
        REQUIRE(nonfinite > 0);
    }
}

TEST_CASE("request_ranker: NaN and infinite scores: every candidate comes out, predictions stay finite") {
    SECTION("K = 1, log1p raw row") {
        const poem::request_ranker ranker(small_model(), config(1, {poem::raw_transform::log1p}));
        poem::workspace ws;
        const poem::user_history u = warm_user(ranker, 1, ws);
        request r = make_request(1, 50, 9);
        r.scores[3] = nan_f;
        r.scores[10] = inf_f;
        r.scores[11] = -inf_f;
        r.scores[12] = -5.0f;  // log1p of a negative raw score: clamped at 0
        poem::ranked_request out;
        ranker.rank(u, 1000, r.ids, r.view(), ws, out);
        REQUIRE(out.fused.nonfinite_count == 3);
        for (std::size_t i : {3, 10, 11}) {
            REQUIRE(out.fused.nonfinite[i] == 1);
            REQUIRE(out.objectives[i] == 0.0f);       // normalised: non-finite is 0
            REQUIRE(out.objectives[50 + i] == 0.0f);  // raw: non-finite enters as 0
        }
        REQUIRE(out.objectives[50 + 12] == 0.0f);
        for (float v : out.scores.values) REQUIRE(std::isfinite(v));
        require_sorted_permutation(out, 0);
    }
    SECTION("K = 2, identity and log1p raw rows, every kind of non-finite, and a request of NaN only") {
        const poem::request_ranker ranker(four_row_model(),
                                          config(2, {poem::raw_transform::identity, poem::raw_transform::log1p}));
        poem::workspace ws;
        const poem::user_history u = warm_user(ranker, 2, ws);
        poem::ranked_request out;
        for (int all_nan = 0; all_nan < 2; ++all_nan) {
            request r = make_request(2, 80, 21);
            poison(r, 5, 4);
            if (all_nan) std::fill(r.scores.begin(), r.scores.end(), nan_f);
            CAPTURE(all_nan);
            ranker.rank(u, 1000, r.ids, r.view(), ws, out);
            REQUIRE(out.size() == 80);
            for (std::size_t j = 0; j < 2; ++j)
                for (std::size_t i = 0; i < 80; ++i) {
                    const float x = r.scores[j * 80 + i], raw = out.objectives[(2 + j) * 80 + i];
                    REQUIRE(std::isfinite(out.objectives[j * 80 + i]));
                    if (!std::isfinite(x)) REQUIRE(raw == 0.0f);
                    else REQUIRE(raw == (j == 0 ? x : std::log1p(std::max(x, 0.0f))));
                }
            for (float v : out.fused.fused) REQUIRE(std::isfinite(v));
            for (float v : out.scores.values) REQUIRE(std::isfinite(v));
            require_sorted_permutation(out, 0);
        }
    }
}

TEST_CASE("request_ranker: rank() reads the history; record() and log() are what change it") {
    const auto c = config(2);
    const poem::request_ranker ranker(small_model(), c);
    poem::workspace ws;
    poem::user_history u = warm_user(ranker, 2, ws);
    const auto state_before = bytes_of(u.state);
    const auto log_before = u.log;

    // A request at t = 1000 whose items are new (ids >= 1000, distinct): it must not see itself.
    request r = make_request(2, 30, 5);
    for (std::size_t i = 0; i < r.ids.size(); ++i) r.ids[i] = 1000 + i;
    poem::ranked_request out;
    ranker.rank(u, 1000, r.ids, r.view(), ws, out);
    ranker.rank(u, 1000, r.ids, r.view(), ws, out);  // twice: still nothing of its own
    REQUIRE(bytes_of(u.state) == state_before);
    REQUIRE(same_log(u.log, log_before));
    for (std::size_t i = 0; i < out.po.length; ++i) REQUIRE((out.po.mask[i] == 0 || out.po.item_id[i] < 1000));

    // record(): the selected tokens are the request's own, within the per-level quotas, and the state
    // is the old one with exactly those recorded.
    ranker.record(u, out, ws);
    const std::vector<poem::quintuple> sample = out.recorded;
    REQUIRE(!sample.empty());
    REQUIRE(sample.size() <= quota_bound(c, out));
    for (const poem::quintuple& q : sample)
        REQUIRE(std::any_of(out.tokens.begin(), out.tokens.end(), [&](const poem::quintuple& t) {
            return t.item_id == q.item_id && t.level == q.level && t.fused_score == q.fused_score;
        }));
    poem::partial_order_state want = poem::partial_order_state::deserialize(state_before);
    want.record(sample);
    REQUIRE(bytes_of(u.state) == bytes_of(want));
    REQUIRE_THROWS_WITH(ranker.record(u, out, ws), Contains("already recorded"));
    REQUIRE(u.state.request_time(u.state.request_count() - 1) == 1000);
    REQUIRE(same_log(u.log, log_before));  // record() leaves the log alone

    // Later requests see the sampled items, as the newest request (index 0), `later - 1000` old.
    const request q = make_request(2, 10, 6);
    for (std::int64_t later : {1000, 1001, 1500}) {  // 1000: a request recorded earlier in the same second
        poem::ranked_request next;
        ranker.rank(u, later, q.ids, q.view(), ws, next);
        CAPTURE(later);
        for (const poem::quintuple& s : sample) {
            const auto at = std::find(next.po.item_id.begin(), next.po.item_id.end(), s.item_id) - next.po.item_id.begin();
            REQUIRE(std::size_t(at) < next.po.count);
            REQUIRE(next.po.request_index[std::size_t(at)] == 0);
            REQUIRE(next.po.age_seconds[std::size_t(at)] == float(later - 1000));
            REQUIRE(next.po.fused_score[std::size_t(at)] == s.fused_score);
            REQUIRE(next.po.level[std::size_t(at)] == s.level);
        }
        REQUIRE(next.po.item_id[0] >= 1000);  // the newest request comes first
    }
    // A replay behind the clock (t < 1000) skips it, and sees what the user had before.
    poem::ranked_request earlier;
    ranker.rank(u, 999, q.ids, q.view(), ws, earlier);
    for (std::size_t i = 0; i < earlier.po.length; ++i)
        REQUIRE((earlier.po.mask[i] == 0 || earlier.po.item_id[i] < 1000));
    const poem::po_sequence old = poem::partial_order_state::deserialize(state_before).sequence(999, c.po_length);
    REQUIRE(earlier.po.item_id == old.item_id);
    REQUIRE(earlier.po.mask == old.mask);

    // Engagements enter the chronological sequence only strictly before `now`.
    ranker.log(u, event(5000, 1500, true));
    REQUIRE(bytes_of(u.state) == bytes_of(want));  // log() leaves the state alone
    ranker.rank(u, 1500, q.ids, q.view(), ws, out);
    for (std::size_t i = 0; i < out.chrono.length; ++i) REQUIRE(out.chrono.item_id[i] != 5000);
    ranker.rank(u, 1501, q.ids, q.view(), ws, out);
    REQUIRE(out.chrono.mask[0] == 1);
    REQUIRE(out.chrono.item_id[0] == 5000);
    REQUIRE(out.chrono.age_seconds[0] == 1.0f);
}

TEST_CASE("request_ranker: the chronological sequence is the newest engaged events strictly before now") {
    auto c = config(2);
    c.log_capacity = 1000;  // no trimming here
    const poem::request_ranker ranker(small_model(), c);
    poem::user_history u = ranker.new_user(1);
    poem::rng g(77);
    std::vector<poem::engagement_event> all;  // everything logged: the reference reads this, untrimmed
    for (std::uint64_t i = 0; i < 120; ++i) {  // not in time order; repeated times and items
        poem::engagement_event e;
        e.user_id = 1;
        e.item_id = g.below(40);
        e.time = std::int64_t(g.below(200));
        e.play_time = std::array<float, 3>{0.0f, 3.0f, 15.0f}[g.below(3)];
        e.duration = g.below(2) ? 20.0f : 5.0f;
        e.click = g.below(4) == 0;
        e.like = g.below(8) == 0;
        e.follow = g.below(16) == 0;
        ranker.log(u, e);
        all.push_back(e);
    }
    std::size_t engaged = 0;
    for (const auto& e : all) engaged += poem::is_engaged(e, c.engagement);
    REQUIRE(u.log.size() == engaged);  // only engaged events are kept
    REQUIRE(engaged < all.size());
    poem::workspace ws;
    poem::ranked_request out;
    const request q = make_request(2, 8, 1);
    for (std::int64_t now : {0, 1, 50, 100, 150, 199, 200, 400}) {
        // Brute force: engaged (click, like, follow, or play >= min(duration, 10 s)), time < now,
        // newest first, ties by log position (later first), at most chrono_length.
        std::vector<std::size_t> want;
        for (std::size_t i = 0; i < all.size(); ++i) {
            const auto& e = all[i];
            if (e.time < now && (e.click || e.like || e.follow || e.play_time >= std::min(e.duration, 10.0f)))
                want.push_back(i);
        }
        std::sort(want.begin(), want.end(), [&](std::size_t a, std::size_t b) {
            return all[a].time != all[b].time ? all[a].time > all[b].time : a > b;
        });
        want.resize(std::min(want.size(), c.chrono_length));
        ranker.rank(u, now, q.ids, q.view(), ws, out);
        CAPTURE(now);
        REQUIRE(out.chrono.count == want.size());
        for (std::size_t j = 0; j < c.chrono_length; ++j) {
            if (j < want.size()) {
                const auto& e = all[want[j]];
                REQUIRE(out.chrono.mask[j] == 1);
                REQUIRE(out.chrono.item_id[j] == e.item_id);
                REQUIRE(out.chrono.age_seconds[j] == float(now - e.time));
                REQUIRE(out.chrono.play_ratio[j] == std::min(e.play_time / e.duration, 1.0f));
            } else {
                REQUIRE(out.chrono.mask[j] == 0);
            }
        }
    }
}

TEST_CASE("request_ranker: the log keeps engaged events only, the newest log_capacity once it holds twice that") {
    for (std::size_t cap : {9, 16}) {  // 9 = chrono_length, the smallest capacity allowed
        auto c = config(2);
        c.log_capacity = cap;
        const poem::request_ranker ranker(small_model(), c);
        poem::user_history u = ranker.new_user(1);
        std::vector<std::uint64_t> kept;  // the expected log's item ids
        for (std::uint64_t i = 0; i < 14 * cap; ++i) {
            const bool engaged = i % 2 == 0;
            ranker.log(u, event(i, std::int64_t(i), engaged));
            if (engaged) kept.push_back(i);
            if (kept.size() >= 2 * cap) kept.erase(kept.begin(), kept.end() - std::ptrdiff_t(cap));
            CAPTURE(cap, i);
            REQUIRE(u.log.size() == kept.size());
            REQUIRE(u.log.size() < 2 * cap);
            bool same = true;
            for (std::size_t j = 0; j < kept.size(); ++j) same = same && u.log[j].item_id == kept[j];
            REQUIRE(same);
        }
    }
    SECTION("non-engaged exposures never push an engagement out of the chronological sequence") {
        auto c = config(2);
        c.log_capacity = c.chrono_length;
        const poem::request_ranker ranker(small_model(), c);
        poem::user_history u = ranker.new_user(1);
        ranker.log(u, event(42, 1, true));
        for (std::int64_t t = 2; t < 100; ++t) ranker.log(u, event(7, t, false));
        poem::workspace ws;
        poem::ranked_request out;
        const request q = make_request(2, 5, 3);
        ranker.rank(u, 100, q.ids, q.view(), ws, out);
        REQUIRE(out.chrono.count == 1);
        REQUIRE(out.chrono.item_id[0] == 42);
    }
}

TEST_CASE("request_ranker: configs the model cannot take, and bad scores, throw poem::error naming the problem") {
    using rt = poem::raw_transform;
    const poem::model& m = small_model();
    auto throws = [&](const poem::model& model, poem::ranker_config c, const char* what) {
        CAPTURE(what);
        REQUIRE_THROWS_AS(poem::request_ranker(model, c), poem::error);
        REQUIRE_THROWS_WITH(poem::request_ranker(model, std::move(c)), Contains(what));
    };
    throws(m, config(2, {rt::identity}), "raw_features: 1 transforms for 2 objectives");
    throws(four_row_model(), config(2, {rt::identity, rt::log1p, rt::log1p}), "raw_features: 3 transforms");
    throws(m, config(3), "takes 2 objective rows; the config gives 3 (fusion.objectives) + 0 (raw_features)");
    throws(m, config(1), "takes 2 objective rows; the config gives 1 (fusion.objectives)");
    throws(m, config(2, {rt::identity, rt::identity}), "the config gives 2 (fusion.objectives) + 2 (raw_features)");
    throws(four_row_model(), config(2), "takes 4 objective rows; the config gives 2");
    auto c = config(2);
    c.rank_head = 3;
    throws(m, c, "rank_head = 3");
    c = config(2);
    c.log_capacity = 8;  // chrono_length 9
    throws(m, c, "log_capacity (8) < chrono_length (9)");
    c = config(2);
    c.po_length = poem::partial_order_state::max_sequence_length + 1;
    throws(m, c, "ranker_config.po_length");
    c = config(2);
    c.levels.directions.pop_back();
    throws(m, c, "level_config.directions");
    c = config(2);
    c.fusion.objectives[0].weight = -1.0f;
    throws(m, c, "weight");
    c = config(2);
    c.engagement.long_view_seconds = nan_f;
    throws(m, c, "long_view_seconds");

    // po_f32 wants 2 features per chronological token; the ranker gives 1 (whatever K and raw rows).
    const poem::model po_model = poem::model::load(fixture_dir + "po_f32.safetensors");
    REQUIRE(po_model.config().chrono_feats == 2);
    throws(po_model, config(4), "wants 2 features per chronological token");
    throws(po_model, config(2, {rt::identity, rt::log1p}), "chronological");
    // A synthetic model with 2 chrono features is refused the same way; with 0 or 1 it is taken.
    throws(synthetic_model(2, 2, 3), config(2), "chronological");
    REQUIRE_NOTHROW(poem::request_ranker(synthetic_model(2, 0, 3), config(2)));

    const poem::request_ranker ranker(m, config(2));
    poem::workspace ws;
    poem::ranked_request out;
    const poem::user_history u = ranker.new_user(1);
    const request r = make_request(2, 10, 1);
    REQUIRE_THROWS_AS(ranker.rank(u, 0, r.ids, poem::matrix_view<const float>(r.scores.data(), 1, 10), ws, out),
                      poem::error);
    REQUIRE_THROWS_WITH(ranker.rank(u, 0, r.ids, poem::matrix_view<const float>(r.scores.data(), 1, 10), ws, out),
                        Contains("scores are 1 x 10, expected 2 objectives + 0 side features x 10"));
    REQUIRE_THROWS_WITH(ranker.rank(u, 0, r.ids, poem::matrix_view<const float>(r.scores.data(), 3, 5), ws, out),
                        Contains("scores are 3 x 5"));
    REQUIRE_THROWS_WITH(ranker.rank(u, 0, poem::span<const std::uint64_t>(r.ids.data(), 9), r.view(), ws, out),
                        Contains("expected 2 objectives + 0 side features x 9"));
}

TEST_CASE("request_ranker: same inputs and seed, same outputs and states (weighted level selection too)") {
    auto c = config(2);
    c.levels.policy = poem::selection_policy::weighted;
    c.seed = 99;
    const poem::request_ranker a(small_model(), c), b(small_model(), c);
    poem::workspace wa, wb;
    poem::user_history ua = a.new_user(5), ub = b.new_user(5);
    poem::partial_order_state direct(c.state_tokens, c.state_requests);
    poem::ranked_request oa, ob;
    for (std::int64_t t = 0; t < 12; ++t) {
        const request r = make_request(2, 25 + std::size_t(t), 500 + std::uint64_t(t));
        a.rank(ua, 10 * t, r.ids, r.view(), wa, oa);
        b.rank(ub, 10 * t, r.ids, r.view(), wb, ob);
        REQUIRE(same_bits(oa.scores.values, ob.scores.values));
        REQUIRE(oa.order == ob.order);
        REQUIRE(oa.po.item_id == ob.po.item_id);
        a.record(ua, oa, wa);
        b.record(ub, ob, wb);
        REQUIRE(oa.recorded.size() <= quota_bound(c, oa));
        direct.record(oa.recorded);  // the state after N requests: the selected tokens, recorded directly
        REQUIRE(ua == ub);
        REQUIRE(bytes_of(ua.state) == bytes_of(direct));
        REQUIRE(ua.requests_recorded == std::uint64_t(t + 1));
    }
    // Another seed draws other samples (12 requests of 25+ candidates: equal states would be a fluke).
    c.seed = 100;
    const poem::request_ranker other(small_model(), c);
    poem::user_history uo = other.new_user(5);
    poem::ranked_request oo;
    for (std::int64_t t = 0; t < 12; ++t) {
        const request r = make_request(2, 25 + std::size_t(t), 500 + std::uint64_t(t));
        other.rank(uo, 10 * t, r.ids, r.view(), wa, oo);
        other.record(uo, oo, wa);
    }
    REQUIRE(bytes_of(uo.state) != bytes_of(ua.state));
}

TEST_CASE("request_seed: one stream per (seed, user, time, ordinal), whatever the thread or replay order") {
    // Every input moves the seed.
    const std::uint64_t s = poem::request_seed(1, 2, 3, 4);
    REQUIRE(s == poem::request_seed(1, 2, 3, 4));
    REQUIRE(s != poem::request_seed(0, 2, 3, 4));
    REQUIRE(s != poem::request_seed(1, 3, 3, 4));
    REQUIRE(s != poem::request_seed(1, 2, 4, 4));
    REQUIRE(s != poem::request_seed(1, 2, 3, 5));
    // Two users ranked in the same second, and one user twice in a second, draw distinct streams.
    std::vector<std::uint64_t> seeds;
    for (std::uint64_t user = 0; user < 64; ++user)
        for (std::uint64_t ordinal = 0; ordinal < 16; ++ordinal) seeds.push_back(poem::request_seed(7, user, 1000, ordinal));
    std::sort(seeds.begin(), seeds.end());
    REQUIRE(std::adjacent_find(seeds.begin(), seeds.end()) == seeds.end());

    // Replaying users interleaved in any order, on any number of threads, gives each the same history.
    auto c = config(2);
    c.levels.policy = poem::selection_policy::weighted;
    c.seed = 3;
    const poem::request_ranker ranker(small_model(), c);
    auto replay = [&](const std::vector<std::uint64_t>& users_in_order) {
        std::vector<poem::user_history> users;
        for (std::uint64_t id = 0; id < 4; ++id) users.push_back(ranker.new_user(id));
        poem::workspace ws;
        poem::ranked_request out;
        std::vector<std::size_t> next(4, 0);
        for (std::uint64_t id : users_in_order) {
            const std::size_t step = next[id]++;
            // All users see the same requests at the same times: only the user id tells them apart.
            const request r = make_request(2, 30, 700 + step);
            ranker.rank(users[id], 100 * std::int64_t(step / 2), r.ids, r.view(), ws, out);
            ranker.record(users[id], out, ws);
        }
        std::vector<std::vector<std::uint8_t>> bytes;  // the partial-order states: the user ids aside
        for (const auto& u : users) bytes.push_back(bytes_of(u.state));
        return bytes;
    };
    std::vector<std::uint64_t> by_user, round_robin;
    for (std::uint64_t id = 0; id < 4; ++id)
        for (int i = 0; i < 8; ++i) by_user.push_back(id);
    for (int i = 0; i < 8; ++i)
        for (std::uint64_t id = 4; id-- > 0;) round_robin.push_back(id);
    const auto x = replay(by_user), y = replay(round_robin);
    REQUIRE(x == y);
    REQUIRE(x[0] != x[1]);  // same requests, same times, another user: another sample
}

TEST_CASE("request_ranker: threads sharing one ranker, a workspace and a ranked_request each, match serial runs") {
    const poem::request_ranker ranker(four_row_model(),
                                      config(2, {poem::raw_transform::identity, poem::raw_transform::log1p}));
    poem::workspace ws;
    std::vector<poem::user_history> users;
    for (std::size_t i = 0; i < 3; ++i) users.push_back(warm_user(ranker, 2, ws));
    std::vector<request> reqs;
    for (std::uint64_t s = 0; s < 8; ++s) reqs.push_back(make_request(2, 1 + 37 * s, 900 + s));
    std::vector<poem::ranked_request> want(reqs.size());
    for (std::size_t i = 0; i < reqs.size(); ++i)
        ranker.rank(users[i % 3], 1000 + std::int64_t(i), reqs[i].ids, reqs[i].view(), ws, want[i]);
    const std::size_t threads = 4;
    std::vector<int> ok(threads, 0);
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            poem::workspace tws;
            poem::ranked_request out;
            bool same = true;
            for (std::size_t round = 0; round < 10; ++round)
                for (std::size_t j = 0; j < reqs.size(); ++j) {
                    const std::size_t i = (j + t + round) % reqs.size();
                    ranker.rank(users[i % 3], 1000 + std::int64_t(i), reqs[i].ids, reqs[i].view(), tws, out);
                    same = same && same_bits(out.scores.values, want[i].scores.values) && out.order == want[i].order &&
                           out.po.item_id == want[i].po.item_id && out.chrono.item_id == want[i].chrono.item_id;
                }
            ok[t] = same ? 1 : 0;
        });
    for (auto& th : pool) th.join();
    for (std::size_t t = 0; t < threads; ++t) CHECK(ok[t] == 1);
}

TEST_CASE("request_ranker: bad state bounds and unknown raw transforms are refused at construction") {
    auto c = config(1, {poem::raw_transform::identity});
    c.raw_features[0] = static_cast<poem::raw_transform>(7);
    REQUIRE_THROWS_WITH(poem::request_ranker(small_model(), c), Contains("unknown transform 7"));
    c = config(2);
    c.state_tokens = 0;
    REQUIRE_THROWS_WITH(poem::request_ranker(small_model(), c), Contains("ranker_config.state_tokens"));
    c = config(2);
    c.state_requests = 0;
    REQUIRE_THROWS_WITH(poem::request_ranker(small_model(), c), Contains("ranker_config.state_requests"));
}

TEST_CASE("request_ranker: record() refuses a request that did not complete, one already recorded, another user's") {
    const poem::request_ranker ranker(small_model(), config(2));
    poem::workspace ws;
    poem::user_history u = warm_user(ranker, 2, ws), v = warm_user(ranker, 2, ws, 9);
    poem::ranked_request out;
    REQUIRE_THROWS_WITH(ranker.record(u, out, ws), Contains("no completed rank()"));  // none ran
    const request good = make_request(2, 20, 1);
    ranker.rank(u, 1000, good.ids, good.view(), ws, out);
    REQUIRE_THROWS_WITH(ranker.record(v, out, ws), Contains("ranked for user 1, not 9"));
    REQUIRE_THROWS_WITH(ranker.log(v, event(3, 5, true, 1)), Contains("the event is user 1's, the history user 9's"));
    // A rank() that throws leaves nothing to record: never the previous request again.
    const auto before = u.serialize();
    REQUIRE_THROWS_AS(ranker.rank(u, 1001, good.ids, poem::matrix_view<const float>(good.scores.data(), 1, 20), ws, out),
                      poem::error);
    REQUIRE(out.state == poem::ranked_request::status::empty);
    REQUIRE_THROWS_WITH(ranker.record(u, out, ws), Contains("no completed rank()"));
    REQUIRE(u.serialize() == before);
}

TEST_CASE("user_history: one checksummed record; round trips; every truncation and corruption is refused") {
    const poem::request_ranker ranker(small_model(), config(2));
    poem::workspace ws;
    poem::user_history u = warm_user(ranker, 2, ws, 0xFEEDFACECAFEBEEFull);
    REQUIRE(u.state.request_count() > 0);
    REQUIRE(!u.log.empty());
    const std::vector<std::uint8_t> bytes = u.serialize();
    const poem::user_history back = poem::user_history::deserialize(bytes);
    REQUIRE(back == u);
    REQUIRE(back.user_id == 0xFEEDFACECAFEBEEFull);
    REQUIRE(back.requests_recorded == u.requests_recorded);
    REQUIRE(bytes_of(back.state) == bytes_of(u.state));
    REQUIRE(same_log(back.log, u.log));
    // The restored history ranks exactly as the original.
    const request r = make_request(2, 40, 3);
    poem::ranked_request a, b;
    ranker.rank(u, 2000, r.ids, r.view(), ws, a);
    ranker.rank(back, 2000, r.ids, r.view(), ws, b);
    REQUIRE(same_bits(a.scores.values, b.scores.values));
    REQUIRE(a.po.item_id == b.po.item_id);
    REQUIRE(a.chrono.item_id == b.chrono.item_id);
    REQUIRE(poem::user_history::deserialize(ranker.new_user(3).serialize()) == ranker.new_user(3));

    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
        CAPTURE(cut);
        REQUIRE_THROWS_AS(poem::user_history::deserialize(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + std::ptrdiff_t(cut))),
                          poem::error);
    }
    auto longer = bytes;
    longer.push_back(0);
    REQUIRE_THROWS_AS(poem::user_history::deserialize(longer), poem::error);
    for (std::size_t at = 0; at < bytes.size(); ++at)
        for (std::uint8_t flip : {0x01, 0x80}) {
            auto bad = bytes;
            bad[at] ^= flip;
            CAPTURE(at, int(flip));
            REQUIRE_THROWS_AS(poem::user_history::deserialize(bad), poem::error);
        }
    // Forged bytes with a valid checksum: the structure is still checked, and nothing crashes.
    std::size_t refused = 0;
    for (std::size_t at = 0; at + 4 < bytes.size(); ++at) {
        auto bad = bytes;
        bad[at] ^= 0x5A;
        const std::uint32_t crc = poem::crc32(bad.data(), bad.size() - 4);
        for (int i = 0; i < 4; ++i) bad[bad.size() - 4 + std::size_t(i)] = std::uint8_t(crc >> (8 * i));
        try {
            const auto h = poem::user_history::deserialize(bad);
            REQUIRE(h.serialize() == bad);  // accepted bytes are a history that writes the same bytes
        } catch (const poem::error&) {
            ++refused;
        }
    }
    REQUIRE(refused > 0);
    CHECK_THROWS_WITH(poem::user_history::deserialize(std::vector<std::uint8_t>{'P', 'O', 'U'}), Contains("CRC-32"));
    auto magic = bytes;
    magic[0] = 'X';
    const std::uint32_t crc = poem::crc32(magic.data(), magic.size() - 4);
    for (int i = 0; i < 4; ++i) magic[magic.size() - 4 + std::size_t(i)] = std::uint8_t(crc >> (8 * i));
    CHECK_THROWS_WITH(poem::user_history::deserialize(magic), Contains("magic"));
}

TEST_CASE("ranker_config: JSON round trip, strict fields, and the serving config a model file carries") {
    using rt = poem::raw_transform;
    auto c = config(2, {rt::identity, rt::log1p});
    c.levels.policy = poem::selection_policy::weighted;
    c.levels.gap_rel = inf_f;
    c.fusion.objectives[1].weight = 0.1f;  // not exact in decimal: must round-trip by bits
    c.seed = 0xFFFFFFFFFFFFFFFFull;
    const std::string text = poem::to_json(c);
    const poem::ranker_config back = poem::ranker_config_from_json(text);
    REQUIRE(poem::first_difference(c, back).empty());
    REQUIRE(poem::to_json(back) == text);
    REQUIRE(back.fusion.objectives[1].weight == 0.1f);
    REQUIRE(back.seed == c.seed);

    auto edited = [&](const std::function<void(nlohmann::json&)>& edit) {
        nlohmann::json j = nlohmann::json::parse(text);
        edit(j);
        return j.dump();
    };
    auto refused = [&](const std::string& t, const char* what) {
        CAPTURE(what);
        REQUIRE_THROWS_AS(poem::ranker_config_from_json(t, "f.safetensors"), poem::error);
        REQUIRE_THROWS_WITH(poem::ranker_config_from_json(t, "f.safetensors"), Contains(what));
    };
    refused(edited([](nlohmann::json& j) { j.erase("po_length"); }), "ranker_config.po_length is missing");
    refused(edited([](nlohmann::json& j) { j["levels"]["colour"] = 1; }), "unknown field ranker_config.levels.colour");
    refused(edited([](nlohmann::json& j) { j["fusion"]["method"] = "magic"; }), "ranker_config.fusion.method is not one of");
    refused(edited([](nlohmann::json& j) { j["fusion"]["objectives"][1]["normalization"] = 7; }),
            "ranker_config.fusion.objectives[1].normalization");
    refused(edited([](nlohmann::json& j) { j["raw_features"][0] = "square"; }), "ranker_config.raw_features[0]");
    refused(edited([](nlohmann::json& j) { j["seed"] = -1; }), "ranker_config.seed");
    refused(edited([](nlohmann::json& j) { j["version"] = 3; }), "version 3");
    refused(edited([](nlohmann::json& j) { j["side_features"] = {"log1p", "cube"}; }), "ranker_config.side_features[1]");
    refused(edited([](nlohmann::json& j) { j["side_features"] = std::vector<std::string>(65, "identity"); }),
            "ranker_config.side_features is not an array of at most 64");
    refused(edited([](nlohmann::json& j) { j.erase("side_features"); }), "ranker_config.side_features is missing");
    // Version 1 predates side features: read with none, and a version 1 file that names them is refused.
    REQUIRE(poem::ranker_config_from_json(edited([](nlohmann::json& j) {
                j["version"] = 1;
                j.erase("side_features");
            })).side_features.empty());
    refused(edited([](nlohmann::json& j) { j["version"] = 1; }), "unknown field ranker_config.side_features");
    refused(edited([](nlohmann::json& j) { j["state_tokens"] = 0; }), "ranker_config.state_tokens");
    refused(edited([](nlohmann::json& j) { j["levels"]["directions"] = {"higher_is_better"}; }), "level_config.directions");
    refused("[1, 2", "is invalid at byte");
    refused(std::string(100000, '[') + std::string(100000, ']'), "nested deeper than");
    refused("{\"fusion\": " + std::string(5000, '[') + std::string(5000, ']') + "}", "nested deeper than");

    SECTION("a ranker from the model file alone; a config that contradicts it names the field") {
        const poem::model m = synthetic_model(4, 1, 17, head0::random, text);
        const poem::request_ranker from_file(m);
        REQUIRE(poem::to_json(from_file.config()) == text);
        auto same = c;
        same.rank_head = 2;  // which head orders the candidates, and the log bound, may differ
        same.log_capacity = 500;
        REQUIRE_NOTHROW(poem::request_ranker(m, same));
        auto other = c;
        other.levels.method = poem::level_method::fused_tiers;
        REQUIRE_THROWS_WITH(poem::request_ranker(m, other), Contains("ranker_config.levels.method: differs"));
        other = c;
        other.raw_features = {rt::log1p, rt::log1p};
        REQUIRE_THROWS_WITH(poem::request_ranker(m, other), Contains("ranker_config.raw_features: differs"));
        other = c;
        other.seed = 1;
        REQUIRE_THROWS_WITH(poem::request_ranker(m, other), Contains("ranker_config.seed: differs"));
        // A model without a serving config needs one given.
        REQUIRE_THROWS_WITH(poem::request_ranker(four_row_model()), Contains("carries no 'poem_serving'"));
        REQUIRE_THROWS_WITH(poem::request_ranker(synthetic_model(4, 1, 17, head0::random, "{}")),
                            Contains("ranker_config.version is missing"));
    }
}

TEST_CASE("request_ranker: side features reach the model through their transforms and nothing else") {
    using rt = poem::raw_transform;
    const auto plain = config(2, {rt::identity, rt::log1p});
    auto with_side = plain;
    with_side.side_features = {rt::log1p, rt::identity, rt::log1p};
    const std::vector<float> side_pattern = {-3.0f, 0.0f, 0.5f, 7.25f, 1e30f, nan_f, inf_f, -inf_f};
    const poem::model m = synthetic_model(7, 1, 29);  // 2 normalised + 2 raw + 3 side rows
    const poem::request_ranker ranker(m, with_side), bare(plain);
    REQUIRE(with_side.score_rows() == 5);
    REQUIRE(with_side.objective_rows() == 7);
    poem::workspace ws;
    poem::user_history u = warm_user(bare, 2, ws), v = u;  // the same history under both rankers

    for (std::size_t n : {0, 1, 9, 64, 300}) {
        CAPTURE(n);
        const request r = make_request(2, n, 11 + n);
        request rs = r;  // the same scores, then three side rows
        rs.k = 5;
        for (std::size_t j = 0; j < 3; ++j)
            for (std::size_t i = 0; i < n; ++i) rs.scores.push_back(side_pattern[(i * (j + 3)) % side_pattern.size()]);
        poem::ranked_request a, b;
        ranker.rank(u, 1000, rs.ids, rs.view(), ws, a);
        bare.rank(v, 1000, r.ids, r.view(), ws, b);
        // Fusion, levels, tokens and sequences are those of the K scores alone.
        REQUIRE(same_bits(a.fused.fused, b.fused.fused));
        REQUIRE(a.levels.level == b.levels.level);
        REQUIRE(same_bits(a.rank_pct, b.rank_pct));
        REQUIRE(a.po.item_id == b.po.item_id);
        REQUIRE(a.chrono.item_id == b.chrono.item_id);
        // The objective rows: the plain ranker's four, then each side row through its transform.
        REQUIRE(a.objective_rows == 7);
        REQUIRE(std::equal(b.objectives.begin(), b.objectives.end(), a.objectives.begin()));
        for (std::size_t j = 0; j < 3; ++j)
            for (std::size_t i = 0; i < n; ++i) {
                const float x = rs.scores[(2 + j) * n + i], got = a.objectives[(4 + j) * n + i];
                if (!std::isfinite(x)) REQUIRE(got == 0.0f);
                else if (j == 1) REQUIRE(got == x);
                else REQUIRE(got == std::log1p(std::max(x, 0.0f)));
            }
        for (float x : a.scores.values) REQUIRE(std::isfinite(x));
        require_sorted_permutation(a, 0);
        // The model reads the side rows: other values, other predictions (same everything else).
        if (n >= 9) {
            request rs2 = rs;
            for (std::size_t i = 2 * n; i < 5 * n; ++i) rs2.scores[i] += 1.0f;
            poem::ranked_request c;
            ranker.rank(u, 1000, rs2.ids, rs2.view(), ws, c);
            REQUIRE(same_bits(c.fused.fused, a.fused.fused));
            REQUIRE_FALSE(same_bits(c.scores.values, a.scores.values));
        }
        // What record() keeps depends on the K scores only.
        ranker.record(u, a, ws);
        bare.record(v, b, ws);
        REQUIRE(bytes_of(u.state) == bytes_of(v.state));
        // Side rows missing: refused, naming both counts.
        if (n > 0)
            REQUIRE_THROWS_WITH(ranker.rank(u, 1000, r.ids, r.view(), ws, a),
                                Contains("expected 2 objectives + 3 side features x " + std::to_string(n)));
    }
    // A model that does not take the side rows, and an unknown transform, are refused at construction.
    REQUIRE_THROWS_WITH(poem::request_ranker(four_row_model(), with_side), Contains("+ 3 (side_features)"));
    auto bad = with_side;
    bad.side_features[2] = static_cast<rt>(9);
    REQUIRE_THROWS_WITH(poem::request_ranker(bad), Contains("ranker_config.side_features[2]: unknown transform 9"));
    bad.side_features.assign(poem::max_side_features + 1, rt::identity);
    REQUIRE_THROWS_WITH(poem::request_ranker(bad), Contains("side_features: 65 rows, at most 64"));
    // The serving config names them; one that differs is refused.
    const poem::model carried = synthetic_model(7, 1, 29, head0::random, poem::to_json(with_side));
    REQUIRE(poem::request_ranker(carried).config().side_features == with_side.side_features);
    auto other = with_side;
    other.side_features[0] = rt::identity;
    REQUIRE_THROWS_WITH(poem::request_ranker(carried, other), Contains("ranker_config.side_features: differs"));
}

TEST_CASE("model::predict: a NaN or infinity in an input it reads is refused, naming the first") {
    const poem::model& m = small_model();
    auto c = config(2);
    c.po_length = 64;  // longer than the state holds: the sequence ends in padding
    const poem::request_ranker ranker(m, c);
    poem::workspace ws;
    const poem::user_history u = warm_user(ranker, 2, ws);
    const request r = make_request(2, 12, 3);
    poem::ranked_request out;
    ranker.rank(u, 1000, r.ids, r.view(), ws, out);
    REQUIRE(out.po.count > 0);
    REQUIRE(out.po.count < out.po.length);  // some padding
    REQUIRE(out.chrono.count > 0);
    auto predict = [&](const poem::ranked_request& x) {
        const std::size_t n = x.size();
        std::vector<float> scores(n * m.outputs());
        m.predict({x.item_id, x.fused.fused, x.rank_pct, x.levels.level,
                   poem::matrix_view<const float>(x.objectives.data(), x.objective_rows, n)},
                  {x.chrono.item_id, x.chrono.age_seconds,
                   poem::matrix_view<const float>(x.chrono.play_ratio.data(), x.chrono.length, 1), x.chrono.mask},
                  {x.po.item_id, x.po.fused_score, x.po.rank_pct, x.po.level, x.po.age_seconds, x.po.mask}, ws,
                  poem::matrix_view<float>(scores.data(), n, m.outputs()));
        return scores;
    };
    REQUIRE(predict(out) == out.scores.values);
    auto bad = out;
    bad.objectives[1 * 12 + 5] = nan_f;
    CHECK_THROWS_WITH(predict(bad), Contains("candidate 5 has a non-finite objectives[1]"));
    bad = out;
    bad.fused.fused[3] = inf_f;
    bad.fused.fused[7] = nan_f;
    CHECK_THROWS_WITH(predict(bad), Contains("candidate 3 has a non-finite fused_score"));
    bad = out;
    bad.po.age_seconds[0] = nan_f;
    CHECK_THROWS_WITH(predict(bad), Contains("partial-order token 0 has a non-finite age_seconds"));
    bad = out;
    bad.chrono.play_ratio[0] = -inf_f;
    CHECK_THROWS_WITH(predict(bad), Contains("chronological token 0 has a non-finite features[0]"));
    bad = out;  // padding is not read
    bad.po.fused_score[bad.po.count] = nan_f;
    CHECK(predict(bad) == out.scores.values);
}

// ---- learned fusion -------------------------------------------------------------------------------

namespace {

// A K-objective ensemble with weights of a trained one's scale.
std::shared_ptr<const poem::learned_fusion> ensemble(std::size_t k, std::uint64_t seed) {
    poem::rng g(seed);
    auto draw = [&](std::size_t count, float lo, float hi) {
        std::vector<float> v(count);
        for (auto& x : v) x = lo + (hi - lo) * g.uniform_float();
        return v;
    };
    const std::size_t d = 4, h = 16;
    return std::make_shared<const poem::learned_fusion>(k, d, h, draw(k * d, -2, 2), draw(k * d, -1, 0),
                                                        draw(h * k * d, -0.4f, 0.4f), draw(h, -0.2f, 0.2f),
                                                        draw(h, -1, 1), draw(1, -2, 0), draw(k, -2, 2));
}

// Two objectives, two raw rows, levels from the fused score (tiers), so the ensemble decides them.
poem::ranker_config learned_config() {
    auto c = config(2, {poem::raw_transform::identity, poem::raw_transform::log1p});
    c.fusion.method = poem::fusion_method::learned;
    c.levels.method = poem::level_method::fused_tiers;
    c.levels.tiers = 4;
    return c;
}

}  // namespace

TEST_CASE("request_ranker: learned fusion's score drives the fused score, levels, tokens and sequences") {
    const auto ens = ensemble(2, 5);
    auto c = learned_config();
    c.fusion.learned = ens;
    const poem::model m = synthetic_model(4, 1, 17);
    const poem::request_ranker ranker(m, c);
    auto formula = c;
    formula.fusion.method = poem::fusion_method::weighted_rank;
    formula.fusion.learned = nullptr;
    const poem::request_ranker hand(m, formula);
    poem::workspace ws;
    poem::user_history u = ranker.new_user(1);
    poem::ranked_request out, first, by_hand;
    request r = make_request(2, 61, 3);
    poison(r, 4, 11);
    ranker.rank(u, 1000, r.ids, r.view(), ws, out);
    hand.rank(u, 1000, r.ids, r.view(), ws, by_hand);
    const std::size_t n = r.ids.size();

    // fused = the ensemble's score of the normalised rows; the formula's ranks and normalisations as before.
    std::vector<float> expect(n);
    ens->score(poem::matrix_view<const float>(out.fused.normalized.data(), 2, n), ws, poem::span<float>(expect));
    REQUIRE(same_bits(out.fused.fused, expect));
    REQUIRE(same_bits(out.fused.normalized, by_hand.fused.normalized));
    REQUIRE(out.fused.fused != by_hand.fused.fused);
    REQUIRE(out.levels.level != by_hand.levels.level);  // the ensemble ranks differently from the formula
    for (std::size_t i = 0; i < n; ++i) {
        // Tokens carry the learned score and its rank; fused tiers follow it (a non-finite input: the last level).
        REQUIRE(out.tokens[i].fused_score == out.fused.fused[i]);
        REQUIRE(out.tokens[i].rank_pct == out.fused.fused_rank_pct(i));
        REQUIRE(out.tokens[i].level == out.levels.level[i]);
        for (std::size_t j = 0; j < n; ++j)
            if (out.fused.fused_rank[i] < out.fused.fused_rank[j] && !out.fused.nonfinite[i])
                REQUIRE(out.levels.level[i] <= out.levels.level[j]);
        REQUIRE(out.objectives[i] == out.fused.normalized[i]);
    }
    // The recorded tokens reach the next request's partial-order sequence with their learned scores.
    first = out;
    ranker.record(u, first, ws);
    REQUIRE(!first.recorded.empty());
    ranker.rank(u, 2000, r.ids, r.view(), ws, out);
    std::size_t seen = 0;
    for (std::size_t t = 0; t < out.po.mask.size(); ++t) {
        if (!out.po.mask[t]) continue;
        ++seen;
        REQUIRE(std::find(expect.begin(), expect.end(), out.po.fused_score[t]) != expect.end());
    }
    REQUIRE(seen > 0);
    // The same request through a ranker without a model: the same fusion, levels and tokens.
    const poem::request_ranker offline(c);
    poem::ranked_request replay;
    offline.rank(offline.new_user(1), 1000, r.ids, r.view(), ws, replay);
    REQUIRE(same_bits(replay.fused.fused, first.fused.fused));
    REQUIRE(replay.levels.level == first.levels.level);
}

TEST_CASE("request_ranker: the model file's ensemble is picked up; a mismatch or none is refused") {
    const auto ens = ensemble(2, 5);
    const auto c = learned_config();  // as read from JSON: no ensemble
    const std::string text = poem::to_json(c);
    const poem::model with = synthetic_model(4, 1, 17, head0::random, text, ens.get());
    REQUIRE(with.learned_fusion() != nullptr);
    REQUIRE(*with.learned_fusion() == *ens);
    REQUIRE(four_row_model().learned_fusion() == nullptr);

    // From the file alone: config and ensemble both from the model file.
    const poem::request_ranker from_file(with);
    REQUIRE(from_file.config().fusion.learned != nullptr);
    REQUIRE(*from_file.config().fusion.learned == *ens);
    // A config without an ensemble takes the file's; one with the same ensemble is accepted.
    REQUIRE(*poem::request_ranker(with, c).config().fusion.learned == *ens);
    auto same = c;
    same.fusion.learned = ensemble(2, 5);
    REQUIRE_NOTHROW(poem::request_ranker(with, same));
    auto other = c;
    other.fusion.learned = ensemble(2, 6);
    REQUIRE_THROWS_WITH(poem::request_ranker(with, other),
                        Contains("ranker_config.fusion.learned: differs from the ensemble the model 'synthetic' carries"));
    // A model without an ensemble: the config must bring one.
    REQUIRE_THROWS_WITH(poem::request_ranker(four_row_model(), c),
                        Contains("none is set and the model 'synthetic' carries no fusion.* tensors"));
    REQUIRE_THROWS_WITH(poem::request_ranker(synthetic_model(4, 1, 17, head0::random, text)),
                        Contains("carries no fusion.* tensors"));
    REQUIRE(*poem::request_ranker(four_row_model(), same).config().fusion.learned == *ens);
    // No model: the config must hold it.
    REQUIRE_THROWS_WITH(poem::request_ranker(c), Contains("a ranker without a model has no model file"));
    REQUIRE_NOTHROW(poem::request_ranker(same));
    // An ensemble of another K, or one beside another method.
    auto wrong_k = c;
    wrong_k.fusion.learned = ensemble(3, 5);
    REQUIRE_THROWS_WITH(poem::request_ranker(wrong_k), Contains("the ensemble takes 3 objectives, the scores have 2"));
    auto stray = config(2, {poem::raw_transform::identity, poem::raw_transform::log1p});
    stray.fusion.learned = ens;
    REQUIRE_THROWS_WITH(poem::request_ranker(four_row_model(), stray),
                        Contains("an ensemble is set but fusion_config.method is"));
    // A model file whose fusion tensors do not fit the ensemble's shapes fails to load, naming them.
    const auto k3 = ensemble(3, 1);
    REQUIRE(synthetic_model(4, 1, 17, head0::random, "", k3.get()).learned_fusion()->objectives() == 3);
    REQUIRE_THROWS_WITH(poem::request_ranker(synthetic_model(4, 1, 17, head0::random, "", k3.get()), c),
                        Contains("the ensemble takes 3 objectives, the scores have 2"));
}

TEST_CASE("ranker_config: method learned round-trips through JSON without its weights") {
    auto c = learned_config();
    c.fusion.learned = ensemble(2, 5);
    const std::string text = poem::to_json(c);
    REQUIRE(nlohmann::json::parse(text)["fusion"]["method"] == "learned");
    REQUIRE(text.find("component") == std::string::npos);
    const poem::ranker_config back = poem::ranker_config_from_json(text);
    REQUIRE(back.fusion.method == poem::fusion_method::learned);
    REQUIRE(back.fusion.learned == nullptr);
    REQUIRE(poem::to_json(back) == text);
    // first_difference: an ensemble on one side only is no difference (JSON carries none); two differ by weights.
    REQUIRE(poem::first_difference(c, back).empty());
    REQUIRE(poem::first_difference(back, c).empty());
    auto other = c;
    other.fusion.learned = ensemble(2, 6);
    REQUIRE(poem::first_difference(c, other) == "fusion.learned");
    other.fusion.learned = ensemble(2, 5);
    REQUIRE(poem::first_difference(c, other).empty());
    auto formula = back;
    formula.fusion.method = poem::fusion_method::weighted_value;
    REQUIRE(poem::first_difference(back, formula) == "fusion.method");
}
