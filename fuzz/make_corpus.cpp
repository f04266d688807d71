// Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/) with poem's own serialisers, and
// the regression inputs that are generated rather than found (fuzz/regressions/<target>/gen_*).
// Usage: make_corpus <source dir>   (run by `make fuzz-corpus`; its output is committed)
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "poem/model/safetensors.hpp"
#include "poem/order/state.hpp"
#include "poem/sample/item_graph_io.hpp"
#include "poem/serve/ranker_config.hpp"
#include "poem/serve/user_history.hpp"

namespace fs = std::filesystem;

static void put(const fs::path& p, const void* data, std::size_t n) {
    fs::create_directories(p.parent_path());
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
    if (!f) throw std::runtime_error("cannot write " + p.string());
}
static void put(const fs::path& p, const std::vector<std::uint8_t>& b) { put(p, b.data(), b.size()); }
static void put(const fs::path& p, const std::string& s) { put(p, s.data(), s.size()); }

static poem::partial_order_state some_state(std::size_t max_tokens, std::size_t max_requests, int requests) {
    poem::partial_order_state s(max_tokens, max_requests);
    for (int r = 0; r < requests; ++r) {
        std::vector<poem::quintuple> q;
        for (int t = 0; t <= r % 3; ++t)
            q.push_back({std::uint64_t(100 * r + t), std::int64_t(1000 + 10 * r), 1.0f - 0.1f * float(t),
                         0.9f - 0.2f * float(t), std::uint32_t(t)});
        s.record(q);
    }
    return s;
}

int main(int argc, char** argv) {
    const fs::path root = argc > 1 ? argv[1] : ".";
    const fs::path corpus = root / "fuzz" / "corpus", reg = root / "fuzz" / "regressions";

    // model config: the "poem_config" metadata of the model fixtures.
    for (const char* name : {"small_f32", "po_f32", "chrono_f32"}) {
        const auto f = poem::safetensors_file::open((root / "tests/fixtures/model" / (std::string(name) + ".safetensors")).string());
        put(corpus / "fuzz_model_config" / (std::string(name) + ".json"), f.metadata().at("poem_config"));
    }

    // serving config: to_json of a few valid configs.
    for (std::size_t k : {1, 2, 4}) {
        poem::ranker_config c;
        for (std::size_t j = 0; j < k; ++j)
            c.fusion.objectives.push_back({j % 2 ? poem::direction::lower_is_better : poem::direction::higher_is_better,
                                           j == 1 ? poem::normalization::log1p_min_max : poem::normalization::rank_pct,
                                           1.0f + float(j)});
        c.levels.method = k == 4 ? poem::level_method::gap_tiers : poem::level_method::pareto;
        c.levels.directions = poem::directions_of(c.fusion);
        if (k == 2) c.raw_features = {poem::raw_transform::identity, poem::raw_transform::log1p};
        poem::validate(c);
        put(corpus / "fuzz_ranker_config" / ("k" + std::to_string(k) + ".json"), poem::to_json(c));
    }

    // partial-order state (POST).
    put(corpus / "fuzz_state" / "empty.post", poem::partial_order_state(4, 2).serialize());
    put(corpus / "fuzz_state" / "three.post", some_state(16, 4, 3).serialize());
    put(corpus / "fuzz_state" / "wrapped.post", some_state(6, 3, 7).serialize());  // the ring buffers wrapped

    // user history (POUH).
    poem::user_history h;
    h.user_id = 42;
    h.state = poem::partial_order_state(8, 4);
    put(corpus / "fuzz_user_history" / "new.pouh", h.serialize());
    h.requests_recorded = 5;
    h.state = some_state(8, 4, 5);
    poem::engagement_event e;
    e.user_id = 42;
    e.item_id = 7;
    e.time = 1003;
    e.play_time = 12.5f;
    e.duration = 30.0f;
    e.click = true;
    h.log.push_back(e);
    e.item_id = 9;
    e.like = e.follow = true;
    h.log.push_back(e);
    const auto pouh = h.serialize();
    put(corpus / "fuzz_user_history" / "five.pouh", pouh);

    // item graph (POEMGRPH 2).
    put(corpus / "fuzz_item_graph" / "empty.graph", poem::serialize_item_graph(poem::item_graph()));
    {
        const std::vector<std::uint64_t> off{0, 2, 3, 3, 5};
        const std::vector<std::uint32_t> nb{1, 3, 0, 0, 1};
        const std::vector<float> w{1.0f, 0.5f, 2.0f, 0.25f, 3.0f};
        put(corpus / "fuzz_item_graph" / "four.graph",
            poem::serialize_item_graph(poem::item_graph({off.data(), off.size()}, {nb.data(), nb.size()}, {w.data(), w.size()})));
    }

    // Regressions that are generated: deep nesting for the JSON readers (refused by json_guard before
    // nlohmann's recursive parser sees it), a truncated user history and state, a graph whose counts
    // overflow the size check.
    const std::string deep_array = std::string(100000, '[') + std::string(100000, ']');
    const std::string deep_object = "{\"d\":" + std::string(50000, '[') + "1" + std::string(50000, ']') + "}";
    for (const char* t : {"fuzz_model_config", "fuzz_ranker_config"}) {
        put(reg / t / "gen_deep_array.json", deep_array);
        put(reg / t / "gen_deep_in_object.json", deep_object);
        put(reg / t / "gen_unclosed.json", std::string(100000, '['));
    }
    put(reg / "fuzz_user_history" / "gen_truncated.pouh", std::vector<std::uint8_t>(pouh.begin(), pouh.begin() + pouh.size() / 2));
    {
        auto b = pouh;  // the state's length field claims more than the record holds
        b[24] = 0xFF, b[25] = 0xFF, b[26] = 0xFF, b[27] = 0x7F;
        put(reg / "fuzz_user_history" / "gen_state_length.pouh", b);
    }
    {
        const auto s = some_state(16, 4, 3).serialize();
        put(reg / "fuzz_state" / "gen_truncated.post", std::vector<std::uint8_t>(s.begin(), s.end() - 5));
        auto b = s;  // token count 0xFFFFFFFF with max_tokens 0xFFFFFFFF: sizes that overflow 32 bits
        for (int i = 8; i < 12; ++i) b[i] = 0xFF;
        for (int i = 20; i < 24; ++i) b[i] = 0xFF;
        put(reg / "fuzz_state" / "gen_huge_counts.post", b);
    }
    {
        auto b = poem::serialize_item_graph(poem::item_graph());
        for (int i = 16; i < 32; ++i) b[i] = 0xFF;  // item and edge counts near 2^64
        put(reg / "fuzz_item_graph" / "gen_huge_counts.graph", b);
        put(reg / "fuzz_item_graph" / "gen_truncated.graph", std::vector<std::uint8_t>(b.begin(), b.begin() + 20));
    }
    {
        // A safetensors file whose header is 100000 nested arrays (json_guard refuses it in one pass).
        std::string file(8, '\0');
        const std::size_t n = deep_array.size();
        for (int i = 0; i < 8; ++i) file[std::size_t(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
        put(reg / "fuzz_safetensors" / "gen_deep_header.safetensors", file + deep_array);
    }
    std::printf("poem: fuzz corpus written under %s\n", (root / "fuzz").string().c_str());
    return 0;
}
