#pragma once
// ranker_config: everything that decides what a request_ranker builds from a request (fusion, levels,
// level selection, raw feature rows, side feature rows, sequence lengths, state bounds, engagement rule,
// seed), and its
// JSON form, which the model file carries under the safetensors metadata key "poem_serving" so that a
// model is served with the configuration it was trained with (docs/serving.md).
//
// The JSON is strict: every field is required, unknown fields are refused, enums are names
// ("weighted_rank", "pareto", ...), and every error names the field. Nesting deeper than
// max_json_depth is refused while parsing (a hostile file cannot exhaust the stack).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "poem/core/error.hpp"
#include "poem/fusion/config.hpp"
#include "poem/model/detail/json_guard.hpp"
#include "poem/order/chrono.hpp"
#include "poem/order/level_config.hpp"
#include "poem/order/state.hpp"

namespace poem {

// How a raw score (or a side feature) is fed to the model.
enum class raw_transform {
    identity,
    log1p,  // log1p(max(x, 0)): for unbounded scores such as a predicted watch time in seconds
};

// At most this many side feature rows: a bound that a hostile config file cannot raise.
inline constexpr std::size_t max_side_features = 64;

struct ranker_config {
    fusion_config fusion;
    level_config levels;                        // directions: one per objective (directions_of(fusion))
    std::vector<raw_transform> raw_features;  // empty, or one per objective
    // Side features: S rows the caller passes after the K score rows (item statistics, user counts...).
    // The model sees them through their transforms; fusion, levels and the sequences never do.
    std::vector<raw_transform> side_features;
    std::size_t po_length = 32;               // partial-order sequence length
    std::size_t chrono_length = 32;           // chronological sequence length
    std::size_t state_tokens = 128;           // partial_order_state bounds
    std::size_t state_requests = 16;
    std::size_t log_capacity = 1024;          // engaged events kept per user (newest), >= chrono_length
    engagement_config engagement;               // which events enter the chronological sequence
    std::uint64_t seed = 0;                   // request_seed(): level selection (policy weighted)
    std::size_t rank_head = 0;                // the model output that orders the candidates

    static constexpr const char* metadata_key = "poem_serving";
    static constexpr int format_version = 2;  // 2 added side_features; version 1 files read with none
    static constexpr int max_json_depth = 4;  // config > levels > objectives > one objective

    // Rows of the `scores` a request passes: the K objectives, then the side features.
    std::size_t score_rows() const noexcept { return fusion.objectives.size() + side_features.size(); }
    // Objective rows the model sees per candidate: K normalised, the raw ones, then the side features.
    std::size_t objective_rows() const noexcept {
        return fusion.objectives.size() + raw_features.size() + side_features.size();
    }
};

// Throws poem::error naming the field unless the config is usable on its own (the model checks are the
// ranker's). Method learned may lack its ensemble here: the JSON form does not carry the weights, and the
// ranker takes them from the model file (request_ranker).
inline void validate(const ranker_config& c) {
    const std::size_t k = c.fusion.objectives.size();
    detail::validate_fusion(c.fusion, k, /*need_ensemble=*/false);
    validate(c.levels, k);
    validate(c.engagement);
    check(c.raw_features.empty() || c.raw_features.size() == k, "ranker_config.raw_features: ",
          c.raw_features.size(), " transforms for ", k, " objectives (0 or ", k, ")");
    check(c.side_features.size() <= max_side_features, "ranker_config.side_features: ", c.side_features.size(),
          " rows, at most ", max_side_features);
    for (const auto& [field, transforms] : {std::pair{"raw_features", &c.raw_features},
                                            std::pair{"side_features", &c.side_features}})
        for (std::size_t j = 0; j < transforms->size(); ++j)
            check((*transforms)[j] == raw_transform::identity || (*transforms)[j] == raw_transform::log1p,
                  "ranker_config.", field, "[", j, "]: unknown transform ", static_cast<int>((*transforms)[j]));
    // The bounds of the layers that build the sequences.
    check(c.po_length <= partial_order_state::max_sequence_length, "ranker_config.po_length = ", c.po_length, " > ",
          partial_order_state::max_sequence_length);
    check(c.chrono_length <= max_chrono_length, "ranker_config.chrono_length = ", c.chrono_length, " > ",
          max_chrono_length);
    check(c.state_tokens >= 1 && c.state_tokens <= partial_order_state::max_tokens_limit,
          "ranker_config.state_tokens must be in [1, ", partial_order_state::max_tokens_limit, "], got ",
          c.state_tokens);
    check(c.state_requests >= 1 && c.state_requests <= partial_order_state::max_requests_limit,
          "ranker_config.state_requests must be in [1, ", partial_order_state::max_requests_limit, "], got ",
          c.state_requests);
    check(c.log_capacity >= c.chrono_length, "ranker_config.log_capacity (", c.log_capacity, ") < chrono_length (",
          c.chrono_length, ")");
    check(c.log_capacity <= (std::size_t(1) << 24), "ranker_config.log_capacity = ", c.log_capacity,
          " > 2^24");
}

namespace detail {

template <class E>
struct enum_names;
template <>
struct enum_names<direction> {
    static constexpr const char* names[] = {"higher_is_better", "lower_is_better"};
};
template <>
struct enum_names<normalization> {
    static constexpr const char* names[] = {"rank_pct", "min_max", "z_score", "log1p_min_max"};
};
template <>
struct enum_names<fusion_method> {
    static constexpr const char* names[] = {"weighted_rank", "reciprocal_rank", "weighted_value", "learned"};
};
template <>
struct enum_names<level_method> {
    static constexpr const char* names[] = {"pareto", "fused_tiers", "gap_tiers", "topk_tiers"};
};
template <>
struct enum_names<selection_policy> {
    static constexpr const char* names[] = {"top_fused", "weighted"};
};
template <>
struct enum_names<raw_transform> {
    static constexpr const char* names[] = {"identity", "log1p"};
};

template <class E>
std::string enum_name(E e) {
    const auto& names = enum_names<E>::names;
    const auto i = static_cast<std::size_t>(e);
    check(i < sizeof(names) / sizeof(names[0]), "ranker_config: enum value ", i, " has no name");
    return names[i];
}

// Reads a JSON object strictly: each field once, by name, and nothing left over at the end.
class json_fields {
public:
    json_fields(const nlohmann::json& j, std::string path, const std::string& source)
        : j_(j), path_(std::move(path)), source_(source) {
        if (!j.is_object()) fail("is not an object");
    }

