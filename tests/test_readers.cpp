// Hostile inputs: model and graph files (the safetensors reader and the model config refuse deep
// nesting, duplicate keys, gaps and trailing bytes, non-finite weights and directories with poem::error:
// never a crash, never a silent load, short messages, time linear in the input), and sizes computed from
// a caller's numbers (overflow-checked).
#include <catch2/catch.hpp>

#include <csignal>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "poem/fusion/fuse.hpp"
#include "poem/model/learned_fusion_file.hpp"
#include "poem/model/model.hpp"
#include "poem/order/level_config.hpp"
#include "poem/model/safetensors.hpp"
#include "poem/sample/item_graph_builder.hpp"
#include "poem/sample/item_graph_io.hpp"
#include "poem/sample/walk.hpp"

namespace {

using Catch::Matchers::Contains;

// A safetensors file: the header text as given, then `buffer`.
std::vector<char> file_of(const std::string& header, const std::vector<float>& buffer = {}, std::size_t extra = 0) {
    std::vector<char> bytes(8);
    for (int i = 0; i < 8; ++i) bytes[std::size_t(i)] = static_cast<char>(std::uint64_t(header.size()) >> (8 * i));
    bytes.insert(bytes.end(), header.begin(), header.end());
    const std::size_t at = bytes.size();
    bytes.resize(at + 4 * buffer.size() + extra, 0);
    if (!buffer.empty()) std::memcpy(bytes.data() + at, buffer.data(), 4 * buffer.size());
    return bytes;
}

poem::safetensors_file parse(const std::vector<char>& b) {
    return poem::safetensors_file::from_bytes(b.data(), b.size(), "hostile");
}

// The error message of parsing `b`; fails the test when it parses.
std::string refusal(const std::vector<char>& b) {
    try {
        parse(b);
    } catch (const poem::error& e) {
        return e.what();
    }
    FAIL("accepted a hostile file");
    return {};
}

// CPU time, not wall time: the machine may be busy.
double cpu_seconds_since(std::clock_t t0) { return double(std::clock() - t0) / CLOCKS_PER_SEC; }

const std::string two_tensors =
    R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";

}  // namespace

TEST_CASE("safetensors: a well-formed file parses; gaps, trailing bytes and overlaps are refused") {
    const auto ok = parse(file_of(two_tensors, {1.0f, 2.0f, 3.0f}));
    REQUIRE(ok.tensors().size() == 2);
    REQUIRE(ok.to_f32("a") == std::vector<float>{1.0f, 2.0f});

    CHECK_THROWS_WITH(parse(file_of(two_tensors, {1.0f, 2.0f, 3.0f}, 4)), Contains("4 trailing bytes"));
    const std::string gap =
        R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
    CHECK_THROWS_WITH(parse(file_of(gap, {1.0f, 2.0f, 3.0f})), Contains("belong to no tensor: a gap before 'b'"));
    const std::string late =
        R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
    CHECK_THROWS_WITH(parse(file_of(late, {1.0f, 2.0f})), Contains("gap before 'a'"));
    const std::string overlap =
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
    CHECK_THROWS_WITH(parse(file_of(overlap, {1.0f, 2.0f})), Contains("overlap"));
    // Empty tensors may sit anywhere.
    const std::string empty =
        R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})";
    REQUIRE(parse(file_of(empty, {1.0f})).tensors().size() == 2);
}

TEST_CASE("safetensors: a key twice in one tensor entry, or a tensor twice, is refused") {
    const std::string dup_key = R"({"a":{"dtype":"F32","shape":[1],"shape":[1],"data_offsets":[0,4]}})";
    CHECK_THROWS_WITH(parse(file_of(dup_key, {1.0f})), Contains("key 'shape' appears more than once in one object"));
    const std::string dup_tensor =
        R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
    CHECK_THROWS_WITH(parse(file_of(dup_tensor, {1.0f})), Contains("key 'a' appears more than once"));
}

TEST_CASE("safetensors: deep nesting is refused fast, wherever it is") {
    const std::size_t deep = 100000;
    const std::string nest = std::string(deep, '[') + std::string(deep, ']');
    for (const std::string& header :
         {R"({"a":{"dtype":"F32","shape":)" + nest + R"(,"data_offsets":[0,4]}})",
          R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":)" + nest + "}}",
          R"({"__metadata__":{"k":)" + nest + "}}", nest}) {
        const std::clock_t t0 = std::clock();
        const std::string msg = refusal(file_of(header, {1.0f}));
        CHECK(cpu_seconds_since(t0) < 5.0);
        CHECK(msg.size() < 300);
    }
    CHECK_THROWS_WITH(parse(file_of(R"({"a":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}})", {1.0f})),
                      Contains("nested deeper than 3"));
}

