// An example ranking host that keeps every user's poem::user_history in Redis: per request, read the
// user's record, rank the candidates with the shipped model (poem::request_ranker), serve, record the
// request and write the record back with a compare-and-set (examples/redis_history_store.hpp), redoing
// the read, rank and record on a conflict. T threads, each with its own connection, workspace and
// ranked_request, send R requests each over U users chosen so that threads collide on the same users.
//
//   redis_host [--host H] [--port P] [--threads T] [--requests R] [--users U] [--seconds S]
//              [--check | --load] [--sample DIR] [--model FILE] [--prefix P] [--retry-seconds S] [--seed N]
//
// Requests replay the candidates and scores of the shipped KuaiRand sample (data/kuairand_sample), one
// sample request after another; request n's item ids carry n + 1 in their high 32 bits, so every token
// in a user's state names the request that recorded it.
// --check: afterwards, read every user back and verify that each acknowledged request is in its user's
//   history exactly once (versions, requests_recorded and the state's newest requests, in write order);
//   exit 1 when not. --load: print latency and throughput only. Both print the counters (conflicts,
//   reconnects, corrupt records recovered, ...) and exit 1 when a request was not acknowledged.
// docs/scale_out.md has the design.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <poem/poem.hpp>
#include <poem/serve/request_ranker.hpp>

#include "kuairand_sample.hpp"
#include "redis_history_store.hpp"

namespace {

struct options {
    redis_store::store_config store;
    unsigned threads = 2;
    std::uint64_t requests = 100;  // per thread
    std::uint64_t users = 8;
    double seconds = 60;  // stop sending new requests after this long
    bool check = false, load = false;
    std::string sample = "data/kuairand_sample", model;
    std::uint64_t seed = 1;
};

// One sample request: its candidates, scores ((K + S) x N) and the rows for its engagement events.
struct sample_request {
    std::vector<std::uint64_t> items;
    std::vector<float> scores;
    std::vector<kuairand::row> exposed;
};

struct ack {
    std::uint64_t user = 0, number = 0, version = 0;
    bool had_tokens = false;
};
struct failure {
    std::uint64_t user = 0, number = 0;
    std::string request_id, what;
};

struct thread_result {
    std::vector<ack> acks;
    std::vector<failure> failures;
    std::vector<double> latency_us, rank_us;  // whole request; rank + record of its last attempt
    redis_store::store_stats stats;
};

std::uint64_t parse_count(const char* s, const char* flag, std::uint64_t lo, std::uint64_t hi) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(s, &end, 10);
    poem::check(*s != '\0' && *s != '-' && *end == '\0' && errno == 0 && v >= lo && v <= hi, flag, " = '",
                poem::detail::clip(s), "': expected a whole number in [", lo, ", ", hi, "]");
    return v;
}

double parse_seconds(const char* s, const char* flag) {
    char* end = nullptr;
    const double v = std::strtod(s, &end);
    poem::check(*s != '\0' && *end == '\0' && v >= 0 && v <= 86400, flag, " = '", poem::detail::clip(s),
                "': expected seconds in [0, 86400]");
    return v;
}

options parse_args(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has = i + 1 < argc;
        if (a == "--check") o.check = true;
        else if (a == "--load") o.load = true;
        else if (!has) poem::detail::fail("redis_host: unknown or incomplete argument '", poem::detail::clip(a), "'");
        else if (a == "--host") o.store.host = argv[++i];
        else if (a == "--port") o.store.port = int(parse_count(argv[++i], "--port", 1, 65535));
        else if (a == "--threads") o.threads = unsigned(parse_count(argv[++i], "--threads", 1, 256));
        else if (a == "--requests") o.requests = parse_count(argv[++i], "--requests", 0, std::uint64_t(1) << 24);
        else if (a == "--users") o.users = parse_count(argv[++i], "--users", 1, std::uint64_t(1) << 24);
        else if (a == "--seconds") o.seconds = parse_seconds(argv[++i], "--seconds");
        else if (a == "--retry-seconds") o.store.retry_seconds = parse_seconds(argv[++i], "--retry-seconds");
        else if (a == "--seed") o.seed = parse_count(argv[++i], "--seed", 0, ~std::uint64_t(0));
        else if (a == "--sample") o.sample = argv[++i];
        else if (a == "--model") o.model = argv[++i];
        else if (a == "--prefix") o.store.prefix = argv[++i];
        else poem::detail::fail("redis_host: unknown argument '", poem::detail::clip(a), "'");
    }
    poem::check(!(o.check && o.load), "redis_host: --check and --load exclude each other");
    if (o.model.empty()) o.model = o.sample + "/poem_model.safetensors";
    // Request numbers go into the high 32 bits of item ids.
    poem::check(poem::checked_mul(o.threads, o.requests, "--threads x --requests") < (std::uint64_t(1) << 32) - 1,
                "redis_host: --threads x --requests must be below 2^32");
    return o;
}