    [[noreturn]] void fail(const std::string& what) const {
        detail::fail("poem: serving config in '", source_, "': ", path_, " ", what);
    }

    const nlohmann::json& get(const char* key) {
        const auto it = j_.find(key);
        if (it == j_.end()) detail::fail("poem: serving config in '", source_, "': field ", path_, ".", key,
                                         " is missing");
        used_.push_back(key);
        return *it;
    }
    std::string field(const char* key) const { return path_ + "." + key; }

    std::uint64_t uint(const char* key, std::uint64_t lo, std::uint64_t hi) {
        const auto& v = get(key);
        if (!v.is_number_unsigned() || v.get<std::uint64_t>() < lo || v.get<std::uint64_t>() > hi)
            detail::fail("poem: serving config in '", source_, "': field ", field(key), " is not an integer in [",
                         lo, ", ", hi, "]");
        return v.get<std::uint64_t>();
    }
    float number(const char* key) {
        const auto& v = get(key);
        if (v.is_string() && (v.get<std::string>() == "inf" || v.get<std::string>() == "-inf"))
            return v.get<std::string>() == "inf" ? INFINITY : -INFINITY;
        if (!v.is_number())
            detail::fail("poem: serving config in '", source_, "': field ", field(key), " is not a number");
        return v.get<float>();
    }
    bool boolean(const char* key) {
        const auto& v = get(key);
        if (!v.is_boolean())
            detail::fail("poem: serving config in '", source_, "': field ", field(key), " is not a boolean");
        return v.get<bool>();
    }
    template <class E>
    E enumeration(const nlohmann::json& v, const std::string& where) const {
        const auto& names = enum_names<E>::names;
        if (v.is_string())
            for (std::size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i)
                if (v.get<std::string>() == names[i]) return static_cast<E>(i);
        std::string known;
        for (const char* n : names) known += std::string(known.empty() ? "" : ", ") + n;
        detail::fail("poem: serving config in '", source_, "': field ", where, " is not one of ", known);
    }
    template <class E>
    E enumeration(const char* key) {
        return enumeration<E>(get(key), field(key));
    }
    const nlohmann::json& array(const char* key, std::size_t max_size) {
        const auto& v = get(key);
        if (!v.is_array() || v.size() > max_size)
            detail::fail("poem: serving config in '", source_, "': field ", field(key), " is not an array of at most ",
                         max_size, " entries");
        return v;
    }
    // Throws if the object holds a field that was never read.
    void done() const {
        for (auto it = j_.begin(); it != j_.end(); ++it)
            if (!read(it.key()))
                detail::fail("poem: serving config in '", source_, "': unknown field ", path_, ".",
                             detail::clip(it.key()));
    }
private:
    bool read(const std::string& k) const {
        for (const char* s : used_)
            if (k == s) return true;
        return false;
    }
    const nlohmann::json& j_;
    std::string path_;
    const std::string& source_;
    std::vector<const char*> used_;
};

inline nlohmann::json finite_or_name(float x) {
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    return x;
}

}  // namespace detail

// The config as JSON text (keys sorted; floats round-trip exactly).
inline std::string to_json(const ranker_config& c) {
    using nlohmann::json;
    using detail::enum_name;
    json objectives = json::array();
    for (const auto& o : c.fusion.objectives)
        objectives.push_back({{"direction", enum_name(o.dir)}, {"normalization", enum_name(o.norm)},
                              {"weight", o.weight}});
    json directions = json::array();
    for (auto d : c.levels.directions) directions.push_back(enum_name(d));
    json raw = json::array(), side = json::array();
    for (auto r : c.raw_features) raw.push_back(enum_name(r));
    for (auto r : c.side_features) side.push_back(enum_name(r));
    const json j = {
        {"version", ranker_config::format_version},
        {"fusion", {{"method", enum_name(c.fusion.method)}, {"alpha", c.fusion.alpha}, {"beta", c.fusion.beta},
                    {"objectives", objectives}}},
        {"levels", {{"method", enum_name(c.levels.method)}, {"directions", directions}, {"tiers", c.levels.tiers},
                    {"gap_abs", detail::finite_or_name(c.levels.gap_abs)},
                    {"gap_rel", detail::finite_or_name(c.levels.gap_rel)}, {"topk", c.levels.topk},
                    {"quota", c.levels.quota.per_level}, {"quota_beyond", c.levels.quota.beyond},
                    {"policy", enum_name(c.levels.policy)}, {"weight_floor", c.levels.weight_floor}}},
        {"raw_features", raw},
        {"side_features", side},
        {"po_length", c.po_length},
        {"chrono_length", c.chrono_length},
        {"state_tokens", c.state_tokens},
        {"state_requests", c.state_requests},
        {"log_capacity", c.log_capacity},
        {"engagement", {{"click", c.engagement.click}, {"long_view", c.engagement.long_view},
                        {"long_view_seconds", c.engagement.long_view_seconds}, {"like", c.engagement.like},
                        {"follow", c.engagement.follow}}},
        {"seed", c.seed},
        {"rank_head", c.rank_head},
    };
    return j.dump();
}

// Parses and validates the JSON of to_json(); `source` names the file in errors.
inline ranker_config ranker_config_from_json(const std::string& text, const std::string& source = "<config>") {
    using nlohmann::json;
    detail::json_guard::check(text, ranker_config::max_json_depth, "serving config in '" + source + "'");
    const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) detail::fail("poem: serving config in '", source, "': not valid JSON");
    ranker_config c;
    detail::json_fields top(j, "ranker_config", source);
    const auto version = top.uint("version", 0, 1u << 30);
    if (version != 1 && version != ranker_config::format_version)
        detail::fail("poem: serving config in '", source, "': version ", version, " is not one of 1..",
                     ranker_config::format_version, ", the versions this build reads");
    constexpr std::uint64_t big = std::uint64_t(1) << 40;
    {
        detail::json_fields f(top.get("fusion"), "ranker_config.fusion", source);
        c.fusion.method = f.enumeration<fusion_method>("method");
        c.fusion.alpha = f.number("alpha");
        c.fusion.beta = f.number("beta");
        const auto& objs = f.array("objectives", max_objectives);
        for (std::size_t i = 0; i < objs.size(); ++i) {
            detail::json_fields o(objs[i], "ranker_config.fusion.objectives[" + std::to_string(i) + "]", source);
            objective_config s;
            s.dir = o.enumeration<direction>("direction");
            s.norm = o.enumeration<normalization>("normalization");
            s.weight = o.number("weight");
            o.done();
            c.fusion.objectives.push_back(s);
        }
        f.done();
    }
    {
        detail::json_fields f(top.get("levels"), "ranker_config.levels", source);
        c.levels.method = f.enumeration<level_method>("method");
        const auto& dirs = f.array("directions", max_objectives);
        for (std::size_t i = 0; i < dirs.size(); ++i)
            c.levels.directions.push_back(
                f.enumeration<direction>(dirs[i], "ranker_config.levels.directions[" + std::to_string(i) + "]"));
        c.levels.tiers = static_cast<std::size_t>(f.uint("tiers", 0, big));
        c.levels.gap_abs = f.number("gap_abs");
        c.levels.gap_rel = f.number("gap_rel");
        auto uints = [&](const char* key, std::size_t max_size, std::uint64_t hi, auto& out) {
            const auto& a = f.array(key, max_size);
            out.clear();
            for (const auto& v : a) {
                if (!v.is_number_unsigned() || v.get<std::uint64_t>() > hi)
                    f.fail(std::string("holds a value that is not an integer in [0, ") + std::to_string(hi) +
                           "] in field " + key);
                out.push_back(static_cast<typename std::decay_t<decltype(out)>::value_type>(v.get<std::uint64_t>()));
            }
        };
        uints("topk", 64, big, c.levels.topk);
        uints("quota", 1024, 0xFFFFFFFFull, c.levels.quota.per_level);
        c.levels.quota.beyond = static_cast<std::uint32_t>(f.uint("quota_beyond", 0, 0xFFFFFFFFull));
        c.levels.policy = f.enumeration<selection_policy>("policy");
        c.levels.weight_floor = f.number("weight_floor");
        f.done();
    }
    auto transforms = [&](const char* key, std::size_t max_size, std::vector<raw_transform>& out) {
        const auto& a = top.array(key, max_size);
        for (std::size_t i = 0; i < a.size(); ++i)
            out.push_back(top.enumeration<raw_transform>(a[i], top.field(key) + "[" + std::to_string(i) + "]"));
    };
    transforms("raw_features", max_objectives, c.raw_features);
    if (version >= 2) transforms("side_features", max_side_features, c.side_features);  // version 1 had none
    c.po_length = static_cast<std::size_t>(top.uint("po_length", 0, partial_order_state::max_sequence_length));
    c.chrono_length = static_cast<std::size_t>(top.uint("chrono_length", 0, max_chrono_length));
    c.state_tokens = static_cast<std::size_t>(top.uint("state_tokens", 1, big));
    c.state_requests = static_cast<std::size_t>(top.uint("state_requests", 1, big));
    c.log_capacity = static_cast<std::size_t>(top.uint("log_capacity", 0, big));
    {
        detail::json_fields f(top.get("engagement"), "ranker_config.engagement", source);
        c.engagement.click = f.boolean("click");
        c.engagement.long_view = f.boolean("long_view");
        c.engagement.long_view_seconds = f.number("long_view_seconds");
        c.engagement.like = f.boolean("like");
        c.engagement.follow = f.boolean("follow");
        f.done();
    }
    c.seed = top.uint("seed", 0, ~std::uint64_t(0));
    c.rank_head = static_cast<std::size_t>(top.uint("rank_head", 0, big));
    top.done();
    validate(c);
    return c;
}

