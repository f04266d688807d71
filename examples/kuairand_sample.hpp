#pragma once
// The shipped KuaiRand sample's requests.csv (data/kuairand_sample, columns documented in
// python/poem_eval/sample.py), read for the examples: one row per candidate, requests in time order.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <poem/core/error.hpp>

namespace kuairand {

// One candidate row of requests.csv.
struct row {
    std::int64_t request = 0, user = 0, time = 0;
    std::string split;
    std::uint64_t item = 0;
    float p_click = 0, p_long_view = 0, pred_watch_s = 0;
    std::array<float, 4> side{};  // the causal item and user statistics (python/poem_eval/item_stats.py)
    bool exposed = false;
    float time_offset_s = 0, play_time_s = 0, duration_s = 0;
    bool click = false, long_view = false, like = false, follow = false;
};

inline const char* const columns[] = {"request_id", "user_id", "time_s", "split", "item_id", "p_click",
                                      "p_long_view", "pred_watch_s", "item_long_view_logit", "item_click_logit",
                                      "item_exposures", "user_exposures",
                                      "exposed", "time_offset_s", "play_time_s", "duration_s", "click", "long_view",
                                      "like", "follow"};
constexpr std::size_t side_columns = 4;  // columns 8..11
constexpr std::size_t n_columns = sizeof(columns) / sizeof(columns[0]);

inline std::vector<row> read_rows(const std::string& path) {
    std::ifstream in(path);
    poem::check(bool(in), path, ": cannot open (run `make demo` from the repository root)");
    std::vector<row> rows;
    std::string line;
    std::size_t line_no = 0;
    bool header = true;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::string> f;
        std::stringstream ss(line);
        for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
        poem::check(f.size() == n_columns, path, ":", line_no, ": ", f.size(), " fields, expected ", n_columns);
        if (header) {
            for (std::size_t i = 0; i < n_columns; ++i)
                poem::check(f[i] == columns[i], path, ":", line_no, ": column ", i, " is '", f[i], "', expected '",
                            columns[i], "'");
            header = false;
            continue;
        }
        auto num = [&](std::size_t i) {
            char* end = nullptr;
            const double v = std::strtod(f[i].c_str(), &end);
            poem::check(end != f[i].c_str() && *end == '\0', path, ":", line_no, ": ", columns[i], " = '", f[i],
                        "' is not a number");
            return v;
        };
        row r;
        r.request = static_cast<std::int64_t>(num(0));
        r.user = static_cast<std::int64_t>(num(1));
        r.time = static_cast<std::int64_t>(num(2));
        r.split = f[3];
        r.item = static_cast<std::uint64_t>(num(4));
        r.p_click = float(num(5)), r.p_long_view = float(num(6)), r.pred_watch_s = float(num(7));
        for (std::size_t j = 0; j < side_columns; ++j) r.side[j] = float(num(8 + j));
        r.exposed = num(12) != 0;
        r.time_offset_s = float(num(13)), r.play_time_s = float(num(14)), r.duration_s = float(num(15));
        r.click = num(16) != 0, r.long_view = num(17) != 0, r.like = num(18) != 0, r.follow = num(19) != 0;
        if (!rows.empty()) {
            const row& p = rows.back();
            poem::check(r.request == p.request || r.time >= p.time, path, ":", line_no,
                        ": requests must come in time order");
        }
        rows.push_back(r);
    }
    poem::check(!rows.empty(), path, ": no rows");
    return rows;
}

// The scores a ranker takes for the request in rows [a, b): (3 + side) x (b - a), objectives as rows:
// p_click, p_long_view, pred_watch_s, then the side columns when the model takes them (side: its
// config's side feature count, 0 or side_columns).
inline void request_scores(const std::vector<row>& rows, std::size_t a, std::size_t b, std::size_t side,
                           std::vector<float>& out) {
    poem::check(side == 0 || side == side_columns, "the model takes ", side, " side features; the sample has ",
                side_columns);
    const std::size_t n = b - a;
    out.resize((3 + side) * n);
    for (std::size_t i = 0; i < n; ++i) {
        const row& r = rows[a + i];
        out[i] = r.p_click, out[n + i] = r.p_long_view, out[2 * n + i] = r.pred_watch_s;
        for (std::size_t j = 0; j < side; ++j) out[(3 + j) * n + i] = r.side[j];
    }
}

// The rows of each request: [begin, end) ranges into `rows`, in file order.
inline std::vector<std::pair<std::size_t, std::size_t>> request_ranges(const std::vector<row>& rows) {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    for (std::size_t a = 0; a < rows.size();) {
        std::size_t b = a;
        while (b < rows.size() && rows[b].request == rows[a].request) ++b;
        out.emplace_back(a, b);
        a = b;
    }
    return out;
}

}  // namespace kuairand