std::vector<sample_request> load_requests(const std::string& dir, std::size_t k, std::size_t side) {
    poem::check(k == 3, "redis_host: the model's serving config fuses ", k,
                " objectives; the sample has 3 (p_click, p_long_view, pred_watch_s)");
    const std::vector<kuairand::row> rows = kuairand::read_rows(dir + "/requests.csv");
    std::vector<sample_request> out;
    for (const auto& [a, b] : kuairand::request_ranges(rows)) {
        sample_request r;
        kuairand::request_scores(rows, a, b, side, r.scores);
        for (std::size_t i = a; i < b; ++i) {
            const kuairand::row& x = rows[i];
            poem::check(x.item < (std::uint64_t(1) << 32), dir, "/requests.csv: item id ", x.item,
                        " does not fit in 32 bits (the host puts the request number above them)");
            r.items.push_back(x.item);
            if (x.exposed) r.exposed.push_back(x);
        }
        out.push_back(std::move(r));
    }
    return out;
}

std::uint64_t user_of(const options& o, std::uint64_t number) { return 1 + poem::mix64(o.seed ^ number) % o.users; }

// The request number a token's item id carries.
std::uint64_t number_of(std::uint64_t item_id) { return (item_id >> 32) - 1; }

std::int64_t unix_seconds() {
    const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
    return std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
}

void serve_thread(const options& o, const poem::request_ranker& ranker, const std::vector<sample_request>& pool,
                  const std::string& run_id, unsigned t, std::chrono::steady_clock::time_point stop_at,
                  thread_result& res) {
    redis_store::redis_history_store store(o.store);
    poem::workspace ws;
    poem::ranked_request out;
    std::vector<std::uint64_t> ids;
    const auto make_fresh = [&](std::uint64_t u) { return ranker.new_user(u); };
    for (std::uint64_t j = 0; j < o.requests && std::chrono::steady_clock::now() < stop_at; ++j) {
        const std::uint64_t number = std::uint64_t(t) * o.requests + j, user = user_of(o, number);
        const sample_request& s = pool[number % pool.size()];
        const std::size_t n = s.items.size();
        ids.resize(n);
        for (std::size_t i = 0; i < n; ++i) ids[i] = ((number + 1) << 32) | s.items[i];
        const std::string request_id = run_id + "-" + std::to_string(number);
        bool had_tokens = false;
        double step_us = 0;
        // Rank on the history as read, serve (first attempt only), record; redone on a conflict.
        const auto step = [&](poem::user_history& h, unsigned attempt) {
            // A state takes requests in time order: a replica whose clock lags the writer's serves at
            // the newest time the history holds.
            const auto s0 = std::chrono::steady_clock::now();
            std::int64_t now = unix_seconds();
            if (!h.state.empty()) now = std::max(now, h.state.request_time(h.state.request_count() - 1));
            ranker.rank(h, now, ids, poem::matrix_view<const float>(s.scores.data(), 3 + ranker.config().side_features.size(), n), ws,
                        out);
            (void)attempt;  // attempt 0: a real host sends out.order to the client here; a retry only records
            ranker.record(h, out, ws);
            had_tokens = !out.recorded.empty();
            for (const kuairand::row& x : s.exposed) {
                poem::engagement_event e;
                e.user_id = user;
                e.item_id = ((number + 1) << 32) | x.item;
                e.time = now + static_cast<std::int64_t>(x.time_offset_s);
                e.play_time = x.play_time_s, e.duration = x.duration_s;
                e.click = x.click, e.like = x.like, e.follow = x.follow;
                ranker.log(h, e);
            }
            step_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s0).count();
        };
        const auto t0 = std::chrono::steady_clock::now();
        try {
            const auto r = store.update(user, request_id, make_fresh, step);
            res.latency_us.push_back(
                std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
            res.rank_us.push_back(step_us);
            res.acks.push_back({user, number, r.version, had_tokens});
            if (r.recovered)
                std::fprintf(stderr, "redis_host: user %llu: the stored history is unreadable (%s); recovered: the "
                             "user starts afresh\n", static_cast<unsigned long long>(user), r.problem.c_str());
        } catch (const std::exception& e) {
            res.failures.push_back({user, number, request_id, e.what()});
        }
    }
    res.stats = store.stats();
}