// The first field in which two configs differ in what they build from a request (every field but
// log_capacity and rank_head, which only bound the log and pick the ordering head); empty when none.
// Learned ensembles differ only when both configs hold one (a config read from JSON holds none: the
// ranker supplies it, and checks it against the model file's).
inline std::string first_difference(const ranker_config& a, const ranker_config& b) {
    const std::size_t ka = a.fusion.objectives.size(), kb = b.fusion.objectives.size();
    if (ka != kb) return "fusion.objectives (" + std::to_string(ka) + " against " + std::to_string(kb) + " objectives)";
    if (a.fusion.method != b.fusion.method) return "fusion.method";
    if (a.fusion.method == fusion_method::reciprocal_rank && (a.fusion.alpha != b.fusion.alpha || a.fusion.beta != b.fusion.beta))
        return "fusion.alpha / fusion.beta";
    if (a.fusion.learned && b.fusion.learned && *a.fusion.learned != *b.fusion.learned) return "fusion.learned";
    for (std::size_t i = 0; i < ka; ++i) {
        const auto &x = a.fusion.objectives[i], &y = b.fusion.objectives[i];
        const std::string at = "fusion.objectives[" + std::to_string(i) + "]";
        if (x.dir != y.dir) return at + ".direction";
        if (x.norm != y.norm) return at + ".normalization";
        if (x.weight != y.weight) return at + ".weight";
    }
    if (a.levels.method != b.levels.method) return "levels.method";
    if (a.levels.directions != b.levels.directions) return "levels.directions";
    if (a.levels.tiers != b.levels.tiers) return "levels.tiers";
    if (a.levels.gap_abs != b.levels.gap_abs || a.levels.gap_rel != b.levels.gap_rel) return "levels.gap_abs / gap_rel";
    if (a.levels.topk != b.levels.topk) return "levels.topk";
    if (a.levels.quota.per_level != b.levels.quota.per_level || a.levels.quota.beyond != b.levels.quota.beyond)
        return "levels.quota";
    if (a.levels.policy != b.levels.policy) return "levels.policy";
    if (a.levels.weight_floor != b.levels.weight_floor) return "levels.weight_floor";
    if (a.raw_features != b.raw_features) return "raw_features";
    if (a.side_features != b.side_features) return "side_features";
    if (a.po_length != b.po_length) return "po_length";
    if (a.chrono_length != b.chrono_length) return "chrono_length";
    if (a.state_tokens != b.state_tokens) return "state_tokens";
    if (a.state_requests != b.state_requests) return "state_requests";
    const auto &e = a.engagement, &f = b.engagement;
    if (e.click != f.click || e.long_view != f.long_view || e.long_view_seconds != f.long_view_seconds ||
        e.like != f.like || e.follow != f.follow)
        return "engagement";
    if (a.seed != b.seed) return "seed";
    return {};
}

}  // namespace poem
