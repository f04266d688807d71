// Replays real KuaiRand requests through POEM's C++ serving path (poem::request_ranker): for each
// request in time order, fusion of the upstream scores, Pareto levels, the user's partial-order and
// chronological sequences, and the trained model's forward pass; then the request joins the user's
// state and its exposures the user's log. Prints per-request latency (p50, p99), the long-view and click
// AUC of the model on the sample's test-day exposures beside the upstream scores' own, and one
// request's ranked candidates.
//
//   replay_requests [sample_dir] [--model FILE] [--precision fp32|bf16] [--predictions FILE] [--histories FILE]
//
// sample_dir (default data/kuairand_sample) holds requests.csv and poem_model.safetensors, written by
// `python -m poem_eval.run --export-sample` (python/poem_eval/sample.py documents the columns). The
// ranker is built from the model file alone: the file carries the serving config its training data was
// built with. --predictions writes every candidate's outputs (CSV), --histories every user's history
// bytes (u64 user id, u32 length, the bytes; by user id); tests/test_replay.py compares both with the
// Python replay. --precision loads the model's tower in that arithmetic (poem::model_options; default
// fp32).
//
// Data: KuaiRand (Gao et al., CIKM 2022, https://kuairand.com), CC BY-SA 4.0; see the sample's README.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <poem/poem.hpp>
#include <poem/serve/request_ranker.hpp>

#include "kuairand_sample.hpp"

namespace {

using kuairand::row;
using kuairand::read_rows;

// ROC AUC with ties counted 1/2; NaN when a class is missing.
double auc(const std::vector<bool>& label, const std::vector<float>& score) {
    std::vector<std::size_t> idx(label.size());
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return score[a] < score[b]; });
    double pos = 0, rank_sum = 0;
    for (std::size_t i = 0; i < idx.size();) {
        std::size_t j = i;
        while (j < idx.size() && score[idx[j]] == score[idx[i]]) ++j;
        const double mid = (double(i) + double(j - 1)) / 2.0 + 1.0;
        for (std::size_t t = i; t < j; ++t)
            if (label[idx[t]]) pos += 1, rank_sum += mid;
        i = j;
    }
    const double neg = double(label.size()) - pos;
    if (pos == 0 || neg == 0) return std::nan("");
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg);
}

double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(q * double(v.size())))];
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace

int main(int argc, char** argv) try {
    std::string dir = "data/kuairand_sample", model_path, predictions_path, histories_path;
    poem::model_options options;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--predictions" && i + 1 < argc) predictions_path = argv[++i];
        else if (a == "--histories" && i + 1 < argc) histories_path = argv[++i];
        else if (a == "--model" && i + 1 < argc) model_path = argv[++i];
        else if (a == "--precision" && i + 1 < argc) options.precision = poem::precision_from_string(argv[++i]);
        else if (!a.empty() && a[0] != '-') dir = a;
        else {
            std::fprintf(stderr,
                         "usage: %s [sample_dir] [--model FILE] [--precision fp32|bf16] [--predictions FILE] "
                         "[--histories FILE]\n",
                         argv[0]);
            return 2;
        }
    }
    if (model_path.empty()) model_path = dir + "/poem_model.safetensors";
    const std::vector<row> rows = read_rows(dir + "/requests.csv");
    const poem::model model = poem::model::load(model_path, options);
    const poem::request_ranker ranker(model);  // the serving config the model was trained with
    const std::size_t side = ranker.config().side_features.size();  // the sample's side columns, or none

    std::map<std::int64_t, poem::user_history> users;
    poem::workspace ws;
    poem::ranked_request out;
    std::vector<std::uint64_t> ids;
    std::vector<float> scores;
    std::vector<double> latency_us;
    std::vector<float> pred(rows.size() * model.outputs());
    std::size_t requests = 0, shown = rows.size(), shown_exposed = 0;
    std::vector<std::uint32_t> shown_order;  // rank()'s order of the request to show

    for (std::size_t a = 0; a < rows.size();) {
        std::size_t b = a;
        while (b < rows.size() && rows[b].request == rows[a].request) ++b;
        const std::size_t n = b - a;
        ids.resize(n);
        for (std::size_t i = 0; i < n; ++i) ids[i] = rows[a + i].item;
        kuairand::request_scores(rows, a, b, side, scores);
        auto it = users.find(rows[a].user);
        if (it == users.end())
            it = users.emplace(rows[a].user, ranker.new_user(static_cast<std::uint64_t>(rows[a].user))).first;
        poem::user_history& user = it->second;

        const auto t0 = std::chrono::steady_clock::now();
        ranker.rank(user, rows[a].time, ids, poem::matrix_view<const float>(scores.data(), 3 + side, n), ws, out);
        const auto t1 = std::chrono::steady_clock::now();
        latency_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        std::copy(out.scores.values.begin(), out.scores.values.end(), pred.begin() + a * model.outputs());

        // The request to show: the test-day request with the most exposures.
        std::size_t exposed = 0;
        for (std::size_t i = a; i < b; ++i) exposed += rows[i].exposed;
        if (rows[a].split == "test" && exposed > shown_exposed) {
            shown = a, shown_exposed = exposed;
            shown_order = out.order;
        }

        ranker.record(user, out, ws);
        for (std::size_t i = a; i < b; ++i) {
            const row& r = rows[i];
            if (!r.exposed) continue;
            poem::engagement_event e;
            e.user_id = static_cast<std::uint64_t>(r.user);
            e.item_id = r.item;
            e.time = r.time + static_cast<std::int64_t>(r.time_offset_s);
            e.play_time = r.play_time_s;
            e.duration = r.duration_s;
            e.click = r.click;
            e.like = r.like;
            e.follow = r.follow;
            ranker.log(user, e);
        }
        ++requests;
        a = b;
    }

    // The metric: AUC on the test-day exposures, the model's heads against the upstream scores.
    std::vector<bool> lv, click;
    std::vector<float> m_lv, m_click, u_lv, u_click;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        if (rows[i].split != "test" || !rows[i].exposed) continue;
        lv.push_back(rows[i].long_view), click.push_back(rows[i].click);
        m_lv.push_back(pred[i * model.outputs() + 0]), m_click.push_back(pred[i * model.outputs() + 1]);
        u_lv.push_back(rows[i].p_long_view), u_click.push_back(rows[i].p_click);
    }
    const auto& mc = model.config();
    std::printf("poem %s: replayed %zu KuaiRand requests of %zu users (%zu candidates) through fusion, Pareto "
                "levels,\npartial-order state, sequences (%zu + %zu tokens) and the model (d = %zu, tower",
                POEM_VERSION_STRING, requests, users.size(), rows.size(), ranker.config().po_length,
                ranker.config().chrono_length, mc.d);
    for (auto w : mc.mlp) std::printf(" %zu", w);
    std::printf(", %s)\n\nlatency per request (rank(), one thread): p50 %.1f us, p99 %.1f us, max %.1f us\n",
                poem::to_string(model.precision()), percentile(latency_us, 0.5), percentile(latency_us, 0.99),
                percentile(latency_us, 1.0));
    std::printf("\ntest-day exposures: %zu (%zu long views, %zu clicks)\n", lv.size(),
                std::size_t(std::count(lv.begin(), lv.end(), true)),
                std::size_t(std::count(click.begin(), click.end(), true)));
    std::printf("  AUC long view: model %.4f   upstream p_long_view %.4f\n", auc(lv, m_lv), auc(lv, u_lv));
    std::printf("  AUC click:     model %.4f   upstream p_click     %.4f\n", auc(click, m_click), auc(click, u_click));

    if (shown < rows.size()) {
        std::size_t b = shown;
        while (b < rows.size() && rows[b].request == rows[shown].request) ++b;
        std::printf("\nrequest %lld of user %lld (%zu candidates, %zu exposed), by the model's long-view score:\n",
                    static_cast<long long>(rows[shown].request), static_cast<long long>(rows[shown].user),
                    b - shown, shown_exposed);
        std::printf("%4s %8s %9s %9s %9s %9s %7s %6s %7s %5s\n", "rank", "item", "model_lv", "model_clk",
                    "up_lv", "up_click", "up_wt_s", "expo", "long_v", "click");
        for (std::size_t r = 0; r < shown_order.size(); ++r) {
            const std::size_t i = shown + shown_order[r];
            const row& x = rows[i];
            if (r >= 10 && !x.exposed) continue;  // the top ten, then the exposed ones wherever they are
            const float* p = pred.data() + i * model.outputs();
            std::printf("%4zu %8llu %9.4f %9.4f %9.4f %9.4f %7.1f %6s %7s %5s\n", r + 1,
                        static_cast<unsigned long long>(x.item), sigmoid(p[0]), sigmoid(p[1]), x.p_long_view,
                        x.p_click, x.pred_watch_s, x.exposed ? "yes" : "", x.long_view ? "yes" : "",
                        x.click ? "yes" : "");
        }
    }

    if (!predictions_path.empty()) {
        std::ostringstream f;
        f << "request_id,item_id";
        for (const auto& h : mc.heads) f << ',' << h;
        f << '\n';
        char buf[64];
        for (std::size_t i = 0; i < rows.size(); ++i) {
            f << rows[i].request << ',' << rows[i].item;
            for (std::size_t h = 0; h < model.outputs(); ++h) {
                std::snprintf(buf, sizeof buf, ",%.9g", pred[i * model.outputs() + h]);
                f << buf;
            }
            f << '\n';
        }
        const std::string text = f.str();
        poem::write_file_atomically(predictions_path,
                                    {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, "--predictions");
        std::printf("\npredictions of every candidate: %s\n", predictions_path.c_str());
    }
    if (!histories_path.empty()) {
        std::string bytes;
        std::vector<std::uint8_t> h;
        for (const auto& [user, history] : users) {  // std::map: by user id
            history.serialize(h);
            unsigned char head[12];
            poem::detail::put_le(poem::detail::put_le(head, static_cast<std::uint64_t>(user), 8), h.size(), 4);
            bytes.append(reinterpret_cast<const char*>(head), sizeof head);
            bytes.append(reinterpret_cast<const char*>(h.data()), h.size());
        }
        poem::write_file_atomically(histories_path,
                                    {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, "--histories");
        std::printf("user histories: %s\n", histories_path.c_str());
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "replay_requests: %s\n", e.what());
    return 1;
}