// What a user's record held before the run.
struct before_run {
    std::uint64_t version = 0, recorded = 0;
};

std::uint64_t version_number(const std::string& v) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
    return !v.empty() && v[0] != '-' && *end == '\0' && errno == 0 ? x : 0;  // as the script's tonumber(v) or 0
}

before_run read_before(redis_store::redis_history_store& store, const poem::request_ranker& ranker, std::uint64_t u) {
    const redis_store::stored_record rec = store.read(u);
    const auto d = redis_store::decode_record(rec, u, [&](std::uint64_t id) { return ranker.new_user(id); });
    return {version_number(rec.version), d.corrupt ? 0 : d.history.requests_recorded};
}

// Every applied request of this run in its user's history exactly once; returns the problems found.
std::vector<std::string> verify(const options& o, const poem::request_ranker& ranker,
                                const std::map<std::uint64_t, before_run>& before, std::vector<ack> applied) {
    std::vector<std::string> problems;
    redis_store::redis_history_store store(o.store);
    std::sort(applied.begin(), applied.end(),
              [](const ack& a, const ack& b) { return a.user != b.user ? a.user < b.user : a.version < b.version; });
    for (std::uint64_t u = 1; u <= o.users; ++u) {
        const auto lo = std::lower_bound(applied.begin(), applied.end(), u,
                                         [](const ack& a, std::uint64_t x) { return a.user < x; });
        auto hi = lo;
        while (hi != applied.end() && hi->user == u) ++hi;
        const std::uint64_t n = std::uint64_t(hi - lo);
        const before_run b = before.at(u);
        const std::string who = "user " + std::to_string(u) + ": ";
        const redis_store::stored_record rec = store.read(u);
        const auto d = redis_store::decode_record(rec, u, [&](std::uint64_t id) { return ranker.new_user(id); });
        if (d.corrupt) {
            problems.push_back(who + d.problem);
            continue;
        }
        if (n == 0) continue;
        // Versions b.version + 1 .. b.version + n, each written by one acknowledged request.
        for (std::uint64_t i = 0; i < n; ++i)
            if (lo[std::ptrdiff_t(i)].version != b.version + 1 + i) {
                problems.push_back(who + "the run's writes are not versions " + std::to_string(b.version + 1) +
                                   ".." + std::to_string(b.version + n) + " once each");
                break;
            }
        if (version_number(rec.version) != b.version + n)
            problems.push_back(who + "version " + rec.version + ", expected " + std::to_string(b.version + n));
        if (d.history.requests_recorded != b.recorded + n)
            problems.push_back(who + std::to_string(d.history.requests_recorded) + " requests recorded, expected " +
                               std::to_string(b.recorded) + " + " + std::to_string(n) + " acknowledged");
        // The state's newest requests are the run's last writes with tokens, in write order.
        std::vector<std::uint64_t> expected;
        for (auto it = lo; it != hi; ++it)
            if (it->had_tokens) expected.push_back(it->number);
        const poem::partial_order_state& st = d.history.state;
        const std::size_t g = std::min(st.request_count(), expected.size());
        if (!expected.empty() && st.empty()) problems.push_back(who + "the state holds no request");
        for (std::size_t i = 0; i < g; ++i) {
            const std::size_t r = st.request_count() - g + i;
            const std::uint64_t want = expected[expected.size() - g + i];
            for (const poem::quintuple& q : st.request_tokens(r))
                if (number_of(q.item_id) != want) {
                    problems.push_back(who + "state request " + std::to_string(r) + " holds a token of request " +
                                       std::to_string(number_of(q.item_id)) + ", expected request " +
                                       std::to_string(want));
                    break;
                }
        }
    }
    return problems;
}

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(q * double(v.size())))];
}

}  // namespace

