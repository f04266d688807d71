// Fuses one request read from a CSV file (item_id, then one column per objective) and prints the fused
// ranking and how long fusion takes. Usage: fuse_request <request.csv>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <poem/poem.hpp>

namespace {

struct request {
    std::vector<std::string> objectives;
    std::vector<std::uint64_t> ids;
    std::vector<std::vector<float>> columns;  // one per objective
};

request read_csv(const char* path) {
    std::ifstream in(path);
    poem::check(bool(in), path, ": cannot open");
    request r;
    std::string line;
    std::size_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty() || line[0] == '#') continue;
        std::stringstream ss(line);
        std::string cell;
        std::vector<std::string> cells;
        while (std::getline(ss, cell, ',')) cells.push_back(cell);
        if (r.objectives.empty() && r.ids.empty()) {  // header
            r.objectives.assign(cells.begin() + 1, cells.end());
            r.columns.resize(r.objectives.size());
            continue;
        }
        poem::check(cells.size() == r.objectives.size() + 1, path, ":", line_no, ": expected ",
                    r.objectives.size() + 1, " fields, got ", cells.size());
        r.ids.push_back(std::stoull(cells[0]));
        for (std::size_t k = 0; k < r.objectives.size(); ++k) r.columns[k].push_back(std::strtof(cells[k + 1].c_str(), nullptr));
    }
    return r;
}

}  // namespace

int main(int argc, char** argv) try {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <request.csv>\n", argv[0]);
        return 2;
    }
    const request req = read_csv(argv[1]);
    const std::size_t k = req.objectives.size(), n = req.ids.size();
    std::vector<float> scores;  // K x N, rows contiguous
    for (const auto& c : req.columns) scores.insert(scores.end(), c.begin(), c.end());

    // Click, long view and watch time point up; skip points down. Watch time is unbounded: log1p.
    poem::fusion_config spec;
    spec.method = poem::fusion_method::weighted_rank;
    for (const auto& name : req.objectives) {
        poem::objective_config o;
        if (name.find("skip") != std::string::npos) o.dir = poem::direction::lower_is_better;
        if (name.find("time") != std::string::npos) o.norm = poem::normalization::log1p_min_max;
        o.weight = name.find("long_view") != std::string::npos ? 2.0f : 1.0f;
        spec.objectives.push_back(o);
    }

    poem::workspace ws;
    poem::fusion_result fused;
    const poem::matrix_view<const float> view(scores.data(), k, n);
    poem::fuse(view, spec, ws, fused);
    const auto tokens = poem::quintuples(poem::span<const std::uint64_t>(req.ids), 1650812741, fused);

    std::printf("poem %s: fused %zu candidates x %zu objectives (weighted-rank; %zu with non-finite scores)\n\n",
                POEM_VERSION_STRING, n, k, fused.nonfinite_count);
    std::printf("%4s  %8s", "rank", "item");
    for (const auto& name : req.objectives) std::printf("  %12s", name.c_str());
    std::printf("  %6s  %8s\n", "fused", "rank_pct");
    for (std::size_t t = 0; t < n; ++t) {
        const std::size_t i = fused.order[t];
        if (t >= 10 && t + 3 < n) {
            if (t == 10) std::printf("  ...\n");
            continue;
        }
        std::printf("%4zu  %8llu", t, static_cast<unsigned long long>(req.ids[i]));
        for (std::size_t r = 0; r < k; ++r) std::printf("  %12.4g", req.columns[r][i]);
        std::printf("  %6.3f  %8.3f%s\n", fused.fused[i], tokens[i].rank_pct, fused.nonfinite[i] ? "  (non-finite input)" : "");
    }

    // Timing: the median of many fusions of this request (workspace warm, no allocation).
    std::vector<double> us;
    for (int rep = 0; rep < 2001; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        poem::fuse(view, spec, ws, fused);
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(us.begin(), us.end());
    std::printf("\nfuse(): p50 %.2f us, p99 %.2f us over %zu runs (SIMD target %s)\n", us[us.size() / 2],
                us[us.size() * 99 / 100], us.size(), poem::simd_target());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