TEST_CASE("safetensors: long names, many entries and huge shapes give short messages, in linear time") {
    const std::string name(1 << 20, 'n');
    const std::string msg =
        refusal(file_of(R"({")" + name + R"(":{"dtype":"F64","shape":[1],"data_offsets":[0,4]}})", {1.0f}));
    CHECK_THAT(msg, Contains("unsupported dtype"));
    CHECK(msg.size() < 300);
    // 200k entries, all valid but for the last one.
    std::string many = "{";
    for (int i = 0; i < 200000; ++i) many += "\"t" + std::to_string(i) + R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)";
    many += R"("bad":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,8]}})";
    const std::clock_t t0 = std::clock();
    const std::string m2 = refusal(file_of(many, {1.0f, 2.0f}));
    CHECK(cpu_seconds_since(t0) < 20.0);  // about 1.4 s here; a quadratic pass takes many minutes
    CHECK_THAT(m2, Contains("[16 entries]"));
    CHECK(m2.size() < 300);
}

TEST_CASE("safetensors: a non-finite weight is refused with the tensor's name and element") {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const auto f = parse(file_of(two_tensors, {1.0f, nan, 3.0f}));
    CHECK_THROWS_WITH(f.to_f32("a"), Contains("tensor 'a' holds a non-finite value (nan) at element 1"));
    REQUIRE(f.to_f32("b") == std::vector<float>{3.0f});
    const auto g = parse(file_of(two_tensors, {1.0f, 2.0f, -inf}));
    CHECK_THROWS_WITH(g.to_f32("b"), Contains("tensor 'b' holds a non-finite value"));
    // F16 infinity (0x7C00) and BF16 NaN (0x7FC0) too.
    std::vector<char> half = file_of(R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", {0.0f});
    half[half.size() - 1] = 0x7C;
    CHECK_THROWS_WITH(parse(half).to_f32("h"), Contains("non-finite"));
    std::vector<char> bf = file_of(R"({"h":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", {0.0f});
    bf[bf.size() - 2] = static_cast<char>(0xC0);
    bf[bf.size() - 1] = 0x7F;
    CHECK_THROWS_WITH(parse(bf).to_f32("h"), Contains("non-finite"));
}

TEST_CASE("model files: a directory or a missing path is a poem::error naming it") {
    const std::string dir = std::filesystem::temp_directory_path().string();
    CHECK_THROWS_WITH(poem::model::load(dir), Contains("is not a regular file (it is a directory)"));
    CHECK_THROWS_WITH(poem::model::load(dir + "/no/such/poem.safetensors"), Contains("no such file"));
    CHECK_THROWS_WITH(poem::safetensors_file::open(dir), Contains(dir));
}

TEST_CASE("model config: deep nesting and long values are refused with short messages") {
    const std::string base = R"({"vocab":10,"d":4,"n_heads":1,"n_objectives":1,"n_levels":4,"chrono_feats":1,"heads":["a"],"use_po":true,"mlp":)";
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    CHECK_THROWS_WITH(poem::model_config::from_json(base + deep + "}", "x"), Contains("nested deeper"));
    CHECK_THROWS_WITH(poem::model_config::from_json(base + "[[1]]}", "x"), Contains("nested deeper"));
    const std::string long_value = base + "[\"" + std::string(1 << 20, 'w') + "\"]}";
    try {
        poem::model_config::from_json(long_value, "x");
        FAIL("accepted a string width");
    } catch (const poem::error& e) {
        CHECK_THAT(std::string(e.what()), Contains("field 'mlp' holds"));
        CHECK(std::string(e.what()).size() < 300);
    }
    REQUIRE(poem::model_config::from_json(base + "[8]}", "x").mlp == std::vector<std::size_t>{8});
    poem::model_config c;  // built in code: the same checks, naming the field
    REQUIRE_NOTHROW(poem::validate(c));
    c.n_heads = 5;
    CHECK_THROWS_WITH(poem::validate(c), Contains("model_config.n_heads = 5 does not divide d = 32"));
    c = poem::model_config{};
    c.mlp = {};
    CHECK_THROWS_WITH(poem::validate(c), Contains("model_config.mlp"));
}

TEST_CASE("item graph files: a directory or a missing path is a poem::error naming it") {
    const std::string dir = std::filesystem::temp_directory_path().string();
    CHECK_THROWS_WITH(poem::load_item_graph(dir), Contains("is not a regular file (it is a directory)"));
    CHECK_THROWS_WITH(poem::load_item_graph(dir + "/no/such/graph.bin"), Contains("no such file"));
}

TEST_CASE("sizes from a caller's numbers are overflow-checked: a walk of 2^63 steps is refused") {
    std::vector<poem::engagement_event> events;
    for (std::uint64_t i = 0; i < 6; ++i) {
        poem::engagement_event e;
        e.user_id = i % 2;
        e.item_id = i;
        e.time = std::int64_t(i);
        events.push_back(e);
    }
    const poem::item_graph g = poem::build_item_graph(events, 6, poem::graph_build_config{});
    const std::vector<std::uint64_t> starts{0, 1};
    std::vector<std::uint64_t> out;  // starts.size() * 2^63 wraps to 0: must not pass as "0 entries"
    poem::rng gen(1);
    poem::workspace ws;
    CHECK_THROWS_WITH(poem::walk_batch(g, starts, std::size_t(1) << 63, gen, ws, out),
                      Contains("starts.size() x length") && Contains("overflows"));
    CHECK_THROWS_WITH(poem::walk_naive(g, starts, std::size_t(1) << 63, gen, out), Contains("overflows"));
    CHECK_THROWS_WITH(poem::checked_mul(std::size_t(1) << 40, std::size_t(1) << 30, "rows x cols"),
                      Contains("rows x cols: 1099511627776 x 1073741824 overflows"));
    REQUIRE(poem::checked_mul(3, 5, "x") == 15);
}

TEST_CASE("a failed save (file size limit) leaves the old file whole and no temporary behind") {
    std::vector<poem::engagement_event> events;
    for (std::uint64_t i = 0; i < 400; ++i) {
        poem::engagement_event e;
        e.user_id = i % 7;
        e.item_id = (i * 37) % 200;
        e.time = std::int64_t(i);
        events.push_back(e);
    }
    const poem::item_graph small = poem::build_item_graph(events, 200, poem::graph_build_config{});
    char dir[] = "/tmp/poem_test_fsize_XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    const std::string path = std::string(dir) + "/graph.bin";
    poem::item_graph tiny = poem::build_item_graph(std::vector<poem::engagement_event>(events.begin(), events.begin() + 4), 200,
                                                   poem::graph_build_config{});
    poem::save_item_graph(tiny, path);
    const auto good = poem::serialize_item_graph(poem::load_item_graph(path));
    REQUIRE(good.size() < 3000);
    REQUIRE(poem::serialize_item_graph(small).size() > 3000);
    // In a child: a 3000-byte file size limit (a full disk, in effect); the save must fail cleanly.
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::signal(SIGXFSZ, SIG_IGN);  // a failed write(), not a killed process
        const rlimit lim{3000, 3000};
        setrlimit(RLIMIT_FSIZE, &lim);
        try {
            poem::save_item_graph(small, path);
        } catch (const poem::error&) {
            _exit(0);  // refused, as it should be
        }
        _exit(1);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(poem::serialize_item_graph(poem::load_item_graph(path)) == good);  // the old file, whole
    std::remove(path.c_str());
    CHECK(rmdir(dir) == 0);  // no temporary left beside it
}

TEST_CASE("configs: an out-of-range enum value is refused, naming the field") {
    poem::fusion_config spec;
    spec.objectives = {{poem::direction::higher_is_better, static_cast<poem::normalization>(7), 1.0f}};
    CHECK_THROWS_WITH(poem::validate(spec, 1), Contains("fusion_config.objectives[0].norm: unknown value 7"));
    spec.objectives[0].norm = poem::normalization::rank_pct;
    spec.objectives[0].dir = static_cast<poem::direction>(3);
    CHECK_THROWS_WITH(poem::validate(spec, 1), Contains("fusion_config.objectives[0].dir: unknown value 3"));
    spec.objectives[0].dir = poem::direction::lower_is_better;
    spec.method = static_cast<poem::fusion_method>(9);
    CHECK_THROWS_WITH(poem::validate(spec, 1), Contains("fusion_config.method: unknown value 9"));
    const std::vector<float> scores{0.1f, 0.2f};
    poem::workspace ws;
    poem::fusion_result out;
    CHECK_THROWS_WITH(poem::fuse(poem::matrix_view<const float>(scores.data(), 1, 2), spec, ws, out),
                      Contains("fusion_config.method"));
    poem::level_config levels;
    levels.method = static_cast<poem::level_method>(11);
    CHECK_THROWS_WITH(poem::validate(levels, 1), Contains("level_config.method: unknown value 11"));
    levels.method = poem::level_method::fused_tiers;
    levels.policy = static_cast<poem::selection_policy>(5);
    CHECK_THROWS_WITH(poem::validate(levels, 1), Contains("level_config.policy: unknown value 5"));
}

// ---- learned fusion files (model/learned_fusion_file.hpp) ---------------------------------------

namespace {

// float -> IEEE half for values on a coarse grid (exact in binary16: normal, or zero).
std::uint16_t to_half(float x) {
    if (x == 0.0f) return 0;
    std::uint32_t b;
    std::memcpy(&b, &x, 4);
    const std::uint32_t sign = (b >> 16) & 0x8000u, exp = ((b >> 23) & 0xFFu) - 112, mant = (b >> 13) & 0x3FFu;
    return static_cast<std::uint16_t>(sign | (exp << 10) | mant);
}

struct fusion_tensor {
    std::string name;
    std::vector<std::size_t> shape;
};

// The tensors of a K, D, H ensemble as export_fusion writes them.
std::vector<fusion_tensor> fusion_tensors(std::size_t k, std::size_t d, std::size_t h) {
    return {{"fusion.component.weight", {k, d}}, {"fusion.component.bias", {k, d}},
            {"fusion.aggregate.weight", {h, k * d}}, {"fusion.aggregate.bias", {h}},
            {"fusion.out.weight", {1, h}}, {"fusion.out.bias", {1}}, {"fusion.skip.weight", {1, k}}};
}

// A safetensors file of `tensors` (values on a 1/16 grid, from the tensor's position), F32 or F16, with
// `meta` as the poem_fusion metadata when not empty. Returns the file and the values in file order.
std::vector<char> fusion_file(const std::vector<fusion_tensor>& tensors, bool f16, const std::string& meta,
                              std::vector<std::vector<float>>* values = nullptr) {
    nlohmann::json header;
    if (!meta.empty()) header["__metadata__"]["poem_fusion"] = meta;
    std::vector<char> data;
    for (std::size_t t = 0; t < tensors.size(); ++t) {
        std::size_t numel = 1;
        for (auto s : tensors[t].shape) numel *= s;
        const std::size_t es = f16 ? 2 : 4, at = data.size();
        header[tensors[t].name] = {{"dtype", f16 ? "F16" : "F32"}, {"shape", tensors[t].shape},
                                   {"data_offsets", {at, at + es * numel}}};
        std::vector<float> v(numel);
        data.resize(at + es * numel);
        for (std::size_t i = 0; i < numel; ++i) {
            v[i] = static_cast<float>(static_cast<int>((i * 7 + t * 5) % 33) - 16) / 16.0f;
            if (f16) {
                const std::uint16_t hv = to_half(v[i]);
                std::memcpy(data.data() + at + 2 * i, &hv, 2);
            } else {
                std::memcpy(data.data() + at + 4 * i, &v[i], 4);
            }
        }
        if (values) values->push_back(v);
    }
    const std::string h = header.dump();
    std::vector<char> bytes(8);
    for (int i = 0; i < 8; ++i) bytes[std::size_t(i)] = static_cast<char>(std::uint64_t(h.size()) >> (8 * i));
    bytes.insert(bytes.end(), h.begin(), h.end());
    bytes.insert(bytes.end(), data.begin(), data.end());
    return bytes;
}

poem::learned_fusion fusion_of(const std::vector<char>& b) {
    return poem::learned_fusion_from(poem::safetensors_file::from_bytes(b.data(), b.size(), "ens.safetensors"));
}

std::string fusion_refusal(const std::vector<char>& b) {
    try {
        fusion_of(b);
    } catch (const poem::error& e) {
        return e.what();
    }
    FAIL("accepted a broken fusion file");
    return {};
}

const std::string version1 = R"({"version": 1, "objectives": 4, "component_dim": 4, "hidden": 16})";

}  // namespace

TEST_CASE("learned fusion files: F32 and F16 read back, the metadata is optional") {
    for (bool f16 : {false, true}) {
        std::vector<std::vector<float>> v;
        const auto f = fusion_of(fusion_file(fusion_tensors(4, 4, 16), f16, f16 ? "" : version1, &v));
        REQUIRE(f.objectives() == 4);
        REQUIRE(f.component_dim() == 4);
        REQUIRE(f.hidden() == 16);
        REQUIRE(f.component_weight() == v[0]);
        REQUIRE(f.component_bias() == v[1]);
        REQUIRE(f.aggregate_weight() == v[2]);
        REQUIRE(f.aggregate_bias() == v[3]);
        REQUIRE(f.out_weight() == v[4]);
        REQUIRE(f.out_bias() == v[5][0]);
        REQUIRE(f.skip_weight() == v[6]);
    }
    // F16 and F32 files of the same values give the same ensemble.
    REQUIRE(fusion_of(fusion_file(fusion_tensors(3, 2, 5), true, "")) ==
            fusion_of(fusion_file(fusion_tensors(3, 2, 5), false, "")));
}

TEST_CASE("learned fusion files: a missing tensor, a wrong shape, a wrong K, a NaN or another version is refused") {
    const auto good = fusion_tensors(4, 4, 16);
    for (std::size_t t = 0; t < good.size(); ++t) {
        auto missing = good;
        missing.erase(missing.begin() + static_cast<std::ptrdiff_t>(t));
        const std::string msg = fusion_refusal(fusion_file(missing, false, version1));
        CHECK_THAT(msg, Contains("'ens.safetensors'") && Contains("tensor '" + good[t].name + "' is missing"));
    }
    auto shaped = [&](std::size_t t, std::vector<std::size_t> shape) {
        auto ts = good;
        ts[t].shape = std::move(shape);
        return fusion_refusal(fusion_file(ts, false, version1));
    };
    CHECK_THAT(shaped(1, {4, 5}), Contains("tensor 'fusion.component.bias' has shape [4, 5], expected [4, 4]"));
    CHECK_THAT(shaped(2, {16, 12}), Contains("tensor 'fusion.aggregate.weight' has shape [16, 12], expected [16, 16]"));
    CHECK_THAT(shaped(3, {15}), Contains("'fusion.aggregate.bias' has shape [15], expected [16]"));
    CHECK_THAT(shaped(4, {16}), Contains("'fusion.out.weight' has shape [16], expected [1, 16]"));
    CHECK_THAT(shaped(5, {2}), Contains("'fusion.out.bias' has shape [2], expected [1]"));
    CHECK_THAT(shaped(0, {4, 4, 1}), Contains("'fusion.component.weight' has shape [4, 4, 1], expected [K, D]"));
    CHECK_THAT(shaped(0, {17, 4}), Contains("K in 1..16"));
    CHECK_THAT(shaped(0, {4, 65}), Contains("D in 1..64"));
    CHECK_THAT(shaped(2, {300, 16}), Contains("H in 1..256"));
    // K = 3 skip weights beside K = 4 components.
    CHECK_THAT(shaped(6, {1, 3}), Contains("'fusion.skip.weight' has shape [1, 3], expected [1, 4] (K = 4"));

    // A NaN weight (F32) or an infinity (F16): the file and the tensor are named.
    auto nan_file = fusion_file(good, false, version1);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(nan_file.data() + nan_file.size() - 4, &nan, 4);  // the last tensor's last value
    CHECK_THAT(fusion_refusal(nan_file), Contains("'ens.safetensors'") && Contains("holds a non-finite value"));
    auto inf_file = fusion_file(good, true, "");
    inf_file[inf_file.size() - 1] = 0x7C;
    inf_file[inf_file.size() - 2] = 0;
    CHECK_THAT(fusion_refusal(inf_file), Contains("'ens.safetensors'") && Contains("non-finite"));

    CHECK_THAT(fusion_refusal(fusion_file(good, false, R"({"version": 2})")),
               Contains("'ens.safetensors': metadata 'poem_fusion': version 2, this reader knows 1"));
    CHECK_THAT(fusion_refusal(fusion_file(good, false, R"({"objectives": 4})")), Contains("version missing"));
    CHECK_THAT(fusion_refusal(fusion_file(good, false, "[1]")), Contains("is not a JSON object"));
    CHECK_THAT(fusion_refusal(fusion_file(good, false, "{\"version\":" + std::string(50, '[') + "}")),
               Contains("poem_fusion"));
    // Through a path: a missing file is named.
    CHECK_THROWS_WITH(poem::load_learned_fusion("/nonexistent/ens.safetensors"), Contains("/nonexistent/ens.safetensors"));
}