int main(int argc, char** argv) try {
    const options o = parse_args(argc, argv);
    const poem::model model = poem::model::load(o.model);
    const poem::request_ranker ranker(model);
    const std::vector<sample_request> pool =
        load_requests(o.sample, ranker.config().fusion.objectives.size(), ranker.config().side_features.size());

    // A run id unique across runs and replicas: request ids (and their markers) never collide.
    std::random_device rd;
    const std::uint64_t nonce = (std::uint64_t(rd()) << 32) ^ rd() ^
                                std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    char run_id[17];
    std::snprintf(run_id, sizeof run_id, "%016llx", static_cast<unsigned long long>(nonce));

    std::map<std::uint64_t, before_run> before;
    if (o.check) {
        redis_store::redis_history_store store(o.store);
        for (std::uint64_t u = 1; u <= o.users; ++u) before[u] = read_before(store, ranker, u);
    }

    std::vector<thread_result> results(o.threads);
    const auto start = std::chrono::steady_clock::now();
    const auto stop_at = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                     std::chrono::duration<double>(o.seconds));
    {
        std::vector<std::thread> pool_threads;
        for (unsigned t = 0; t < o.threads; ++t)
            pool_threads.emplace_back([&, t] {
                try {  // an exception must not leave a thread (std::terminate): it fails the run instead
                    serve_thread(o, ranker, pool, run_id, t, stop_at, results[t]);
                } catch (const std::exception& e) {
                    const std::string what = "thread " + std::to_string(t) + ": " + e.what();
                    results[t].failures.push_back({0, 0, "", what});
                }
            });
        for (auto& th : pool_threads) th.join();
    }
    const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    redis_store::store_stats stats;
    std::vector<ack> applied;
    std::vector<failure> failures;
    std::vector<double> latency, rank_latency;
    for (const thread_result& r : results) {
        stats += r.stats;
        applied.insert(applied.end(), r.acks.begin(), r.acks.end());
        failures.insert(failures.end(), r.failures.begin(), r.failures.end());
        latency.insert(latency.end(), r.latency_us.begin(), r.latency_us.end());
        rank_latency.insert(rank_latency.end(), r.rank_us.begin(), r.rank_us.end());
    }
    const std::size_t acked = applied.size();
    for (const failure& f : failures)
        std::fprintf(stderr, "redis_host: request %llu of user %llu not acknowledged: %s\n",
                     static_cast<unsigned long long>(f.number), static_cast<unsigned long long>(f.user),
                     f.what.c_str());

    std::printf("redis_host: %u threads, %zu requests over %llu users in %.2f s: %.0f requests/s\n", o.threads,
                acked + failures.size(), static_cast<unsigned long long>(o.users), wall_s, double(acked) / wall_s);
    std::printf("latency per request (read, rank, record, write): p50 %.0f us, p99 %.0f us, max %.0f us\n",
                percentile(latency, 0.5), percentile(latency, 0.99), percentile(latency, 1.0));
    std::printf("  of which rank + record (CPU): p50 %.0f us, p99 %.0f us\n", percentile(rank_latency, 0.5),
                percentile(rank_latency, 0.99));
    std::printf("stats: acked=%zu failed=%zu conflicts=%llu reconnects=%llu transient_errors=%llu script_reloads=%llu "
                "replayed_writes=%llu corrupt_seen=%llu corrupt_recovered=%llu\n",
                acked, failures.size(), static_cast<unsigned long long>(stats.conflicts),
                static_cast<unsigned long long>(stats.reconnects),
                static_cast<unsigned long long>(stats.transient_errors),
                static_cast<unsigned long long>(stats.script_reloads),
                static_cast<unsigned long long>(stats.replayed_writes),
                static_cast<unsigned long long>(stats.corrupt_seen),
                static_cast<unsigned long long>(stats.corrupt_recovered));
    if (!o.check) return failures.empty() ? 0 : 1;

    // A request that failed after its write went in (the reply lost, the retries spent) is in the
    // history though not acknowledged: its marker tells, and it counts as applied.
    redis_store::redis_history_store store(o.store);
    std::size_t applied_unacked = 0;
    for (const failure& f : failures)
        if (const std::uint64_t v = store.marker_version(f.user, f.request_id)) {
            applied.push_back({f.user, f.number, v, true});
            ++applied_unacked;
        }
    if (applied_unacked > 0) {
        std::fprintf(stderr, "redis_host: %zu unacknowledged requests were applied; the check cannot tell which "
                     "recorded tokens\n", applied_unacked);
    }
    const std::vector<std::string> problems = verify(o, ranker, before, applied);
    for (const std::string& p : problems) std::printf("check: FAILED: %s\n", p.c_str());
    if (!problems.empty() || !failures.empty()) return 1;
    std::printf("check: OK: %zu acknowledged requests (+%zu applied, unacknowledged) each recorded exactly once in "
                "its user's history (%llu users)\n",
                acked, applied_unacked, static_cast<unsigned long long>(o.users));
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "redis_host: %s\n", e.what());
    return 1;
}
